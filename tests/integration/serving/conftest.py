"""A tiny stereo MusicGen laid out like /opt/ml/model (weights plus code/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.tiny_musicgen import build_tiny_musicgen

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def stereo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random stereo MusicGen plus `code/` (a copy of inference_code/)."""
    model_dir = build_tiny_musicgen(tmp_path_factory.mktemp("serving") / "model", variant="stereo")
    shutil.copytree(
        REPO_ROOT / "inference_code",
        model_dir / "code",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return model_dir
