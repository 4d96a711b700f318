"""`running_model_server` reports a failed start with the server's own words and leaves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from musicgen_local import model_server
from musicgen_local.model_server import ModelServerError, running_model_server

pytestmark = pytest.mark.integration


def test_failed_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text("")
    # No Java at JAVA_HOME: the frontend cannot start; the toolkit gives up after 1 s.
    broken = {"JAVA_HOME": str(tmp_path / "no-java"), "SAGEMAKER_STARTUP_TIMEOUT": "1"}

    # The wrapper usually exits at once; on a loaded machine it can hang after "Failed to reap
    # children process" until the health deadline. Either way the error must carry the log tail.
    with (
        pytest.raises(ModelServerError, match=r"exited with status|not healthy after") as raised,
        running_model_server(model_dir, env=broken, startup_timeout=60),
    ):
        pytest.fail("the server must not come up without Java")

    assert "java not found" in str(raised.value)


def test_model_dir_without_handler_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ModelServerError, match=r"has no code/inference\.py"),
        running_model_server(tmp_path, startup_timeout=1),
    ):
        pytest.fail("no server may start without a handler")


class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def _exited_wrapper() -> subprocess.Popen[bytes]:
    """A wrapper that has returned 0, as one does once the frontend it adopted stops."""
    wrapper = subprocess.Popen([sys.executable, "-c", "pass"])
    wrapper.wait(timeout=30)
    return wrapper


@pytest.mark.parametrize("own_frontend_alive", [True, False])
def test_a_wrapper_that_exited_fails_the_start_only_if_our_frontend_is_gone(
    tmp_path: Path, own_frontend_alive: bool
) -> None:
    marker = uuid.uuid4().hex
    java = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", model_server.MODEL_SERVER_JAVA_CLASS],
        env={**os.environ, model_server.SERVER_MARKER_VARIABLE: marker},
    )
    if not own_frontend_alive:
        java.kill()
        java.wait(timeout=10)
    ping = ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=ping.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{ping.server_address[1]}"
    try:
        if own_frontend_alive:
            model_server._wait_until_healthy(url, _exited_wrapper(), marker, tmp_path / "log", 30)
        else:
            with pytest.raises(ModelServerError, match=r"exited with status 0 during start-up"):
                model_server._wait_until_healthy(
                    url, _exited_wrapper(), marker, tmp_path / "log", 30
                )
    finally:
        ping.shutdown()
        java.kill()
        java.wait(timeout=10)
