"""`make mutation`'s memory bound: a runaway mutant's process is killed, a normal one is not."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import psutil

from tests.mutation.run import _watch

LIMIT = 200 * 1024**2
# Capped at 1 GiB of address space, so without the watchdog it ends in a MemoryError (exit 1), not
# in the machine's memory.
GROWS_WITHOUT_END = (
    "import resource\n"
    "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
    "chunks = []\n"
    "while True:\n"
    "    chunks.append(bytearray(16 * 1024 * 1024))\n"
)
STAYS_SMALL = "import time\ntime.sleep(3)\n"


def _run_watched(code: str) -> int:
    """Run `code` as a grandchild of a shell, watched as mutmut's forks are; its exit status."""
    parent = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "$0"', code])
    stop = threading.Event()
    watchdog = threading.Thread(target=_watch, args=(psutil.Process(parent.pid), stop, LIMIT))
    watchdog.start()
    try:
        return parent.wait(timeout=60)
    finally:
        stop.set()
        watchdog.join()


def test_a_process_growing_past_the_bound_is_killed() -> None:
    assert _run_watched(GROWS_WITHOUT_END) == 128 + signal.SIGKILL


def test_a_process_under_the_bound_runs_to_its_end() -> None:
    assert _run_watched(STAYS_SMALL) == 0
