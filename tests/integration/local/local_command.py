"""`python -m musicgen_local` as a user runs it: a child process, read until it is ready."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from musicgen_local.command import READY_LINE

REPO_ROOT = Path(__file__).resolve().parents[3]
# Every process the command starts inherits this variable (the Java frontend too, which
# daemonises out of the process tree): after a stop, none may be left that carries it.
RUN_MARKER_VARIABLE = "MUSICGEN_LOCAL_TEST_RUN"
STARTUP_TIMEOUT_SECONDS = 300
STOP_TIMEOUT_SECONDS = 60


@dataclass
class LocalCommand:
    process: subprocess.Popen[str]
    marker: str
    stdout: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def processes(self) -> list[psutil.Process]:
        """Live processes (not zombies) started by this run of the command, itself included."""
        found = []
        for process in psutil.process_iter():
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if process.environ().get(RUN_MARKER_VARIABLE) == self.marker:
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def ctrl_c(self) -> int:
        """SIGINT to the command's process group, as a terminal's Ctrl-C; its exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def kill_leftovers(self) -> None:
        for process in self.processes():
            process.kill()


def _read_until_ready(command: LocalCommand) -> None:
    assert command.process.stdout is not None
    for line in command.process.stdout:
        command.stdout.append(line)
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            command.environment[name] = shlex.split(value)[0]
        if line.strip() == READY_LINE:
            return


def start_local_command(args: Sequence[str], *, stderr_path: Path) -> LocalCommand:
    """Start the command in its own process group; return once it printed READY_LINE."""
    marker = uuid.uuid4().hex
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "musicgen_local", *args],
            env={**inherited, "PYTHONPATH": str(REPO_ROOT), RUN_MARKER_VARIABLE: marker},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    command = LocalCommand(process=process, marker=marker)
    reader = threading.Thread(target=_read_until_ready, args=(command,), daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_SECONDS)
    if not command.stdout or command.stdout[-1].strip() != READY_LINE:
        os.killpg(process.pid, signal.SIGKILL)
        command.kill_leftovers()
        raise AssertionError(
            f"`python -m musicgen_local` not ready after {STARTUP_TIMEOUT_SECONDS} s "
            f"(exit {process.poll()}); stdout: {''.join(command.stdout)!r}; stderr tail: "
            f"{stderr_path.read_text()[-3000:]}"
        )
    return command
