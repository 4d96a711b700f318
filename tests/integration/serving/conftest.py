"""A tiny stereo MusicGen laid out like /opt/ml/model (weights plus code/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicgen_local.code_package import install_inference_code
from musicgen_local.tiny_musicgen import build_tiny_musicgen


@pytest.fixture(scope="session")
def stereo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random stereo MusicGen plus `code/` (inference_code/, as the stack packages it)."""
    model_dir = build_tiny_musicgen(tmp_path_factory.mktemp("serving") / "model", variant="stereo")
    install_inference_code(model_dir)
    return model_dir
