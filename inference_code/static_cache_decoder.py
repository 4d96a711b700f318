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

The one numerical difference from `generate` is that a step attends over the whole buffer with
masked positions instead of over the filled positions only: the reductions see a longer row,
so logits can differ in the last bits (measured at most ~1e-6 relative on the tests' models,
which pin token equality).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from model_loading import LoadedMusicGen
from row_sampling import SamplingSettings, apply_guidance, choose_tokens
from transformers.modeling_attn_mask_utils import (
    _prepare_4d_attention_mask,
    _prepare_4d_attention_mask_for_sdpa,
)


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
    model = loaded.model
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
    step = _DecodeStep(model, cache, cross, cross_mask, condition.hidden_states)

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


class _DecodeStep:
    """One single-position forward through the decoder's own modules, over the static cache."""

    def __init__(
        self,
        model: torch.nn.Module,
        cache: StaticKVCache,
        cross: list[tuple[torch.Tensor, torch.Tensor]],
        cross_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
    ) -> None:
        self.model = model
        self.decoder = model.decoder.model.decoder
        self.cache = cache
        self.cross = cross
        self.cross_mask = cross_mask
        self.encoder_hidden_states = encoder_hidden_states
        self.key_positions = torch.arange(cache.length, device=cache.keys.device)

    def __call__(self, step_ids: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Logits `(rows * codebooks, vocab)` (float32) after reading `step_ids` `(rows,
        codebooks)` at `position` (a one-element tensor)."""
        decoder = self.decoder
        embeds = sum(
            embedding(step_ids[:, codebook, None])
            for codebook, embedding in enumerate(decoder.embed_tokens)
        )
        hidden = embeds + decoder.embed_positions.weights.index_select(0, position)
        visible = (self.key_positions <= position).view(1, 1, 1, -1)
        for index, layer in enumerate(decoder.layers):
            residual = hidden
            hidden = residual + self._self_attention(
                layer.self_attn, layer.self_attn_layer_norm(hidden), index, position, visible
            )
            if self.cross:
                residual = hidden
                attended, _, _ = layer.encoder_attn(
                    hidden_states=layer.encoder_attn_layer_norm(hidden),
                    key_value_states=self.encoder_hidden_states,
                    past_key_value=self.cross[index],
                    attention_mask=self.cross_mask,
                )
                hidden = residual + attended
            residual = hidden
            hidden = layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden))))
            hidden = residual + hidden
        hidden = decoder.layer_norm(hidden)
        return _heads(self.model, hidden)[:, -1]

    def _self_attention(
        self,
        attention: torch.nn.Module,
        hidden: torch.Tensor,
        layer: int,
        position: torch.Tensor,
        visible: torch.Tensor,
    ) -> torch.Tensor:
        rows = hidden.shape[0]
        heads, head_dim = attention.num_heads, attention.head_dim
        query = attention.q_proj(hidden).view(rows, 1, heads, head_dim).transpose(1, 2)
        key = attention.k_proj(hidden).view(rows, 1, heads, head_dim).transpose(1, 2)
        value = attention.v_proj(hidden).view(rows, 1, heads, head_dim).transpose(1, 2)
        keys = self.cache.keys[layer]
        values = self.cache.values[layer]
        keys.index_copy_(2, position, key)
        values.index_copy_(2, position, value)
        attended = torch.nn.functional.scaled_dot_product_attention(
            query, keys, values, attn_mask=visible
        )
        return attention.out_proj(attended.transpose(1, 2).reshape(rows, 1, heads * head_dim))


def _heads(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Per-codebook logits `(rows * codebooks, positions, vocab)` in float32, rows as
    transformers orders them (clip-major)."""
    logits = torch.stack([head(hidden) for head in model.decoder.lm_heads], dim=1)
    return logits.reshape(-1, *logits.shape[2:]).float()


def _conditioning(
    model: torch.nn.Module, conditioning: dict[str, torch.Tensor], *, guided: bool, melody: bool
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
    model: torch.nn.Module,
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
    decoder: torch.nn.Module, condition: _Conditioning, *, dtype: torch.dtype
) -> torch.Tensor | None:
    """The 4-D text mask a single-position step's cross-attention gets in transformers."""
    if condition.prepended or condition.attention_mask is None:
        return None
    if decoder.attn_implementation == "sdpa":
        return _prepare_4d_attention_mask_for_sdpa(condition.attention_mask, dtype, tgt_len=1)
    if decoder.attn_implementation == "flash_attention_2":
        mask = condition.attention_mask
        return mask if bool((mask == 0).any()) else None
    return _prepare_4d_attention_mask(condition.attention_mask, dtype, tgt_len=1)
