"""Audio helpers for the handler tests: decode responses, build request audio."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import soundfile


def decode_clip(clip: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Audio of one JSON clip as float `(samples, channels)` and its sample rate."""
    return read_audio(base64.b64decode(clip["audio"]))


def read_audio(data: bytes) -> tuple[np.ndarray, int]:
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio, rate


def audio_file_base64(
    audio: np.ndarray, rate: int = 32_000, audio_format: str = "WAV", subtype: str = "PCM_16"
) -> str:
    """A base64 audio file from float `(samples,)` or `(samples, channels)` audio."""
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=audio_format, subtype=subtype)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def sine(frequency: float, seconds: float, rate: int = 32_000) -> np.ndarray:
    time_axis = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)
