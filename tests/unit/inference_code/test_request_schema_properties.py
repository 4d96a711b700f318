"""Properties of the request schema, over requests hypothesis makes up.

- Any valid request is accepted and, on a tiny model, produces clips of the requested shape.
- A valid request with one field broken is refused naming that field.
- No body at all (arbitrary JSON, arbitrary text) raises anything but the schema's error.

Each property counts the cases it ran and reports them to `make reliability`'s table, which runs
four times as many.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicgen_local.tiny_musicgen import CODEBOOK_SIZE, SAMPLING_RATE
from reliability.results import RESULTS_VARIABLE, record

pytestmark = pytest.mark.reliability

MAX_DURATION = 30.0  # the handler's default MUSICGEN_MAX_DURATION
MIN_DURATION = 0.02  # one codec frame: the schema's MIN_DURATION_SECONDS
SCALE = 4 if os.environ.get(RESULTS_VARIABLE) else 1
RAN: Counter[str] = Counter()


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    for name, count in sorted(RAN.items()):
        record(f"property: {name}", cases=count)
        print(f"hypothesis cases run, {name}: {count}")


# -- valid requests ------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda value: value.strip() != ""
)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "guidance_scale": st.floats(1.0, 20.0),
    "temperature": st.floats(0.05, 10.0),
    "top_k": st.integers(0, CODEBOOK_SIZE),
    "top_p": st.floats(0.0, 1.0),
    "do_sample": st.booleans(),
    "seed": st.integers(0, 2**32 - 1),
    "format": st.sampled_from(["wav", "flac", "WAV", "Flac"]),
    "normalize": st.sampled_from(["peak", "rms", "none", "RMS"]),
}


@st.composite
def valid_requests(draw: st.DrawFn, *, max_duration: float = MAX_DURATION) -> dict[str, Any]:
    if draw(st.booleans()):
        request: dict[str, Any] = {"prompt": draw(text)}
    else:
        request = {"prompts": draw(st.lists(text, min_size=1, max_size=8))}
    request["duration"] = draw(st.floats(MIN_DURATION, max_duration))
    for name in draw(st.sets(st.sampled_from(sorted(OPTIONAL_FIELDS)))):
        request[name] = draw(OPTIONAL_FIELDS[name])
    return request


def _prompts(request: dict[str, Any]) -> list[str]:
    return [request["prompt"]] if "prompt" in request else request["prompts"]


@_settings(150)
@given(request=valid_requests())
def test_valid_requests_are_accepted_as_given(hooks: ModuleType, request: dict) -> None:
    RAN["valid requests accepted"] += 1
    parsed = hooks.input_fn(json.dumps(request), "application/json")
    assert list(parsed.prompts) == [prompt.strip() for prompt in _prompts(request)]
    assert parsed.duration == request["duration"]
    for name in OPTIONAL_FIELDS:
        if name in request:
            value = request[name]
            assert getattr(parsed, name) == (value.lower() if isinstance(value, str) else value)


@_settings(20)
@given(request=valid_requests(max_duration=0.3))
def test_valid_requests_produce_audio_of_the_requested_shape(
    hooks: ModuleType, mono_model: Any, request: dict
) -> None:
    RAN["valid requests generated"] += 1
    parsed = hooks.input_fn(json.dumps(request), "application/json")
    response = json.loads(hooks.output_fn(hooks.predict_fn(parsed, mono_model), "application/json"))
    clips = response["clips"]
    assert [clip["prompt"] for clip in clips] == list(parsed.prompts)
    expected_format = request.get("format", "wav").lower()
    for clip in clips:
        assert clip["format"] == expected_format
        assert clip["channels"] == 1
        assert clip["duration"] == pytest.approx(
            round(request["duration"] * SAMPLING_RATE) / SAMPLING_RATE
        )
        if "seed" in request:
            # Clip i of a request is seeded with seed + i, so it replays on its own.
            assert clip["seed"] == (request["seed"] + clip["index"]) % 2**32


# -- one field broken ----------------------------------------------------------------------------


def _outside(low: float, high: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(max_value=low, exclude_max=True, allow_nan=False),
        st.floats(min_value=high, exclude_min=True, allow_nan=False),
        st.just(math.nan),
    )


NOT_A_NUMBER = st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2))
BROKEN_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "duration": st.one_of(
        st.floats(max_value=MIN_DURATION, exclude_max=True, allow_nan=False),
        st.floats(min_value=MAX_DURATION, exclude_min=True),
        st.integers(min_value=31),
        NOT_A_NUMBER,
    ),
    "guidance_scale": st.one_of(_outside(1.0, 20.0), st.integers(min_value=21), NOT_A_NUMBER),
    "temperature": st.one_of(_outside(0.05, 10.0), st.integers(max_value=0), NOT_A_NUMBER),
    "top_k": st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=2049),
        st.floats(allow_nan=False).filter(
            lambda value: value != int(value) if math.isfinite(value) else True
        ),
        NOT_A_NUMBER,
    ),
    "top_p": st.one_of(_outside(0.0, 1.0), NOT_A_NUMBER),
    "seed": st.one_of(
        st.integers(max_value=-1), st.integers(min_value=2**32), st.floats(), NOT_A_NUMBER
    ),
    "do_sample": st.one_of(st.integers(), st.text(max_size=5), st.none().map(lambda _: [])),
    "format": st.text(max_size=6).filter(lambda value: value.lower() not in ("wav", "flac")),
    "normalize": st.text(max_size=6).filter(
        lambda value: value.lower() not in ("peak", "rms", "none")
    ),
    "prompt": st.one_of(
        text.map(lambda value: value + "\ud800"),
        st.text(" \t\n", max_size=3),
        st.text(min_size=2001, max_size=2100, alphabet="ab"),
        st.integers(),
    ),
    "prompts": st.lists(text.map(lambda value: "\udc00" + value), min_size=1, max_size=3),
    "melody": st.one_of(st.just(""), st.text("%$!", min_size=1, max_size=4), st.integers()),
    "audio_prompt": st.one_of(st.just(""), st.text("%$!", min_size=1, max_size=4)),
    "unknown field": st.text(min_size=1, max_size=12).filter(
        lambda name: name not in ("prompt", "prompts", "duration", *OPTIONAL_FIELDS)
    ),
}


@_settings(200)
@given(
    request=valid_requests(),
    broken=st.sampled_from(sorted(BROKEN_FIELDS)).flatmap(
        lambda name: st.tuples(st.just(name), BROKEN_FIELDS[name])
    ),
)
def test_one_broken_field_is_refused_naming_it(
    hooks: ModuleType, request: dict, broken: tuple[str, Any]
) -> None:
    from inference_code.request_schema import ACCEPTED_FIELDS, RequestValidationError

    RAN["invalid requests refused"] += 1
    name, value = broken
    if name == "unknown field":
        if value in ACCEPTED_FIELDS:
            return
        name, value = value, 1
    elif name in ("prompt", "prompts"):
        request.pop("prompt", None)
        request.pop("prompts", None)
    request[name] = value
    with pytest.raises(RequestValidationError) as caught:
        hooks.input_fn(json.dumps(request), "application/json")
    expected = name if name in ACCEPTED_FIELDS else caught.value.field
    if name == "prompts":
        expected = "prompts[0]"
    assert caught.value.field == expected
    assert str(caught.value).startswith(f"{expected}: ")
    if name not in ACCEPTED_FIELDS:
        assert caught.value.rule.startswith("is not a known field")


# -- anything at all -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_NAMES = [
    "prompt",
    "prompts",
    "duration",
    *OPTIONAL_FIELDS,
    "melody",
    "audio_prompt",
    "texts",
    "generation_params",
    "bucket_name",
]


def _only_the_schemas_error(hooks: ModuleType, body: str | bytes) -> None:
    from inference_code.request_schema import RequestValidationError

    try:
        hooks.input_fn(body, "application/json")
    except RequestValidationError as error:
        assert str(error).startswith(f"{error.field}: ")
        str(error).encode("utf-8")


@_settings(200)
@given(
    body=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from(KNOWN_NAMES), json_values, max_size=6),
    )
)
def test_any_json_gets_a_request_or_the_schemas_error(hooks: ModuleType, body: Any) -> None:
    RAN["arbitrary JSON bodies"] += 1
    _only_the_schemas_error(hooks, json.dumps(body))


@_settings(100)
@given(body=st.one_of(st.text(max_size=50), st.binary(max_size=50)))
def test_any_text_or_bytes_get_a_request_or_the_schemas_error(
    hooks: ModuleType, body: str | bytes
) -> None:
    RAN["arbitrary text and bytes"] += 1
    _only_the_schemas_error(hooks, body)
