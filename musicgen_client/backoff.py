"""Polling delays: exponential growth, a cap, and jitter so many waiting clients do not align."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay schedule `initial * factor**n`, capped at `maximum`, each shortened by up to `jitter`.

    Jitter only shortens a delay, so the cap is a true upper bound and a delay never drops
    below `(1 - jitter) * initial`: there is no busy loop.
    """

    initial: float = 1.0
    factor: float = 1.6
    maximum: float = 15.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"initial: must be > 0, got {self.initial}")
        if self.factor < 1:
            raise ValueError(f"factor: must be >= 1, got {self.factor}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum: must be >= initial ({self.initial}), got {self.maximum}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter: must be in [0, 1), got {self.jitter}")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield delays in seconds forever."""
        draw = rng or random.Random()
        base = self.initial
        while True:
            yield base * (1 - self.jitter * draw.random())
            base = min(self.maximum, base * self.factor)
