"""How long a run may keep working before it must stop cleanly and report "not done"."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Unlimited:
    """The operator CLI: work until done."""

    def exhausted(self) -> bool:
        return False

    def remaining(self) -> float:
        return math.inf


class Deadline:
    """Work until `seconds` from now (a Lambda's remaining time minus a safety margin)."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def exhausted(self) -> bool:
        return self._clock() >= self._end

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - self._clock())


# `exhausted()` is True when no further unit of work (one part, one file, one read-back chunk)
# may start; `remaining()` bounds the work already started (a Hub request and its retries).
Budget = Unlimited | Deadline
