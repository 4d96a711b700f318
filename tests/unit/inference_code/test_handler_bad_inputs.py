"""Bad requests through the hooks: each refused naming its field; the model keeps serving."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.unit.inference_code.handler_test_audio import audio_file_base64, read_audio, sine

GOOD = {"prompt": "calm piano", "duration": 0.5, "seed": 1}
NOT_AUDIO = base64.b64encode(b"this is plainly not a wav file").decode()
SILENT_WAV = audio_file_base64(np.zeros(0, dtype=np.float32))
NAN_WAV = audio_file_base64(
    np.full(3200, np.nan, dtype=np.float32), audio_format="WAV", subtype="FLOAT"
)
LONG_WAV = audio_file_base64(sine(220, 31, rate=8000), rate=8000)
SUB_FRAME_WAV = audio_file_base64(sine(220, 0.015))


def body(**fields: Any) -> str:
    return json.dumps({**GOOD, **fields})


# (case id, raw JSON body, the field the error must name)
BAD_BODIES = [
    ("empty body", "", "body"),
    ("blank body", "   \n", "body"),
    ("invalid json", '{"prompt": "x",', "body"),
    ("not an object", '["calm piano"]', "body"),
    ("no prompt", json.dumps({"duration": 3}), "prompt"),
    ("prompt and prompts", json.dumps({"prompt": "a", "prompts": ["b"]}), "prompt"),
    ("prompt not a string", body(prompt=5), "prompt"),
    ("blank prompt", body(prompt="   "), "prompt"),
    ("prompt too long", body(prompt="a" * 2001), "prompt"),
    ("empty prompt list", json.dumps({"prompts": []}), "prompts"),
    ("nine prompts", json.dumps({"prompts": ["a"] * 9}), "prompts"),
    ("prompts not a list", json.dumps({"prompts": "a"}), "prompts"),
    ("blank prompt in list", json.dumps({"prompts": ["a", " "]}), "prompts[1]"),
    ("zero duration", body(duration=0), "duration"),
    ("duration under one frame", body(duration=0.019), "duration"),
    ("negative duration", body(duration=-1), "duration"),
    ("duration over max", body(duration=45), "duration"),
    ("duration NaN", '{"prompt": "x", "duration": NaN}', "duration"),
    ("duration Infinity", '{"prompt": "x", "duration": Infinity}', "duration"),
    ("duration overflow", '{"prompt": "x", "duration": 1e999}', "duration"),
    ("duration as string", body(duration="10"), "duration"),
    ("duration as bool", body(duration=True), "duration"),
    ("guidance below one", body(guidance_scale=0.5), "guidance_scale"),
    ("zero temperature", body(temperature=0), "temperature"),
    ("fractional top_k", body(top_k=2.5), "top_k"),
    ("negative top_k", body(top_k=-1), "top_k"),
    ("top_p above one", body(top_p=1.5), "top_p"),
    ("do_sample as string", body(do_sample="yes"), "do_sample"),
    ("negative seed", body(seed=-1), "seed"),
    ("seed 2^32", body(seed=2**32), "seed"),
    ("seed as float", body(seed=1.5), "seed"),
    ("unknown format", body(format="mp3"), "format"),
    ("unknown normalize", body(normalize="loud"), "normalize"),
    ("unknown field", body(length=3), "length"),
    ("melody not base64", body(melody="%%%"), "melody"),
    ("audio_prompt empty", body(audio_prompt=""), "audio_prompt"),
    ("generation_params not object", body(generation_params=[1]), "generation_params"),
    (
        "unknown generation param",
        json.dumps({"texts": ["a"], "generation_params": {"num_beams": 4}}),
        "generation_params.num_beams",
    ),
    (
        "max_new_tokens zero",
        json.dumps({"texts": ["a"], "generation_params": {"max_new_tokens": 0}}),
        "generation_params.max_new_tokens",
    ),
    (
        "guidance given twice",
        json.dumps(
            {"texts": ["a"], "guidance_scale": 2, "generation_params": {"guidance_scale": 3}}
        ),
        "generation_params.guidance_scale",
    ),
    ("bucket_name not a string", json.dumps({"texts": ["a"], "bucket_name": 7}), "bucket_name"),
    # Decoded only where the model is known (predict_fn):
    ("melody on a text-only model", body(melody=audio_file_base64(sine(440, 1))), "melody"),
    ("audio_prompt not audio", body(audio_prompt=NOT_AUDIO), "audio_prompt"),
    ("audio_prompt without samples", body(audio_prompt=SILENT_WAV), "audio_prompt"),
    ("audio_prompt NaN samples", body(audio_prompt=NAN_WAV), "audio_prompt"),
    ("audio_prompt too long", body(audio_prompt=LONG_WAV), "audio_prompt"),
    ("audio_prompt under one frame", body(audio_prompt=SUB_FRAME_WAV), "audio_prompt"),
    ("include_prompt as string", body(include_prompt="yes"), "include_prompt"),
]


@pytest.mark.parametrize(
    ("raw", "field"), [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES]
)
def test_bad_request_names_the_field(
    hooks: ModuleType, mono_model: Any, raw: str, field: str
) -> None:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(RequestValidationError) as caught:
        request = hooks.input_fn(raw, "application/json")
        hooks.predict_fn(request, mono_model)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-npy", ""])
def test_wrong_content_type(hooks: ModuleType, content_type: str) -> None:
    from inference_code.request_schema import RequestValidationError

    with pytest.raises(RequestValidationError, match=r"^content_type: must be application/json"):
        hooks.input_fn(json.dumps(GOOD), content_type)


def test_json_with_charset_and_bytes_body(hooks: ModuleType) -> None:
    request = hooks.input_fn(json.dumps(GOOD).encode(), "application/json; charset=utf-8")
    assert request.prompts == ("calm piano",)


def test_unsupported_accept_names_accept(hooks: ModuleType, mono_model: Any) -> None:
    from inference_code.request_schema import RequestValidationError

    prediction = hooks.predict_fn(hooks.input_fn(json.dumps(GOOD), "application/json"), mono_model)
    with pytest.raises(RequestValidationError, match=r"^accept: must be one of"):
        hooks.output_fn(prediction, "text/csv")


def test_audio_accept_with_several_prompts_is_refused_before_generating(
    hooks: ModuleType,
) -> None:
    from inference_code.request_schema import RequestValidationError

    class Properties:
        def get_request_properties(self) -> dict[str, str]:
            return {"Accept": "audio/wav"}

    class Context:
        def __init__(self) -> None:
            self.request_processor = [Properties()]

    with pytest.raises(RequestValidationError, match=r"^prompts: Accept audio/wav"):
        hooks.input_fn(json.dumps({"prompts": ["a", "b"]}), "application/json", Context())


def test_good_request_still_succeeds_after_the_bad_ones(invoke: Any, mono_model: Any) -> None:
    response = invoke(mono_model, GOOD, accept="audio/wav")
    audio, rate = read_audio(response)
    assert rate == 32_000 and audio.shape == (16_000, 1)
    assert np.abs(audio).max() > 0.5
