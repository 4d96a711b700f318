"""`make mutation`'s bounds: a mutant's process that grows without end or hangs is killed; a normal
one, or a long run that is not a mutant's, is not."""

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
HANGS = "import time\ntime.sleep(120)\n"
WALL_LIMIT = 1.0


def _run_watched(code: str, *, title: str | None = None) -> int:
    """Run `code` as a grandchild of a shell, watched as mutmut's forks are, titled `title` the
    way mutmut titles a mutant's test run (setproctitle), or left untitled; its exit status."""
    if title:
        code = f"import setproctitle\nsetproctitle.setproctitle({title!r})\n{code}"
    parent = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "$0"', code])
    stop = threading.Event()
    watchdog = threading.Thread(
        target=_watch, args=(psutil.Process(parent.pid), stop, LIMIT, WALL_LIMIT)
    )
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


def test_a_mutants_run_past_the_wall_clock_bound_is_killed() -> None:
    assert _run_watched(HANGS, title="mutmut: pkg.mod.x_f__mutmut_3") == 128 + signal.SIGKILL


def test_a_long_run_that_is_not_a_mutants_is_left_alone() -> None:
    """mutmut's own process is one: its arguments can name mutants."""
    code = STAYS_SMALL + "# mutmut run pkg.mod.x_f__mutmut_3\n"
    assert _run_watched(code) == 0
