"""The pieces of the no-role diff that need no synth: the base tree, its dependencies, its
environment table, and the one-line errors. The whole path runs in
tests/integration/delivery/test_diff_without_role.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _cdk_json(environments: dict[str, dict[str, str]]) -> str:
    return json.dumps({"app": "true", "context": {"environments": environments}})


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str]:
    """A checkout whose first commit has only `dev` and whose second adds `staging`."""
    head = tmp_path / "head"
    head.mkdir()
    _git(head, "init", "--quiet", "--initial-branch=main")
    (head / "cdk.json").write_text(_cdk_json({"dev": {}}))
    (head / "requirements.txt").write_text("aws-cdk-lib==1\n")
    _git(head, "add", "--all")
    _git(head, "commit", "--quiet", "-m", "base")
    base = _git(head, "rev-parse", "HEAD")
    (head / "cdk.json").write_text(_cdk_json({"dev": {}, "staging": {}}))
    (head / "new-file.txt").write_text("only in the pull request\n")
    _git(head, "commit", "--quiet", "-am", "staging")
    _git(head, "add", "--all")
    _git(head, "commit", "--quiet", "-m", "a file")
    return head, base


def test_export_tree_gives_the_base_commit_files(
    base_diff: ModuleType, repository: tuple[Path, str], tmp_path: Path
) -> None:
    head, base = repository
    exported = tmp_path / "base"
    assert base_diff.export_tree(head, "HEAD~2", exported) == base
    assert sorted(p.name for p in exported.iterdir()) == ["cdk.json", "requirements.txt"]
    assert base_diff.has_environment(exported, "dev")
    assert not base_diff.has_environment(exported, "staging")
    assert base_diff.has_environment(head, "staging")


def test_a_base_pinning_the_same_dependencies_shares_the_installed_ones(
    base_diff: ModuleType, repository: tuple[Path, str], tmp_path: Path
) -> None:
    head, _ = repository
    (head / ".venv").mkdir()
    (head / "node_modules").mkdir()
    exported = tmp_path / "base"
    base_diff.export_tree(head, "HEAD", exported)
    assert base_diff.provide_dependencies(head, exported) == []
    assert (exported / ".venv").resolve() == (head / ".venv").resolve()
    assert (exported / "node_modules").resolve() == (head / "node_modules").resolve()


def test_unknown_refs_and_broken_tables_fail_with_one_line(
    base_diff: ModuleType,
    repository: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    head, _ = repository
    monkeypatch.chdir(head)
    assert base_diff.main(["dev", "--base-ref", "no-such-branch"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("diff against the base branch: git failed (exit 128)")

    assert base_diff.main(["prod", "--base-ref", "HEAD~1"]) == 1
    assert "'prod' is not in this checkout's cdk.json" in capsys.readouterr().err

    (head / "cdk.json").write_text("{not json")
    assert base_diff.main(["dev", "--base-ref", "HEAD~1"]) == 1
    assert "cdk.json: cannot read it as JSON" in capsys.readouterr().err


def test_the_diff_reads_no_credentials(
    base_diff: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "prod-admin")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    env = base_diff.offline_environment({"FORCE_COLOR": "0"})
    assert not {"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert "AWS_SESSION_TOKEN" not in env
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["FORCE_COLOR"] == "0"
