"""Every clip of a batch replays on its own from the seed it reports."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.unit.inference_code.handler_test_audio import audio_file_base64, sine

PROMPTS = ["calm piano", "fast rock song", "ambient pad strings"]


def _alone(invoke: Any, model: Any, clip: dict[str, Any], base: dict[str, Any]) -> str:
    response = invoke(model, {**base, "prompt": clip["prompt"], "seed": clip["seed"]})
    (single,) = response["clips"]
    assert single["seed"] == clip["seed"]
    return single["audio"]


@pytest.mark.parametrize("model_name", ["mono_model", "stereo_model", "melody_model"])
@pytest.mark.parametrize("guidance_scale", [3.0, 1.0])
def test_each_clip_of_a_batch_equals_the_clip_requested_alone(
    invoke: Any, request: pytest.FixtureRequest, model_name: str, guidance_scale: float
) -> None:
    model = request.getfixturevalue(model_name)
    base: dict[str, Any] = {"duration": 0.4, "guidance_scale": guidance_scale}
    if model_name == "melody_model":
        base["melody"] = audio_file_base64(sine(330, 1.0))
    response = invoke(model, {**base, "prompts": PROMPTS, "seed": 42})
    clips = response["clips"]
    assert [clip["seed"] for clip in clips] == [42, 43, 44]
    assert len({clip["audio"] for clip in clips}) == 3
    for clip in clips:
        assert _alone(invoke, model, clip, base) == clip["audio"], clip["prompt"]


def test_greedy_batch_clips_equal_the_clips_alone(invoke: Any, stereo_model: Any) -> None:
    base = {"duration": 0.4, "do_sample": False}
    response = invoke(stereo_model, {**base, "prompts": PROMPTS[:2], "seed": 1})
    for clip in response["clips"]:
        assert _alone(invoke, stereo_model, clip, base) == clip["audio"]


def test_windowed_batch_clips_equal_the_clips_alone(invoke: Any, short_window_model: Any) -> None:
    base = {"duration": 2.5}
    response = invoke(short_window_model, {**base, "prompts": PROMPTS[:2], "seed": 7})
    for clip in response["clips"]:
        assert _alone(invoke, short_window_model, clip, base) == clip["audio"]


def test_a_clip_does_not_depend_on_its_neighbours_or_its_place(
    invoke: Any, mono_model: Any
) -> None:
    base = {"duration": 0.5}
    first = invoke(mono_model, {**base, "prompts": ["calm piano", "rock song"], "seed": 10})
    swapped = invoke(mono_model, {**base, "prompts": ["rock song", "calm piano"], "seed": 9})
    changed = invoke(mono_model, {**base, "prompts": ["jazz trio", "rock song"], "seed": 10})
    piano = first["clips"][0]
    assert (swapped["clips"][1]["prompt"], swapped["clips"][1]["seed"]) == ("calm piano", 10)
    assert swapped["clips"][1]["audio"] == piano["audio"]
    assert changed["clips"][1]["audio"] == first["clips"][1]["audio"]
    assert changed["clips"][0]["audio"] != piano["audio"]


def test_drawn_seeds_are_consecutive_per_clip(invoke: Any, mono_model: Any) -> None:
    response = invoke(mono_model, {"prompts": PROMPTS, "duration": 0.2})
    seeds = [clip["seed"] for clip in response["clips"]]
    assert all(0 <= seed < 2**32 for seed in seeds)
    assert seeds == [(seeds[0] + index) % 2**32 for index in range(3)]


def test_seeds_wrap_below_two_to_the_32() -> None:
    from inference_code.row_sampling import clip_seeds

    assert clip_seeds(2**32 - 2, 4) == (2**32 - 2, 2**32 - 1, 0, 1)


def test_a_clip_draws_only_from_its_own_generator() -> None:
    from inference_code.row_sampling import SamplingSettings, choose_tokens, clip_generators

    settings = SamplingSettings(top_k=0, top_p=0.0)
    logits = torch.randn(2 * 4, 64, generator=torch.Generator().manual_seed(0))
    other = logits.clone()
    other[4:] = torch.randn(4, 64)
    both = choose_tokens(logits, clip_generators([5, 6], torch.device("cpu")), settings)
    changed = choose_tokens(other, clip_generators([5, 6], torch.device("cpu")), settings)
    alone = choose_tokens(logits[:4], clip_generators([5], torch.device("cpu")), settings)
    assert torch.equal(both[:4], changed[:4]) and torch.equal(both[:4], alone)


@pytest.mark.parametrize(
    "settings",
    [
        {"do_sample": False},
        {"top_k": 1},
        {"top_p": 1e-6},
        {"temperature": 1e-4, "top_k": 0},
    ],
)
def test_filters_that_leave_one_token_pick_the_best(settings: dict[str, Any]) -> None:
    from inference_code.row_sampling import SamplingSettings, choose_tokens, clip_generators

    logits = torch.randn(8, 64, generator=torch.Generator().manual_seed(1))
    chosen = choose_tokens(
        logits, clip_generators([3, 4], torch.device("cpu")), SamplingSettings(**settings)
    )
    assert torch.equal(chosen, logits.argmax(dim=-1))


def test_top_k_and_top_p_keep_only_the_best_tokens() -> None:
    from inference_code.row_sampling import SamplingSettings, choose_tokens, clip_generators

    logits = torch.tensor([[4.0, 3.9, 3.8, -5.0, -6.0]]).repeat(400, 1)
    generators = clip_generators([11], torch.device("cpu"))
    top_k = choose_tokens(logits, generators, SamplingSettings(top_k=2, top_p=0.0))
    assert set(top_k.tolist()) == {0, 1}
    top_p = choose_tokens(logits, generators, SamplingSettings(top_k=0, top_p=0.5))
    assert set(top_p.tolist()) == {0, 1}
    unfiltered = choose_tokens(logits, generators, SamplingSettings(top_k=0, top_p=0.0))
    assert set(unfiltered.tolist()) >= {0, 1, 2}
