"""Serialise a prediction: the JSON document of the contract, or one bare audio file."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audio_codec import encode_audio
from request_schema import RequestValidationError

if TYPE_CHECKING:
    from inference import Prediction

JSON_TYPES = ("application/json", "*/*", "")
AUDIO_TYPES = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}


@dataclass(frozen=True)
class Accept:
    media_type: str
    audio_format: str | None  # None: the JSON document

    def check_prompt_count(self, prompts: int) -> None:
        if self.audio_format is not None and prompts != 1:
            raise RequestValidationError(
                "prompts",
                f"Accept {self.media_type} returns one audio file, so send exactly one prompt "
                "(or Accept application/json for several)",
                prompts,
            )


def parse_accept(accept: str | None) -> Accept:
    media_type = (accept or "").split(";")[0].strip().lower()
    if media_type in JSON_TYPES:
        return Accept(media_type="application/json", audio_format=None)
    if media_type in AUDIO_TYPES:
        return Accept(media_type=media_type, audio_format=AUDIO_TYPES[media_type])
    accepted = ", ".join(("application/json", *AUDIO_TYPES))
    raise RequestValidationError("accept", f"must be one of {accepted}", accept)


def render_response(prediction: Prediction, accept: Accept) -> str | bytes:
    accept.check_prompt_count(len(prediction.clips))
    if accept.audio_format is not None:
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
            "seed": prediction.seed,
            "duration": clip.shape[-1] / prediction.sample_rate,
            "channels": clip.shape[0],
            "format": request.format,
            "audio": base64.b64encode(
                encode_audio(
                    clip, sampling_rate=prediction.sample_rate, audio_format=request.format
                )
            ).decode("ascii"),
        }
        for index, (prompt, clip) in enumerate(zip(request.prompts, prediction.clips, strict=True))
    ]
    document = {
        "model_id": prediction.model_id,
        "sample_rate": prediction.sample_rate,
        "clips": clips,
        "generation_seconds": round(prediction.generation_seconds, 3),
        "warnings": list(prediction.warnings),
    }
    return json.dumps(document)
