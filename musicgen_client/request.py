"""Build request payloads and validate them with the handler's own schema before upload."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from inference_code.request_schema import GenerationRequest, parse_request

# Without a stack's MaxDurationSeconds the client cannot know the endpoint's limit; the endpoint
# enforces its own. One hour is the longest InvocationTimeoutSeconds, so nothing longer can finish.
UNKNOWN_MAX_DURATION_SECONDS = 3600.0


def build_request(
    prompt: str | Sequence[str],
    *,
    duration: float | None = None,
    seed: int | None = None,
    guidance_scale: float | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool | None = None,
    format: str | None = None,
    normalize: str | None = None,
    melody: bytes | None = None,
    audio_prompt: bytes | None = None,
) -> dict[str, Any]:
    """The JSON request for these settings; settings left at None take the endpoint's defaults."""
    payload: dict[str, Any] = (
        {"prompt": prompt} if isinstance(prompt, str) else {"prompts": list(prompt)}
    )
    optional: dict[str, Any] = {
        "duration": duration,
        "seed": seed,
        "guidance_scale": guidance_scale,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "do_sample": do_sample,
        "format": format,
        "normalize": normalize,
        "melody": _encode_audio(melody),
        "audio_prompt": _encode_audio(audio_prompt),
    }
    payload.update({name: value for name, value in optional.items() if value is not None})
    return payload


def validate_request(
    payload: Mapping[str, Any], *, max_duration_seconds: float | None
) -> GenerationRequest:
    """Check `payload` with the handler's schema; RequestValidationError names field and rule."""
    limit = max_duration_seconds if max_duration_seconds else UNKNOWN_MAX_DURATION_SECONDS
    return parse_request(payload, max_duration_seconds=limit)


def _encode_audio(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None
