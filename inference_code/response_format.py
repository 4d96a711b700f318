"""Serialise a prediction: the JSON document of the contract, or one bare audio file."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inference_code.audio_codec import encode_audio
from inference_code.request_schema import RequestValidationError

if TYPE_CHECKING:
    from inference_code.inference import Prediction

LOGGER = logging.getLogger(__name__)

JSON_TYPE = "application/json"
AUDIO_TYPES = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}
# What the handler can send, in the order it prefers when the client likes several equally.
_OFFERS = (JSON_TYPE, *AUDIO_TYPES)


@dataclass(frozen=True)
class Accept:
    media_type: str
    audio_format: str | None  # None: the JSON document


@dataclass(frozen=True)
class _MediaRange:
    kind: str
    subtype: str
    quality: float

    def specificity(self, offer: str) -> int:
        """-1 when this range does not cover `offer`, else 0 (*/*), 1 (type/*) or 2 (exact)."""
        kind, subtype = offer.split("/")
        if self.kind == "*":
            return 0
        if self.kind != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == subtype else -1


def negotiate(accept: str | None, *, prompts: int, audio_format: str) -> Accept:
    """Choose the response type from an HTTP Accept header (RFC 9110, section 12.5.1).

    Each offer gets the quality of the most specific range that covers it; the best quality
    above 0 wins. A bare audio file holds one clip, so several prompts leave only JSON; among
    equally liked audio types the request's `format` wins; JSON wins any other tie.
    """
    ranges = _media_ranges(accept)
    scored: list[tuple[float, int, str]] = []
    for rank, offer in enumerate(_OFFERS):
        covering = [item for item in ranges if item.specificity(offer) >= 0]
        if not covering:
            continue
        quality = max(covering, key=lambda item: item.specificity(offer)).quality
        audio = AUDIO_TYPES.get(offer)
        if quality <= 0 or (audio is not None and prompts != 1):
            continue
        preference = 0 if audio is None else (1 if audio == audio_format else 2)
        scored.append((-quality, preference * len(_OFFERS) + rank, offer))
    if not scored:
        if prompts != 1 and _allows_audio(ranges):
            raise RequestValidationError(
                "prompts",
                f"Accept {accept} returns one audio file, so send exactly one prompt "
                "(or Accept application/json for several)",
                prompts,
            )
        raise RequestValidationError("accept", f"must be one of {', '.join(_OFFERS)}", accept)
    media_type = min(scored)[2]
    return Accept(media_type=media_type, audio_format=AUDIO_TYPES.get(media_type))


def _allows_audio(ranges: list[_MediaRange]) -> bool:
    return any(
        item.quality > 0 and item.specificity(offer) >= 0
        for item in ranges
        for offer in AUDIO_TYPES
    )


def _media_ranges(accept: str | None) -> list[_MediaRange]:
    """Parse `type/subtype;q=0.5, ...`; a missing or empty header accepts anything."""
    if accept is None or not accept.strip():
        return [_MediaRange("*", "*", 1.0)]
    ranges = []
    for element in accept.split(","):
        if not element.strip():
            continue
        media, *parameters = (part.strip() for part in element.split(";"))
        kind, slash, subtype = media.lower().partition("/")
        if not slash or not kind or not subtype or (kind == "*" and subtype != "*"):
            raise RequestValidationError("accept", "must be a list of media types", accept)
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                quality = _quality(value.strip(), accept)
        ranges.append(_MediaRange(kind, subtype, quality))
    return ranges or [_MediaRange("*", "*", 1.0)]


def _quality(value: str, accept: str) -> float:
    try:
        quality = float(value)
    except ValueError:
        quality = -1.0
    if not 0 <= quality <= 1:
        raise RequestValidationError("accept", "q-values must be numbers from 0 to 1", accept)
    return quality


def render_response(prediction: Prediction, accept: Accept) -> str | bytes:
    if accept.audio_format is not None:
        if accept.audio_format != prediction.request.format:
            LOGGER.warning(
                "Accept %s overrides format %s: a bare audio file follows Accept",
                accept.media_type,
                prediction.request.format,
            )
        return encode_audio(
            prediction.clips[0],
            sampling_rate=prediction.sample_rate,
            audio_format=accept.audio_format,
        )
    request = prediction.request
    clips = [
        {
            "index": index,
            "prompt": prompt,
            "seed": seed,
            "duration": clip.shape[-1] / prediction.sample_rate,
            "channels": clip.shape[0],
            "format": request.format,
            "audio": base64.b64encode(
                encode_audio(
                    clip, sampling_rate=prediction.sample_rate, audio_format=request.format
                )
            ).decode("ascii"),
        }
        for index, (prompt, seed, clip) in enumerate(
            zip(request.prompts, prediction.seeds, prediction.clips, strict=True)
        )
    ]
    document = {
        "model_id": prediction.model_id,
        "sample_rate": prediction.sample_rate,
        "clips": clips,
        "generation_seconds": round(prediction.generation_seconds, 3),
        "warnings": list(prediction.warnings),
    }
    return json.dumps(document)
