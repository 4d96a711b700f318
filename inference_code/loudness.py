"""Loudness normalisation of generated clips (peak, RMS, or none)."""

from __future__ import annotations

import numpy as np

PEAK_TARGET = 10 ** (-1.0 / 20)  # -1 dBFS leaves headroom for the 16-bit conversion
RMS_TARGET = 10 ** (-20.0 / 20)  # -20 dBFS, a common loudness for music previews
_SILENCE = 1e-6


def normalize(audio: np.ndarray, mode: str) -> np.ndarray:
    """Scale one clip `(channels, samples)` by a single gain so all channels keep their balance."""
    if mode == "none":
        return audio
    if mode == "peak":
        level, target = float(np.max(np.abs(audio), initial=0.0)), PEAK_TARGET
    elif mode == "rms":
        level, target = float(np.sqrt(np.mean(np.square(audio)))), RMS_TARGET
    else:
        raise ValueError(f"normalize: must be one of peak, rms, none (got {mode!r})")
    if level < _SILENCE:
        return audio
    scaled = audio * (target / level)
    # RMS gain can push peaks past full scale; limit them rather than wrap around in PCM.
    peak = float(np.max(np.abs(scaled), initial=0.0))
    if peak > 1.0:
        scaled = scaled / peak
    return scaled.astype(np.float32)
