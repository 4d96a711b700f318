"""Accept headers are negotiated as HTTP does: lists, wildcards and q-values."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.unit.inference_code.handler_test_audio import read_audio


@pytest.mark.parametrize(
    ("accept", "prompts", "audio_format", "chosen"),
    [
        (None, 1, "wav", "application/json"),
        ("", 1, "wav", "application/json"),
        ("*/*", 1, "flac", "application/json"),
        ("application/json, */*;q=0.8", 1, "wav", "application/json"),
        ("audio/flac;q=0.9, application/json;q=0.5", 1, "wav", "audio/flac"),
        ("audio/*", 1, "flac", "audio/flac"),
        ("audio/*", 1, "wav", "audio/wav"),
        ("Audio/WAV ; q=1", 1, "wav", "audio/wav"),
        ("audio/wav;q=0, */*", 1, "wav", "application/json"),
        # The most specific range sets an offer's quality, wherever it stands in the list.
        ("*/*;q=0.1, audio/flac", 1, "wav", "audio/flac"),
        ("audio/x-flac, audio/wav;q=0.2", 1, "wav", "audio/x-flac"),
        # One audio file cannot hold two clips: JSON, which the client also takes, is sent.
        ("audio/wav, application/json;q=0.1", 2, "wav", "application/json"),
        ("audio/*, */*;q=0.01", 3, "wav", "application/json"),
    ],
)
def test_negotiation_picks_the_best_acceptable_type(
    accept: str | None, prompts: int, audio_format: str, chosen: str
) -> None:
    from inference_code.response_format import negotiate

    assert negotiate(accept, prompts=prompts, audio_format=audio_format).media_type == chosen


@pytest.mark.parametrize(
    ("accept", "prompts", "message"),
    [
        ("text/csv", 1, r"^accept: must be one of application/json, audio/wav"),
        ("application/json;q=0", 1, r"^accept: must be one of"),
        ("audio/wav;q=high", 1, r"^accept: q-values must be numbers from 0 to 1"),
        ("audio/wav;q=1.5", 1, r"^accept: q-values must be numbers from 0 to 1"),
        ("json", 1, r"^accept: must be a list of media types"),
        ("audio/wav", 2, r"^prompts: Accept audio/wav returns one audio file"),
    ],
)
def test_unservable_accept_names_the_field(accept: str, prompts: int, message: str) -> None:
    from inference_code.request_schema import RequestValidationError
    from inference_code.response_format import negotiate

    with pytest.raises(RequestValidationError, match=message):
        negotiate(accept, prompts=prompts, audio_format="wav")


def test_compound_accept_through_the_hooks(hooks: ModuleType, mono_model: Any) -> None:
    request = hooks.input_fn(json.dumps({"prompt": "x", "duration": 0.1}), "application/json")
    prediction = hooks.predict_fn(request, mono_model)
    document = json.loads(hooks.output_fn(prediction, "application/json, */*;q=0.8"))
    assert document["clips"][0]["format"] == "wav"
    flac = hooks.output_fn(prediction, "audio/flac;q=0.9, application/json;q=0.5")
    assert flac[:4] == b"fLaC"
    assert read_audio(flac)[0].shape == (3200, 1)
