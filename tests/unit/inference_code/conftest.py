"""Tiny MusicGen models on disk and the handler hooks.

The handler is imported under the one name its modules have everywhere, `inference_code.*`:
in the container `inference.py` registers `code/` as that package before importing its siblings
(test_import_identity.py runs that path too). `inference_code/` itself is never put on sys.path,
which would load each module a second time under its bare name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from musicgen_local.tiny_musicgen import build_tiny_musicgen

# Window of 60 frames (1.2 s): a 4 s clip needs several windows, generated in well under a second.
SHORT_WINDOW_POSITIONS = 64
# The melody model's 16 chroma frames and the text come first: "calm piano" leaves 73 frames.
SHORT_WINDOW_MELODY_POSITIONS = 96


@pytest.fixture(scope="session")
def hooks() -> ModuleType:
    import torch

    import inference_code.inference as inference

    # The tiny models' matrices are far too small to gain from threads; on a shared CI machine
    # thread hand-offs dominated their generation time.
    torch.set_num_threads(1)
    return inference


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_musicgen")
    dirs = {
        variant: build_tiny_musicgen(root / variant, variant=variant)
        for variant in ("mono", "stereo", "melody")
    }
    dirs["short_window"] = build_tiny_musicgen(
        root / "short_window", variant="mono", max_position_embeddings=SHORT_WINDOW_POSITIONS
    )
    dirs["short_window_melody"] = build_tiny_musicgen(
        root / "short_window_melody",
        variant="melody",
        max_position_embeddings=SHORT_WINDOW_MELODY_POSITIONS,
    )
    return dirs


@pytest.fixture(scope="session")
def mono_model(hooks: ModuleType, tiny_model_dirs: dict[str, Path]) -> Any:
    return hooks.model_fn(str(tiny_model_dirs["mono"]))


@pytest.fixture(scope="session")
def stereo_model(hooks: ModuleType, tiny_model_dirs: dict[str, Path]) -> Any:
    return hooks.model_fn(str(tiny_model_dirs["stereo"]))


@pytest.fixture(scope="session")
def melody_model(hooks: ModuleType, tiny_model_dirs: dict[str, Path]) -> Any:
    return hooks.model_fn(str(tiny_model_dirs["melody"]))


@pytest.fixture(scope="session")
def short_window_model(hooks: ModuleType, tiny_model_dirs: dict[str, Path]) -> Any:
    return hooks.model_fn(str(tiny_model_dirs["short_window"]))


@pytest.fixture(scope="session")
def short_window_melody_model(hooks: ModuleType, tiny_model_dirs: dict[str, Path]) -> Any:
    return hooks.model_fn(str(tiny_model_dirs["short_window_melody"]))


Invoke = Callable[..., Any]


@pytest.fixture(scope="session")
def invoke(hooks: ModuleType) -> Invoke:
    """Run a request through input_fn -> predict_fn -> output_fn as the toolkit chains them."""

    def run(model: Any, payload: Any, accept: str = "application/json") -> Any:
        body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        request = hooks.input_fn(body, "application/json")
        response = hooks.output_fn(hooks.predict_fn(request, model), accept)
        return json.loads(response) if accept == "application/json" else response

    return run
