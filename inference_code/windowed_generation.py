"""Batched, per-clip seeded MusicGen generation of exact-length clips, in token windows.

A clip longer than the model's window is made the way audiocraft extends one: each later window
is prompted with the last `window - stride` frames of codes made so far (the language model's own
tokens, never re-encoded audio) and adds up to `stride` frames; the whole code sequence of a clip
is decoded once, so there is no seam to hide.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.generation.logits_process import LogitsProcessorList
from transformers.models.encodec.modeling_encodec import (
    EncodecDecoderOutput,
    EncodecEncoderOutput,
    EncodecModel,
)

from inference_code.contract import (
    DECODER_ENV,
    DECODERS,
    DEFAULT_EXTEND_STRIDE_SECONDS,
    STATIC_CACHE_DECODER,
    TRANSFORMERS_DECODER,
)
from inference_code.melody_chroma import window_chroma
from inference_code.model_loading import LoadedMusicGen
from inference_code.request_schema import GenerationRequest, RequestValidationError
from inference_code.row_sampling import RowSamplerProcessor, SamplingSettings, clip_generators
from inference_code.static_cache_decoder import decode_window_static

# MusicGen was trained on 30 s segments: a window never holds more music than that, even where
# the positional table (2048 positions) would allow it.
TRAINED_WINDOW_SECONDS = 30


class GenerationLimitError(ValueError):
    """The request cannot fit the model's position window (e.g. a prompt far too long)."""


@dataclass(frozen=True)
class WindowPlan:
    """Frames one generate call may hold, and how far each later window moves on."""

    window_frames: int
    stride_frames: int

    @property
    def context_frames(self) -> int:
        """Frames of earlier codes a later window (or an audio prompt) is prompted with."""
        return self.window_frames - self.stride_frames


@dataclass(frozen=True)
class GenerationResult:
    clips: list[np.ndarray]  # one (channels, samples) float32 array per prompt
    codes: torch.Tensor  # (clips, codebooks, frames): audio-prompt frames, then the new ones
    windows: int
    warnings: tuple[str, ...]
    generation_seconds: float


def plan_windows(
    loaded: LoadedMusicGen, prefix_positions: int, extend_stride_seconds: float
) -> WindowPlan:
    """Derive the window from the decoder's position limit and the trained span.

    One call uses `prefix + 1 (start token) + frames + (codebooks - 1) (delay pattern)`
    positions. The stride is the same share of the window as `extend_stride_seconds` is of the
    trained 30 s, which is exactly `extend_stride_seconds` on every released checkpoint.
    """
    by_positions = loaded.max_positions - prefix_positions - loaded.codebooks_per_channel
    window = min(by_positions, TRAINED_WINDOW_SECONDS * loaded.frame_rate)
    stride = math.floor(window * extend_stride_seconds / TRAINED_WINDOW_SECONDS)
    if window < 2 or not 0 < stride < window:
        raise GenerationLimitError(
            f"prompt: too long for this model's window of {loaded.max_positions} positions "
            f"({prefix_positions} taken by the conditioning)"
        )
    return WindowPlan(window_frames=window, stride_frames=stride)


def generate_clips(
    loaded: LoadedMusicGen,
    request: GenerationRequest,
    *,
    seeds: tuple[int, ...],
    extend_stride_seconds: float = DEFAULT_EXTEND_STRIDE_SECONDS,
    max_clip_seconds: float = math.inf,
    melody: np.ndarray | None = None,
    audio_prompt: np.ndarray | None = None,
) -> GenerationResult:
    """Generate one clip per prompt: `round(duration * sampling_rate)` new samples, preceded by
    the audio prompt's used frames when `request.include_prompt`.

    Clip *i* draws only from a generator seeded with `seeds[i]`. A returned clip (prompt
    included) may be at most `max_clip_seconds` long. `melody` is mono audio at the
    chroma sampling rate; `audio_prompt` is `(channels, samples)` at the model's rate.
    """
    started = time.perf_counter()
    text = _text_conditioning(loaded, request)
    prefix = loaded.chroma_length + text["input_ids"].shape[1] if loaded.is_melody else 0
    plan = plan_windows(loaded, prefix, extend_stride_seconds)
    batch = len(request.prompts)
    warnings: list[str] = []
    codes = _prompt_codes(loaded, audio_prompt, plan, batch, warnings)
    prompt_frames = codes.shape[-1]
    if request.include_prompt:
        _check_clip_length(request, prompt_frames / loaded.frame_rate, max_clip_seconds)
    needed_frames = math.ceil(request.duration * loaded.frame_rate)
    generators = clip_generators(seeds, loaded.device)
    settings = _settings(request)
    windows = 0
    while codes.shape[-1] < prompt_frames + needed_frames:
        context = min(codes.shape[-1], plan.context_frames)
        remaining = prompt_frames + needed_frames - codes.shape[-1]
        new_frames = min(remaining, plan.window_frames - context)
        conditioning = dict(text)
        if melody is not None and loaded.chroma is not None:
            start_seconds = (codes.shape[-1] - context) / loaded.frame_rate
            chroma = window_chroma(melody, loaded.chroma, start_seconds=start_seconds)
            conditioning["input_features"] = chroma.repeat(batch, 1, 1).to(
                loaded.device, dtype=loaded.dtype
            )
        new_codes = decode_window(
            loaded,
            conditioning,
            settings,
            generators,
            codes[..., codes.shape[-1] - context :],
            new_frames,
        )
        codes = torch.cat([codes, new_codes], dim=-1)
        windows += 1
    prompt_samples = prompt_frames * loaded.hop_length
    first_sample = 0 if request.include_prompt else prompt_samples
    end_sample = prompt_samples + round(request.duration * loaded.sampling_rate)
    clips = [
        decode_codes(loaded, codes[index])[:, first_sample:end_sample] for index in range(batch)
    ]
    return GenerationResult(
        clips=clips,
        codes=codes,
        windows=windows,
        warnings=tuple(warnings),
        generation_seconds=time.perf_counter() - started,
    )


@torch.inference_mode()
def decode_codes(loaded: LoadedMusicGen, codes: torch.Tensor) -> np.ndarray:
    """One clip's `(codebooks, frames)` codes as float32 `(channels, frames * hop)` audio.

    Each clip is decoded on its own: decoding a batch changes the codec's float results in the
    last bits, and a clip must be bit-identical to the same clip requested alone. Stereo models
    interleave left/right codebooks.
    """
    codec = loaded.codec
    channels = [
        _decoded_audio(codec, codes[None, None, channel :: loaded.channels])[0, 0]
        .float()
        .cpu()
        .numpy()
        for channel in range(loaded.channels)
    ]
    return np.ascontiguousarray(np.stack(channels))


def _text_conditioning(
    loaded: LoadedMusicGen, request: GenerationRequest
) -> dict[str, torch.Tensor]:
    """Tokenised prompts, padded to one length.

    A melody model prepends the text to the decoder's sequence, so the padded length shifts
    every later position: it pads to the positions a full window leaves free (309 tokens on
    the released checkpoints), whatever the other prompts of the batch, so that a clip replays
    alone. Text-only models cross-attend to the text, where masked padding changes nothing.
    """
    prompts = list(request.prompts)
    tokens = loaded.tokenizer(prompts, padding=True, return_tensors="pt")
    if loaded.is_melody:
        free = (
            loaded.max_positions
            - loaded.chroma_length
            - loaded.codebooks_per_channel
            - TRAINED_WINDOW_SECONDS * loaded.frame_rate
        )
        if tokens["input_ids"].shape[1] < free:
            tokens = loaded.tokenizer(
                prompts, padding="max_length", max_length=free, return_tensors="pt"
            )
    return {name: tensor.to(loaded.device) for name, tensor in tokens.items()}


def _settings(request: GenerationRequest) -> SamplingSettings:
    return SamplingSettings(
        do_sample=request.do_sample,
        temperature=request.temperature,
        top_k=request.top_k,
        top_p=request.top_p,
        guidance_scale=request.guidance_scale,
    )


def _check_clip_length(
    request: GenerationRequest, prompt_seconds: float, max_clip_seconds: float
) -> None:
    if prompt_seconds + request.duration > max_clip_seconds:
        raise RequestValidationError(
            "include_prompt",
            f"the returned clip, the prompt's {prompt_seconds:.2f} s plus duration "
            f"{request.duration:g} s, must be at most {max_clip_seconds:g} s",
            show_got=False,
        )


def _prompt_codes(
    loaded: LoadedMusicGen,
    audio_prompt: np.ndarray | None,
    plan: WindowPlan,
    batch: int,
    warnings: list[str],
) -> torch.Tensor:
    """The audio prompt's codes `(batch, codebooks, frames)`: its last whole codec frames, at
    most a later window's context (`window - stride`)."""
    codebooks = loaded.codebooks_per_channel * loaded.channels
    if audio_prompt is None:
        return torch.zeros((batch, codebooks, 0), dtype=torch.long, device=loaded.device)
    hop = loaded.hop_length
    frames = audio_prompt.shape[-1] // hop
    if frames == 0:
        raise RequestValidationError(
            "audio_prompt",
            f"must be at least one codec frame ({hop / loaded.sampling_rate:g} s) long",
            f"{audio_prompt.shape[-1] / loaded.sampling_rate:g} s",
        )
    used = min(frames, plan.context_frames)
    if used < frames:
        warnings.append(
            f"audio_prompt: only its last {used * hop / loaded.sampling_rate:.2f} s of "
            f"{audio_prompt.shape[-1] / loaded.sampling_rate:.2f} s are continued (the model "
            f"is prompted with at most {plan.context_frames / loaded.frame_rate:g} s)"
        )
    tail = audio_prompt[..., audio_prompt.shape[-1] - used * hop :]
    return _encode_codes(loaded, tail).expand(batch, -1, -1)


@torch.inference_mode()
def _encode_codes(loaded: LoadedMusicGen, audio: np.ndarray) -> torch.Tensor:
    """EnCodec codes `(1, codebooks, frames)` of `(channels, samples)` audio, channels
    interleaved as the stereo decoder expects."""
    codec = loaded.codec
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(loaded.device)
    per_channel = [
        _encoded_codes(codec, waveform[None, channel : channel + 1, :])[0]
        for channel in range(loaded.channels)
    ]
    codes = torch.stack(per_channel, dim=2)  # (1, codebooks per channel, channels, frames)
    return codes.reshape(1, -1, codes.shape[-1])


def selected_decoder() -> str:
    """The decode loop MUSICGEN_DECODER names; the static-cache loop when it is unset."""
    raw = os.environ.get(DECODER_ENV, "").strip()
    if not raw:
        return STATIC_CACHE_DECODER
    if raw not in DECODERS:
        raise ValueError(f"{DECODER_ENV}: must be one of {', '.join(DECODERS)} (got {raw!r})")
    return raw


def decode_window(
    loaded: LoadedMusicGen,
    conditioning: dict[str, torch.Tensor],
    settings: SamplingSettings,
    generators: list[torch.Generator],
    context: torch.Tensor,
    new_frames: int,
) -> torch.Tensor:
    """One window's `new_frames` new codes after `context` `(batch, codebooks, frames)`, made by
    the decoder MUSICGEN_DECODER selects (both draw clip *i*'s tokens from `generators[i]`)."""
    if selected_decoder() == TRANSFORMERS_DECODER:
        return _generate_window(loaded, conditioning, settings, generators, context, new_frames)
    return decode_window_static(loaded, conditioning, settings, generators, context, new_frames)


@torch.inference_mode()
def _generate_window(
    loaded: LoadedMusicGen,
    conditioning: dict[str, torch.Tensor],
    settings: SamplingSettings,
    generators: list[torch.Generator],
    context: torch.Tensor,
    new_frames: int,
) -> torch.Tensor:
    """One generate call continuing `context` codes `(batch, codebooks, frames)`; returns the
    `new_frames` new codes in the same layout."""
    batch, codebooks, context_frames = context.shape
    sampler = RowSamplerProcessor(generators, settings, rows=batch * codebooks)
    kwargs: dict[str, Any] = dict(conditioning)
    if context_frames > 0:
        kwargs["decoder_input_ids"] = context.reshape(batch * codebooks, context_frames)
    # The delay pattern costs (codebooks per channel - 1) steps before the last codebook of a
    # frame is made: codebook k of new frame n is chosen at step n + k.
    delays = [codebook // loaded.channels for codebook in range(codebooks)]
    steps = new_frames + loaded.codebooks_per_channel - 1
    with _codes_only(loaded.codec):
        loaded.model.generate(
            **kwargs,
            do_sample=False,
            guidance_scale=settings.guidance_scale,
            temperature=None,
            top_k=None,
            top_p=None,
            logits_processor=LogitsProcessorList([sampler]),
            max_new_tokens=steps,
        )
    if len(sampler.steps) != steps:
        raise RuntimeError(f"generate ran {len(sampler.steps)} steps, expected {steps}")
    chosen = torch.stack(sampler.steps).view(steps, batch, codebooks)
    new_codes = torch.stack(
        [chosen[delay : delay + new_frames, :, index] for index, delay in enumerate(delays)]
    )  # (codebooks, new_frames, batch)
    return new_codes.permute(2, 0, 1).contiguous()


def _decoded_audio(codec: EncodecModel, codes: torch.Tensor) -> torch.Tensor:
    # transformers annotates `audio_scales` as a Tensor; it takes one scale per chunk, None for
    # a codec without normalisation, as transformers' own MusicGen `generate` passes them.
    decoded = codec.decode(codes, audio_scales=[None], return_dict=True)  # type: ignore[arg-type]
    if not isinstance(decoded, EncodecDecoderOutput) or decoded.audio_values is None:
        raise TypeError(f"EnCodec decode returned {type(decoded).__name__}, not audio values")
    return decoded.audio_values


def _encoded_codes(codec: EncodecModel, waveform: torch.Tensor) -> torch.Tensor:
    encoded = codec.encode(waveform, return_dict=True)
    if not isinstance(encoded, EncodecEncoderOutput) or encoded.audio_codes is None:
        raise TypeError(f"EnCodec encode returned {type(encoded).__name__}, not audio codes")
    return encoded.audio_codes


@contextmanager
def _codes_only(codec: EncodecModel) -> Iterator[None]:
    """Skip the audio decode that ends transformers' `generate`: the caller keeps the tokens and
    decodes each clip's whole sequence once, after its last window."""

    def keep_codes(
        audio_codes: torch.Tensor,
        audio_scales: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> EncodecDecoderOutput:
        # transformers annotates the field with the legacy FloatTensor; it holds any tensor.
        return EncodecDecoderOutput(audio_values=audio_codes)  # type: ignore[arg-type]

    # An instance attribute shadows the method for this one `generate` call; mypy forbids
    # assigning to a method by design.
    codec.decode = keep_codes  # type: ignore[method-assign]
    try:
        yield
    finally:
        del codec.decode
