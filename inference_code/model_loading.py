"""Load a MusicGen snapshot from the model directory once, in the precision the device suits."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers.models.auto.tokenization_auto import AutoTokenizer
from transformers.models.encodec.modeling_encodec import EncodecModel

# From their modules, not the package root: for a type checker `transformers` also exports
# placeholder classes of the same names (used when torch is missing).
from transformers.models.musicgen.modeling_musicgen import MusicgenForConditionalGeneration
from transformers.models.musicgen_melody.modeling_musicgen_melody import (
    MusicgenMelodyForConditionalGeneration,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from inference_code.contract import MODEL_ID_ENV

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
    model: MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration
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
    def codec(self) -> EncodecModel:
        """The EnCodec model that turns audio into codes and codes into audio."""
        codec = self.model.audio_encoder
        if not isinstance(codec, EncodecModel):
            raise TypeError(f"expected an EnCodec audio encoder, got {type(codec).__name__}")
        return codec

    @property
    def hop_length(self) -> int:
        """Audio samples per decoder frame."""
        return self.sampling_rate // self.frame_rate


# Tensor cores run bf16 natively from compute capability 8.0 (Ampere: A10G, A100, L4, H100).
# Below it (T4 on g4dn, V100 on p3) `torch.cuda.is_bf16_supported()` still says yes because bf16
# is emulated, far slower than fp16.
NATIVE_BF16_CAPABILITY = (8, 0)


class _MusicgenKeepingT5Fp32(MusicgenForConditionalGeneration):
    """MusicGen whose T5 feed-forward output layers (`wo`) load in fp32 when the rest is fp16.

    T5 declares these modules fp32-only (fp16 overflows in them), but transformers honours the
    declaration only for the class being loaded, never for a sub-model of a composite model.
    """

    # transformers leaves the base attribute unannotated (`= None`), so its type reads as None.
    _keep_in_fp32_modules = ("wo",)  # type: ignore[assignment]


class _MusicgenMelodyKeepingT5Fp32(MusicgenMelodyForConditionalGeneration):
    """The melody model, with the same fp32 T5 `wo` layers on the fp16 path."""

    _keep_in_fp32_modules = ("wo",)  # type: ignore[assignment]  # as above


def half_dtype_for(capability: tuple[int, int]) -> torch.dtype:
    """The half precision a GPU of this compute capability runs natively."""
    return torch.bfloat16 if capability >= NATIVE_BF16_CAPABILITY else torch.float16


def load_musicgen(
    model_dir: str | Path,
    *,
    device: torch.device | None = None,
    half_dtype: torch.dtype | None = None,
) -> LoadedMusicGen:
    """Load model and tokenizer from `model_dir` only (never the Hub).

    On CUDA the text encoder and the language model run in bf16 where the GPU has native bf16
    (compute capability 8.0 and up), else in fp16 with T5's fp32-only layers kept in fp32; the
    EnCodec codec stays fp32 because half precision audibly degrades its output. Each part is
    read from the checkpoint straight into its precision. `half_dtype` forces a half precision
    (tests use it on the CPU to cover the mixed paths).
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if half_dtype is None and device.type == "cuda":
        half_dtype = half_dtype_for(torch.cuda.get_device_capability(device))
    config = json.loads((model_dir / "config.json").read_text())
    is_melody = config.get("model_type") == MELODY_MODEL_TYPE
    model_class = _model_class(is_melody=is_melody, half_dtype=half_dtype)
    lm_dtype = half_dtype or torch.float32
    # "" covers the modules outside the three sub-models (the projections between them).
    dtypes = {"": lm_dtype, "text_encoder": lm_dtype, "decoder": lm_dtype}
    model = model_class.from_pretrained(
        model_dir,
        local_files_only=True,
        torch_dtype={**dtypes, "audio_encoder": torch.float32},
    )
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


def _model_class(
    *, is_melody: bool, half_dtype: torch.dtype | None
) -> type[MusicgenForConditionalGeneration | MusicgenMelodyForConditionalGeneration]:
    if half_dtype == torch.float16:
        return _MusicgenMelodyKeepingT5Fp32 if is_melody else _MusicgenKeepingT5Fp32
    return MusicgenMelodyForConditionalGeneration if is_melody else MusicgenForConditionalGeneration


def _chroma_settings(model_dir: Path) -> ChromaSettings:
    config = json.loads((model_dir / "preprocessor_config.json").read_text())
    return ChromaSettings(
        sampling_rate=int(config.get("sampling_rate", 32000)),
        n_fft=int(config.get("n_fft", 16384)),
        hop_length=int(config.get("hop_length", 4096)),
        num_chroma=int(config.get("num_chroma", 12)),
        chunk_seconds=float(config.get("chunk_length", 30)),
    )
