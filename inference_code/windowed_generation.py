"""Batched, seeded, windowed MusicGen generation of exact-length clips."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from crossfade import crossfade_append
from melody_chroma import melody_chroma
from model_loading import LoadedMusicGen
from request_schema import GenerationRequest

# A generate call's final frames decode noisily: each call makes this many extra, then drops them.
TAIL_TRIM_FRAMES = 4
# MusicGen was trained on 30 s segments: a window never holds more music than that, even where
# the positional table (2048 positions) would allow it.
TRAINED_WINDOW_SECONDS = 30
# Each window after the first re-reads this share of the window from the audio made so far.
CONTEXT_SHARE = 1 / 3
CROSSFADE_SECONDS = 1.0
MIN_NEW_FRAMES = 2


class GenerationLimitError(ValueError):
    """The request cannot fit the model's position window (e.g. a prompt far too long)."""


@dataclass(frozen=True)
class WindowPlan:
    """How many decoder frames one generate call may hold (context + kept + trimmed tail)."""

    window_frames: int
    context_frames: int

    @property
    def new_frames(self) -> int:
        """Kept frames a continuation window adds."""
        return self.window_frames - self.context_frames - TAIL_TRIM_FRAMES


@dataclass(frozen=True)
class GenerationResult:
    clips: list[np.ndarray]  # one (channels, samples) float32 array per prompt
    windows: int
    seams: tuple[int, ...]  # sample index where each later window's own audio begins
    generation_seconds: float


def plan_windows(loaded: LoadedMusicGen, prefix_positions: int) -> WindowPlan:
    """Derive the window from the decoder's position limit and the trained span.

    One call uses `prefix + 1 (start token) + frames + (codebooks - 1) (delay pattern)` positions.
    """
    by_positions = loaded.max_positions - prefix_positions - loaded.codebooks_per_channel
    trained = TRAINED_WINDOW_SECONDS * loaded.frame_rate + TAIL_TRIM_FRAMES
    window = min(by_positions, trained)
    context = max(1, math.floor(window * CONTEXT_SHARE))
    plan = WindowPlan(window_frames=window, context_frames=context)
    if plan.new_frames < MIN_NEW_FRAMES:
        raise GenerationLimitError(
            f"prompt: too long for this model's window of {loaded.max_positions} positions "
            f"({prefix_positions} taken by the conditioning)"
        )
    return plan


def generate_clips(
    loaded: LoadedMusicGen,
    request: GenerationRequest,
    *,
    seed: int,
    melody: np.ndarray | None = None,
    audio_prompt: np.ndarray | None = None,
) -> GenerationResult:
    """Generate one clip of exactly `round(duration * sampling_rate)` samples per prompt.

    All prompts go through each generate call together. `melody` is mono audio at the chroma
    sampling rate; `audio_prompt` is `(channels, samples)` at the model's rate and is continued,
    not repeated, in the clip.
    """
    started = time.perf_counter()
    conditioning = _conditioning(loaded, request, melody)
    prefix = loaded.chroma_length + conditioning["input_ids"].shape[1] if loaded.is_melody else 0
    plan = plan_windows(loaded, prefix)
    hop = loaded.hop_length
    batch = len(request.prompts)
    needed_frames = math.ceil(request.duration * loaded.frame_rate)
    target_samples = round(request.duration * loaded.sampling_rate)
    sampling = _sampling_kwargs(request)

    context = None
    if audio_prompt is not None:
        prompt_frames = audio_prompt.shape[-1] // hop
        context_frames = min(prompt_frames, plan.context_frames)
        if context_frames > 0:
            tail = audio_prompt[..., audio_prompt.shape[-1] - context_frames * hop :]
            context = np.repeat(tail[np.newaxis], batch, axis=0)
    made: np.ndarray | None = None
    made_frames = windows = 0
    seams: list[int] = []
    torch.manual_seed(seed)
    while made_frames < needed_frames:
        context_frames = 0 if context is None else context.shape[-1] // hop
        room = plan.window_frames - context_frames - TAIL_TRIM_FRAMES
        new_frames = min(needed_frames - made_frames, room)
        audio = _generate_window(loaded, conditioning, sampling, context, new_frames)
        windows += 1
        start = context_frames * hop
        kept = audio[..., start : start + new_frames * hop]
        if made is None:
            made = kept
        else:
            overlap = min(start, round(CROSSFADE_SECONDS * loaded.sampling_rate))
            rendered = audio[..., start - overlap : start + new_frames * hop]
            seams.append(made.shape[-1])
            made = crossfade_append(made, rendered, overlap)
        made_frames += new_frames
        reuse = min(plan.context_frames, made.shape[-1] // hop)
        context = made[..., made.shape[-1] - reuse * hop :]
    assert made is not None
    clips = [np.ascontiguousarray(made[index, :, :target_samples]) for index in range(batch)]
    return GenerationResult(
        clips=clips,
        windows=windows,
        seams=tuple(seams),
        generation_seconds=time.perf_counter() - started,
    )


def _conditioning(
    loaded: LoadedMusicGen, request: GenerationRequest, melody: np.ndarray | None
) -> dict[str, torch.Tensor]:
    tokens = loaded.tokenizer(list(request.prompts), padding=True, return_tensors="pt")
    conditioning = {name: tensor.to(loaded.device) for name, tensor in tokens.items()}
    if melody is not None:
        if loaded.chroma is None:
            raise GenerationLimitError("melody: this model has no melody conditioning")
        chroma = melody_chroma(melody, loaded.chroma).repeat(len(request.prompts), 1, 1)
        conditioning["input_features"] = chroma.to(loaded.device, dtype=loaded.dtype)
    return conditioning


def _sampling_kwargs(request: GenerationRequest) -> dict[str, object]:
    if not request.do_sample:
        # Greedy decoding: unset the sampling knobs so generate does not warn they are ignored.
        return {
            "do_sample": False,
            "guidance_scale": request.guidance_scale,
            "temperature": None,
            "top_k": None,
            "top_p": None,
        }
    return {
        "do_sample": True,
        "guidance_scale": request.guidance_scale,
        "temperature": request.temperature,
        "top_k": request.top_k,
        # The request's 0 means "off"; transformers spells that 1.0.
        "top_p": request.top_p if request.top_p > 0 else 1.0,
    }


@torch.inference_mode()
def _generate_window(
    loaded: LoadedMusicGen,
    conditioning: dict[str, torch.Tensor],
    sampling: dict[str, object],
    context: np.ndarray | None,
    new_frames: int,
) -> np.ndarray:
    """One generate call: `context` frames (re-encoded) + `new_frames` + the trimmed tail."""
    kwargs = dict(conditioning)
    if context is not None and context.shape[-1] > 0:
        kwargs["decoder_input_ids"] = _encode_codes(loaded, context)
    # The delay pattern costs codebooks - 1 steps before the last codebook reaches a frame.
    max_new_tokens = new_frames + TAIL_TRIM_FRAMES + loaded.codebooks_per_channel - 1
    audio = loaded.model.generate(**kwargs, **sampling, max_new_tokens=max_new_tokens)
    return audio.float().cpu().numpy()


def _encode_codes(loaded: LoadedMusicGen, audio: np.ndarray) -> torch.Tensor:
    """EnCodec codes of `(batch, channels, samples)` audio as decoder ids `(batch*codebooks, T)`.

    Stereo models interleave left/right codebooks, which is the layout generate expects.
    """
    codec = loaded.model.audio_encoder
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(loaded.device)
    per_channel = [
        codec.encode(waveform[:, channel : channel + 1, :]).audio_codes[0]
        for channel in range(loaded.channels)
    ]
    codes = torch.stack(per_channel, dim=2)  # (batch, codebooks, channels, frames)
    batch, codebooks, channels, frames = codes.shape
    return codes.reshape(batch * codebooks * channels, frames)
