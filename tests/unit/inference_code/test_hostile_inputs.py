"""Requests that weigh little and would cost much: each refused, naming its field, before the work.

The corpus is `reliability/hostile_corpus.py`; `test_rejection_cost.py` measures what each
rejection costs in a fresh worker process.
"""

from __future__ import annotations

import io
import json
from fractions import Fraction
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import soundfile

from reliability.hostile_corpus import CASES, HostileCase, silent_flac, wav_declaring_rate

MAX_MESSAGE_CHARS = 400


@pytest.fixture(scope="module")
def codec() -> ModuleType:
    import inference_code.audio_codec as audio_codec

    return audio_codec


def _rejection(hooks: ModuleType, model: Any, body: bytes) -> Exception:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(RequestValidationError) as caught:
        hooks.predict_fn(hooks.input_fn(body, "application/json"), model)
    return caught.value


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request_is_refused_naming_its_field(
    hooks: ModuleType, mono_model: Any, melody_model: Any, case: HostileCase
) -> None:
    model = melody_model if case.model == "melody" else mono_model
    error = _rejection(hooks, model, case.body())
    assert error.field == case.field
    message = str(error)
    assert message.startswith(f"{case.field}: ")
    # The toolkit sends the message back as the body of a 400: short and encodable.
    assert len(message) <= MAX_MESSAGE_CHARS
    message.encode("utf-8")


def _flac(
    seconds: float, *, rate: int = 32_000, channels: int = 1, declared: int | None = None
) -> bytes:
    return silent_flac(seconds=seconds, rate=rate, channels=channels, declared_samples=declared)


def test_flac_of_unknown_length_is_refused_before_decoding(codec: ModuleType) -> None:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(
        RequestValidationError,
        match=r"^melody: must state its length \(a FLAC header's total_samples\) \(got '0",
    ):
        codec.decode_audio(
            _flac(2.5, declared=0),
            field="melody",
            sampling_rate=32_000,
            channels=1,
            max_seconds=30,
        )


def test_decoding_stops_at_the_length_the_header_states(codec: ModuleType) -> None:
    audio = codec.decode_audio(
        _flac(3600, declared=32_000),
        field="audio_prompt",
        sampling_rate=32_000,
        channels=1,
        max_seconds=30,
    )
    assert audio.shape == (1, 32_000)


def test_header_length_over_the_limit_is_refused_before_decoding(codec: ModuleType) -> None:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(RequestValidationError, match=r"\(got '3600.00 s'\)$"):
        codec.decode_audio(
            _flac(3600, rate=48_000),
            field="audio_prompt",
            sampling_rate=32_000,
            channels=1,
            max_seconds=30,
        )


def test_limit_is_inclusive(codec: ModuleType) -> None:
    audio = codec.decode_audio(
        _flac(30, rate=8_000),
        field="audio_prompt",
        sampling_rate=8_000,
        channels=1,
        max_seconds=30,
    )
    assert audio.shape == (1, 240_000)


@pytest.mark.parametrize(
    ("rate", "accepted"),
    [(7_999, False), (8_000, True), (192_000, True), (192_001, False), (4_000_037, False)],
)
def test_sample_rate_range(codec: ModuleType, rate: int, accepted: bool) -> None:
    from inference_code.request_schema import RequestValidationError

    def decode() -> np.ndarray:
        return codec.decode_audio(
            wav_declaring_rate(rate, samples=rate // 100),
            field="audio_prompt",
            sampling_rate=32_000,
            channels=1,
            max_seconds=30,
        )

    if accepted:
        assert decode().shape == (1, 320)
    else:
        with pytest.raises(
            RequestValidationError,
            match=rf"^audio_prompt: must have a sample rate from 8000 to 192000 Hz \(got {rate}\)",
        ):
            decode()


def test_three_channels_are_refused(codec: ModuleType) -> None:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(RequestValidationError, match=r"must have 1 to 2 channels \(got 3\)"):
        codec.decode_audio(
            _flac(1, channels=3),
            field="audio_prompt",
            sampling_rate=32_000,
            channels=1,
            max_seconds=30,
        )


def test_other_containers_are_refused(codec: ModuleType) -> None:
    from inference_code.request_schema import RequestValidationError

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(800, dtype=np.int16), 8_000, format="AIFF")
    with pytest.raises(RequestValidationError, match=r"WAV or FLAC file \(got 'a AIFF file'\)"):
        codec.decode_audio(
            buffer.getvalue(),
            field="audio_prompt",
            sampling_rate=32_000,
            channels=1,
            max_seconds=30,
        )


def test_resampling_filter_is_bounded_and_in_tune_across_accepted_rates(
    codec: ModuleType,
) -> None:
    worst = 0.0
    for source in [*range(codec.MIN_SAMPLE_RATE, codec.MAX_SAMPLE_RATE + 1, 7), 8_002]:
        ratio = codec.resampling_ratio(source, 32_000)
        assert max(ratio.numerator, ratio.denominator) <= codec.MAX_RESAMPLE_FACTOR, source
        worst = max(worst, abs(float(ratio / Fraction(32_000, source)) - 1))
    assert worst < 0.000251  # 0.4 cent, at 8,002 Hz


def test_common_rates_resample_exactly(codec: ModuleType) -> None:
    for source in (8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 88_200, 96_000, 192_000):
        assert codec.resampling_ratio(source, 32_000) == Fraction(32_000, source)


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"guidance_scale": 20.5}, "guidance_scale", "must be >= 1 and <= 20"),
        ({"temperature": 0.049}, "temperature", "must be >= 0.05 and <= 10"),
        ({"temperature": 10.5}, "temperature", "must be >= 0.05 and <= 10"),
        ({"top_k": 2049}, "top_k", "must be >= 0 and <= 2048"),
        ({"top_k": 65}, "top_k", "must be <= 64, this model's codebook size"),
        ({"duration": 10**400}, "duration", "must be > 0 and <= 30"),
        ({"prompts": ["fine", "bad \ud800"]}, "prompts[1]", "must be valid Unicode text"),
        ({"prompt": "bad \udfff"}, "prompt", "must be valid Unicode text"),
    ],
)
def test_bounds(
    hooks: ModuleType, mono_model: Any, fields: dict[str, Any], field: str, rule: str
) -> None:
    base = {"duration": 0.1} if "prompts" in fields else {"prompt": "calm piano", "duration": 0.1}
    body = json.dumps(base | fields).encode()
    error = _rejection(hooks, mono_model, body)
    assert (error.field, error.rule.split(" (")[0]) == (field, rule)


@pytest.mark.parametrize(
    ("fields", "attribute", "value"),
    [
        ({"guidance_scale": 20}, "guidance_scale", 20.0),
        ({"temperature": 10}, "temperature", 10.0),
        ({"top_k": 2048}, "top_k", 2048),
        ({"prompt": "café ♪ 𝄞"}, "prompts", ("café ♪ 𝄞",)),
    ],
)
def test_bounds_are_inclusive(
    hooks: ModuleType, fields: dict[str, Any], attribute: str, value: Any
) -> None:
    request = hooks.input_fn(json.dumps({"prompt": "x", **fields}), "application/json")
    assert getattr(request, attribute) == value


def test_default_top_k_still_serves_a_model_with_fewer_codes(invoke: Any, mono_model: Any) -> None:
    response = invoke(mono_model, {"prompt": "calm piano", "duration": 0.1, "seed": 3})
    assert len(response["clips"]) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"prompt": "x",', r"Expecting property name enclosed in double quotes at line 1"),
        (b'{"seed": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", r"nested too deeply"),
        (b'{"seed": ' + b"1" * 5_000 + b"}", r"a number has more than 4300 digits"),
    ],
)
def test_every_json_failure_is_one_message_naming_body(
    hooks: ModuleType, body: bytes, reason: str
) -> None:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(RequestValidationError, match=rf"^body: must be valid JSON \({reason}"):
        hooks.input_fn(body, "application/json")


def test_separator_count_is_bounded_before_decoding(hooks: ModuleType) -> None:
    from inference_code.request_schema import MAX_JSON_SEPARATORS, RequestValidationError

    at_limit = {"prompt": "x", "pad": [0] * (MAX_JSON_SEPARATORS - 2)}
    with pytest.raises(RequestValidationError, match=r"^pad: is not a known field"):
        hooks.input_fn(json.dumps(at_limit), "application/json")
    over = {"prompt": "x", "pad": [0] * (MAX_JSON_SEPARATORS - 1)}
    with pytest.raises(
        RequestValidationError,
        match=rf"^body: must hold at most {MAX_JSON_SEPARATORS} commas, arrays and objects",
    ):
        hooks.input_fn(json.dumps(over), "application/json")


def test_largest_legitimate_request_fits_the_separator_bound(hooks: ModuleType) -> None:
    prompts = [", ".join(["x"] * 1000)[:2000] for _ in range(8)]
    request = hooks.input_fn(json.dumps({"prompts": prompts}), "application/json")
    assert len(request.prompts) == 8
