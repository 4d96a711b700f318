"""Pieces of a MusicGen checkpoint built offline: a word-level T5 tokenizer and EnCodec codebooks.

Shared by the tiny test models and the benchmark's full-size random checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    MusicgenForConditionalGeneration,
    MusicgenMelodyForConditionalGeneration,
    T5TokenizerFast,
)

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def word_level_t5_tokenizer(words: Iterable[str], *, model_max_length: int) -> T5TokenizerFast:
    """A T5-style tokenizer over `words`: pads with id 0 and appends </s>, as the real one does."""
    vocab = {token: index for index, token in enumerate(dict.fromkeys([*SPECIAL_TOKENS, *words]))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
        model_max_length=model_max_length,
    )


@torch.no_grad()
def fill_codebooks_randomly(
    model: MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration,
) -> None:
    """Give EnCodec's codebooks random vectors.

    They are buffers a checkpoint fills, so a fresh model has all-zero codebooks: every code
    would decode to the same audio, and no seed or prompt test could fail.
    """
    for layer in model.audio_encoder.quantizer.layers:
        codebook = layer.codebook
        embed = torch.randn_like(codebook.embed)
        codebook.embed.copy_(embed)
        codebook.embed_avg.copy_(embed)
        codebook.cluster_size.fill_(1.0)
        codebook.inited.fill_(1.0)
