"""The request contract (DESIGN "Request"): defaults, bounds, legacy shape, clear errors."""

from __future__ import annotations

import math

import pytest

from inference_code.request_schema import (
    ACCEPTED_FIELDS,
    GenerationRequest,
    RequestValidationError,
    parse_request,
)

MAX = 30.0


def parse(payload: object, **options: object) -> GenerationRequest:
    return parse_request(payload, max_duration_seconds=MAX, **options)


def test_defaults_are_the_design_table() -> None:
    request = parse({"prompt": "  lofi beat  "})
    assert request == GenerationRequest(
        prompts=("lofi beat",),
        duration=10.0,
        guidance_scale=3.0,
        temperature=1.0,
        top_k=250,
        top_p=0.0,
        do_sample=True,
        seed=None,
        format="wav",
        normalize="peak",
        melody=None,
        audio_prompt=None,
        warnings=(),
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("duration", MAX, MAX),
        ("duration", 0.02, 0.02),
        ("duration", 7, 7.0),
        ("guidance_scale", 1, 1.0),
        ("temperature", 0.05, 0.05),
        ("top_k", 0, 0),
        ("top_p", 0, 0.0),
        ("top_p", 1, 1.0),
        ("do_sample", False, False),
        ("seed", 0, 0),
        ("seed", 2**32 - 1, 2**32 - 1),
        ("format", "FLAC", "flac"),
        ("normalize", "rms", "rms"),
        ("normalize", "none", "none"),
        ("melody", "UklGRg==", b"RIFF"),
        ("audio_prompt", "UklG\nRg==", b"RIFF"),
    ],
)
def test_bounds_that_are_accepted(field: str, value: object, expected: object) -> None:
    request = parse({"prompt": "x", field: value})
    assert getattr(request, field) == expected


def test_prompt_list_limits_are_inclusive() -> None:
    assert len(parse({"prompts": ["p"] * 8}).prompts) == 8
    assert parse({"prompt": "a" * 2000}).prompts == ("a" * 2000,)
    assert parse({"prompt": " " * 10 + "a" * 2000 + "\n"}).prompts == ("a" * 2000,)


def test_legacy_seed_sample_shape() -> None:
    request = parse(
        {
            "texts": ["90s rock song", "calm piano"],
            "generation_params": {
                "max_new_tokens": 256,
                "guidance_scale": 2.5,
                "temperature": 0.9,
                "do_sample": True,
                "top_k": 100,
                "top_p": 0.5,
            },
            "bucket_name": "my-old-bucket",
        }
    )
    assert request.prompts == ("90s rock song", "calm piano")
    assert request.duration == pytest.approx(256 / 50)
    assert (request.guidance_scale, request.temperature, request.top_k, request.top_p) == (
        2.5,
        0.9,
        100,
        0.5,
    )
    assert len(request.warnings) == 1 and "bucket_name" in request.warnings[0]


def test_legacy_shape_without_params_uses_defaults() -> None:
    request = parse({"texts": ["x"]})
    assert request.duration == 10.0 and request.warnings == ()


def test_unknown_field_lists_the_accepted_ones() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse({"prompt": "x", "lenght": 3})
    assert caught.value.field == "lenght"
    for name in ACCEPTED_FIELDS:
        assert name in str(caught.value)


def test_message_reads_field_rule_got() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse({"prompt": "x", "duration": 45})
    assert str(caught.value) == "duration: must be > 0 and <= 30 (got 45)"


def test_melody_needs_a_melody_model_when_the_model_is_known() -> None:
    payload = {"prompt": "x", "melody": "UklGRg=="}
    assert parse(payload).melody == b"RIFF"
    assert parse(payload, is_melody_model=True).melody == b"RIFF"
    with pytest.raises(RequestValidationError) as caught:
        parse(payload, is_melody_model=False)
    assert caught.value.field == "melody"


def test_max_duration_of_the_endpoint_applies() -> None:
    with pytest.raises(RequestValidationError, match=r"duration: must be > 0 and <= 5 \(got 6\)"):
        parse_request({"prompt": "x", "duration": 6}, max_duration_seconds=5)
    with pytest.raises(RequestValidationError, match=r"^generation_params\.max_new_tokens"):
        parse_request(
            {"texts": ["x"], "generation_params": {"max_new_tokens": 251}}, max_duration_seconds=5
        )


def test_bad_schema_configuration_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_duration_seconds"):
        parse_request({"prompt": "x"}, max_duration_seconds=math.nan)
