"""The request schema's rules, message by message, and the values at each bound.

Every refusal is checked whole (`field: rule (got value)`): the message is the contract a caller
reads. Runs without a model, so `make mutation` can run it for every mutant of the schema.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from inference_code.request_schema import (
    GenerationRequest,
    RequestValidationError,
    check_model_support,
    load_json_body,
    parse_request,
)

MAX = 30
P = {"prompt": "calm piano"}
X80 = "x" * 80

REFUSALS = [
    (
        "not an object",
        ["calm"],
        "body: must be a JSON object (got 'list')",
    ),
    (
        "unknown field",
        {**P, "length": 3},
        "length: is not a known field; accepted fields are prompt, prompts, duration, "
        "guidance_scale, temperature, top_k, top_p, do_sample, seed, format, normalize, melody, "
        "audio_prompt, include_prompt, texts, generation_params, bucket_name",
    ),
    (
        "no prompt",
        {"duration": 3},
        "prompt: give exactly one of prompt (a string) or prompts (a list of strings)",
    ),
    (
        "prompt and prompts",
        {"prompt": "a", "prompts": ["b"]},
        "prompt: give exactly one of prompt (a string) or prompts (a list of strings) "
        "(got a list of 2 item(s))",
    ),
    (
        "prompt not a string",
        {"prompt": 5},
        "prompt: must be a string (got 5)",
    ),
    (
        "blank prompt",
        {"prompt": "  \n"},
        "prompt: must not be blank (got '  \\n')",
    ),
    (
        "prompt too long",
        {"prompt": "a" * 2001},
        "prompt: must be at most 2000 characters after trimming (got 2001)",
    ),
    (
        "prompts not a list",
        {"prompts": "a"},
        "prompts: must be a list of 1 to 8 strings (got 'a')",
    ),
    (
        "empty prompts",
        {"prompts": []},
        "prompts: must hold 1 to 8 prompts (got 0)",
    ),
    (
        "nine prompts",
        {"prompts": ["a"] * 9},
        "prompts: must hold 1 to 8 prompts (got 9)",
    ),
    (
        "blank prompt in list",
        {"prompts": ["a", " "]},
        "prompts[1]: must not be blank (got ' ')",
    ),
    (
        "texts not a list",
        {"texts": "a"},
        "texts: must be a list of 1 to 8 strings (got 'a')",
    ),
    (
        "duration zero",
        {**P, "duration": 0},
        "duration: must be > 0 and <= 30 (got 0)",
    ),
    (
        "duration over max",
        {**P, "duration": 30.5},
        "duration: must be > 0 and <= 30 (got 30.5)",
    ),
    (
        "duration string",
        {**P, "duration": "10"},
        "duration: must be a number (got '10')",
    ),
    (
        "duration bool",
        {**P, "duration": True},
        "duration: must be a number (got True)",
    ),
    (
        "duration inf",
        {**P, "duration": float("inf")},
        "duration: must be a finite number (got inf)",
    ),
    (
        "guidance below one",
        {**P, "guidance_scale": 0.99},
        "guidance_scale: must be >= 1 and <= 20 (got 0.99)",
    ),
    (
        "temperature zero",
        {**P, "temperature": 0},
        "temperature: must be >= 0.05 and <= 10 (got 0)",
    ),
    (
        "top_k float",
        {**P, "top_k": 2.0},
        "top_k: must be an integer (got 2.0)",
    ),
    (
        "top_k negative",
        {**P, "top_k": -1},
        "top_k: must be >= 0 and <= 2048 (got -1)",
    ),
    (
        "top_p above one",
        {**P, "top_p": 1.01},
        "top_p: must be >= 0 and <= 1 (got 1.01)",
    ),
    (
        "top_p negative",
        {**P, "top_p": -0.01},
        "top_p: must be >= 0 and <= 1 (got -0.01)",
    ),
    (
        "do_sample string",
        {**P, "do_sample": "yes"},
        "do_sample: must be true or false (got 'yes')",
    ),
    (
        "seed negative",
        {**P, "seed": -1},
        "seed: must be >= 0 and < 4294967296 (got -1)",
    ),
    (
        "seed 2^32",
        {**P, "seed": 2**32},
        "seed: must be >= 0 and < 4294967296 (got 4294967296)",
    ),
    (
        "seed bool",
        {**P, "seed": True},
        "seed: must be an integer (got True)",
    ),
    (
        "format mp3",
        {**P, "format": "mp3"},
        "format: must be one of wav, flac (got 'mp3')",
    ),
    (
        "format not a string",
        {**P, "format": 1},
        "format: must be one of wav, flac (got 1)",
    ),
    (
        "normalize loud",
        {**P, "normalize": "loud"},
        "normalize: must be one of peak, rms, none (got 'loud')",
    ),
    (
        "melody number",
        {**P, "melody": 5},
        "melody: must be a base64-encoded WAV or FLAC file (got 5)",
    ),
    (
        "melody blank",
        {**P, "melody": "  "},
        "melody: must be a base64-encoded WAV or FLAC file (got '  ')",
    ),
    (
        "melody not base64",
        {**P, "melody": "%%%"},
        "melody: must be a base64-encoded WAV or FLAC file (not valid base64) (got '%%%')",
    ),
    (
        "bucket_name not a string",
        {"texts": ["a"], "bucket_name": 7},
        "bucket_name: must be a string (got 7)",
    ),
    (
        "generation_params not an object",
        {"texts": ["a"], "generation_params": [1]},
        "generation_params: must be a JSON object (got a list of 1 item(s))",
    ),
    (
        "unknown generation param",
        {"texts": ["a"], "generation_params": {"num_beams": 4}},
        "generation_params.num_beams: is not a known field; accepted are max_new_tokens, "
        "guidance_scale, temperature, top_k, top_p, do_sample",
    ),
    (
        "max_new_tokens zero",
        {"texts": ["a"], "generation_params": {"max_new_tokens": 0}},
        "generation_params.max_new_tokens: must be >= 1 and <= 1500 (got 0)",
    ),
    (
        "max_new_tokens over max",
        {"texts": ["a"], "generation_params": {"max_new_tokens": 1501}},
        "generation_params.max_new_tokens: must be >= 1 and <= 1500 (got 1501)",
    ),
    (
        "legacy guidance below one",
        {"texts": ["a"], "generation_params": {"guidance_scale": 0.5}},
        "generation_params.guidance_scale: must be >= 1 and <= 20 (got 0.5)",
    ),
    (
        "guidance given twice",
        {"texts": ["a"], "guidance_scale": 2, "generation_params": {"guidance_scale": 3}},
        "generation_params.guidance_scale: conflicts with the top-level field guidance_scale; "
        "give it once",
    ),
    (
        "duration given twice",
        {"texts": ["a"], "duration": 2, "generation_params": {"max_new_tokens": 100}},
        "generation_params.max_new_tokens: conflicts with the top-level field duration; "
        "give it once",
    ),
    (
        "long got is shortened",
        {**P, "format": X80},
        f"format: must be one of wav, flac (got '{'x' * 56}...)",
    ),
    (
        # Only the first 61 characters are quoted: a quote after them cannot change repr's quotes.
        "a quote past the shown part",
        {**P, "format": "a" * 61 + "'"},
        f"format: must be one of wav, flac (got '{'a' * 56}...)",
    ),
    ("prompt null", {"prompt": None}, "prompt: must be a string (got None)"),
    # A library caller can hand in any Python value: its type is named, never its contents.
    ("prompt as bytes", {"prompt": b"calm"}, "prompt: must be a string (got bytes)"),
    (
        "lone surrogate",
        {"prompts": ["ok", "a\ud800b"]},
        "prompts[1]: must be valid Unicode text (a lone surrogate at position 1)",
    ),
    (
        "unknown field quoted as given",
        {**P, "Xtra": 1},
        "Xtra: is not a known field; accepted fields are prompt, prompts, duration, "
        "guidance_scale, temperature, top_k, top_p, do_sample, seed, format, normalize, melody, "
        "audio_prompt, include_prompt, texts, generation_params, bucket_name",
    ),
    (
        "duration under one frame",
        {**P, "duration": 0.01},
        "duration: must be at least one audio frame, 0.02 s (got 0.01)",
    ),
    (
        "seed of 192 bits shown whole",
        {**P, "seed": 2**191},
        f"seed: must be >= 0 and < 4294967296 (got {2**191})",
    ),
    (
        "seed of 193 bits shown by size",
        {**P, "seed": 2**192},
        "seed: must be >= 0 and < 4294967296 (got an integer of 193 bits)",
    ),
]


@pytest.mark.parametrize(
    ("payload", "message"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_each_refusal_names_the_field_the_rule_and_the_value(payload: Any, message: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(payload, max_duration_seconds=MAX)
    assert str(caught.value) == message
    assert caught.value.field == message.split(": ", 1)[0]


ACCEPTED = [
    ("duration at the maximum", {**P, "duration": 30}, {"duration": 30.0}),
    ("smallest duration", {**P, "duration": 0.02}, {"duration": 0.02}),
    ("guidance off", {**P, "guidance_scale": 1}, {"guidance_scale": 1.0}),
    ("lowest temperature", {**P, "temperature": 0.05}, {"temperature": 0.05}),
    ("top_k zero", {**P, "top_k": 0}, {"top_k": 0}),
    ("top_p bounds", {**P, "top_p": 1}, {"top_p": 1.0}),
    ("top_p zero", {**P, "top_p": 0}, {"top_p": 0.0}),
    ("greedy", {**P, "do_sample": False}, {"do_sample": False}),
    ("seed zero", {**P, "seed": 0}, {"seed": 0}),
    ("largest seed", {**P, "seed": 2**32 - 1}, {"seed": 2**32 - 1}),
    ("format in capitals", {**P, "format": "FLAC"}, {"format": "flac"}),
    ("normalize in capitals", {**P, "normalize": "RMS"}, {"normalize": "rms"}),
    ("None keeps the default", {**P, "top_k": None, "seed": None}, {"top_k": 250, "seed": None}),
    ("longest prompt", {"prompt": " " + "a" * 2000 + "\n"}, {"prompts": ("a" * 2000,)}),
    (
        "eight prompts",
        {"prompts": [f"p{n}" for n in range(8)]},
        {"prompts": tuple(f"p{n}" for n in range(8))},
    ),
    ("legacy texts", {"texts": [" a ", "b"]}, {"prompts": ("a", "b")}),
    (
        "legacy max_new_tokens at the maximum",
        {"texts": ["a"], "generation_params": {"max_new_tokens": 1500}},
        {"duration": 30.0},
    ),
    (
        "legacy max_new_tokens",
        {"texts": ["a"], "generation_params": {"max_new_tokens": 75, "top_k": None, "top_p": 0.5}},
        {"duration": 1.5, "top_k": 250, "top_p": 0.5},
    ),
    (
        "melody with line breaks",
        {**P, "melody": base64.encodebytes(b"RIFF" * 30).decode()},
        {"melody": b"RIFF" * 30},
    ),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_values_on_the_right_side_of_each_bound_are_accepted(
    payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    request = parse_request(payload, max_duration_seconds=MAX)
    assert {name: getattr(request, name) for name in expected} == expected
    assert request.warnings == ()


def test_defaults_fill_what_the_request_leaves_out() -> None:
    assert parse_request(P, max_duration_seconds=MAX) == GenerationRequest(prompts=("calm piano",))


def test_bucket_name_is_ignored_with_a_warning() -> None:
    request = parse_request({"texts": ["a"], "bucket_name": None}, max_duration_seconds=MAX)
    assert request.warnings == (
        "bucket_name is ignored: SageMaker writes results to the endpoint's async output path",
    )


def test_a_fractional_maximum_is_written_as_given() -> None:
    with pytest.raises(
        RequestValidationError, match=r"^duration: must be > 0 and <= 2\.5 \(got 3\)$"
    ):
        parse_request({**P, "duration": 3}, max_duration_seconds=2.5)
    legacy = {"texts": ["a"], "generation_params": {"max_new_tokens": 126}}
    with pytest.raises(RequestValidationError, match=r"<= 125 \(got 126\)$"):
        parse_request(legacy, max_duration_seconds=2.5)


@pytest.mark.parametrize("maximum", [0, -1, "30", None])
def test_the_endpoint_maximum_must_be_a_positive_number(maximum: Any) -> None:
    with pytest.raises(ValueError, match=r"^max_duration_seconds must be > 0 \(got "):
        parse_request(P, max_duration_seconds=maximum)


def test_a_got_value_is_shown_whole_up_to_60_characters() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_request({**P, "format": "x" * 58}, max_duration_seconds=MAX)
    assert str(caught.value).endswith(f"(got '{'x' * 58}')")
    with pytest.raises(RequestValidationError) as caught:
        parse_request({**P, "format": "x" * 59}, max_duration_seconds=MAX)
    assert str(caught.value).endswith(f"(got '{'x' * 56}...)")


def test_the_error_keeps_field_rule_and_value_apart() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_request({**P, "top_p": 1.5}, max_duration_seconds=MAX)
    error = caught.value
    assert (error.field, error.rule, error.got) == ("top_p", "must be >= 0 and <= 1", 1.5)


def test_a_maximum_under_one_second_is_allowed() -> None:
    assert parse_request({**P, "duration": 0.5}, max_duration_seconds=0.5).duration == 0.5


def test_melody_needs_a_melody_model() -> None:
    with_melody = parse_request({**P, "melody": "UklGRg=="}, max_duration_seconds=MAX)
    check_model_support(with_melody, is_melody_model=True)
    parse_request({**P, "melody": "UklGRg=="}, max_duration_seconds=MAX, is_melody_model=True)
    check_model_support(parse_request(P, max_duration_seconds=MAX), is_melody_model=False)
    with pytest.raises(RequestValidationError) as caught:
        parse_request({**P, "melody": "UklGRg=="}, max_duration_seconds=MAX, is_melody_model=False)
    assert str(caught.value) == "melody: is only supported by melody models (musicgen-melody*)"


@pytest.mark.parametrize("top_k", [1, 64])
def test_top_k_up_to_the_codebook_size_is_served(top_k: int) -> None:
    request = parse_request({**P, "top_k": top_k}, max_duration_seconds=MAX)
    check_model_support(request, is_melody_model=False, codebook_size=64)


def test_the_default_top_k_is_served_by_a_model_with_fewer_codes() -> None:
    check_model_support(
        parse_request(P, max_duration_seconds=MAX), is_melody_model=False, codebook_size=64
    )


def test_top_k_over_the_codebook_size_is_refused() -> None:
    request = parse_request({**P, "top_k": 65}, max_duration_seconds=MAX)
    with pytest.raises(RequestValidationError) as caught:
        check_model_support(request, is_melody_model=False, codebook_size=64)
    assert str(caught.value) == "top_k: must be <= 64, this model's codebook size (got 65)"
    assert caught.value.field == "top_k"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (" \n", "body: must not be empty"),
        ("[" * 20_001, "body: must hold at most 20000 commas, arrays and objects (got 20001)"),
        ('{"prompt": }', "body: must be valid JSON (Expecting value at line 1 column 12)"),
    ],
    ids=["blank", "too many separators", "not JSON"],
)
def test_a_body_that_is_not_a_json_request_is_refused_as_body(body: str, message: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        load_json_body(body)
    assert str(caught.value) == message
    assert caught.value.field == "body"
