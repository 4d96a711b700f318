"""The static-cache decode loop makes the tokens transformers' `generate` makes.

Greedy tokens equal a plain `generate` call; sampled tokens equal the per-row transformers path
(`MUSICGEN_DECODER=transformers`) with the same seeds, windows and guidance included. The loop
attends over a whole preallocated window behind a mask, so its logits may differ from
`generate`'s in the last bits: the first step's are identical, later ones within
`LOGITS_TOLERANCE` (relative to 1 + |logit|), and the tokens agree.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
import torch

from tests.unit.inference_code.handler_test_audio import sine

PROMPTS = ["calm piano", "fast rock song with guitar solo", "jazz"]
# Measured on these models over 100 guided steps: at most 2.4e-5.
LOGITS_TOLERANCE = 1e-4
FRAMES = 50


def _conditioning(hooks: ModuleType, loaded: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    from inference_code.melody_chroma import window_chroma
    from inference_code.windowed_generation import _text_conditioning

    request = hooks.input_fn(json.dumps({"prompts": prompts}), "application/json")
    conditioning = _text_conditioning(loaded, request)
    if loaded.is_melody:
        chroma = window_chroma(sine(330.0, 2.0), loaded.chroma, start_seconds=0.0)
        conditioning["input_features"] = chroma.repeat(len(prompts), 1, 1)
    return conditioning


def _generated_codes(
    loaded: Any, conditioning: dict[str, torch.Tensor], guidance_scale: float, frames: int
) -> torch.Tensor:
    """Codes `(batch, codebooks, frames)` of a plain greedy `generate` call."""
    from inference_code.windowed_generation import _codes_only

    with _codes_only(loaded.codec), torch.inference_mode():
        codes = loaded.model.generate(
            **conditioning,
            do_sample=False,
            guidance_scale=guidance_scale,
            max_new_tokens=frames + loaded.codebooks_per_channel - 1,
        )[0]
    if loaded.channels == 2:
        # transformers decodes the left codebooks of every clip, then the right ones.
        left, right = codes.chunk(2, dim=0)
        codes = torch.stack([left, right], dim=2).flatten(1, 2)
    return codes


@pytest.mark.parametrize("model_name", ["mono_model", "stereo_model", "melody_model"])
@pytest.mark.parametrize("guidance_scale", [3.0, 1.0])
@pytest.mark.parametrize("batch", [1, 3])
def test_greedy_tokens_equal_transformers_generate(
    hooks: ModuleType,
    request: pytest.FixtureRequest,
    model_name: str,
    guidance_scale: float,
    batch: int,
) -> None:
    from inference_code.row_sampling import SamplingSettings, clip_generators
    from inference_code.static_cache_decoder import decode_window_static

    loaded = request.getfixturevalue(model_name)
    conditioning = _conditioning(hooks, loaded, PROMPTS[:batch])
    expected = _generated_codes(loaded, conditioning, guidance_scale, FRAMES)
    codebooks = loaded.codebooks_per_channel * loaded.channels
    loop = decode_window_static(
        loaded,
        conditioning,
        SamplingSettings(do_sample=False, guidance_scale=guidance_scale),
        clip_generators(range(batch), loaded.device),
        torch.zeros((batch, codebooks, 0), dtype=torch.long),
        FRAMES,
    )
    assert loop.shape == expected.shape == (batch, codebooks, FRAMES)
    assert torch.equal(loop, expected)
    assert len(torch.unique(loop)) > 8  # the tokens vary: an equality that means something


@pytest.mark.parametrize("model_name", ["mono_model", "stereo_model", "melody_model"])
def test_logits_drift_stays_within_the_tolerance(
    hooks: ModuleType,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    model_name: str,
) -> None:
    from inference_code import row_sampling, static_cache_decoder
    from inference_code.row_sampling import SamplingSettings, clip_generators
    from inference_code.windowed_generation import _generate_window

    loaded = request.getfixturevalue(model_name)
    conditioning = _conditioning(hooks, loaded, PROMPTS[:2])
    codebooks = loaded.codebooks_per_channel * loaded.channels
    context = torch.randint(0, 64, (2, codebooks, 6), generator=torch.Generator().manual_seed(3))
    settings = SamplingSettings(guidance_scale=3.0)
    seen: dict[str, list[torch.Tensor]] = {"transformers": [], "loop": []}
    real = row_sampling.choose_tokens

    def recording(name: str) -> Any:
        def choose(logits: torch.Tensor, *args: Any) -> torch.Tensor:
            seen[name].append(logits.clone())
            return real(logits, *args)

        return choose

    monkeypatch.setattr(row_sampling, "choose_tokens", recording("transformers"))
    monkeypatch.setattr(static_cache_decoder, "choose_tokens", recording("loop"))
    expected = _generate_window(
        loaded, conditioning, settings, clip_generators([4, 5], loaded.device), context, FRAMES
    )
    loop = static_cache_decoder.decode_window_static(
        loaded, conditioning, settings, clip_generators([4, 5], loaded.device), context, FRAMES
    )
    assert torch.equal(loop, expected)
    steps = FRAMES + loaded.codebooks_per_channel - 1
    assert len(seen["loop"]) == len(seen["transformers"]) == steps
    assert torch.equal(seen["loop"][0], seen["transformers"][0])
    drift = max(
        ((mine - theirs).abs() / (1 + theirs.abs())).max().item()
        for mine, theirs in zip(seen["loop"], seen["transformers"], strict=True)
    )
    assert drift <= LOGITS_TOLERANCE


@pytest.mark.parametrize(
    ("model_name", "fields"),
    [
        ("short_window_model", {"guidance_scale": 3.0}),
        ("short_window_model", {"guidance_scale": 1.0, "top_k": 20, "temperature": 0.7}),
        ("short_window_model", {"top_k": 0, "top_p": 0.8}),
        ("short_window_melody_model", {"guidance_scale": 3.0, "top_k": 20}),
        ("short_window_melody_model", {"guidance_scale": 1.0}),
    ],
)
def test_sampled_windowed_clips_equal_the_transformers_path(
    hooks: ModuleType,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    model_name: str,
    fields: dict[str, Any],
) -> None:
    from inference_code.windowed_generation import generate_clips

    loaded = request.getfixturevalue(model_name)
    payload = {"prompts": PROMPTS[:2], "duration": 2.5, **fields}
    parsed = hooks.input_fn(json.dumps(payload), "application/json")
    melody = sine(262.0, 1.5) if loaded.is_melody else None

    def codes(decoder: str) -> Any:
        monkeypatch.setenv("MUSICGEN_DECODER", decoder)
        return generate_clips(loaded, parsed, seeds=(7, 8), melody=melody)

    loop = codes("static-cache")
    transformers = codes("transformers")
    assert loop.windows == transformers.windows >= 3
    assert torch.equal(loop.codes, transformers.codes)
    assert not torch.equal(loop.codes[0], loop.codes[1])


def test_delay_pattern_is_transformers_layout(stereo_model: Any) -> None:
    from inference_code.static_cache_decoder import DelayedTokens

    decoder = stereo_model.model.decoder
    pad = int(stereo_model.model.generation_config.decoder_start_token_id)
    context = torch.randint(0, 64, (2, 8, 5), generator=torch.Generator().manual_seed(1))
    tokens = DelayedTokens(
        context, new_frames=7, delays=[k // 2 for k in range(8)], pad_token_id=pad
    )
    start = torch.full((2, 8, 1), pad, dtype=torch.long)
    prompt = torch.cat([start, context], dim=-1).reshape(16, -1)
    _, pattern = decoder.build_delay_pattern_mask(
        prompt, pad_token_id=pad, max_length=1 + 5 + tokens.steps
    )
    pattern = pattern.reshape(2, 8, -1)
    assert torch.equal(tokens.free.expand(2, -1, -1), pattern == -1)
    assert torch.equal(tokens.tokens[pattern != -1], pattern[pattern != -1])


def test_the_switch_picks_the_decoder(
    hooks: ModuleType, short_window_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference_code.windowed_generation import generate_clips

    calls: list[dict[str, Any]] = []
    real = short_window_model.model.generate

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(short_window_model.model, "generate", spy)
    parsed = hooks.input_fn(json.dumps({"prompt": "rock", "duration": 2.0}), "application/json")
    monkeypatch.delenv("MUSICGEN_DECODER", raising=False)
    default = generate_clips(short_window_model, parsed, seeds=(3,))
    assert calls == []
    monkeypatch.setenv("MUSICGEN_DECODER", "transformers")
    fallback = generate_clips(short_window_model, parsed, seeds=(3,))
    # 100 frames: 60, then 36 and 4 more, each call 3 delay-pattern steps longer.
    assert [call["max_new_tokens"] for call in calls] == [63, 39, 7]
    assert torch.equal(default.codes, fallback.codes)


@pytest.mark.parametrize("value", ["fast", "Transformers", "generate"])
def test_an_unknown_decoder_fails_the_model_load(
    hooks: ModuleType, tiny_model_dirs: dict, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MUSICGEN_DECODER", value)
    with pytest.raises(
        ValueError,
        match=rf"^MUSICGEN_DECODER: must be one of static-cache, transformers \(got '{value}'\)$",
    ):
        hooks.model_fn(str(tiny_model_dirs["mono"]))


@pytest.mark.parametrize(
    ("guidance_scale", "prompts", "explicit"),
    [
        (3.0, PROMPTS, True),  # guidance's null rows are masked whole
        (1.0, PROMPTS[:1], False),  # nothing masked: SDPA without a mask
        # Padding: transformers' test for a masked-out row sums the mask, which overflows to
        # -inf once two positions are masked, so it takes the explicit path here too.
        (1.0, PROMPTS, True),
    ],
)
def test_a_step_cross_attends_as_transformers_does(
    hooks: ModuleType, mono_model: Any, guidance_scale: float, prompts: list[str], explicit: bool
) -> None:
    """Bit for bit, on whichever path transformers takes for the window's mask."""
    from inference_code.static_cache_decoder import (
        StaticKVCache,
        _cross_attention_mask,
        _DecodeStep,
    )
    from inference_code.static_cache_decoder import _conditioning as loop_conditioning

    model = mono_model.model
    decoder = model.decoder.model.decoder
    guided = guidance_scale > 1
    condition = loop_conditioning(
        model, _conditioning(hooks, mono_model, prompts), guided=guided, melody=False
    )
    mask = _cross_attention_mask(decoder, condition, dtype=torch.float32)
    layer = decoder.layers[0]
    attention = layer.encoder_attn
    states = condition.hidden_states
    rows = states.shape[0]
    keys = attention._shape(attention.k_proj(states), -1, rows)
    values = attention._shape(attention.v_proj(states), -1, rows)
    cache = StaticKVCache(
        layers=len(decoder.layers), rows=rows, heads=2, length=8, head_dim=16, like=keys
    )
    step = _DecodeStep(model, cache, [(keys, values)] * len(decoder.layers), mask)
    hidden = torch.randn(rows, 1, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected, _, _ = attention(
            hidden_states=hidden,
            key_value_states=states,
            past_key_value=(keys, values),
            attention_mask=mask,
        )
        mine = step._cross_attention(step.layers[0].cross, hidden)
    assert step.cross_explicit is explicit
    assert torch.equal(mine, expected)
