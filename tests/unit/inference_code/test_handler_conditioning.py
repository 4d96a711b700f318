"""Long durations in windows, melody and audio-prompt conditioning, mixed precision."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from tests.unit.inference_code.handler_test_audio import (
    audio_file_base64,
    decode_clip,
    read_audio,
    sine,
)

RATE = 32_000


def test_long_duration_through_the_hooks_has_exact_length(
    invoke: Any, short_window_model: Any
) -> None:
    response = invoke(short_window_model, {"prompt": "rock", "duration": 3.3, "seed": 2})
    audio, _ = decode_clip(response["clips"][0])
    assert audio.shape == (round(3.3 * RATE), 1)


def test_windows_are_reproducible(invoke: Any, short_window_model: Any) -> None:
    payload = {"prompt": "rock", "duration": 2.5, "seed": 77}
    first = invoke(short_window_model, payload, accept="audio/wav")
    assert invoke(short_window_model, payload, accept="audio/wav") == first


def test_melody_conditions_a_melody_model(invoke: Any, melody_model: Any) -> None:
    base = {"prompt": "calm piano", "duration": 1.0, "seed": 4}
    plain = invoke(melody_model, base, accept="audio/wav")
    hummed = {**base, "melody": audio_file_base64(sine(440, 2.0, rate=44_100), rate=44_100)}
    with_melody = invoke(melody_model, hummed, accept="audio/wav")
    other = {**base, "melody": audio_file_base64(sine(262, 2.0))}
    with_other_melody = invoke(melody_model, other, accept="audio/wav")
    assert read_audio(with_melody)[0].shape == (RATE, 1)
    assert with_melody != plain
    assert with_melody != with_other_melody


def test_melody_chroma_finds_the_pitch_class(melody_model: Any) -> None:
    from inference_code.melody_chroma import melody_chroma

    chroma = melody_chroma(sine(440.0, 3.0), melody_model.chroma)
    assert chroma.shape[0] == 1 and chroma.shape[2] == 12
    voiced = chroma[0, 2:20]  # frames fully inside the tone
    assert torch.all(voiced.argmax(dim=-1) == 9)  # A, counting from C
    assert torch.all(chroma.sum(dim=-1) == 1)


@pytest.mark.parametrize("model_name", ["mono_model", "stereo_model"])
def test_audio_prompt_is_continued(
    invoke: Any, request: pytest.FixtureRequest, model_name: str
) -> None:
    model = request.getfixturevalue(model_name)
    base = {"prompt": "calm piano", "duration": 1.0, "seed": 4}
    stereo_prompt = np.stack([sine(220, 1.5), sine(330, 1.5)], axis=1)
    first = {**base, "audio_prompt": audio_file_base64(stereo_prompt, rate=48_000)}
    second = {**base, "audio_prompt": audio_file_base64(sine(523, 0.7), rate=16_000)}
    plain = invoke(model, base, accept="audio/wav")
    continued = invoke(model, first, accept="audio/wav")
    continued_other = invoke(model, second, accept="audio/wav")
    audio, _ = read_audio(continued)
    assert audio.shape == (RATE, model.channels)  # only the new audio, `duration` long
    assert continued != plain and continued != continued_other
    assert invoke(model, first, accept="audio/wav") == continued


def test_audio_prompt_longer_than_a_window(invoke: Any, short_window_model: Any) -> None:
    payload = {
        "prompt": "rock",
        "duration": 2.0,
        "seed": 1,
        "audio_prompt": audio_file_base64(sine(330, 3.0)),
    }
    audio, _ = read_audio(invoke(short_window_model, payload, accept="audio/wav"))
    assert audio.shape == (2 * RATE, 1)


@pytest.mark.parametrize("variant", ["stereo", "melody"])
def test_half_precision_language_model_with_float32_codec(
    hooks: ModuleType, tiny_model_dirs: dict[str, Path], variant: str
) -> None:
    from inference_code.model_loading import load_musicgen

    model = load_musicgen(tiny_model_dirs[variant], half_dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    assert model.model.decoder.lm_heads[0].weight.dtype == torch.bfloat16
    assert model.model.text_encoder.shared.weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.model.audio_encoder.parameters())
    payload = {"prompt": "calm piano", "duration": 0.6, "seed": 3}
    if variant == "melody":
        payload["melody"] = audio_file_base64(sine(440, 1.0))
    else:
        payload["audio_prompt"] = audio_file_base64(sine(440, 0.5))
    request = hooks.input_fn(json.dumps(payload), "application/json")
    audio, rate = read_audio(hooks.output_fn(hooks.predict_fn(request, model), "audio/wav"))
    assert rate == RATE and audio.shape == (round(0.6 * RATE), model.channels)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.5


def test_max_duration_comes_from_the_environment(
    hooks: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference_code.request_schema import RequestValidationError

    monkeypatch.setenv("MUSICGEN_MAX_DURATION", "5")
    with pytest.raises(RequestValidationError, match=r"^duration: must be > 0 and <= 5 \(got 6\)"):
        hooks.input_fn(json.dumps({"prompt": "x", "duration": 6}), "application/json")
    monkeypatch.setenv("MUSICGEN_MAX_DURATION", "120")
    assert hooks.input_fn(json.dumps({"prompt": "x", "duration": 90}), "application/json")


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan"])
def test_bad_max_duration_fails_the_model_load(
    hooks: ModuleType, tiny_model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MUSICGEN_MAX_DURATION", value)
    with pytest.raises(ValueError, match=r"^MUSICGEN_MAX_DURATION: must be a number > 0"):
        hooks.model_fn(str(tiny_model_dirs["mono"]))


def test_model_is_loaded_from_the_directory_only(
    hooks: ModuleType, tiny_model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    # Config without weights: a loader that fell back to the Hub would try to download them.
    (tmp_path / "config.json").write_bytes((tiny_model_dirs["mono"] / "config.json").read_bytes())
    with pytest.raises(OSError):
        hooks.model_fn(str(tmp_path))


def test_model_fn_detects_the_variant(
    mono_model: Any, stereo_model: Any, melody_model: Any
) -> None:
    assert (mono_model.channels, mono_model.is_melody) == (1, False)
    assert (stereo_model.channels, stereo_model.codebooks_per_channel) == (2, 4)
    assert type(melody_model.model).__name__ == "MusicgenMelodyForConditionalGeneration"
    assert melody_model.is_melody and melody_model.chroma is not None
    assert (mono_model.frame_rate, mono_model.sampling_rate) == (50, RATE)
    assert mono_model.device.type == "cpu" and mono_model.dtype == torch.float32
    assert not mono_model.model.training


@pytest.mark.parametrize("model_name", ["mono_model", "stereo_model"])
def test_include_prompt_returns_the_prompt_then_the_same_continuation(
    invoke: Any, request: pytest.FixtureRequest, model_name: str
) -> None:
    model = request.getfixturevalue(model_name)
    base = {
        "prompt": "calm piano",
        "duration": 1.0,
        "seed": 4,
        "normalize": "none",
        # 0.71 s: 35 whole codec frames (0.70 s) are continued, the last part-frame is not.
        "audio_prompt": audio_file_base64(sine(523, 0.71), rate=RATE),
    }
    plain = invoke(model, base)
    included = invoke(model, {**base, "include_prompt": True})
    assert plain["warnings"] == included["warnings"] == []
    continuation, _ = decode_clip(plain["clips"][0])
    whole, _ = decode_clip(included["clips"][0])
    prompt_samples = 35 * 640
    assert continuation.shape == (RATE, model.channels)
    assert whole.shape == (prompt_samples + RATE, model.channels)
    assert included["clips"][0]["duration"] == pytest.approx(1.7)
    np.testing.assert_array_equal(whole[prompt_samples:], continuation)
    assert np.abs(whole[:prompt_samples]).max() > 0


def test_a_truncated_audio_prompt_is_reported(invoke: Any, short_window_model: Any) -> None:
    payload = {
        "prompt": "rock",
        "duration": 1.0,
        "seed": 1,
        "audio_prompt": audio_file_base64(sine(330, 3.0)),
    }
    response = invoke(short_window_model, payload)
    # The 60-frame window re-reads 24 frames: 0.48 s of the 3 s prompt are continued.
    assert response["warnings"] == [
        "audio_prompt: only its last 0.48 s of 3.00 s are continued "
        "(the model is prompted with at most 0.48 s)"
    ]


def test_a_clip_with_its_prompt_must_fit_the_max_duration(
    hooks: ModuleType, mono_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference_code.request_schema import RequestValidationError

    monkeypatch.setenv("MUSICGEN_MAX_DURATION", "5")
    payload = {
        "prompt": "rock",
        "duration": 3.0,
        "include_prompt": True,
        "audio_prompt": audio_file_base64(sine(330, 3.0)),
    }
    request = hooks.input_fn(json.dumps(payload), "application/json")
    with pytest.raises(RequestValidationError) as caught:
        hooks.predict_fn(request, mono_model)
    assert str(caught.value) == (
        "include_prompt: the returned clip, the prompt's 3.00 s plus duration 3 s, "
        "must be at most 5 s"
    )
    request = hooks.input_fn(json.dumps({**payload, "duration": 2.0}), "application/json")
    assert hooks.predict_fn(request, mono_model).clips[0].shape == (1, 5 * RATE)


def test_default_duration_never_exceeds_the_max(
    hooks: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSICGEN_MAX_DURATION", "4")
    assert hooks.input_fn(json.dumps({"prompt": "x"}), "application/json").duration == 4.0
    monkeypatch.setenv("MUSICGEN_MAX_DURATION", "60")
    assert hooks.input_fn(json.dumps({"prompt": "x"}), "application/json").duration == 10.0


@pytest.mark.parametrize("variant", ["mono", "melody"])
def test_fp16_keeps_the_t5_fp32_layers_in_fp32_from_the_checkpoint(
    hooks: ModuleType, tiny_model_dirs: dict[str, Path], variant: str
) -> None:
    from safetensors.torch import load_file

    from inference_code.model_loading import load_musicgen

    model = load_musicgen(tiny_model_dirs[variant], half_dtype=torch.float16)
    checkpoint = load_file(tiny_model_dirs[variant] / "model.safetensors")
    parameters = dict(model.model.named_parameters())
    kept = [name for name in parameters if ".wo." in name]
    assert kept and all(parameters[name].dtype == torch.float32 for name in kept)
    for name in kept:  # read as fp32, not rounded through fp16 on the way
        assert torch.equal(parameters[name], checkpoint[name])
    halves = [
        name for name in parameters if not name.startswith("audio_encoder.") and ".wo." not in name
    ]
    assert all(parameters[name].dtype == torch.float16 for name in halves)
    assert all(p.dtype == torch.float32 for p in model.model.audio_encoder.parameters())
    request = hooks.input_fn(
        json.dumps({"prompt": "calm piano", "duration": 0.3}), "application/json"
    )
    audio = hooks.predict_fn(request, model).clips[0]
    assert audio.shape == (model.channels, round(0.3 * RATE)) and np.isfinite(audio).all()


@pytest.mark.parametrize(
    ("capability", "dtype"),
    [
        ((7, 0), torch.float16),
        ((7, 5), torch.float16),
        ((8, 0), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
)
def test_half_precision_follows_the_compute_capability(
    hooks: ModuleType, capability: tuple[int, int], dtype: torch.dtype
) -> None:
    from inference_code.model_loading import half_dtype_for

    # V100 (7.0) and T4 (7.5) only emulate bf16; A10G/A100 (8.x) and H100 (9.0) run it natively.
    assert half_dtype_for(capability) is dtype
