"""Requests an attacker (or a broken client) can send, each with the field its rejection names.

Every body is small enough to pass the model server's request limit, and each asks for far more
work than it weighs: audio whose header or length would cost gigabytes once decoded, numbers that
overflow generation, JSON that Python itself cannot decode. The audio is built on demand because
a few of the files take a moment to encode.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile

PROMPT = "calm piano"
FLAC_BLOCK_SAMPLES = 65_535


@dataclass(frozen=True)
class HostileCase:
    name: str
    field: str  # what the rejection must name
    body: Callable[[], bytes]
    model: str = "mono"  # the tiny model variant that serves it


def _request(**fields: object) -> bytes:
    return json.dumps({"prompt": PROMPT, "duration": 0.5, "seed": 1, **fields}).encode()


def _audio_request(audio: bytes, field: str = "audio_prompt") -> bytes:
    return _request(**{field: base64.b64encode(audio).decode()})


def silent_flac(
    *, seconds: float, rate: int, channels: int, declared_samples: int | None = None
) -> bytes:
    """A valid FLAC of silence built frame by frame: hours of audio in a few kilobytes.

    Each frame holds `FLAC_BLOCK_SAMPLES` samples as one CONSTANT subframe per channel (the way an
    encoder stores digital silence), so the file weighs ~30 bytes per frame however long it plays.
    STREAMINFO's total_samples is the true length unless `declared_samples` says otherwise
    (0 is the format's "unknown").
    Layout: https://xiph.org/flac/format.html (STREAMINFO, FRAME_HEADER, SUBFRAME_CONSTANT).
    """
    total = round(seconds * rate)
    declared = total if declared_samples is None else declared_samples
    streaminfo = struct.pack(">HH", FLAC_BLOCK_SAMPLES, FLAC_BLOCK_SAMPLES) + bytes(6)
    packed = (rate << 44) | ((channels - 1) << 41) | (15 << 36) | declared
    streaminfo += struct.pack(">Q", packed) + bytes(16)
    parts = [b"fLaC", bytes([0x80, 0, 0, len(streaminfo)]), streaminfo]
    for number, start in enumerate(range(0, total, FLAC_BLOCK_SAMPLES)):
        parts.append(_constant_frame(number, min(FLAC_BLOCK_SAMPLES, total - start), channels))
    return b"".join(parts)


def _constant_frame(number: int, samples: int, channels: int) -> bytes:
    # Sync + fixed blocking, block size in 16 bits after the number, rate from STREAMINFO;
    # independent channels, 16-bit samples.
    header = bytes([0xFF, 0xF8, 0x70, ((channels - 1) << 4) | 0x08])
    header += _utf8_number(number) + struct.pack(">H", samples - 1)
    header += bytes([_crc8(header)])
    frame = header + b"\x00\x00\x00" * channels  # CONSTANT subframe, value 0
    return frame + struct.pack(">H", _crc16(frame))


def _utf8_number(number: int) -> bytes:
    """FLAC's frame number: UTF-8's byte layout stretched to 36 bits."""
    if number < 0x80:
        return bytes([number])
    continuation = []
    while True:
        continuation.insert(0, 0x80 | (number & 0x3F))
        number >>= 6
        count = len(continuation) + 1
        if number < (1 << (7 - count)):
            lead = (0xFF << (8 - count)) & 0xFF
            return bytes([lead | number, *continuation])


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def wav_declaring_rate(rate: int, *, samples: int = 160) -> bytes:
    """A short, valid 16-bit mono WAV whose header claims `rate` samples per second."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(samples, dtype=np.int16), 8000, format="WAV")
    data = bytearray(buffer.getvalue())
    # fmt chunk at offset 12: id, size, format, channels, then the rate and the byte rate.
    assert data[12:16] == b"fmt "
    struct.pack_into("<II", data, 24, rate, min(rate * 2, 2**32 - 1))
    return bytes(data)


def _nested_arrays(depth: int) -> bytes:
    return b'{"prompt": "x", "seed": ' + b"[" * depth + b"]" * depth + b"}"


def _many_empty_arrays(count: int) -> bytes:
    return b'{"prompt": "x", "pad": [' + b",".join([b"[]"] * count) + b"]}"


CASES: tuple[HostileCase, ...] = (
    HostileCase(
        "FLAC, 10 min of 8-channel silence",
        "audio_prompt",
        lambda: _audio_request(silent_flac(seconds=600, rate=48_000, channels=8)),
    ),
    HostileCase(
        "FLAC, 1 h of stereo silence",
        "audio_prompt",
        lambda: _audio_request(silent_flac(seconds=3600, rate=48_000, channels=2)),
    ),
    HostileCase(
        "FLAC, 1 h, total_samples=0 (unknown length)",
        "audio_prompt",
        lambda: _audio_request(
            silent_flac(seconds=3600, rate=48_000, channels=2, declared_samples=0)
        ),
    ),
    HostileCase(
        "FLAC melody, 10 min of 8-channel silence",
        "melody",
        lambda: _audio_request(silent_flac(seconds=600, rate=48_000, channels=8), "melody"),
        model="melody",
    ),
    HostileCase(
        "WAV declaring 4,000,037 Hz",
        "audio_prompt",
        lambda: _audio_request(wav_declaring_rate(4_000_037)),
    ),
    HostileCase(
        "WAV declaring 2^31-1 Hz",
        "audio_prompt",
        lambda: _audio_request(wav_declaring_rate(2**31 - 1)),
    ),
    HostileCase("guidance_scale 1e300", "guidance_scale", lambda: _request(guidance_scale=1e300)),
    HostileCase("temperature 1e-45", "temperature", lambda: _request(temperature=1e-45)),
    HostileCase("top_k 10^6", "top_k", lambda: _request(top_k=10**6)),
    HostileCase("seed of 4000 digits", "seed", lambda: _request(seed=10**3999)),
    HostileCase(
        "lone surrogate in prompt",
        "prompt",
        lambda: b'{"prompt": "calm \\ud800 piano", "duration": 0.5}',
    ),
    HostileCase("100k nested arrays", "body", lambda: _nested_arrays(100_000)),
    HostileCase(
        "5000-digit integer",
        "body",
        lambda: b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}",
    ),
    HostileCase("2 MB of empty arrays", "body", lambda: _many_empty_arrays(700_000)),
    HostileCase(
        "2 MB unknown field name",
        "x" * 56 + "...",
        lambda: json.dumps({"prompt": "x", "x" * 2_000_000: 1}).encode(),
    ),
    HostileCase("2 MB prompt", "prompt", lambda: _request(prompt="a" * 2_000_000)),
    HostileCase(
        "2 MB of base64 that is not audio",
        "audio_prompt",
        lambda: _audio_request(bytes(1_500_000)),
    ),
)
