"""`stage --local-dir`: the operator CLI stages a snapshot into a folder for the local loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.model_staging.staging_fixtures import INFERENCE_FILES, MODEL_ID, repo_files
from tests.support.fake_hub import FakeHub, Fault

pytestmark = pytest.mark.integration


def stage_locally(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: the Hub from HF_ENDPOINT (the fake one), no AWS at all."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "constructs_lib.model_staging", "stage", "--model-id", MODEL_ID,
         "--local-dir", str(root), *extra],
        capture_output=True, text=True, check=False, env=env, timeout=300,
    )  # fmt: skip


def test_stage_into_a_folder_then_nothing_to_do(fake_hub: FakeHub, tmp_path: Path) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    folder = tmp_path / "models" / MODEL_ID / repo.commit

    first = stage_locally(tmp_path / "models", "--part-size-mib", "5")

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"staged {MODEL_ID}@main (commit {repo.commit}) in {folder}: {len(INFERENCE_FILES)} "
        f"files copied, {sum(len(files[name]) for name in INFERENCE_FILES)} bytes from the Hub"
    )
    staged = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert staged == {*INFERENCE_FILES, "manifest.json"}
    for name in INFERENCE_FILES:
        assert (folder / name).read_bytes() == files[name], name
    assert json.loads((folder / "manifest.json").read_text())["commit"] == repo.commit

    second = stage_locally(tmp_path / "models")
    assert second.returncode == 0, second.stderr
    assert "0 files copied, 0 bytes from the Hub" in second.stdout


def test_a_corrupt_download_is_refused_and_not_kept(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    fake_hub.inject(Fault("corrupt", path="model.safetensors", times=None))

    refused = stage_locally(tmp_path / "models")

    assert refused.returncode == 1
    assert "model.safetensors: sha256 mismatch" in refused.stderr
    folder = tmp_path / "models" / MODEL_ID / repo.commit
    assert not (folder / "manifest.json").exists()
    assert not list(folder.rglob("model.safetensors*"))


def test_s3_and_local_targets_exclude_each_other(tmp_path: Path) -> None:
    both = stage_locally(tmp_path, "--s3-uri", "s3://bucket/models/")

    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
