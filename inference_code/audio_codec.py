"""Audio files in and out: decode request audio, encode clips as 16-bit PCM WAV or FLAC."""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile
from request_schema import RequestValidationError
from scipy.signal import resample_poly

SUBTYPE = "PCM_16"
_CONTAINERS = {"wav": "WAV", "flac": "FLAC"}


def decode_audio(
    data: bytes, *, field: str, sampling_rate: int, channels: int, max_seconds: float
) -> np.ndarray:
    """Decode a WAV/FLAC file into float32 `(channels, samples)` at `sampling_rate`.

    Mono input is copied to every channel and stereo input is averaged for a mono target, so a
    stereo model can continue a mono prompt and vice versa.
    """
    try:
        audio, source_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        # str() of a LibsndfileError names the buffer (`<_io.BytesIO object at 0x…>`): drop it.
        reason = error.error_string if isinstance(error, soundfile.LibsndfileError) else error
        raise RequestValidationError(
            field, "must be a base64-encoded WAV or FLAC file", f"undecodable audio: {reason}"
        ) from None
    seconds = audio.shape[0] / source_rate
    if audio.shape[0] == 0:
        raise RequestValidationError(field, "must hold at least one audio sample", 0)
    if seconds > max_seconds:
        raise RequestValidationError(
            field, f"must be at most {max_seconds:g} s long", f"{seconds:.2f} s", show_got=True
        )
    if not np.isfinite(audio).all():
        raise RequestValidationError(field, "must hold finite samples", "NaN or infinity")
    audio = _match_channels(audio.T, channels)
    return resample(audio, source_rate, sampling_rate)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling along the last axis (anti-aliased, exact rational ratio)."""
    if source_rate == target_rate:
        return np.ascontiguousarray(audio, dtype=np.float32)
    divisor = math.gcd(source_rate, target_rate)
    resampled = resample_poly(audio, target_rate // divisor, source_rate // divisor, axis=-1)
    return resampled.astype(np.float32)


def encode_audio(audio: np.ndarray, *, sampling_rate: int, audio_format: str) -> bytes:
    """Write `(channels, samples)` float audio in [-1, 1] as a 16-bit PCM file."""
    buffer = io.BytesIO()
    clipped = np.clip(audio, -1.0, 1.0).T
    soundfile.write(
        buffer, clipped, sampling_rate, subtype=SUBTYPE, format=_CONTAINERS[audio_format]
    )
    return buffer.getvalue()


def _match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    if audio.shape[0] == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    return np.repeat(audio[:1], channels, axis=0)
