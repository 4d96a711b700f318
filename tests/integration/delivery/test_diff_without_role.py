"""The pull-request workflow's no-role path, end to end, on a throwaway clone.

A throwaway repository holds this checkout as the base commit on `main` and a pull request
that moves `dev` to another instance type; its merge commit is checked out the way
actions/checkout does for a pull request (the merge and its first parent). Then the workflow's
own `run:` scripts run in order with no role configured: the gate, `cdk diff` (which runs
`make diff-base`: two real synths and the real CDK CLI, with no AWS credentials), the comment
formatter and the destructive-change check. Slow: two synths of the app.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.delivery.delivery_paths import REPO_ROOT
from tests.unit.delivery.workflow_steps import REPOSITORY, run_step, step

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYNTH_AND_DIFF_TIMEOUT = 900
# The dependencies this checkout installed; the clone borrows them as CI restores its cache.
SHARED = (".venv", "node_modules")
PINS = ("requirements.txt", "package.json", "package-lock.json")


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.test",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.test",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _source_files() -> list[str]:
    listed = _git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def _throwaway_pull_request(root: Path) -> tuple[Path, str, str]:
    """(checkout of the merge commit, base commit, head commit of the pull request)."""
    origin = root / "origin"
    origin.mkdir()
    for name in _source_files():
        target = origin / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO_ROOT / name).read_bytes())
    _git(origin, "init", "--quiet", "--initial-branch=main")
    _git(origin, "add", "--all")
    _git(origin, "commit", "--quiet", "-m", "base")
    base = _git(origin, "rev-parse", "HEAD")

    _git(origin, "checkout", "--quiet", "-b", "bigger-gpu")
    cdk_json = origin / "cdk.json"
    document = json.loads(cdk_json.read_text())
    dev = document["context"]["environments"]["dev"]
    dev["instance_type"] = (
        "ml.g5.4xlarge" if dev["instance_type"] != "ml.g5.4xlarge" else ("ml.g5.2xlarge")
    )
    cdk_json.write_text(json.dumps(document, indent=2) + "\n")
    _git(origin, "commit", "--quiet", "-am", "dev: a bigger GPU")
    head = _git(origin, "rev-parse", "HEAD")

    # GitHub's refs/pull/N/merge: the pull request merged into the base branch.
    _git(origin, "checkout", "--quiet", "--detach", "main")
    _git(origin, "merge", "--quiet", "--no-ff", "-m", "Merge bigger-gpu into main", "bigger-gpu")
    _git(origin, "branch", "pull-1-merge")
    checkout = root / "checkout"
    _git(
        root,
        "clone",
        "--quiet",
        "--depth",
        "2",
        "--branch",
        "pull-1-merge",
        origin.as_uri(),
        str(checkout),
    )
    for folder in SHARED:
        (checkout / folder).symlink_to(REPO_ROOT / folder, target_is_directory=True)
    # As diff.yml's "Mark the restored virtualenv current": make must not reinstall into the
    # borrowed folders, so the clone's pins are older than their install stamps.
    for name in PINS:
        os.utime(checkout / name, (0, 0))
    return checkout, base, head


@pytest.fixture(scope="module")
def cdk_cli() -> None:
    """The CLI pinned in package.json, installed as `make synth` installs it: `make test` needs
    only the virtualenv, and CI's clean clone runs the tests before it synthesizes."""
    subprocess.run(
        ["make", "--silent", "node_modules/.package-lock.json"],
        cwd=REPO_ROOT,
        check=True,
        timeout=600,
    )


@pytest.mark.usefixtures("cdk_cli")
def test_a_pull_request_without_a_role_gets_a_diff_against_the_base_branch(
    tmp_path: Path,
) -> None:
    checkout, base, head = _throwaway_pull_request(tmp_path)
    result_dir = "diff-results/dev"
    matrix_env = {"ENVIRONMENT": "dev", "RESULT_DIR": result_dir}

    gate = step("diff.yml", "diff", "Choose what to compare with")
    gate_env = {
        **matrix_env,
        "ROLE_ARN": "",
        "ROLE_VARIABLE": "DIFF_ROLE_ARN_DEV",
        "REGION": "",
        "HEAD_REPOSITORY": REPOSITORY,
    }
    done, gate_outputs = run_step(gate, checkout, gate_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert gate_outputs == {"compare": "base-branch", "base": base}

    diff_step = step("diff.yml", "diff", "cdk diff")
    diff_env = {
        **matrix_env,
        **diff_step["env"],
        "COMPARE": gate_outputs["compare"],
        "BASE_REF": gate_outputs["base"],
        # Whatever credentials lie around, the no-role path must not use them.
        "AWS_ACCESS_KEY_ID": "AKIAINVALIDINVALID00",
        "AWS_SECRET_ACCESS_KEY": "invalid",
        "AWS_REGION": "us-east-1",
    }
    done, _ = run_step(diff_step, checkout, diff_env, timeout=SYNTH_AND_DIFF_TIMEOUT)
    output = (checkout / result_dir / "output.txt").read_text()
    assert done.returncode == 0, output[-4000:]
    assert (checkout / result_dir / "status").read_text() == "ok\n"
    # The real CLI saw the change: the endpoint's logical id carries the instance type.
    assert "[-] AWS::SageMaker::Endpoint Endpoint/Endpoint" in output
    assert f"Base: {base} = {base}" in output

    format_step = step("diff.yml", "comment", "Format the comment")
    summary = checkout / "summary.md"
    done, format_outputs = run_step(
        format_step,
        checkout,
        {
            **format_step["env"],
            "ENVIRONMENTS": '["dev"]',
            "RUN_URL": "https://github.example/acme/musicgen/actions/runs/1",
            "HEAD_SHA": head,
            "ALLOW_DESTRUCTIVE": "false",
            "GITHUB_STEP_SUMMARY": str(summary),
        },
    )
    assert done.returncode == 0, done.stderr
    assert format_outputs == {"blocked": "false"}
    comment = (checkout / "comment.md").read_text()
    assert summary.read_text() == comment
    first_screen = comment[: comment.index("### Full diffs")]
    assert comment.startswith("<!-- musicgen-cdk-diff -->\n")
    assert f"| `dev` | base branch `{base[:12]}` (no AWS) | 📝 changes |" in first_screen
    assert "no role configured: set the repository variable DIFF_ROLE_ARN_DEV" in first_screen
    assert "**destroy** `AWS::SageMaker::Endpoint` Endpoint/Endpoint" in first_screen
    assert "clients must re-read the EndpointName output" in first_screen
    assert "⛔" not in comment and "Security-relevant changes" not in comment
    assert comment.rstrip().endswith(
        f"<sub>Updated for {head[:12]} · "
        "[workflow run](https://github.example/acme/musicgen/actions/runs/1)</sub>"
    )

    gate_check = step("diff.yml", "comment", "Fail on a destroyed or replaced bucket or KMS key")
    done, _ = run_step(gate_check, checkout, {"BLOCKED": format_outputs["blocked"]})
    assert done.returncode == 0, done.stdout
