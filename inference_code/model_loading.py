"""Load a MusicGen snapshot from the model directory once, in the precision the device suits."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from contract import MODEL_ID_ENV
from transformers import (
    AutoTokenizer,
    MusicgenForConditionalGeneration,
    MusicgenMelodyForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

LOGGER = logging.getLogger(__name__)
MELODY_MODEL_TYPE = "musicgen_melody"


@dataclass(frozen=True)
class ChromaSettings:
    """How the melody feature extractor turns audio into chroma (preprocessor_config.json)."""

    sampling_rate: int
    n_fft: int
    hop_length: int
    num_chroma: int
    chunk_seconds: float


@dataclass(frozen=True)
class LoadedMusicGen:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_id: str
    device: torch.device
    dtype: torch.dtype
    is_melody: bool
    channels: int
    codebooks_per_channel: int
    sampling_rate: int
    frame_rate: int
    max_positions: int
    chroma: ChromaSettings | None
    chroma_length: int
    load_seconds: float

    @property
    def hop_length(self) -> int:
        """Audio samples per decoder frame."""
        return self.sampling_rate // self.frame_rate


def load_musicgen(
    model_dir: str | Path,
    *,
    device: torch.device | None = None,
    half_dtype: torch.dtype | None = None,
) -> LoadedMusicGen:
    """Load model and tokenizer from `model_dir` only (never the Hub).

    On CUDA the text encoder and the language model run in bf16 (fp16 where bf16 is missing);
    the EnCodec codec stays fp32 because half precision audibly degrades its output.
    `half_dtype` forces a half precision (tests use bf16 on CPU to cover the mixed path).
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if half_dtype is None and device.type == "cuda":
        half_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    config = json.loads((model_dir / "config.json").read_text())
    is_melody = config.get("model_type") == MELODY_MODEL_TYPE
    model_class = (
        MusicgenMelodyForConditionalGeneration if is_melody else MusicgenForConditionalGeneration
    )
    model = model_class.from_pretrained(model_dir, local_files_only=True, torch_dtype=torch.float32)
    if half_dtype is not None:
        # Cast on the CPU before the single move, so the device never holds an fp32 copy.
        for name, child in model.named_children():
            if child is not model.audio_encoder:
                LOGGER.debug("casting %s to %s", name, half_dtype)
                child.to(half_dtype)
    model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    decoder_config = model.decoder.config
    channels = decoder_config.audio_channels
    loaded = LoadedMusicGen(
        model=model,
        tokenizer=tokenizer,
        model_id=os.environ.get(MODEL_ID_ENV) or model_dir.name,
        device=device,
        dtype=half_dtype or torch.float32,
        is_melody=is_melody,
        channels=channels,
        codebooks_per_channel=decoder_config.num_codebooks // channels,
        sampling_rate=model.config.audio_encoder.sampling_rate,
        frame_rate=model.config.audio_encoder.frame_rate,
        max_positions=decoder_config.max_position_embeddings,
        chroma=_chroma_settings(model_dir) if is_melody else None,
        chroma_length=getattr(model.config, "chroma_length", 0) if is_melody else 0,
        load_seconds=time.perf_counter() - started,
    )
    LOGGER.info(
        "loaded %s (%s, %s, %d channel(s)) from %s: LM %s, codec float32, device %s, %.1f s",
        loaded.model_id,
        model_class.__name__,
        "melody" if is_melody else "text-only",
        channels,
        model_dir,
        loaded.dtype,
        device,
        loaded.load_seconds,
    )
    return loaded


def _chroma_settings(model_dir: Path) -> ChromaSettings:
    config = json.loads((model_dir / "preprocessor_config.json").read_text())
    return ChromaSettings(
        sampling_rate=int(config.get("sampling_rate", 32000)),
        n_fft=int(config.get("n_fft", 16384)),
        hop_length=int(config.get("hop_length", 4096)),
        num_chroma=int(config.get("num_chroma", 12)),
        chunk_seconds=float(config.get("chunk_length", 30)),
    )
