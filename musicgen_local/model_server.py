"""The Hugging Face inference container's model server, run locally on a model directory.

`running_model_server` starts `sagemaker_huggingface_inference_toolkit.serving` the way the
container's entry point does: `SAGEMAKER_BASE_DIR/model` is the model directory (weights plus
`code/inference.py`, the layout of `/opt/ml/model`), the toolkit writes the multi-model-server
configuration and launches the Java frontend, which daemonises and spawns Python workers that
import our handler. Everything machine-global that the toolkit and the server would otherwise
share between two servers (the configuration file in `/etc`, the pid file and the workers' Unix
sockets in the temp directory, the log folder) is moved into a private scratch folder, so two
servers can run at once and the helper needs no root.

One thing stays machine-wide: the toolkit's wrapper adopts *the only* model-server Java process
it sees on the machine (it looks before its own Java has started, so with another server running
it adopts that one) and kills its adoptee when it gets SIGTERM. So a server is stopped by the
identity of its own processes (the marker variable they inherit), Java first, and every one of
them, the wrapper included, gets SIGKILL, which it cannot turn into a kill of another's.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

PORT_RANGE = range(8000, 20000)  # the server refuses high ephemeral ports
STOP_GRACE_SECONDS = 10.0
STOP_ROUNDS = 3
LOG_TAIL_CHARS = 6000
# Every process of one server (toolkit wrapper, Java frontend, Python workers) inherits this
# variable; stopping the server finds them by it, because the Java process is daemonised away
# from the process tree we started.
SERVER_MARKER_VARIABLE = "MUSICGEN_TEST_MODEL_SERVER_ID"
# How the toolkit's wrapper finds the frontend (sagemaker_inference.model_server.MMS_NAMESPACE),
# and the script each Python worker runs.
MODEL_SERVER_JAVA_CLASS = "com.amazonaws.ml.mms.ModelServer"
WORKER_SCRIPT = "model_service_worker.py"
# Variables of the calling shell that would change how the toolkit serves (a Hub model id, a
# pipeline task, another server's limits); only `env` may set them.
_INHERITED_PREFIXES_DROPPED = ("SAGEMAKER_", "MMS_", "HF_")
# The marker of each running server, by the URL `running_model_server` yielded.
_MARKERS_BY_URL: dict[str, str] = {}

# The toolkit's entry module, run as `__main__` exactly as `python -m` would run it; the only
# change is where the toolkit writes the server configuration: `/etc/sagemaker-mms.properties` is
# shared by every server on the machine and not writable without root.
_LAUNCHER = """\
import runpy, sys
from sagemaker_inference import model_server
from sagemaker_huggingface_inference_toolkit import mms_model_server
model_server.MMS_CONFIG_FILE = mms_model_server.MMS_CONFIG_FILE = sys.argv[1]
runpy.run_module("sagemaker_huggingface_inference_toolkit.serving", run_name="__main__")
"""


class ModelServerError(RuntimeError):
    """The model server did not start, or left processes behind."""


def free_model_server_port() -> int:
    """A loopback port in the range the model server accepts that nothing listens on now."""
    candidates = random.sample(PORT_RANGE, 200)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ModelServerError(f"no free port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return text[-chars:]


def _server_environment(
    *, base_dir: Path, scratch: Path, port: int, marker: str, env: Mapping[str, str]
) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_INHERITED_PREFIXES_DROPPED)
    }
    # `multi-model-server` is a console script of this interpreter's environment, which need not
    # be on PATH when the tests run as `.venv/bin/python -m pytest`.
    path = os.pathsep.join([str(Path(sys.executable).parent), inherited.get("PATH", "")])
    tmp = scratch / "tmp"
    logs = scratch / "logs"
    tmp.mkdir()
    logs.mkdir()
    return {
        **inherited,
        "PATH": path,
        "SAGEMAKER_BASE_DIR": str(base_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        # pid file (`multi-model-server`) and worker sockets (Java's java.io.tmpdir, from TEMP)
        "TMPDIR": str(tmp),
        "TEMP": str(tmp),
        "LOG_LOCATION": str(logs),
        "METRICS_LOCATION": str(logs),
        "PYTHONUNBUFFERED": "1",
        SERVER_MARKER_VARIABLE: marker,
        **env,
    }


def server_processes(marker: str) -> list[psutil.Process]:
    """Live processes (not zombies) that belong to the server tagged with `marker`."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(SERVER_MARKER_VARIABLE) == marker:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def is_frontend(process: psutil.Process) -> bool:
    """The Java frontend, recognised the way the toolkit's wrapper recognises it."""
    try:
        return MODEL_SERVER_JAVA_CLASS in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def server_processes_of(url: str) -> list[psutil.Process]:
    """Live processes of the running server that `running_model_server` yielded `url` for."""
    return server_processes(_MARKERS_BY_URL[url])


def worker_processes(url: str) -> list[psutil.Process]:
    """The Python workers (the processes that run our handler) of the server serving `url`."""
    return [
        process
        for process in server_processes_of(url)
        if WORKER_SCRIPT in " ".join(_cmdline(process))
    ]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(processes, timeout=STOP_GRACE_SECONDS)


def _stop(wrapper: subprocess.Popen[bytes], marker: str) -> None:
    """SIGKILL by identity: our Java frontend, then our workers, then the wrapper.

    The wrapper never gets SIGTERM: it would kill the Java process it adopted, which may be
    another server's. A test server holds nothing worth a graceful stop, and SIGKILL leaves no
    process a chance to act on another server's.
    """
    # Several rounds: the Java frontend may spawn a worker between the scan and its own exit.
    for _ in range(STOP_ROUNDS):
        processes = [p for p in server_processes(marker) if p.pid != wrapper.pid]
        if not processes:
            break
        _kill([process for process in processes if is_frontend(process)])
        _kill([process for process in processes if not is_frontend(process)])
    wrapper.kill()
    wrapper.wait(timeout=STOP_GRACE_SECONDS)
    strays = server_processes(marker)
    if strays:
        pids = ", ".join(str(process.pid) for process in strays)
        raise ModelServerError(f"model server processes survived SIGKILL: {pids}")


def _wait_until_healthy(
    url: str,
    wrapper: subprocess.Popen[bytes],
    marker: str,
    log_path: Path,
    startup_timeout: float,
) -> None:
    deadline = time.monotonic() + startup_timeout
    last_answer = "no answer"
    while time.monotonic() < deadline:
        # The wrapper may adopt another server's frontend and exit when that one stops; ours
        # still serves then, and is stopped by identity all the same.
        if wrapper.poll() is not None and not any(
            is_frontend(process) for process in server_processes(marker)
        ):
            raise ModelServerError(
                f"model server exited with status {wrapper.returncode} during start-up; "
                f"log tail:\n{log_tail(log_path)}"
            )
        try:
            response = requests.get(f"{url}/ping", timeout=2)
        except requests.RequestException as error:
            last_answer = type(error).__name__
        else:
            if response.status_code == 200:
                return
            last_answer = f"HTTP {response.status_code} {response.text[:200]}"
        time.sleep(0.25)
    raise ModelServerError(
        f"model server not healthy after {startup_timeout:g} s (last /ping: {last_answer}); "
        f"log tail:\n{log_tail(log_path)}"
    )


@contextmanager
def running_model_server(
    model_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 120,
) -> Iterator[str]:
    """Serve `model_dir` with the container's model server; yield its base URL.

    `env` is the container environment (for example the stack's `model_server_environment`);
    variables of the calling process that configure SageMaker, the server or the Hub are not
    inherited. Ready means `GET /ping` answers 200, as SageMaker sees it: the frontend answers
    that while the worker may still be running model_fn, so the first request can wait for the
    load. On exit every process of the server is stopped by process id and checked gone.
    """
    model_dir = Path(model_dir).resolve()
    if not (model_dir / "code" / "inference.py").is_file():
        raise ModelServerError(f"{model_dir} has no code/inference.py")
    with tempfile.TemporaryDirectory(prefix="model-server-") as scratch_name:
        scratch = Path(scratch_name)
        base_dir = scratch / "ml"
        base_dir.mkdir()
        (base_dir / "model").symlink_to(model_dir, target_is_directory=True)
        port = free_model_server_port()
        marker = uuid.uuid4().hex
        log_path = scratch / "server.log"
        environment = _server_environment(
            base_dir=base_dir, scratch=scratch, port=port, marker=marker, env=env or {}
        )
        url = f"http://127.0.0.1:{port}"
        _MARKERS_BY_URL[url] = marker
        with log_path.open("wb") as log:
            wrapper = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(scratch / "mms.properties")],
                cwd=scratch,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches the process that started it,
                # which stops the server by identity, never the wrapper (see `_stop`).
                start_new_session=True,
            )
        try:
            _wait_until_healthy(url, wrapper, marker, log_path, startup_timeout)
            yield url
        finally:
            try:
                _stop(wrapper, marker)
            finally:
                del _MARKERS_BY_URL[url]
