"""Fixtures of the client's unit tests: small real WAV/FLAC files."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable

import numpy as np
import pytest
import soundfile

AudioFactory = Callable[..., bytes]


@pytest.fixture
def make_wav() -> AudioFactory:
    def build(*, seconds: float, sample_rate: int = 32_000, channels: int = 1) -> bytes:
        frames = round(seconds * sample_rate)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(channels)
            writer.setsampwidth(2)
            writer.setframerate(sample_rate)
            writer.writeframes(np.zeros(frames * channels, dtype="<i2").tobytes())
        return buffer.getvalue()

    return build


@pytest.fixture
def make_flac() -> AudioFactory:
    def build(*, seconds: float, sample_rate: int = 32_000, channels: int = 2) -> bytes:
        frames = round(seconds * sample_rate)
        noise = np.random.default_rng(0).uniform(-0.5, 0.5, (frames, channels))
        buffer = io.BytesIO()
        soundfile.write(buffer, noise, sample_rate, format="FLAC", subtype="PCM_16")
        return buffer.getvalue()

    return build
