"""Join consecutive generation windows with a crossfade over their overlap."""

from __future__ import annotations

import numpy as np


def crossfade_append(head: np.ndarray, tail: np.ndarray, overlap: int) -> np.ndarray:
    """Append `tail` to `head` (both `(..., samples)`), blending the last/first `overlap` samples.

    Both sides of the overlap render the same music (the next window starts by re-decoding the
    context it continues from), so the signals are correlated: a linear fade, whose gains sum
    to one, keeps the level constant where an equal-power fade would bulge by up to 3 dB.
    """
    overlap = min(overlap, head.shape[-1], tail.shape[-1])
    if overlap == 0:
        return np.concatenate([head, tail], axis=-1)
    fade_in = np.linspace(0.0, 1.0, overlap + 2, dtype=np.float32)[1:-1]
    blended = head[..., -overlap:] * (1.0 - fade_in) + tail[..., :overlap] * fade_in
    return np.concatenate([head[..., :-overlap], blended, tail[..., overlap:]], axis=-1)
