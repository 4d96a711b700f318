"""Generation through the hooks on tiny random MusicGens: length, channels, format, seed, batch."""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.unit.inference_code.handler_test_audio import decode_clip, read_audio

RATE = 32_000


@pytest.mark.parametrize("duration", [0.02, 1.0, 2.37])
def test_json_clip_has_exact_length(invoke: Any, mono_model: Any, duration: float) -> None:
    response = invoke(mono_model, {"prompt": "calm piano", "duration": duration, "seed": 3})
    assert response["sample_rate"] == RATE
    assert response["model_id"] == "mono"
    assert response["warnings"] == []
    assert response["generation_seconds"] >= 0
    (clip,) = response["clips"]
    assert (clip["index"], clip["prompt"], clip["seed"], clip["format"]) == (
        0,
        "calm piano",
        3,
        "wav",
    )
    audio, rate = decode_clip(clip)
    assert rate == RATE
    assert audio.shape == (round(duration * RATE), 1)
    assert clip["channels"] == 1
    assert clip["duration"] == pytest.approx(duration)


def test_stereo_stays_stereo(invoke: Any, stereo_model: Any) -> None:
    response = invoke(stereo_model, {"prompt": "rock song", "duration": 1.5, "format": "flac"})
    (clip,) = response["clips"]
    audio, rate = decode_clip(clip)
    assert (rate, audio.shape, clip["channels"], clip["format"]) == (RATE, (48_000, 2), 2, "flac")
    assert not np.array_equal(audio[:, 0], audio[:, 1])


@pytest.mark.parametrize(("accept", "container"), [("audio/wav", "WAV"), ("audio/flac", "FLAC")])
def test_bare_audio_file(invoke: Any, stereo_model: Any, accept: str, container: str) -> None:
    import soundfile

    response = invoke(stereo_model, {"prompt": "jazz trio", "duration": 1.0}, accept=accept)
    assert isinstance(response, bytes)
    info = soundfile.info(__import__("io").BytesIO(response))
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        container,
        "PCM_16",
        RATE,
        2,
        RATE,
    )


def test_batch_of_prompts_in_one_request(invoke: Any, mono_model: Any) -> None:
    prompts = ["calm piano", "fast rock song", "ambient pad strings"]
    response = invoke(mono_model, {"prompts": prompts, "duration": 1.0, "seed": 11})
    clips = response["clips"]
    assert [clip["index"] for clip in clips] == [0, 1, 2]
    assert [clip["prompt"] for clip in clips] == prompts
    assert [clip["seed"] for clip in clips] == [11, 12, 13]
    audios = [decode_clip(clip)[0] for clip in clips]
    assert all(audio.shape == (RATE, 1) for audio in audios)
    assert not np.array_equal(audios[0], audios[1])
    assert not np.array_equal(audios[1], audios[2])


def test_same_seed_same_audio_and_different_seeds_differ(invoke: Any, mono_model: Any) -> None:
    def audio(seed: int) -> bytes:
        payload = {"prompt": "lofi beat", "duration": 1.0, "seed": seed}
        return invoke(mono_model, payload, accept="audio/wav")

    first, again, other = audio(42), audio(42), audio(43)
    assert first == again
    assert first != other
    difference = np.abs(read_audio(first)[0] - read_audio(other)[0]).mean()
    assert difference > 1e-3


def test_drawn_seed_is_reported_and_reproduces(invoke: Any, mono_model: Any) -> None:
    payload = {"prompt": "lofi beat", "duration": 0.5}
    drawn = invoke(mono_model, payload)["clips"][0]
    assert 0 <= drawn["seed"] < 2**32
    replay = invoke(mono_model, {**payload, "seed": drawn["seed"]})["clips"][0]
    assert replay["audio"] == drawn["audio"]


def test_greedy_decoding_ignores_the_seed(invoke: Any, mono_model: Any) -> None:
    payload = {"prompt": "lofi beat", "duration": 0.5, "do_sample": False}
    first = invoke(mono_model, {**payload, "seed": 1}, accept="audio/wav")
    second = invoke(mono_model, {**payload, "seed": 2}, accept="audio/wav")
    assert first == second


def test_sampling_parameters_change_the_audio(invoke: Any, mono_model: Any) -> None:
    base = {"prompt": "lofi beat", "duration": 0.5, "seed": 5}
    reference = invoke(mono_model, base, accept="audio/wav")
    for change in ({"top_k": 1}, {"guidance_scale": 1}, {"temperature": 0.05}, {"top_p": 0.1}):
        assert invoke(mono_model, {**base, **change}, accept="audio/wav") != reference, change


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("peak", lambda audio: np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), abs=1e-3)),
        ("rms", lambda audio: np.sqrt(np.mean(audio**2)) == pytest.approx(0.1, rel=0.02)),
    ],
)
def test_normalisation(invoke: Any, mono_model: Any, mode: str, check: Any) -> None:
    payload = {"prompt": "lofi beat", "duration": 1.0, "seed": 8, "normalize": mode}
    audio, _ = read_audio(invoke(mono_model, payload, accept="audio/wav"))
    assert check(audio)


def test_no_normalisation_keeps_the_model_level(
    invoke: Any, mono_model: Any, hooks: ModuleType
) -> None:
    payload = {"prompt": "lofi beat", "duration": 1.0, "seed": 8}
    peak, _ = read_audio(invoke(mono_model, payload, accept="audio/wav"))
    raw, _ = read_audio(invoke(mono_model, {**payload, "normalize": "none"}, accept="audio/wav"))
    gain = np.abs(peak).max() / np.abs(raw).max()
    np.testing.assert_allclose(raw * gain, peak, atol=2e-3 * max(gain, 1))


def test_legacy_payload_generates_and_warns(invoke: Any, mono_model: Any) -> None:
    payload = {
        "texts": ["calm piano", "rock"],
        "generation_params": {"max_new_tokens": 50, "guidance_scale": 3, "do_sample": True},
        "bucket_name": "old-bucket",
    }
    response = invoke(mono_model, payload)
    assert [decode_clip(clip)[0].shape for clip in response["clips"]] == [(RATE, 1)] * 2
    assert any("bucket_name" in warning for warning in response["warnings"])


def test_response_is_plain_json(hooks: ModuleType, mono_model: Any) -> None:
    request = hooks.input_fn(json.dumps({"prompt": "x", "duration": 0.1}), "application/json")
    document = hooks.output_fn(hooks.predict_fn(request, mono_model), "*/*")
    parsed = json.loads(document)
    assert set(parsed) == {"model_id", "sample_rate", "clips", "generation_seconds", "warnings"}
    assert set(parsed["clips"][0]) == {
        "index",
        "prompt",
        "seed",
        "duration",
        "channels",
        "format",
        "audio",
    }
    base64.b64decode(parsed["clips"][0]["audio"], validate=True)


@pytest.mark.parametrize("model_name", ["mono_model", "stereo_model"])
@pytest.mark.parametrize("guidance_scale", [3.0, 1.0])
def test_greedy_clip_is_what_transformers_generates(
    hooks: ModuleType, request: pytest.FixtureRequest, model_name: str, guidance_scale: float
) -> None:
    import torch

    model = request.getfixturevalue(model_name)
    payload = {
        "prompt": "calm piano",
        "duration": 0.5,
        "do_sample": False,
        "guidance_scale": guidance_scale,
        "normalize": "none",
    }
    clip = hooks.predict_fn(hooks.input_fn(json.dumps(payload), "application/json"), model)
    inputs = model.tokenizer(["calm piano"], return_tensors="pt")
    with torch.inference_mode():
        # 25 frames, plus the delay pattern's 3 steps for the last codebooks.
        audio = model.model.generate(
            **inputs, do_sample=False, guidance_scale=guidance_scale, max_new_tokens=28
        )
    np.testing.assert_array_equal(clip.clips[0], audio[0].numpy())
