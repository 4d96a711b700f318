"""Two model servers on one machine run and stop independently.

The toolkit's wrapper adopts the only model-server Java process it sees, which (while its own is
still starting) is another server's, and kills its adoptee on SIGTERM. Whether it adopts another's
is a race, so one test sets the adoption up on purpose with the toolkit's own handler; the other
runs two real servers and stops the later one first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from musicgen_local import model_server
from musicgen_local.model_server import is_frontend, running_model_server, server_processes_of
from reliability.results import record

pytestmark = pytest.mark.integration
# A Java process the wrapper kills dies within a second; this is long enough to see it.
SETTLE_SECONDS = 3.0
# Two servers importing torch at once on a busy CI machine took up to 110 s each.
STARTUP_SECONDS = 300


def _frontends(url: str) -> list[int]:
    return sorted(process.pid for process in server_processes_of(url) if is_frontend(process))


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.heavy
@pytest.mark.reliability
def test_stopping_one_server_leaves_the_other_serving(stereo_model_dir: Path) -> None:
    with running_model_server(stereo_model_dir, startup_timeout=STARTUP_SECONDS) as first:
        first_java = _frontends(first)
        assert len(first_java) == 1
        with running_model_server(stereo_model_dir, startup_timeout=STARTUP_SECONDS) as second:
            second_java = _frontends(second)
            assert len(second_java) == 1 and second_java != first_java
            assert _healthy(first) and _healthy(second)
            second_all = [process.pid for process in server_processes_of(second)]
        time.sleep(SETTLE_SECONDS)
        assert not any(psutil.pid_exists(pid) for pid in second_all)
        assert not _healthy(second)
        assert _frontends(first) == first_java
        assert _healthy(first)
    assert not psutil.pid_exists(first_java[0])
    assert not _healthy(first)
    record("harness: two model servers, later one stopped first", cases=1, lost=0)


# The toolkit's wrapper after it has adopted `argv[1]`: its own SIGTERM handler, then waiting.
_ADOPTING_WRAPPER = """\
import sys, time, psutil
from sagemaker_inference.model_server import _add_sigterm_handler
_add_sigterm_handler(psutil.Process(int(sys.argv[1])))
print("adopted", flush=True)
time.sleep(120)
"""
_SLEEPER = "import time; time.sleep(120)"


def _spawn(code: str, *args: str, marker: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop(model_server.SERVER_MARKER_VARIABLE, None)
    if marker is not None:
        env[model_server.SERVER_MARKER_VARIABLE] = marker
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, text=True
    )


def test_stop_never_lets_a_wrapper_kill_the_java_it_adopted_from_another_server() -> None:
    other_java = _spawn(_SLEEPER, model_server.MODEL_SERVER_JAVA_CLASS)
    own_java = _spawn(_SLEEPER, model_server.MODEL_SERVER_JAVA_CLASS, marker="ours")
    wrapper = _spawn(_ADOPTING_WRAPPER, str(other_java.pid), marker="ours")
    try:
        assert wrapper.stdout is not None and wrapper.stdout.readline() == "adopted\n"
        model_server._stop(wrapper, "ours")
        assert own_java.wait(timeout=10) is not None
        assert model_server.server_processes("ours") == []
        time.sleep(1)
        assert other_java.poll() is None, "the other server's Java was killed"
    finally:
        for process in (other_java, own_java, wrapper):
            process.kill()
            process.wait(timeout=10)
