"""A tiny, randomly initialised MusicGen saved like a Hub snapshot, built offline.

The shapes that matter to the handler are the real ones (32 kHz EnCodec at 50 frames per
second, 4 codebooks per channel interleaved for stereo, a T5 text encoder, a processor), the
widths are tiny so it loads and generates seconds of audio in a few seconds on a CPU.
"""

from __future__ import annotations

import json
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
    MusicgenMelodyConfig,
    MusicgenMelodyDecoderConfig,
    MusicgenMelodyForConditionalGeneration,
    MusicgenProcessor,
    T5Config,
)

from musicgen_local.offline_musicgen_parts import fill_codebooks_randomly, word_level_t5_tokenizer

Variant = Literal["mono", "stereo", "melody"]

SAMPLING_RATE = 32_000
# 8 * 5 * 4 * 4 = 640 samples per frame: 50 frames per second at 32 kHz, as the real codec.
UPSAMPLING_RATIOS = [8, 5, 4, 4]
CODEBOOK_SIZE = 64
CODEBOOKS_PER_CHANNEL = 4
# 4 quantizers at 50 frames/s: the config derives num_quantizers = 1000 * bw // (50 * 10).
TARGET_BANDWIDTH_KBPS = 2.2
MELODY_CHROMA_LENGTH = 16
DEFAULT_MAX_POSITION_EMBEDDINGS = 2048

# The words the tiny tokenizer knows; anything else becomes <unk>, as with any real vocabulary.
_VOCABULARY_TEXT = (
    "a calm lofi beat with piano and soft drums upbeat electronic dance track guitar solo "
    "jazz trio ambient pad strings orchestral cinematic rock song bass violin flute synth "
    "slow fast happy sad epic 80s pop"
)


def build_tiny_musicgen(
    dest: Path,
    *,
    variant: Variant,
    max_position_embeddings: int = DEFAULT_MAX_POSITION_EMBEDDINGS,
) -> Path:
    """Save a tiny random MusicGen (model, processor, generation config) in `dest`; return it."""
    if variant not in ("mono", "stereo", "melody"):
        raise ValueError(f"variant: must be mono, stereo or melody (got {variant!r})")
    torch.manual_seed(1234)
    dest.mkdir(parents=True, exist_ok=True)
    channels = 2 if variant == "stereo" else 1
    tokenizer = word_level_t5_tokenizer(_VOCABULARY_TEXT.split(), model_max_length=64)
    text_config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    audio_config = EncodecConfig(
        target_bandwidths=[TARGET_BANDWIDTH_KBPS],
        sampling_rate=SAMPLING_RATE,
        audio_channels=1,
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=UPSAMPLING_RATIOS,
        num_lstm_layers=1,
        codebook_size=CODEBOOK_SIZE,
        codebook_dim=16,
    )
    decoder_kwargs = {
        "vocab_size": CODEBOOK_SIZE,
        "max_position_embeddings": max_position_embeddings,
        "num_hidden_layers": 2,
        "ffn_dim": 64,
        "num_attention_heads": 2,
        "hidden_size": 32,
        "num_codebooks": CODEBOOKS_PER_CHANNEL * channels,
        "audio_channels": channels,
        "pad_token_id": CODEBOOK_SIZE,
        "bos_token_id": CODEBOOK_SIZE,
        "dropout": 0.0,
        # Far wider than a trained model's 0.02 so logits are peaked and the text, the seed and
        # every sampling knob visibly change the codes.
        "initializer_factor": 0.5,
    }
    if variant == "melody":
        config = MusicgenMelodyConfig.from_sub_models_config(
            text_config,
            audio_config,
            MusicgenMelodyDecoderConfig(**decoder_kwargs),
            chroma_length=MELODY_CHROMA_LENGTH,
        )
        model = MusicgenMelodyForConditionalGeneration(config)
    else:
        config = MusicgenConfig.from_sub_models_config(
            text_config, audio_config, MusicgenDecoderConfig(**decoder_kwargs)
        )
        model = MusicgenForConditionalGeneration(config)
        feature_extractor = EncodecFeatureExtractor(
            feature_size=channels, sampling_rate=SAMPLING_RATE, padding_value=0.0
        )
        MusicgenProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(
            dest
        )
    fill_codebooks_randomly(model)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=CODEBOOK_SIZE,
        pad_token_id=CODEBOOK_SIZE,
        bos_token_id=CODEBOOK_SIZE,
        do_sample=True,
        guidance_scale=3.0,
        max_length=256,
    )
    model.save_pretrained(dest)
    if variant == "melody":
        tokenizer.save_pretrained(dest)
        _write_melody_preprocessor_config(dest)
    return dest


def _write_melody_preprocessor_config(dest: Path) -> None:
    # MusicgenMelodyFeatureExtractor needs torchaudio, which has no CPU wheel matching the test
    # torch; write the file its save_pretrained would write (the real model's values).
    config = {
        "feature_extractor_type": "MusicgenMelodyFeatureExtractor",
        "processor_class": "MusicgenMelodyProcessor",
        "feature_size": 12,
        "num_chroma": 12,
        "sampling_rate": SAMPLING_RATE,
        "hop_length": 4096,
        "n_fft": 16384,
        "chunk_length": 30,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": False,
        "stem_indices": [3, 2],
    }
    (dest / "preprocessor_config.json").write_text(json.dumps(config, indent=2) + "\n")
