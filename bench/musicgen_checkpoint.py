"""A MusicGen checkpoint with the exact architecture of facebook/musicgen-{small,medium,large}.

The weights are random and the tokenizer is a small word-level one, so nothing is fetched from
the Hub; every matrix the model multiplies has the real shape, so generation costs what the real
model costs. The configurations are the Hub's `config.json` values, written out here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from transformers import (
    EncodecConfig,
    EncodecFeatureExtractor,
    GenerationConfig,
    MusicgenConfig,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenProcessor,
    T5Config,
    T5TokenizerFast,
)

from musicgen_local.offline_musicgen_parts import fill_codebooks_randomly, word_level_t5_tokenizer

Arch = Literal["small", "medium", "large"]
ARCHES: tuple[Arch, ...] = ("small", "medium", "large")
SAMPLING_RATE = 32_000
CODEBOOK_SIZE = 2048
# The Hub checkpoints' generation_config.json: 1500 tokens is the 30 s MusicGen was trained on.
HUB_MAX_LENGTH = 1500
HUB_TOP_K = 250
HUB_GUIDANCE_SCALE = 3.0
T5_VOCAB_SIZE = 32128


@dataclass(frozen=True)
class DecoderShape:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    ffn_dim: int


DECODER_SHAPES: dict[Arch, DecoderShape] = {
    "small": DecoderShape(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096
    ),
    "medium": DecoderShape(
        hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144
    ),
    "large": DecoderShape(
        hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, ffn_dim=8192
    ),
}

# Words the benchmark prompts use; the text encoder keeps T5-base's full 32128-row embedding.
PROMPT_VOCABULARY = (
    "lofi hip hop beat with mellow piano and soft vinyl crackle "
    "upbeat electronic dance track with punchy drums and a bright synth lead "
    "cinematic orchestral theme with swelling strings and deep brass "
    "acoustic folk song with fingerpicked guitar and warm harmonica"
)


def t5_base_config(pad_token_id: int, eos_token_id: int) -> T5Config:
    """The text encoder of every MusicGen size (t5-base)."""
    return T5Config(
        vocab_size=T5_VOCAB_SIZE,
        d_model=768,
        d_kv=64,
        d_ff=3072,
        num_layers=12,
        num_decoder_layers=12,
        num_heads=12,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        initializer_factor=1.0,
        feed_forward_proj="relu",
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        decoder_start_token_id=pad_token_id,
    )


def encodec_32khz_config() -> EncodecConfig:
    """facebook/encodec_32khz: 4 codebooks of 2048 at 50 frames per second."""
    return EncodecConfig(
        target_bandwidths=[2.2],
        sampling_rate=SAMPLING_RATE,
        audio_channels=1,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
        hidden_size=128,
        num_filters=64,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4],
        norm_type="weight_norm",
        kernel_size=7,
        last_kernel_size=7,
        residual_kernel_size=3,
        dilation_growth_rate=2,
        use_causal_conv=False,
        pad_mode="reflect",
        compress=2,
        num_lstm_layers=2,
        trim_right_ratio=1.0,
        codebook_size=CODEBOOK_SIZE,
        codebook_dim=128,
        use_conv_shortcut=False,
    )


def decoder_config(arch: Arch) -> MusicgenDecoderConfig:
    shape = DECODER_SHAPES[arch]
    return MusicgenDecoderConfig(
        vocab_size=CODEBOOK_SIZE,
        max_position_embeddings=2048,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        ffn_dim=shape.ffn_dim,
        activation_function="gelu",
        dropout=0.1,
        attention_dropout=0.0,
        activation_dropout=0.0,
        layerdrop=0.0,
        initializer_factor=0.02,
        scale_embedding=False,
        num_codebooks=4,
        audio_channels=1,
        pad_token_id=CODEBOOK_SIZE,
        bos_token_id=CODEBOOK_SIZE,
        tie_word_embeddings=False,
    )


def word_level_tokenizer() -> T5TokenizerFast:
    """A T5-style tokenizer over the benchmark's prompt vocabulary."""
    return word_level_t5_tokenizer(sorted(set(PROMPT_VOCABULARY.split())), model_max_length=512)


def build_random_musicgen(dest: Path, *, arch: Arch, device: str = "cpu") -> Path:
    """Save a random-weight MusicGen of `arch` with processor and generation config in `dest`.

    `device` only speeds up the random initialisation (a GPU fills large matrices faster);
    the checkpoint is saved in float32 like the Hub's.
    """
    if arch not in ARCHES:
        raise ValueError(f"arch: must be one of {', '.join(ARCHES)} (got {arch!r})")
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = word_level_tokenizer()
    config = MusicgenConfig.from_sub_models_config(
        t5_base_config(tokenizer.pad_token_id, tokenizer.eos_token_id),
        encodec_32khz_config(),
        decoder_config(arch),
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = MusicgenForConditionalGeneration(config)
    fill_codebooks_randomly(model)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=CODEBOOK_SIZE,
        pad_token_id=CODEBOOK_SIZE,
        bos_token_id=CODEBOOK_SIZE,
        do_sample=True,
        guidance_scale=HUB_GUIDANCE_SCALE,
        max_length=HUB_MAX_LENGTH,
        top_k=HUB_TOP_K,
    )
    model.save_pretrained(dest)
    feature_extractor = EncodecFeatureExtractor(
        feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0, padding_side="left"
    )
    MusicgenProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(
        dest
    )
    return dest
