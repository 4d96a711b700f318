"""Hooks the Hugging Face inference toolkit calls: model_fn, input_fn, predict_fn, output_fn.

The container puts `code/` (a copy of `inference_code/`) on sys.path and imports this file as
the top-level module `inference`. Before importing its siblings it registers that folder as the
package `inference_code`, so every sibling has one name, `inference_code.<module>`, in the
container, in the client and in the tests: one module, one `RequestValidationError`. The toolkit
turns any exception raised here into a 400 response whose body is the exception's message, so
every message names the field and the rule.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

if "inference_code" not in sys.modules:
    _PACKAGE = importlib.machinery.ModuleSpec("inference_code", None, is_package=True)
    _PACKAGE.submodule_search_locations = [str(Path(__file__).resolve().parent)]
    sys.modules["inference_code"] = importlib.util.module_from_spec(_PACKAGE)

import logging
import math
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference_code.audio_codec import decode_audio
from inference_code.contract import (
    AUDIO_INPUT_FLOOR_SECONDS,
    DEFAULT_EXTEND_STRIDE_SECONDS,
    DEFAULT_MAX_DURATION_SECONDS,
    EXTEND_STRIDE_ENV,
    MAX_DURATION_ENV,
)
from inference_code.loudness import normalize
from inference_code.model_loading import LoadedMusicGen, load_musicgen
from inference_code.request_schema import (
    SEED_LIMIT,
    GenerationRequest,
    RequestValidationError,
    check_model_support,
    load_json_body,
    parse_request,
)
from inference_code.response_format import negotiate, render_response
from inference_code.row_sampling import clip_seeds
from inference_code.windowed_generation import (
    TRAINED_WINDOW_SECONDS,
    generate_clips,
    selected_decoder,
)

LOGGER = logging.getLogger(__name__)
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Prediction:
    """What predict_fn hands to output_fn."""

    request: GenerationRequest
    model_id: str
    sample_rate: int
    seeds: tuple[int, ...]
    clips: list[np.ndarray]
    generation_seconds: float
    warnings: tuple[str, ...]


def max_duration_seconds() -> float:
    """The endpoint's longest clip, from MUSICGEN_MAX_DURATION (set by the stack)."""
    raw = os.environ.get(MAX_DURATION_ENV, "")
    if not raw.strip():
        return DEFAULT_MAX_DURATION_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{MAX_DURATION_ENV}: must be a number > 0 (got {raw!r})")
    return value


def extend_stride_seconds() -> float:
    """How far each window of a long clip moves on, from MUSICGEN_EXTEND_STRIDE (the stack)."""
    raw = os.environ.get(EXTEND_STRIDE_ENV, "")
    if not raw.strip():
        return DEFAULT_EXTEND_STRIDE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value < TRAINED_WINDOW_SECONDS:
        raise ValueError(
            f"{EXTEND_STRIDE_ENV}: must be a number > 0 and < {TRAINED_WINDOW_SECONDS} "
            f"(got {raw!r})"
        )
    return value


def model_fn(model_dir: str, context: Any = None) -> LoadedMusicGen:
    # A bad setting fails the start-up, not every request.
    max_duration_seconds()
    extend_stride_seconds()
    LOGGER.info("decoder: %s", selected_decoder())
    return load_musicgen(model_dir)


def input_fn(input_data: str | bytes, content_type: str, context: Any = None) -> GenerationRequest:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE:
        raise RequestValidationError("content_type", f"must be {JSON_CONTENT_TYPE}", content_type)
    if isinstance(input_data, bytes | bytearray):
        try:
            input_data = bytes(input_data).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestValidationError(
                "body", "must be UTF-8 encoded JSON", show_got=False
            ) from None
    payload = load_json_body(input_data)
    request = parse_request(payload, max_duration_seconds=max_duration_seconds())
    accept = _accept_from_context(context)
    if accept is not None:
        # Refuse before spending GPU time on a response that cannot be delivered.
        negotiate(accept, prompts=len(request.prompts), audio_format=request.format)
    return request


def predict_fn(data: GenerationRequest, model: LoadedMusicGen, context: Any = None) -> Prediction:
    started = time.perf_counter()
    check_model_support(
        data, is_melody_model=model.is_melody, codebook_size=model.model.decoder.config.vocab_size
    )
    seeds = clip_seeds(
        data.seed if data.seed is not None else secrets.randbelow(SEED_LIMIT), len(data.prompts)
    )
    # Input audio may be as long as a clip, and a melody may always fill the model's 30 s span.
    max_seconds = max(max_duration_seconds(), AUDIO_INPUT_FLOOR_SECONDS)
    melody = None
    if data.melody is not None and model.chroma is not None:
        melody = decode_audio(
            data.melody,
            field="melody",
            sampling_rate=model.chroma.sampling_rate,
            channels=1,
            max_seconds=max_seconds,
        )[0]
    audio_prompt = None
    if data.audio_prompt is not None:
        audio_prompt = decode_audio(
            data.audio_prompt,
            field="audio_prompt",
            sampling_rate=model.sampling_rate,
            channels=model.channels,
            max_seconds=max_seconds,
        )
    result = generate_clips(
        model,
        data,
        seeds=seeds,
        extend_stride_seconds=extend_stride_seconds(),
        max_clip_seconds=max_duration_seconds(),
        melody=melody,
        audio_prompt=audio_prompt,
    )
    clips = [normalize(clip, data.normalize) for clip in result.clips]
    elapsed = time.perf_counter() - started
    LOGGER.info(
        "generated %d clip(s) of %.2f s in %d window(s), seeds %s, %.2f s",
        len(clips),
        data.duration,
        result.windows,
        seeds,
        elapsed,
    )
    return Prediction(
        request=data,
        model_id=model.model_id,
        sample_rate=model.sampling_rate,
        seeds=seeds,
        clips=clips,
        generation_seconds=elapsed,
        warnings=(*data.warnings, *result.warnings),
    )


def output_fn(prediction: Prediction, accept: str | None, context: Any = None) -> str | bytes:
    request = prediction.request
    chosen = negotiate(accept, prompts=len(request.prompts), audio_format=request.format)
    return render_response(prediction, chosen)


def _accept_from_context(context: Any) -> str | None:
    processors = getattr(context, "request_processor", None)
    if not processors:
        return None
    properties = processors[0].get_request_properties()
    accept = properties.get("Accept") or properties.get("accept")
    return accept if isinstance(accept, str) else None
