"""The shell scripts of the diff and deploy jobs, run with bash the way GitHub runs them, and
the hand-over from the diff jobs to the comment formatter."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.unit.delivery.delivery_paths import FIXTURES, WORKFLOWS

REPOSITORY = "acme/musicgen"


def _step(workflow: str, job: str, name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / workflow).read_text(encoding="utf-8"))
    (step,) = [s for s in document["jobs"][job]["steps"] if s.get("name") == name]
    return step


def _run_step(
    step: dict[str, Any], tmp_path: Path, env: dict[str, str], path_prefix: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run a step's script as GitHub does (`bash --noprofile --norc -eo pipefail`)."""
    script = tmp_path / "step.sh"
    script.write_text(step["run"], encoding="utf-8")
    output_file = tmp_path / "github_output"
    output_file.write_text("")
    search_path = os.environ["PATH"]
    if path_prefix:
        search_path = f"{path_prefix}{os.pathsep}{search_path}"
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env={
            "PATH": search_path,
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_REPOSITORY": REPOSITORY,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    outputs = dict(
        line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
    )
    return result, outputs


def _diff_gate_env(**overrides: str) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "dev",
        "RESULT_DIR": "diff-results/dev",
        "ROLE_ARN": "arn:aws:iam::111111111111:role/diff",
        "ROLE_VARIABLE": "DIFF_ROLE_ARN_DEV",
        "REGION": "eu-west-1",
        "HEAD_REPOSITORY": REPOSITORY,
    }
    env.update(overrides)
    return env


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"ROLE_ARN": ""},
            "no role configured: set the repository variable DIFF_ROLE_ARN_DEV to the "
            "DiffRoleArn output of MusicGen-ci",
        ),
        (
            {"HEAD_REPOSITORY": "someone/fork"},
            "pull request from a fork: GitHub gives it no OIDC token, so no AWS role",
        ),
        (
            {"REGION": ""},
            "no region: set environments.dev.region in cdk.json or the repository variable "
            "AWS_REGION",
        ),
    ],
)
def test_diff_gate_skips_with_a_notice_and_a_status(
    tmp_path: Path, overrides: dict[str, str], reason: str
) -> None:
    step = _step("diff.yml", "diff", "Check a role and a region are configured")
    result, outputs = _run_step(step, tmp_path, _diff_gate_env(**overrides))
    assert result.returncode == 0, result.stderr
    assert f"::notice title=cdk diff skipped for dev::{reason}" in result.stdout
    assert outputs == {"run": "false"}
    assert (tmp_path / "diff-results/dev/status").read_text() == f"skipped\n{reason}\n"


def test_diff_gate_lets_a_configured_environment_through(tmp_path: Path) -> None:
    step = _step("diff.yml", "diff", "Check a role and a region are configured")
    result, outputs = _run_step(step, tmp_path, _diff_gate_env())
    assert result.returncode == 0, result.stderr
    assert outputs == {"run": "true", "region": "eu-west-1"}
    assert not (tmp_path / "diff-results/dev/status").exists()


def _fake_make(folder: Path, output: Path, exit_code: int) -> Path:
    """A `make` that prints a recorded cdk diff to stderr, as the CLI does, and logs its args."""
    folder.mkdir()
    make = folder / "make"
    make.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" > "{folder}/args"\n'
        f'printf "%s\\n" "$DIFF_METHOD" > "{folder}/method"\n'
        f'cat "{output}" >&2\n'
        f"exit {exit_code}\n",
        encoding="utf-8",
    )
    make.chmod(make.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.mark.parametrize(
    ("exit_code", "status"), [(0, "ok\n"), (2, "failed\nmake diff exited with 2\n")]
)
def test_diff_step_records_output_and_status_and_keeps_the_exit_code(
    tmp_path: Path, exit_code: int, status: str
) -> None:
    step = _step("diff.yml", "diff", "cdk diff")
    recorded = FIXTURES / "cdk_diff_security_changes.txt"
    fake = _fake_make(tmp_path / "bin", recorded, exit_code)
    (tmp_path / "diff-results/dev").mkdir(parents=True)
    result, _ = _run_step(
        step,
        tmp_path,
        {"ENVIRONMENT": "dev", "RESULT_DIR": "diff-results/dev", **step["env"]},
        path_prefix=fake,
    )
    assert result.returncode == exit_code
    assert (fake / "args").read_text() == "diff ENV=dev\n"
    assert (fake / "method").read_text() == "template\n"
    assert (tmp_path / "diff-results/dev/output.txt").read_text() == recorded.read_text()
    assert (tmp_path / "diff-results/dev/status").read_text() == status
    # The log shows the diff too, for whoever opens the run.
    assert "AWS::KMS::Key DataKey" in result.stdout


def test_what_the_diff_jobs_leave_is_what_the_formatter_reads(
    tmp_path: Path, formatter: ModuleType
) -> None:
    gate = _step("diff.yml", "diff", "Check a role and a region are configured")
    diff = _step("diff.yml", "diff", "cdk diff")
    fake = _fake_make(tmp_path / "bin", FIXTURES / "cdk_diff_security_changes.txt", 0)
    dev_env = _diff_gate_env()
    prod_env = _diff_gate_env(
        ENVIRONMENT="prod", RESULT_DIR="diff-results/prod", ROLE_ARN="", ROLE_VARIABLE="X_PROD"
    )
    for env in (dev_env, prod_env):
        result, outputs = _run_step(gate, tmp_path, env)
        assert result.returncode == 0, result.stderr
        if outputs["run"] == "true":
            result, _ = _run_step(diff, tmp_path, {**env, **diff["env"]}, path_prefix=fake)
            assert result.returncode == 0, result.stderr

    results = [formatter.read_result(tmp_path / "diff-results", n) for n in ("dev", "prod")]
    comment = formatter.render(results)
    assert "| `dev` | 🔐 changes | +1 ~3 -1 | **yes**: IAM, KMS, encryption |" in comment
    assert "| `prod` | ⏭️ skipped: no role configured: set the repository variable X_PROD" in comment


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"ROLE_ARN": ""},
            "::error title=no deploy role for prod::set the variable DEPLOY_ROLE_ARN_PROD",
        ),
        ({"REGION": ""}, "::error title=no region for prod::set environments.prod.region"),
    ],
)
def test_deploy_gate_fails_without_a_role_or_region(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    step = _step("deploy.yml", "deploy", "Check a role and a region are configured")
    env = {
        "ENVIRONMENT": "prod",
        "ROLE_ARN": "arn:aws:iam::222222222222:role/deploy",
        "ROLE_VARIABLE": "DEPLOY_ROLE_ARN_PROD",
        "REGION": "us-east-1",
        **overrides,
    }
    result, outputs = _run_step(step, tmp_path, env)
    assert result.returncode == 1
    assert message in result.stdout
    assert outputs == {}


def test_deploy_gate_passes_the_region_on(tmp_path: Path) -> None:
    step = _step("deploy.yml", "deploy", "Check a role and a region are configured")
    env = {
        "ENVIRONMENT": "prod",
        "ROLE_ARN": "arn:aws:iam::222222222222:role/deploy",
        "ROLE_VARIABLE": "DEPLOY_ROLE_ARN_PROD",
        "REGION": "us-east-1",
    }
    result, outputs = _run_step(step, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert outputs == {"region": "us-east-1"}
