"""The PR comment and the check's verdict, on the CLI's real output for this app
(fixtures/app_diffs) laid out as the diff jobs leave it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.delivery.delivery_paths import APP_DIFFS

BASE = "0123456789abcdef0123456789abcdef01234567"


def _fixture(name: str) -> str:
    return (APP_DIFFS / f"{name}.txt").read_text(encoding="utf-8")


def _write_result(
    root: Path,
    environment: str,
    status: str,
    output: str | None = None,
    compared_with: str = f"base-branch\n{BASE}\nno role configured: set DIFF_ROLE_ARN_X\n",
) -> None:
    folder = root / environment
    folder.mkdir(parents=True)
    (folder / "status").write_text(status, encoding="utf-8")
    (folder / "compared-with").write_text(compared_with, encoding="utf-8")
    if output is not None:
        (folder / "output.txt").write_text(output, encoding="utf-8")


def _results(formatter: ModuleType, root: Path, *names: str) -> list[object]:
    return [formatter.read_result(root, name) for name in names]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """dev replaces a bucket, prod adds an IAM statement, qa moves instance type, staging is
    new, and one environment left no result."""
    _write_result(tmp_path, "dev", "ok\n", _fixture("bucket_replacement"))
    _write_result(tmp_path, "prod", "ok\n", _fixture("iam_statement"), "deployed\nus-east-1\n")
    _write_result(tmp_path, "qa", "ok\n", _fixture("instance_type"))
    _write_result(
        tmp_path,
        "staging",
        "ok\n",
        "New environment: 'staging' is not in the base branch's cdk.json; every resource is new.\n"
        + _fixture("environment_added"),
    )
    return tmp_path


def test_the_first_screen_says_what_fails_what_is_destroyed_and_what_touches_security(
    formatter: ModuleType, mixed: Path
) -> None:
    results = _results(formatter, mixed, "dev", "prod", "qa", "staging", "gone")
    comment = formatter.render(results, run_url="https://example.test/run/7", commit="a" * 40)
    lines = comment.splitlines()
    assert lines[0] == formatter.MARKER

    verdict = comment.index("⛔ **This check fails: a bucket or KMS key would be destroyed")
    table = comment.index("| Environment | Compared with |")
    destroyed = comment.index("### 💥 Destroyed, orphaned or replaced")
    security = comment.index("### 🔐 Security-relevant changes")
    full = comment.index("### Full diffs")
    assert verdict < table < destroyed < security < full
    assert "add the label `allow-destructive` to this pull request" in comment[:table]

    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| `")}
    assert list(rows) == ["`dev`", "`prod`", "`qa`", "`staging`", "`gone`"]
    assert rows["`dev`"].startswith(
        f"| `dev` | base branch `{BASE[:12]}` (no AWS) | 📝 changes | **5** (3 stateful) |"
    )
    assert (
        "| `prod` | deployed stack (AWS, us-east-1) | 📝 changes | 0 | +0 ~1 -0 |"
        in (rows["`prod`"])
    )
    assert rows["`prod`"].endswith("| **yes**: IAM policy |")
    assert "| 📝 changes | 5 | +1 ~8 -1, 1 outside resources | no |" in rows["`qa`"]
    assert "| 🆕 new environment | 0 |" in rows["`staging`"]
    assert "❌ failed: no result" in rows["`gone`"]
    assert "No deployed-stack diff because: no role configured: set DIFF_ROLE_ARN_X." in comment

    destroyed_part = comment[destroyed:security]
    dev_part = destroyed_part[: destroyed_part.index("**`qa`**")]
    # Stateful first, each with what it means here.
    assert dev_part.index("⛔ **orphan** `AWS::S3::Bucket` AccessLogs:") < dev_part.index(
        "**replace** `AWS::S3::BucketPolicy`"
    )
    assert "⛔ **replace** `AWS::S3::Bucket` ModelArtifacts/Bucket: a new, empty model bucket" in (
        dev_part
    )
    assert (
        "⛔ **orphan** `AWS::KMS::Key` Notifications/TopicKey: the key is kept outside" in dev_part
    )
    qa_part = destroyed_part[destroyed_part.index("**`qa`**") :]
    assert "**destroy** `AWS::SageMaker::Endpoint` Endpoint/EndpointMlG5Xlarge: the endpoint" in (
        qa_part
    )
    assert "⛔" not in qa_part

    security_part = comment[security:full]
    assert "`[~]` `AWS::IAM::Policy` EndpointExecutionPolicy: IAM policy (PolicyDocument)" in (
        security_part
    )
    assert "│ + │ ${AsyncIO/Bucket.Arn} │ Allow  │ s3:GetBucketLocation" in security_part
    assert "ScalingPolicy" not in security_part and "**`qa`**" not in security_part
    assert (
        "`AWS::S3::BucketPolicy` AccessLogs/Policy: resource policy (Bucket, PolicyDocument)"
        in (security_part)
    )

    full_part = comment[full:]
    assert full_part.count("<details>") == full_part.count("</details>") == 5
    assert (
        "<summary><b>qa</b>: 1 added, 8 modified, 1 removed, 5 destructive</summary>" in full_part
    )
    # A whole new environment's IAM tables and diff are too long for one comment.
    assert lines[-1].startswith(
        "<sub>Updated for aaaaaaaaaaaa · [workflow run](https://example.test/run/7) · cut to fit: "
    )
    assert "staging tables" in lines[-1] and len(comment) <= formatter.DEFAULT_BUDGET
    assert formatter.blocked(results, allow_destructive=False)


def test_the_label_allows_destructive_changes_and_the_comment_says_so(
    formatter: ModuleType, mixed: Path
) -> None:
    results = _results(formatter, mixed, "dev", "prod")
    comment = formatter.render(results, allow_destructive=True)
    assert "⛔ **This check fails" not in comment
    assert "⚠️ **A bucket or KMS key would be destroyed or replaced** in `dev`: allowed by the " in (
        comment
    )
    assert not formatter.blocked(results, allow_destructive=True)


def test_only_stateful_resources_block(formatter: ModuleType, mixed: Path) -> None:
    results = _results(formatter, mixed, "prod", "qa", "staging")
    assert not formatter.blocked(results, allow_destructive=False)
    comment = formatter.render(results)
    assert "This check fails" not in comment and "allow-destructive" not in comment


def test_no_differences_metadata_and_failures(formatter: ModuleType, tmp_path: Path) -> None:
    _write_result(tmp_path, "dev", "ok\n", _fixture("no_differences"))
    _write_result(tmp_path, "qa", "ok\n", _fixture("metadata_only"))
    _write_result(
        tmp_path,
        "prod",
        "failed\nmake diff exited with 2\n",
        "Unable to resolve AWS account",
        "deployed\nus-east-1\n",
    )
    _write_result(tmp_path, "odd", "maybe\n")
    comment = formatter.render(_results(formatter, tmp_path, "dev", "qa", "prod", "odd"))
    assert f"| `dev` | base branch `{BASE[:12]}` (no AWS) | ✅ no changes | 0 | 0 | no |" in comment
    assert "| `qa` |" in comment and "| `qa` | base branch" in comment
    assert comment.count("✅ no changes") == 2
    assert "| `prod` | deployed stack (AWS, us-east-1) | ❌ failed: make diff exited with 2 |" in (
        comment
    )
    assert "Unable to resolve AWS account" in comment
    assert "unreadable status 'maybe'" in comment
    assert "### 🔐" not in comment and "### 💥" not in comment


def test_long_diffs_are_cut_to_fit_and_say_so(formatter: ModuleType, tmp_path: Path) -> None:
    huge = _fixture("bucket_replacement") + "\n".join(
        f"[+] AWS::SNS::Topic Topic{i} Topic{i}AB12" for i in range(6_000)
    )
    for name in ("dev", "staging", "prod"):
        _write_result(tmp_path, name, "ok\n", huge)
    results = _results(formatter, tmp_path, "dev", "staging", "prod")
    comment = formatter.render(results, budget=formatter.DEFAULT_BUDGET)
    assert len(huge) * 3 > formatter.COMMENT_LIMIT
    assert len(comment) <= formatter.DEFAULT_BUDGET
    assert comment.count("more lines cut to fit the comment") == 6
    assert "cut to fit: dev tables, staging tables, prod tables, dev, staging, prod" in comment
    # The verdict, the summary and the destructive list survive the cut.
    assert "⛔ **This check fails" in comment
    assert "| 📝 changes | **5** (3 stateful) | +6002 ~7 -2 |" in comment
    assert comment.index("### 💥 Destroyed") < comment.index("### Full diffs")


def test_code_fences_outgrow_backticks_in_the_output(formatter: ModuleType, tmp_path: Path) -> None:
    _write_result(tmp_path, "dev", "failed\nboom\n", "error near ```json and ````")
    comment = formatter.render(_results(formatter, tmp_path, "dev"))
    assert "`````\nerror near ```json and ````\n`````" in comment


def test_table_cells_escape_pipes(formatter: ModuleType, tmp_path: Path) -> None:
    _write_result(tmp_path, "dev", "failed\nexit | code 2\n")
    comment = formatter.render(_results(formatter, tmp_path, "dev"))
    assert "❌ failed: exit \\| code 2 |" in comment


@pytest.mark.parametrize(("flags", "blocked"), [([], "true"), (["--allow-destructive"], "false")])
def test_command_line(
    formatter: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    blocked: str,
) -> None:
    _write_result(tmp_path / "results", "dev", "ok\n", _fixture("bucket_replacement"))
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    arguments = [str(tmp_path / "results"), "--environments", '["dev"]']
    assert formatter.main([*arguments, "--github-output", str(output), *flags]) == 0
    assert capsys.readouterr().out.startswith(formatter.MARKER + "\n")
    assert output.read_text() == f"earlier=1\nblocked={blocked}\n"
    with pytest.raises(SystemExit) as exit_info:
        formatter.main([str(tmp_path), "--environments", "dev"])
    assert exit_info.value.code == 2
    assert "--environments: must be a JSON list" in capsys.readouterr().err
