"""Lay out a model directory the way the staging construct packages it for SageMaker.

The deployable prefix holds the checkpoint's files and `code/`, a copy of `inference_code/` as
the construct's code asset holds it: every file, `__init__.py` included, without bytecode.
A test compares this copy with the asset CDK stages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import inference_code
from constructs_lib.model_staging.runtime.staging.snapshot import MANIFEST_NAME

INFERENCE_CODE = Path(inference_code.__file__).resolve().parent
CODE_FOLDER = "code"
# ModelStaging's BYTECODE_EXCLUDES (importing the construct would load the CDK for a copy).
CODE_EXCLUDES = ("__pycache__", "*.pyc", ".pytest_cache")


def install_inference_code(model_dir: Path, *, source: Path = INFERENCE_CODE) -> Path:
    """Replace `model_dir/code` with a copy of `source`; return the `code/` folder."""
    code_dir = Path(model_dir) / CODE_FOLDER
    if code_dir.is_symlink() or code_dir.is_file():
        code_dir.unlink()
    elif code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(source, code_dir, ignore=shutil.ignore_patterns(*CODE_EXCLUDES))
    return code_dir


def assemble_model_dir(checkpoint: Path, dest: Path) -> Path:
    """`dest` as /opt/ml/model: links to `checkpoint`'s files, plus its own `code/`.

    The checkpoint itself is left untouched (a `code/` it holds is not served). A snapshot's
    staging manifest is left out, as the deployable package leaves it out: the model server
    reads a `manifest.json` in the model folder as its own (legacy) archive manifest and fails.
    """
    checkpoint = Path(checkpoint).resolve()
    if not (checkpoint / "config.json").is_file():
        raise ValueError(f"--model-dir: must hold a checkpoint's config.json (got {checkpoint})")
    dest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(checkpoint.iterdir()):
        if entry.name not in (CODE_FOLDER, MANIFEST_NAME):
            (dest / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    install_inference_code(dest)
    return dest
