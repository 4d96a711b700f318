"""`make mutation`: mutmut with the tests' S3 servers started once and a memory bound per mutant.

    python -m tests.mutation.run [MUTMUT RUN ARGS ...]

Some mutants turn the staging loop into one that allocates without end (a part end off by one
makes the part list grow forever: 10 GB in a minute here). mutmut's timeout comes too late for
the machine, so a watchdog SIGKILLs any of mutmut's processes whose RSS passes the bound;
mutmut then records that mutant's test run as ended by a signal, which counts as killed.

Others deadlock the part pipeline: a thread waits for a slot no one frees. A waiting process burns
no CPU, so mutmut's CPU-time limit never fires and only pytest-timeout's 600 s per test ends it.
The watchdog gives each mutant's test run a wall-clock bound too, far above the longest (the
staging suite, about 35 s for a surviving mutant).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from tests.support.shared_s3_servers import running_shared_s3_servers

RSS_LIMIT_BYTES = 3 * 1024**3
WALL_LIMIT_SECONDS = 180.0
POLL_SECONDS = 0.5
# mutmut titles each forked test run after its mutant (`mutmut: pkg.module.x_f__mutmut_3`); its
# own process (whose arguments may name mutants too) and the stats and clean-test runs, which
# take minutes, are not titled so.
MUTANT_RUN_TITLE = "mutmut: "


def _watch(
    root: psutil.Process,
    stop: threading.Event,
    limit: int,
    wall_limit: float = WALL_LIMIT_SECONDS,
) -> None:
    while not stop.wait(POLL_SECONDS):
        try:
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            try:
                if child.memory_info().rss > limit:
                    print(f"mutation: SIGKILL {child.pid} over {limit >> 20} MiB", flush=True)
                    child.kill()
                elif time.time() - child.create_time() > wall_limit and " ".join(
                    child.cmdline()
                ).startswith(MUTANT_RUN_TITLE):
                    print(f"mutation: SIGKILL {child.pid} after {wall_limit:g} s", flush=True)
                    child.kill()
            except psutil.NoSuchProcess:
                continue


def main(arguments: Sequence[str], *, limit: int = RSS_LIMIT_BYTES) -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    with running_shared_s3_servers() as servers:
        process = subprocess.Popen([str(mutmut), "run", *arguments], env={**os.environ, **servers})
        stop = threading.Event()
        watchdog = threading.Thread(
            target=_watch, args=(psutil.Process(process.pid), stop, limit), daemon=True
        )
        watchdog.start()
        try:
            return process.wait()
        finally:
            stop.set()
            watchdog.join()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
