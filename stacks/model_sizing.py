"""Timeouts and disk sized for the MusicGen checkpoint an environment serves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSize:
    download_timeout_seconds: int
    startup_timeout_seconds: int
    volume_size_gb: int


# Checkpoints: small ~2.4 GB, medium ~8 GB, large ~14 GB of fp32 safetensors (stereo alike).
_SIZES = {
    "small": ModelSize(
        download_timeout_seconds=900, startup_timeout_seconds=600, volume_size_gb=30
    ),
    "medium": ModelSize(
        download_timeout_seconds=1800, startup_timeout_seconds=900, volume_size_gb=60
    ),
    "large": ModelSize(
        download_timeout_seconds=3600, startup_timeout_seconds=1200, volume_size_gb=100
    ),
}


def model_size_for(model_id: str) -> ModelSize:
    """Size class from the model name; an unrecognised model gets the largest allowance."""
    name = model_id.rsplit("/", 1)[-1].lower()
    for size in ("small", "medium"):
        if size in name.split("-"):
            return _SIZES[size]
    return _SIZES["large"]
