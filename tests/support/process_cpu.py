"""CPU time of another process, for tests and benchmarks that watch a server work."""

from __future__ import annotations

import psutil


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU seconds `process` has used so far (children not included)."""
    times = process.cpu_times()
    return times.user + times.system
