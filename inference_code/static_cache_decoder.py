"""MusicGen's decode loop without transformers' `generate`: a static KV cache per window.

`generate` spends most of a small model's decoding step outside the model: it rebuilds the
delay-pattern view of the whole sequence, concatenates a growing cache in every layer, runs a
list of logits processors and stopping criteria, and re-derives the attention masks. This loop
runs the checkpoint's own modules (embeddings, layers' projections and norms, the LM heads; no
weight conversion) and does the rest once per window:

- the first forward (start token, context codes and, for the melody model, the prepended
  conditioning) is the decoder's own forward, exactly as `generate`'s first step;
- its keys and values are copied into a cache preallocated for the whole window, and every later
  step writes one position and attends over the whole buffer behind a mask, so a step's shapes
  never change within a window (ready for `torch.compile` or CUDA-graph capture);
- the text encoder and the cross-attention keys/values are computed once per window;
- classifier-free guidance is one forward over the doubled batch (conditional rows first, then
  the null-conditioned ones, as transformers orders them);
- the delay pattern is index arithmetic on a preallocated token buffer;
- tokens are chosen by `row_sampling.choose_tokens` with one generator per clip, the very
  function the transformers path uses, so a clip replays from its seed on either path.

transformers' `StaticCache`/`EncoderDecoderCache` cannot serve here: MusicGen's attention layers
in transformers 4.51 take legacy `(key, value)` tuples, concatenate to them and read the past
length from the tuple's shape.

The one numerical difference from `generate` is that a step's self-attention reads the whole
buffer with the unfilled positions masked instead of the filled positions only: its reductions
run over a longer row and round differently (~1e-7 per attention). The first step is identical;
on the tests' tiny random models later logits stay within 2.4e-5 of `generate`'s relative to
1 + |logit| over 100 steps, and the tokens agree (the tests pin 1e-4 and token equality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.modeling_attn_mask_utils import (
    _prepare_4d_attention_mask,
    _prepare_4d_attention_mask_for_sdpa,
)

from inference_code.model_loading import LoadedMusicGen
from inference_code.row_sampling import SamplingSettings, apply_guidance, choose_tokens

# The loop reaches the checkpoint's submodules by attribute (`decoder.layers[0].self_attn`, ...)
# on the plain and the melody MusicGen classes alike; torch types every such attribute as
# `Tensor | Module`, so these modules are typed dynamically and the equivalence tests pin them.
MusicGenModules = Any


@dataclass(frozen=True)
class _Conditioning:
    """What the decoder sees besides its own tokens, already doubled for guidance."""

    # Cross-attention input of a text-only model `(rows, text, hidden)`, or the prefix the melody
    # model prepends to the decoder's sequence `(rows, prefix, hidden)`.
    hidden_states: torch.Tensor
    # Text-only model: the 2-D text mask `(rows, text)`; the melody model attends to its prefix
    # unmasked, as its decoder does.
    attention_mask: torch.Tensor | None
    prepended: bool


class DelayedTokens:
    """The decoder's token sequence in MusicGen's delay pattern, as index arithmetic.

    Codebook *k* runs `delay(k)` positions behind the first (for stereo, the left and right
    codebooks of one level share a delay). Position 0 holds the start token; the context codes
    follow at their delayed positions; each codebook's new frames occupy the `new_frames`
    positions after its context, and everything else is the pad (= start) token, as
    transformers' `build_delay_pattern_mask` lays it out.
    """

    def __init__(
        self,
        context: torch.Tensor,
        *,
        new_frames: int,
        delays: Sequence[int],
        pad_token_id: int,
    ) -> None:
        batch, codebooks, context_frames = context.shape
        self.context_frames = context_frames
        self.new_frames = new_frames
        self.delays = list(delays)
        self.steps = new_frames + max(self.delays)
        length = 1 + context_frames + self.steps
        self.tokens = torch.full(
            (batch, codebooks, length), pad_token_id, dtype=torch.long, device=context.device
        )
        self.free = torch.zeros((codebooks, length), dtype=torch.bool, device=context.device)
        for codebook, delay in enumerate(self.delays):
            first = 1 + delay
            self.tokens[:, codebook, first : first + context_frames] = context[:, codebook]
            new_start = first + context_frames
            self.free[codebook, new_start : new_start + new_frames] = True

    @property
    def prefill_length(self) -> int:
        """Positions the first forward reads: the start token and the context frames."""
        return 1 + self.context_frames

    def place(self, step: int, chosen: torch.Tensor) -> torch.Tensor:
        """Keep step `step`'s chosen `(batch, codebooks)` tokens where the pattern is free; return
        the position's tokens as the next step reads them."""
        position = self.prefill_length + step
        column = self.tokens[:, :, position]
        column.copy_(torch.where(self.free[:, position], chosen, column))
        return column

    def new_codes(self) -> torch.Tensor:
        """The new frames `(batch, codebooks, new_frames)`, undelayed."""
        start = self.prefill_length
        return torch.stack(
            [
                self.tokens[:, codebook, start + delay : start + delay + self.new_frames]
                for codebook, delay in enumerate(self.delays)
            ],
            dim=1,
        )


class StaticKVCache:
    """Self-attention keys and values of every layer, preallocated for a whole window."""

    def __init__(
        self, *, layers: int, rows: int, heads: int, length: int, head_dim: int, like: torch.Tensor
    ) -> None:
        shape = (layers, rows, heads, length, head_dim)
        self.keys = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.values = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.length = length


@torch.inference_mode()
def decode_window_static(
    loaded: LoadedMusicGen,
    conditioning: dict[str, torch.Tensor],
    settings: SamplingSettings,
    generators: list[torch.Generator],
    context: torch.Tensor,
    new_frames: int,
) -> torch.Tensor:
    """Continue `context` codes `(batch, codebooks, frames)` by `new_frames` frames; return the
    new codes in the same layout (the contract of the transformers path)."""
    model: MusicGenModules = loaded.model
    decoder = model.decoder.model.decoder
    batch, codebooks, _ = context.shape
    guided = settings.guided
    pad_token_id = int(model.generation_config.decoder_start_token_id)
    delays = [codebook // loaded.channels for codebook in range(codebooks)]
    tokens = DelayedTokens(context, new_frames=new_frames, delays=delays, pad_token_id=pad_token_id)
    condition = _conditioning(model, conditioning, guided=guided, melody=loaded.is_melody)
    rows = 2 * batch if guided else batch
    prefix = condition.hidden_states.shape[1] if condition.prepended else 0

    prefill_ids = tokens.tokens[:, :, : tokens.prefill_length].reshape(batch * codebooks, -1)
    if guided:
        prefill_ids = prefill_ids.repeat((2, 1))
    decoder_kwargs: dict[str, torch.Tensor | bool | None] = {"use_cache": True}
    decoder_kwargs["encoder_hidden_states"] = condition.hidden_states
    if not condition.prepended:
        decoder_kwargs["encoder_attention_mask"] = condition.attention_mask
    first = decoder(input_ids=prefill_ids, return_dict=True, **decoder_kwargs)
    # The heads see every prefill position, as in generate, so the last one's logits are the
    # same floats; only the last position's are used.
    logits = _heads(model, first.last_hidden_state)[:, -1]

    layer_count = len(decoder.layers)
    attention = decoder.layers[0].self_attn
    prefill_keys = first.past_key_values[0][0]
    cache = StaticKVCache(
        layers=layer_count,
        rows=rows,
        heads=attention.num_heads,
        length=prefix + tokens.prefill_length + tokens.steps - 1,
        head_dim=attention.head_dim,
        like=prefill_keys,
    )
    filled = prefill_keys.shape[2]
    cross: list[tuple[torch.Tensor, torch.Tensor]] = []
    for index, layer_cache in enumerate(first.past_key_values):
        cache.keys[index, :, :, :filled] = layer_cache[0]
        cache.values[index, :, :, :filled] = layer_cache[1]
        if not condition.prepended:
            cross.append((layer_cache[2], layer_cache[3]))
    cross_mask = _cross_attention_mask(decoder, condition, dtype=first.last_hidden_state.dtype)
    step = _DecodeStep(model, cache, cross, cross_mask)

    position = torch.tensor([filled], dtype=torch.long, device=context.device)
    for index in range(tokens.steps):
        guided_logits = apply_guidance(logits, settings.guidance_scale) if guided else logits
        chosen = choose_tokens(guided_logits, generators, settings).view(batch, codebooks)
        column = tokens.place(index, chosen)
        if index == tokens.steps - 1:
            break
        step_ids = column.repeat((2, 1)) if guided else column
        logits = step(step_ids, position)
        position += 1
    return tokens.new_codes()


Linear = tuple[torch.Tensor, torch.Tensor | None]


@dataclass(frozen=True)
class _Norm:
    shape: tuple[int, ...]
    weight: torch.Tensor
    bias: torch.Tensor
    eps: float

    @classmethod
    def of(cls, module: torch.nn.LayerNorm) -> _Norm:
        return cls(tuple(module.normalized_shape), module.weight, module.bias, module.eps)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(hidden, self.shape, self.weight, self.bias, self.eps)


@dataclass(frozen=True)
class _CrossAttention:
    """A layer's cross-attention with its keys and values computed once per window."""

    norm: _Norm
    query: Linear
    out: Linear
    keys: torch.Tensor  # (rows, heads, text, head_dim)
    values: torch.Tensor
    scaling: float


@dataclass(frozen=True)
class _Layer:
    """One decoder layer's parameters, read once so a step does no module look-ups."""

    self_norm: _Norm
    query: Linear
    key: Linear
    value: Linear
    out: Linear
    cross: _CrossAttention | None
    final_norm: _Norm
    fc1: Linear
    fc2: Linear
    activation: torch.nn.Module


def _linear(module: torch.nn.Linear) -> Linear:
    return module.weight, module.bias


class _DecodeStep:
    """One single-position forward with the decoder's own parameters, over the static cache.

    Each operation is the one transformers' layer runs (linear, layer norm, SDPA for
    self-attention; for cross-attention the path transformers takes with this window's mask:
    SDPA, or the explicit softmax it falls back to when guidance masks whole rows).
    """

    def __init__(
        self,
        model: MusicGenModules,
        cache: StaticKVCache,
        cross: list[tuple[torch.Tensor, torch.Tensor]],
        cross_mask: torch.Tensor | None,
    ) -> None:
        decoder = model.decoder.model.decoder
        self.cache = cache
        self.embeddings = [embedding.weight for embedding in decoder.embed_tokens]
        self.positions = decoder.embed_positions.weights
        self.final_norm = _Norm.of(decoder.layer_norm)
        self.heads = [_linear(head) for head in model.decoder.lm_heads]
        attention = decoder.layers[0].self_attn
        self.heads_count = attention.num_heads
        self.head_dim = attention.head_dim
        self.cross_mask = cross_mask
        self.cross_explicit = _cross_attention_falls_back(decoder, cross_mask)
        self.layers = [
            _Layer(
                self_norm=_Norm.of(layer.self_attn_layer_norm),
                query=_linear(layer.self_attn.q_proj),
                key=_linear(layer.self_attn.k_proj),
                value=_linear(layer.self_attn.v_proj),
                out=_linear(layer.self_attn.out_proj),
                cross=_CrossAttention(
                    norm=_Norm.of(layer.encoder_attn_layer_norm),
                    query=_linear(layer.encoder_attn.q_proj),
                    out=_linear(layer.encoder_attn.out_proj),
                    keys=cross[index][0],
                    values=cross[index][1],
                    scaling=layer.encoder_attn.scaling,
                )
                if cross
                else None,
                final_norm=_Norm.of(layer.final_layer_norm),
                fc1=_linear(layer.fc1),
                fc2=_linear(layer.fc2),
                activation=layer.activation_fn,
            )
            for index, layer in enumerate(decoder.layers)
        ]
        self.key_positions = torch.arange(cache.length, device=cache.keys.device)

    def __call__(self, step_ids: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Logits `(rows * codebooks, vocab)` (float32) after reading `step_ids` `(rows,
        codebooks)` at `position` (a one-element tensor)."""
        embeds = sum(
            F.embedding(step_ids[:, codebook, None], weight)
            for codebook, weight in enumerate(self.embeddings)
        )
        hidden = embeds + self.positions.index_select(0, position)
        visible = (self.key_positions <= position).view(1, 1, 1, -1)
        for index, layer in enumerate(self.layers):
            hidden = hidden + self._self_attention(
                layer, layer.self_norm(hidden), index, position, visible
            )
            if layer.cross is not None:
                hidden = hidden + self._cross_attention(layer.cross, layer.cross.norm(hidden))
            feed = layer.activation(F.linear(layer.final_norm(hidden), *layer.fc1))
            hidden = hidden + F.linear(feed, *layer.fc2)
        hidden = self.final_norm(hidden)
        logits = torch.stack([F.linear(hidden, *head) for head in self.heads], dim=1)
        return logits.reshape(-1, logits.shape[-1]).float()

    def _split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        return projected.view(projected.shape[0], 1, self.heads_count, self.head_dim).transpose(
            1, 2
        )

    def _merge_heads(self, attended: torch.Tensor) -> torch.Tensor:
        rows = attended.shape[0]
        return attended.transpose(1, 2).reshape(rows, 1, self.heads_count * self.head_dim)

    def _self_attention(
        self,
        layer: _Layer,
        hidden: torch.Tensor,
        index: int,
        position: torch.Tensor,
        visible: torch.Tensor,
    ) -> torch.Tensor:
        keys = self.cache.keys[index]
        values = self.cache.values[index]
        keys.index_copy_(2, position, self._split_heads(F.linear(hidden, *layer.key)))
        values.index_copy_(2, position, self._split_heads(F.linear(hidden, *layer.value)))
        query = self._split_heads(F.linear(hidden, *layer.query))
        attended = F.scaled_dot_product_attention(query, keys, values, attn_mask=visible)
        return F.linear(self._merge_heads(attended), *layer.out)

    def _cross_attention(self, cross: _CrossAttention, hidden: torch.Tensor) -> torch.Tensor:
        query = F.linear(hidden, *cross.query)
        if not self.cross_explicit:
            query = self._split_heads(query).contiguous()
            attended = F.scaled_dot_product_attention(
                query, cross.keys, cross.values, attn_mask=self.cross_mask
            )
            return F.linear(self._merge_heads(attended), *cross.out)
        rows, heads, text, head_dim = cross.keys.shape
        query = (
            self._split_heads(query * cross.scaling).contiguous().view(rows * heads, 1, head_dim)
        )
        scores = torch.bmm(query, cross.keys.reshape(rows * heads, text, head_dim).transpose(1, 2))
        if self.cross_mask is not None:
            scores = (scores.view(rows, heads, 1, text) + self.cross_mask).view(
                rows * heads, 1, text
            )
        weights = F.softmax(scores, dim=-1)
        attended = torch.bmm(weights, cross.values.reshape(rows * heads, text, head_dim))
        return F.linear(self._merge_heads(attended.view(rows, heads, 1, head_dim)), *cross.out)


def _cross_attention_falls_back(decoder: MusicGenModules, mask: torch.Tensor | None) -> bool:
    """Whether transformers' cross-attention computes the softmax explicitly for this mask: always
    outside SDPA, and under SDPA when a row is masked whole (guidance's null rows)."""
    if decoder.attn_implementation != "sdpa":
        return True
    return mask is not None and bool(
        (mask.mean(dim=[1, 2, 3]) <= torch.finfo(mask.dtype).min).any()
    )


def _heads(model: MusicGenModules, hidden: torch.Tensor) -> torch.Tensor:
    """Per-codebook logits `(rows * codebooks, positions, vocab)` in float32, rows as
    transformers orders them (clip-major)."""
    logits = torch.stack([head(hidden) for head in model.decoder.lm_heads], dim=1)
    return logits.reshape(-1, *logits.shape[2:]).float()


def _conditioning(
    model: MusicGenModules, conditioning: dict[str, torch.Tensor], *, guided: bool, melody: bool
) -> _Conditioning:
    """The text (and melody) conditioning as transformers' `generate` prepares it."""
    input_ids = conditioning["input_ids"]
    mask = conditioning["attention_mask"]
    text = model.text_encoder(input_ids=input_ids, attention_mask=mask, return_dict=True)
    hidden = text.last_hidden_state
    decoder_hidden = model.decoder.config.hidden_size
    if melody:
        if model.text_encoder.config.hidden_size != decoder_hidden:
            hidden = model.enc_to_dec_proj(hidden)
        if guided:
            hidden = torch.concatenate([hidden, torch.zeros_like(hidden)], dim=0)
            mask = torch.concatenate([mask, torch.zeros_like(mask)], dim=0)
        hidden = hidden * mask[..., None]
        prefix = torch.cat([_chroma_states(model, conditioning, input_ids, guided), hidden], dim=1)
        return _Conditioning(hidden_states=prefix, attention_mask=None, prepended=True)
    if guided:
        hidden = torch.concatenate([hidden, torch.zeros_like(hidden)], dim=0)
        mask = torch.concatenate([mask, torch.zeros_like(mask)], dim=0)
    if (
        model.text_encoder.config.hidden_size != decoder_hidden
        and model.decoder.config.cross_attention_hidden_size is None
    ):
        hidden = model.enc_to_dec_proj(hidden)
    hidden = hidden * mask[..., None]
    return _Conditioning(hidden_states=hidden, attention_mask=mask, prepended=False)


def _chroma_states(
    model: MusicGenModules,
    conditioning: dict[str, torch.Tensor],
    input_ids: torch.Tensor,
    guided: bool,
) -> torch.Tensor:
    """The melody model's chroma prefix `(rows, chroma_length, hidden)`: the given chroma, or
    the null chroma (pitch class 0 held) without a melody, and the null one for guidance."""
    features = conditioning.get("input_features")
    if features is not None:
        null = torch.zeros_like(features)
    else:
        null = torch.zeros(
            (input_ids.shape[0], 1, model.config.num_chroma), device=model.device, dtype=model.dtype
        )
    null[:, :, 0] = 1
    if features is None:
        features = null
    if guided:
        features = torch.concatenate([features, null], dim=0)
    if model.config.num_chroma != model.decoder.config.hidden_size:
        features = model.audio_enc_to_dec_proj(features)
    chroma_length = model.config.chroma_length
    if features.shape[1] < chroma_length:
        features = features.repeat(1, -(-chroma_length // features.shape[1]), 1)
    return features[:, :chroma_length]


def _cross_attention_mask(
    decoder: MusicGenModules, condition: _Conditioning, *, dtype: torch.dtype
) -> torch.Tensor | None:
    """The 4-D text mask a single-position step's cross-attention gets in transformers."""
    if condition.prepended or condition.attention_mask is None:
        return None
    if decoder.attn_implementation == "flash_attention_2":
        mask = condition.attention_mask
        return mask if bool((mask == 0).any()) else None
    prepared: torch.Tensor | None
    if decoder.attn_implementation == "sdpa":
        prepared = _prepare_4d_attention_mask_for_sdpa(condition.attention_mask, dtype, tgt_len=1)
    else:
        prepared = _prepare_4d_attention_mask(condition.attention_mask, dtype, tgt_len=1)
    return prepared
