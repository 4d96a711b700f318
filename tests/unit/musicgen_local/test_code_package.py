"""`code/` beside a checkpoint holds what the staging construct's code asset holds, no more."""

from __future__ import annotations

import shutil
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from constructs_lib.model_staging import ModelStaging
from musicgen_local.code_package import (
    INFERENCE_CODE,
    assemble_model_dir,
    install_inference_code,
)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _staged_asset(code_directory: Path, outdir: Path) -> Path:
    """The folder CDK zips as the construct's code asset (bytecode excluded by the construct)."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "CodeAsset")
    ModelStaging(
        stack,
        "Staging",
        model_bucket=s3.Bucket(stack, "ModelBucket"),
        model_id="facebook/musicgen-small",
        model_revision="main",
        code_directory=str(code_directory),
    )
    assembly = app.synth()
    (package,) = Template.from_stack(stack).find_resources("Custom::ModelPackage").values()
    return Path(assembly.directory) / f"asset.{package['Properties']['CodeHash']}"


@pytest.fixture
def code_with_leftovers(tmp_path: Path) -> Path:
    """inference_code/ as a developer's tree holds it: bytecode and caches beside the sources."""
    source = tmp_path / "inference_code"
    shutil.copytree(INFERENCE_CODE, source)
    (source / "__pycache__").mkdir(exist_ok=True)
    (source / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"\0")
    (source / "stray.pyc").write_bytes(b"\0")
    (source / ".pytest_cache").mkdir()
    (source / ".pytest_cache" / "README.md").write_text("cache\n")
    (source / "assets").mkdir()
    (source / "assets" / "notes.txt").write_text("shipped\n")
    return source


def test_code_is_installed_as_the_construct_packages_it(
    code_with_leftovers: Path, tmp_path: Path
) -> None:
    asset = _files(_staged_asset(code_with_leftovers, tmp_path / "cdk.out"))

    installed = _files(install_inference_code(tmp_path / "model", source=code_with_leftovers))

    assert installed == asset
    assert {"__init__.py", "inference.py", "contract.py", "assets/notes.txt"} <= installed.keys()


def test_reinstalling_replaces_the_old_copy(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "removed_module.py").write_text("OLD = True\n")

    code_dir = install_inference_code(model_dir)

    assert _files(code_dir) == {
        name: data for name, data in _files(INFERENCE_CODE).items() if "__pycache__" not in name
    }


def test_a_checkpoint_is_served_through_links_with_our_code(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint"
    (checkpoint / "code").mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    (checkpoint / "manifest.json").write_text('{"files": []}')
    (checkpoint / "code" / "inference.py").write_text("raise SystemExit('not ours')\n")

    model_dir = assemble_model_dir(checkpoint, tmp_path / "model")

    assert (model_dir / "model.safetensors").resolve() == checkpoint / "model.safetensors"
    # The staging manifest stays out: the model server would read it as an archive manifest.
    assert not (model_dir / "manifest.json").exists()
    assert (model_dir / "code" / "inference.py").read_bytes() == (
        INFERENCE_CODE / "inference.py"
    ).read_bytes()
    assert (checkpoint / "code" / "inference.py").read_text() == "raise SystemExit('not ours')\n"


def test_a_folder_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--model-dir: must hold a checkpoint's config.json"):
        assemble_model_dir(tmp_path, tmp_path / "model")
