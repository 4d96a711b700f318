"""`GenerationOptions`, the one description of a request's optional fields, and its payloads."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from inference_code.request_schema import (
    OPTIONS,
    GenerationOptions,
    GenerationRequest,
    parse_request,
)


def test_to_payload_holds_only_the_fields_given_with_audio_as_base64() -> None:
    options = GenerationOptions(seed=7, melody=b"RIFF-bytes", include_prompt=True, top_p=0.5)

    assert options.to_payload(["calm piano", "rock"]) == {
        "prompts": ["calm piano", "rock"],
        "top_p": 0.5,
        "seed": 7,
        "melody": base64.b64encode(b"RIFF-bytes").decode("ascii"),
        "include_prompt": True,
    }
    assert GenerationOptions().to_payload("calm piano") == {"prompt": "calm piano"}


def test_every_option_given_reaches_the_handler_as_given() -> None:
    given = GenerationOptions(
        duration=4.5,
        guidance_scale=2.0,
        temperature=0.7,
        top_k=50,
        top_p=0.9,
        do_sample=False,
        seed=11,
        format="flac",
        normalize="rms",
        melody=b"melody-bytes",
        audio_prompt=b"prompt-bytes",
        include_prompt=True,
    )
    assert all(getattr(given, name) is not None for name in OPTIONS)

    parsed = parse_request(given.to_payload("calm piano"), max_duration_seconds=30)

    for name in OPTIONS:
        assert getattr(parsed, name) == getattr(given, name), name


@pytest.mark.parametrize("name", [name for name, option in OPTIONS.items() if option.default])
def test_the_handlers_defaults_are_the_tables(name: str) -> None:
    (spec,) = [spec for spec in dataclasses.fields(GenerationRequest) if spec.name == name]

    assert spec.default == OPTIONS[name].default
    assert getattr(parse_request({"prompt": "calm"}, max_duration_seconds=30), name) == (
        OPTIONS[name].default
    )
