"""Token selection with one random generator per clip, so each clip replays from its own seed.

transformers' `generate` samples every row of a batch from the one global random stream, so a
clip's tokens depend on the other prompts in its batch. Here each clip (the `codebooks` rows
of one prompt) draws only from its own `torch.Generator`, the same number of draws whatever the
batch holds: clip *i* of a batch equals a single-prompt request seeded with clip *i*'s seed.

`choose_tokens` is the whole decision for one decoding step and knows nothing of transformers;
`RowSamplerProcessor` plugs it into `generate`, which then only takes the chosen token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from inference_code.request_schema import SEED_LIMIT


@dataclass(frozen=True)
class SamplingSettings:
    """How a step's logits become tokens; `top_k=0` and `top_p=0` switch those filters off."""

    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    guidance_scale: float = 3.0

    @property
    def guided(self) -> bool:
        """Classifier-free guidance runs a conditional and an unconditional row per row."""
        return self.guidance_scale > 1


def clip_seeds(request_seed: int, clips: int) -> tuple[int, ...]:
    """Clip *i* of a request is seeded with `request_seed + i` (wrapping below 2**32)."""
    return tuple((request_seed + index) % SEED_LIMIT for index in range(clips))


def clip_generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(seed) for seed in seeds]


def apply_guidance(logits: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Mix `(2 * rows, vocab)` logits, conditional rows first, as MusicGen's guidance does."""
    conditional, unconditional = logits.chunk(2, dim=0)
    return unconditional + (conditional - unconditional) * guidance_scale


def choose_tokens(
    logits: torch.Tensor, generators: Sequence[torch.Generator], settings: SamplingSettings
) -> torch.Tensor:
    """One token per row of guided `(clips * codebooks, vocab)` logits.

    Greedy decoding takes the arg-max. Sampling applies temperature, then top-k, then top-p
    (transformers' order) and draws each clip's rows with that clip's generator only.
    """
    if not settings.do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / settings.temperature
    vocab = scores.shape[-1]
    if 0 < settings.top_k < vocab:
        kth_best = torch.topk(scores, settings.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth_best, -torch.inf)
    if 0 < settings.top_p < 1:
        scores = _nucleus(scores, settings.top_p)
    probabilities = scores.softmax(dim=-1)
    rows_per_clip = probabilities.shape[0] // len(generators)
    draws = [
        torch.multinomial(clip_rows, 1, generator=generator)
        for clip_rows, generator in zip(
            torch.split(probabilities, rows_per_clip, dim=0), generators, strict=True
        )
    ]
    return torch.cat(draws, dim=0).squeeze(-1)


def _nucleus(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of best tokens whose probabilities reach `top_p` (at least one)."""
    ascending, order = scores.sort(dim=-1)
    cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= 1 - top_p
    drop_sorted[..., -1] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, -torch.inf)


class RowSamplerProcessor:
    """A logits processor for `generate(do_sample=False)`: it picks each step's tokens itself.

    It returns scores whose arg-max is the chosen token, so greedy selection takes it, also
    when transformers' guidance processor runs after it on the doubled batch. Every step's
    tokens are kept in `steps` (one `(rows,)` tensor per decoder step), in the delayed layout.
    """

    def __init__(
        self, generators: Sequence[torch.Generator], settings: SamplingSettings, rows: int
    ) -> None:
        self.generators = list(generators)
        self.settings = settings
        self.rows = rows
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        unguided = scores.shape[0] == 2 * self.rows
        if scores.shape[0] != self.rows and not unguided:
            raise RuntimeError(f"expected {self.rows} rows of logits, got {scores.shape[0]}")
        logits = apply_guidance(scores, self.settings.guidance_scale) if unguided else scores
        tokens = choose_tokens(logits, self.generators, self.settings)
        self.steps.append(tokens)
        forced = torch.zeros_like(scores)
        # Unconditional rows stay zero: guidance then scales the chosen one-hot by its factor.
        forced[: self.rows].scatter_(1, tokens[:, None], 1.0)
        return forced
