"""The shell scripts of the diff and deploy jobs, run with bash the way GitHub runs them, and
the hand-over from the diff jobs to the comment formatter."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.delivery.delivery_paths import APP_DIFFS, REPO_ROOT
from tests.unit.delivery.workflow_steps import REPOSITORY, run_step, step

GATE = "Choose what to compare with"
BASE_COMMIT = "b" * 40


def _git_repository_with_a_merge(root: Path) -> str:
    """A checkout whose HEAD is a merge commit, as actions/checkout leaves a pull request."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "--quiet", "--initial-branch=main")
    git("commit", "--quiet", "--allow-empty", "-m", "base")
    base = git("rev-parse", "HEAD")
    git("checkout", "--quiet", "-b", "feature")
    git("commit", "--quiet", "--allow-empty", "-m", "change")
    git("checkout", "--quiet", "main")
    git("merge", "--quiet", "--no-ff", "-m", "merge", "feature")
    return base


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
def test_without_a_role_the_gate_compares_with_the_base_branch(
    tmp_path: Path, overrides: dict[str, str], reason: str
) -> None:
    base = _git_repository_with_a_merge(tmp_path)
    result, outputs = run_step(
        step("diff.yml", "diff", GATE), tmp_path, _diff_gate_env(**overrides)
    )
    assert result.returncode == 0, result.stderr
    assert f"::notice title=cdk diff of dev against the base branch::{reason}" in result.stdout
    assert outputs == {"compare": "base-branch", "base": base}
    assert (tmp_path / "diff-results/dev/compared-with").read_text() == (
        f"base-branch\n{base}\n{reason}\n"
    )
    assert not (tmp_path / "diff-results/dev/status").exists()


def test_with_a_role_the_gate_compares_with_the_deployed_stack(tmp_path: Path) -> None:
    result, outputs = run_step(step("diff.yml", "diff", GATE), tmp_path, _diff_gate_env())
    assert result.returncode == 0, result.stderr
    assert outputs == {"compare": "deployed", "region": "eu-west-1"}
    assert (tmp_path / "diff-results/dev/compared-with").read_text() == "deployed\neu-west-1\n"


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
    ("compare", "exit_code", "args", "status"),
    [
        ("deployed", 0, "diff ENV=dev", "ok\n"),
        ("deployed", 2, "diff ENV=dev", "failed\nmake diff exited with 2\n"),
        ("base-branch", 0, f"diff-base ENV=dev BASE_REF={BASE_COMMIT}", "ok\n"),
        (
            "base-branch",
            1,
            f"diff-base ENV=dev BASE_REF={BASE_COMMIT}",
            "failed\nmake diff-base exited with 1\n",
        ),
    ],
)
def test_diff_step_runs_the_chosen_diff_and_keeps_output_status_and_exit_code(
    tmp_path: Path, compare: str, exit_code: int, args: str, status: str
) -> None:
    diff_step = step("diff.yml", "diff", "cdk diff")
    recorded = APP_DIFFS / "iam_statement.txt"
    fake = _fake_make(tmp_path / "bin", recorded, exit_code)
    (tmp_path / "diff-results/dev").mkdir(parents=True)
    env = {
        "ENVIRONMENT": "dev",
        "RESULT_DIR": "diff-results/dev",
        **diff_step["env"],
        "COMPARE": compare,
        "BASE_REF": BASE_COMMIT if compare == "base-branch" else "",
    }
    result, _ = run_step(diff_step, tmp_path, env, path_prefix=fake)
    assert result.returncode == exit_code
    assert (fake / "args").read_text() == args + "\n"
    assert (fake / "method").read_text() == "template\n"
    assert (tmp_path / "diff-results/dev/output.txt").read_text() == recorded.read_text()
    assert (tmp_path / "diff-results/dev/status").read_text() == status
    # The log shows the diff too, for whoever opens the run.
    assert "AWS::IAM::Policy EndpointExecutionPolicy" in result.stdout


def test_what_the_diff_jobs_leave_is_what_the_formatter_reads(
    tmp_path: Path, formatter: ModuleType
) -> None:
    base = _git_repository_with_a_merge(tmp_path)
    gate = step("diff.yml", "diff", GATE)
    diff_step = step("diff.yml", "diff", "cdk diff")
    fake = _fake_make(tmp_path / "bin", APP_DIFFS / "bucket_replacement.txt", 0)
    dev_env = _diff_gate_env()
    prod_env = _diff_gate_env(
        ENVIRONMENT="prod", RESULT_DIR="diff-results/prod", ROLE_ARN="", ROLE_VARIABLE="X_PROD"
    )
    for env in (dev_env, prod_env):
        result, outputs = run_step(gate, tmp_path, env)
        assert result.returncode == 0, result.stderr
        step_env = {**env, **diff_step["env"], "COMPARE": outputs["compare"]}
        step_env["BASE_REF"] = outputs.get("base", "")
        result, _ = run_step(diff_step, tmp_path, step_env, path_prefix=fake)
        assert result.returncode == 0, result.stderr

    results = [formatter.read_result(tmp_path / "diff-results", n) for n in ("dev", "prod")]
    comment = formatter.render(results)
    assert "| `dev` | deployed stack (AWS, eu-west-1) | 📝 changes | **" in comment
    assert f"| `prod` | base branch `{base[:12]}` (no AWS) | 📝 changes | **" in comment
    assert "No deployed-stack diff because: no role configured: set the repository variable " in (
        comment
    )
    assert formatter.blocked(results, allow_destructive=False)


@pytest.mark.parametrize(("blocked", "exit_code"), [("true", 1), ("false", 0), ("", 1)])
def test_the_last_step_fails_the_check_on_blocked_changes(
    tmp_path: Path, blocked: str, exit_code: int
) -> None:
    check = step("diff.yml", "comment", "Fail on a destroyed or replaced bucket or KMS key")
    result, _ = run_step(check, tmp_path, {"BLOCKED": blocked})
    assert result.returncode == exit_code
    if exit_code:
        assert "::error title=Destructive change to a bucket or KMS key::" in result.stdout
        assert "add the label allow-destructive" in result.stdout


@pytest.mark.parametrize(("label", "blocked"), [("true", "false"), ("false", "true")])
def test_the_format_step_passes_the_label_on(tmp_path: Path, label: str, blocked: str) -> None:
    folder = tmp_path / "diff-results" / "dev"
    folder.mkdir(parents=True)
    (folder / "status").write_text("ok\n")
    (folder / "output.txt").write_text((APP_DIFFS / "bucket_replacement.txt").read_text())
    format_step = step("diff.yml", "comment", "Format the comment")
    (tmp_path / ".github").symlink_to(REPO_ROOT / ".github")
    env = {
        **format_step["env"],
        "ENVIRONMENTS": '["dev"]',
        "RUN_URL": "",
        "HEAD_SHA": "c" * 40,
        "ALLOW_DESTRUCTIVE": label,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    result, outputs = run_step(format_step, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert outputs == {"blocked": blocked}
    comment = (tmp_path / "comment.md").read_text()
    assert ("allowed by the label `allow-destructive`" in comment) == (label == "true")
    assert ("⛔ **This check fails" in comment) == (label == "false")


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
    deploy_gate = step("deploy.yml", "deploy", "Check a role and a region are configured")
    env = {
        "ENVIRONMENT": "prod",
        "ROLE_ARN": "arn:aws:iam::222222222222:role/deploy",
        "ROLE_VARIABLE": "DEPLOY_ROLE_ARN_PROD",
        "REGION": "us-east-1",
        **overrides,
    }
    result, outputs = run_step(deploy_gate, tmp_path, env)
    assert result.returncode == 1
    assert message in result.stdout
    assert outputs == {}


def test_deploy_gate_passes_the_region_on(tmp_path: Path) -> None:
    deploy_gate = step("deploy.yml", "deploy", "Check a role and a region are configured")
    env = {
        "ENVIRONMENT": "prod",
        "ROLE_ARN": "arn:aws:iam::222222222222:role/deploy",
        "ROLE_VARIABLE": "DEPLOY_ROLE_ARN_PROD",
        "REGION": "us-east-1",
    }
    result, outputs = run_step(deploy_gate, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert outputs == {"region": "us-east-1"}
