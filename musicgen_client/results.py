"""Typed results, and parsing of the output object (the JSON response or a bare audio file)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from musicgen_client.audio_info import describe_audio, sniff_format
from musicgen_client.errors import OutputFormatError


@dataclass(frozen=True)
class Clip:
    """One generated piece of audio.

    `audio` is the complete file (WAV or FLAC, 16-bit PCM) ready to be written to disk.
    `prompt` and `seed` are None only for a bare-audio response, which carries no metadata.
    """

    index: int
    prompt: str | None
    seed: int | None
    duration: float
    sample_rate: int
    channels: int
    format: str
    audio: bytes = field(repr=False)

    @property
    def suffix(self) -> str:
        return "." + self.format


@dataclass(frozen=True)
class GenerationResult:
    """What one inference produced: its clips in prompt order, and what the endpoint reported."""

    inference_id: str
    clips: tuple[Clip, ...]
    model_id: str | None = None
    generation_seconds: float | None = None
    warnings: tuple[str, ...] = ()


def parse_output(
    body: bytes, *, inference_id: str, content_type: str | None = None
) -> GenerationResult:
    """Parse an output object.

    The content type decides when it is known; otherwise the bytes are sniffed, so an object
    copied without metadata still parses.
    """
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or (not kind.startswith("audio/") and body.lstrip()[:1] == b"{"):
        return _parse_json(body, inference_id)
    if sniff_format(body) is not None:
        return _parse_audio(body, inference_id)
    raise OutputFormatError(
        f"output of {inference_id}: expected the JSON response or a WAV/FLAC file "
        f"(content type {content_type!r}), got bytes starting {body[:16]!r}"
    )


def _parse_audio(body: bytes, inference_id: str) -> GenerationResult:
    info = describe_audio(body)
    clip = Clip(
        index=0,
        prompt=None,
        seed=None,
        duration=info.duration,
        sample_rate=info.sample_rate,
        channels=info.channels,
        format=info.format,
        audio=body,
    )
    return GenerationResult(inference_id=inference_id, clips=(clip,))


def _parse_json(body: bytes, inference_id: str) -> GenerationResult:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OutputFormatError(f"output of {inference_id}: not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise OutputFormatError(f"output of {inference_id}: expected a JSON object")
    raw_clips = _require(document, "clips", list, inference_id)
    if not raw_clips:
        raise OutputFormatError(f"output of {inference_id}: clips: must hold at least one clip")
    clips = tuple(
        _parse_clip(raw, position, inference_id) for position, raw in enumerate(raw_clips)
    )
    warnings = document.get("warnings") or []
    seconds = document.get("generation_seconds")
    return GenerationResult(
        inference_id=inference_id,
        clips=tuple(sorted(clips, key=lambda clip: clip.index)),
        model_id=document.get("model_id"),
        generation_seconds=float(seconds) if isinstance(seconds, int | float) else None,
        warnings=tuple(str(warning) for warning in warnings),
    )


def _parse_clip(raw: Any, position: int, inference_id: str) -> Clip:
    where = f"{inference_id} clips[{position}]"
    if not isinstance(raw, dict):
        raise OutputFormatError(f"output of {where}: expected a JSON object")
    encoded = _require(raw, "audio", str, where)
    try:
        audio = base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise OutputFormatError(f"output of {where}: audio: not valid base64 ({error})") from error
    # Length and rate come from the audio header: it is what the file holds, whatever was reported.
    info = describe_audio(audio)
    seed = raw.get("seed")
    return Clip(
        index=int(raw.get("index", position)),
        prompt=raw.get("prompt"),
        seed=int(seed) if seed is not None else None,
        duration=info.duration,
        sample_rate=info.sample_rate,
        channels=info.channels,
        format=info.format,
        audio=audio,
    )


def _require(document: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = document.get(name)
    if not isinstance(value, kind):
        raise OutputFormatError(
            f"output of {where}: {name}: expected {kind.__name__}, got {value!r}"
        )
    return value
