"""Long clips: later windows continue the model's own codes, and each clip is decoded once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import torch
from transformers import EncodecModel

from tests.unit.inference_code.handler_test_audio import decode_clip

RATE = 32_000


@pytest.fixture
def window_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every window's decode call (either decoder), the call itself left to the real one."""
    from inference_code import windowed_generation

    calls: list[dict[str, Any]] = []
    real = windowed_generation.decode_window

    def spy(
        loaded: Any,
        conditioning: Any,
        settings: Any,
        generators: Any,
        context: Any,
        new_frames: int,
    ) -> Any:
        calls.append({"conditioning": conditioning, "context": context, "new_frames": new_frames})
        return real(loaded, conditioning, settings, generators, context, new_frames)

    monkeypatch.setattr(windowed_generation, "decode_window", spy)
    return calls


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[torch.Tensor]]:
    """The codes of every EnCodec decode (the class's method, wherever it is called from)."""
    calls: list[torch.Tensor] = []
    real = EncodecModel.decode

    def spy(self: EncodecModel, audio_codes: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        calls.append(audio_codes)
        return real(self, audio_codes, *args, **kwargs)

    monkeypatch.setattr(EncodecModel, "decode", spy)
    yield calls


def _request(hooks: ModuleType, payload: dict[str, Any]) -> Any:
    return hooks.input_fn(json.dumps(payload), "application/json")


def test_each_window_is_prompted_with_the_tail_codes_of_the_last(
    hooks: ModuleType, short_window_model: Any, window_calls: list[dict]
) -> None:
    from inference_code.windowed_generation import generate_clips, plan_windows

    plan = plan_windows(short_window_model, prefix_positions=0, extend_stride_seconds=18)
    assert (plan.window_frames, plan.stride_frames, plan.context_frames) == (60, 36, 24)
    request = _request(hooks, {"prompts": ["calm piano", "rock"], "duration": 3.0})
    result = generate_clips(short_window_model, request, seeds=(9, 10))
    # 150 frames: 60, then 36 + 36 + 18 more, each later window re-reading 24.
    assert result.windows == len(window_calls) == 4
    assert result.codes.shape == (2, 4, 150)
    assert window_calls[0]["context"].shape == (2, 4, 0)
    assert window_calls[0]["new_frames"] == 60
    made = 60
    for call, new in zip(window_calls[1:], (36, 36, 18), strict=True):
        assert torch.equal(call["context"], result.codes[:, :, made - 24 : made])
        assert call["new_frames"] == new
        made += new


def test_stride_comes_from_the_environment(
    invoke: Any, short_window_model: Any, window_calls: list[dict], monkeypatch: Any
) -> None:
    monkeypatch.setenv("MUSICGEN_EXTEND_STRIDE", "10")
    invoke(short_window_model, {"prompt": "rock", "duration": 2.0, "seed": 1})
    # A 60-frame window moves on by 60 * 10 / 30 = 20 frames and re-reads 40.
    contexts = [call["context"].shape[-1] for call in window_calls]
    assert contexts == [0, 40, 40]  # 100 frames: 60, then 20 + 20 more


def test_each_clip_is_decoded_once_over_its_whole_sequence(
    invoke: Any, short_window_model: Any, decode_calls: list[torch.Tensor]
) -> None:
    response = invoke(short_window_model, {"prompts": ["a", "rock"], "duration": 2.5, "seed": 3})
    assert len(response["clips"]) == 2
    assert [tuple(codes.shape) for codes in decode_calls] == [(1, 1, 4, 125)] * 2


# Each long clip costs its every frame (about 15 ms each on a tiny model on a shared CPU):
# mono and stereo at 35 s (two windows), then one model each for 60 s and 120 s.
@pytest.mark.parametrize(
    ("model_name", "duration"),
    [("mono_model", 35.0), ("stereo_model", 35.0), ("stereo_model", 60.0), ("mono_model", 120.0)],
)
def test_long_clips_have_exact_length(
    invoke: Any,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    model_name: str,
    duration: float,
) -> None:
    model = request.getfixturevalue(model_name)
    monkeypatch.setenv("MUSICGEN_MAX_DURATION", "120")
    payload = {"prompt": "rock song", "duration": duration, "seed": 5, "guidance_scale": 1}
    response = invoke(model, payload)
    audio, rate = decode_clip(response["clips"][0])
    assert (rate, audio.shape) == (RATE, (round(duration * RATE), model.channels))
    assert response["clips"][0]["duration"] == duration


@pytest.mark.parametrize("value", ["soon", "0", "-1", "30", "nan"])
def test_bad_extend_stride_fails_the_model_load(
    hooks: ModuleType, tiny_model_dirs: dict, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MUSICGEN_EXTEND_STRIDE", value)
    with pytest.raises(ValueError, match=r"^MUSICGEN_EXTEND_STRIDE: must be a number > 0 and < 30"):
        hooks.model_fn(str(tiny_model_dirs["mono"]))
