"""Read format, sample rate, channels and length from WAV/FLAC headers (stdlib only)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from musicgen_client.errors import OutputFormatError


@dataclass(frozen=True)
class AudioInfo:
    format: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def sniff_format(data: bytes) -> str | None:
    """`"wav"`, `"flac"`, or None when the bytes are neither."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    return None


def describe_audio(data: bytes) -> AudioInfo:
    """Header facts of a WAV or FLAC file; raises OutputFormatError for anything else."""
    kind = sniff_format(data)
    if kind == "wav":
        return _describe_wav(data)
    if kind == "flac":
        return _describe_flac(data)
    raise OutputFormatError(f"audio: expected a WAV or FLAC file, got bytes starting {data[:12]!r}")


def _describe_wav(data: bytes) -> AudioInfo:
    offset = 12
    channels = sample_rate = block_align = 0
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            _, channels, sample_rate, _, block_align = struct.unpack_from("<HHIIH", data, body)
        elif chunk_id == b"data":
            if not block_align:
                raise OutputFormatError("audio: WAV data chunk comes before its fmt chunk")
            # A streamed WAV may carry a placeholder size: trust the bytes actually present.
            available = min(size, len(data) - body)
            return AudioInfo("wav", sample_rate, channels, available // block_align)
        offset = body + size + (size & 1)
    raise OutputFormatError("audio: WAV file has no data chunk")


def _describe_flac(data: bytes) -> AudioInfo:
    if len(data) < 8 + 34:
        raise OutputFormatError("audio: FLAC file is shorter than its STREAMINFO block")
    block_type = data[4] & 0x7F
    if block_type != 0:
        raise OutputFormatError("audio: FLAC file does not start with a STREAMINFO block")
    (packed,) = struct.unpack_from(">Q", data, 8 + 10)
    sample_rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    frames = packed & ((1 << 36) - 1)
    return AudioInfo("flac", sample_rate, channels, frames)
