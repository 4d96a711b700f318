"""Chroma conditioning for MusicGen-Melody, computed as its feature extractor does.

The transformers feature extractor needs torchaudio for a plain STFT and a resampler; doing the
same few steps with torch and the shared chroma filter bank keeps the handler free of it.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.audio_utils import chroma_filter_bank

from inference_code.model_loading import ChromaSettings


def window_chroma(
    melody: np.ndarray, settings: ChromaSettings, *, start_seconds: float
) -> torch.Tensor:
    """Chroma of the melody under a window that starts `start_seconds` into the clip.

    As audiocraft conditions each window, the melody is read from that offset for one chunk
    (30 s), looping from its start whenever it ends: a short melody repeats under a long clip
    rather than falling silent, which the chroma's arg-max would hear as a held C.
    """
    length = int(settings.chunk_seconds * settings.sampling_rate)
    start = round(start_seconds * settings.sampling_rate)
    positions = (start + np.arange(length)) % melody.shape[-1]
    return melody_chroma(melody[positions], settings)


def melody_chroma(audio: np.ndarray, settings: ChromaSettings) -> torch.Tensor:
    """One-hot dominant pitch class per STFT frame: `(1, frames, num_chroma)` float32.

    `audio` is mono `(samples,)` at `settings.sampling_rate`, at least `n_fft` samples long.
    """
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    spectrum = torch.stft(
        waveform,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        window=torch.hann_window(settings.n_fft),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spectrum.abs().square()
    filters = torch.from_numpy(
        chroma_filter_bank(
            num_frequency_bins=settings.n_fft,
            num_chroma=settings.num_chroma,
            sampling_rate=settings.sampling_rate,
            tuning=0,
        )
    ).float()
    raw = filters @ power  # (num_chroma, frames)
    dominant = raw.argmax(dim=0)
    one_hot = torch.nn.functional.one_hot(dominant, settings.num_chroma).float()
    return one_hot.unsqueeze(0)
