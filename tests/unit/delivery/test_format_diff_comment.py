"""The PR-comment formatter, on real `cdk diff` output (see fixtures/README.md)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.delivery.delivery_paths import FIXTURES


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _write_result(root: Path, environment: str, status: str, output: str | None = None) -> None:
    folder = root / environment
    folder.mkdir(parents=True)
    (folder / "status").write_text(status, encoding="utf-8")
    if output is not None:
        (folder / "output.txt").write_text(output, encoding="utf-8")


def test_clean_drops_colour_codes_and_jsii_banners(formatter: ModuleType) -> None:
    coloured = formatter.clean(_fixture("cdk_diff_colour.txt"))
    plain = formatter.clean(_fixture("cdk_diff_security_changes.txt"))
    assert "\x1b" not in coloured and "b'!!" not in coloured and "b'!!" not in plain
    # Same diff, two CLI runs: the CLI groups the rows of its IAM table differently per run.
    assert set(coloured.strip().splitlines()) == set(plain.strip().splitlines())
    assert plain.lstrip().startswith("Stack MusicGen-dev")


def test_resource_changes_are_parsed_with_their_top_level_properties(
    formatter: ModuleType,
) -> None:
    changes = formatter.parse_resources(formatter.clean(_fixture("cdk_diff_security_changes.txt")))
    assert [(c.change, c.resource_type, c.name, c.properties) for c in changes] == [
        ("-", "AWS::SNS::Topic", "LegacyFA07BB5D", ()),
        ("+", "AWS::KMS::Key", "DataKey", ()),
        (
            "~",
            "AWS::S3::Bucket",
            "Data",
            ("BucketEncryption", "LifecycleConfiguration", "Metadata"),
        ),
        ("~", "AWS::S3::BucketPolicy", "Data/Policy", ("Metadata",)),
        ("~", "AWS::IAM::Role", "EndpointRole", ("Metadata",)),
        ("~", "AWS::IAM::Policy", "EndpointRole/DefaultPolicy", ("PolicyDocument", "Metadata")),
        ("~", "AWS::SNS::Topic", "Success", ("DisplayName", "Metadata")),
    ]


def test_security_relevance_ignores_metadata_only_changes(formatter: ModuleType) -> None:
    changes = formatter.parse_resources(formatter.clean(_fixture("cdk_diff_security_changes.txt")))
    flagged = {
        c.name: (c.security_reasons, c.security_properties) for c in changes if c.security_reasons
    }
    assert flagged == {
        "DataKey": (("KMS",), ()),
        "Data": (("encryption",), ("BucketEncryption",)),
        "EndpointRole/DefaultPolicy": (("IAM",), ("PolicyDocument",)),
    }


@pytest.mark.parametrize(
    ("line", "reasons"),
    [
        ("[+] AWS::S3::BucketPolicy Bucket/Policy BucketPolicyAB12", ("bucket policy",)),
        ("[-] AWS::IAM::Role Role RoleAB12", ("IAM",)),
        ("[+] AWS::SNS::TopicPolicy Topic/Policy TopicPolicyAB12", ("resource policy",)),
        ("[+] AWS::EC2::SecurityGroup Sg SgAB12", ("network",)),
        ("[+] AWS::SecretsManager::Secret Token TokenAB12", ("secret",)),
        ("[+] AWS::SQS::Queue Queue QueueAB12", ()),
    ],
)
def test_security_relevant_resource_types(
    formatter: ModuleType, line: str, reasons: tuple[str, ...]
) -> None:
    (change,) = formatter.parse_resources(line)
    assert change.security_reasons == reasons


def test_property_changes_that_touch_encryption_or_roles_are_flagged(
    formatter: ModuleType,
) -> None:
    text = "\n".join(
        [
            "[~] AWS::SageMaker::EndpointConfig Config ConfigAB12 replace",
            " ├─ [~] KmsKeyId (requires replacement)",
            " └─ [~] ProductionVariants",
            "[~] AWS::SageMaker::Model Model ModelAB12 replace",
            " └─ [~] ExecutionRoleArn (requires replacement)",
            "[~] AWS::SNS::Topic Topic TopicAB12",
            " └─ [~] DisplayName",
        ]
    )
    reasons = {c.name: c.security_reasons for c in formatter.parse_resources(text)}
    assert reasons == {"Config": ("encryption",), "Model": ("IAM",), "Topic": ()}


def test_comment_puts_security_first_and_collapses_each_environment(
    formatter: ModuleType, tmp_path: Path
) -> None:
    _write_result(tmp_path, "dev", "ok\n", _fixture("cdk_diff_security_changes.txt"))
    _write_result(
        tmp_path,
        "prod",
        "skipped\nno role configured: set the repository variable DIFF_ROLE_ARN_PROD\n",
    )
    _write_result(tmp_path, "qa", "ok\n", _fixture("cdk_diff_metadata_only.txt"))
    results = [formatter.read_result(tmp_path, name) for name in ("dev", "prod", "qa", "gone")]
    comment = formatter.render(results, run_url="https://example.test/run/7", commit="a" * 40)

    assert comment.splitlines()[0] == formatter.MARKER
    rows = [line for line in comment.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == ["`dev`", "`prod`", "`qa`", "`gone`"]
    assert "| 🔐 changes | +1 ~3 -1 | **yes**: IAM, KMS, encryption |" in rows[0]
    assert "skipped: no role configured: set the repository variable DIFF_ROLE_ARN_PROD" in rows[1]
    assert "✅ no changes" in rows[2]
    assert "❌ failed: no result" in rows[3]

    security = comment.index("### 🔐 Security-relevant changes")
    full = comment.index("### Full diffs")
    assert security < full
    security_part = comment[security:full]
    assert "`[+]` `AWS::KMS::Key` DataKey — KMS" in security_part
    assert "`AWS::S3::Bucket` Data — encryption (BucketEncryption)" in security_part
    assert "│ + │ ${DataKey.Arn} │ Allow  │ kms:*" in security_part
    assert "AWS::SNS::Topic" not in security_part and "`qa`" not in security_part

    full_part = comment[full:]
    assert full_part.count("<details>") == full_part.count("</details>") == 4
    assert "<summary><b>dev</b>: 1 added, 3 modified, 1 removed, 3 security-relevant</summary>" in (
        full_part
    )
    assert "<summary><b>qa</b>: no changes</summary>" in full_part
    assert "[-] AWS::SNS::Topic LegacyFA07BB5D destroy" in full_part
    assert "b'!!" not in comment
    assert comment.rstrip().endswith(
        "<sub>Updated for aaaaaaaaaaaa · [workflow run](https://example.test/run/7)</sub>"
    )


def test_no_differences_and_failures(formatter: ModuleType, tmp_path: Path) -> None:
    _write_result(tmp_path, "dev", "ok\n", _fixture("cdk_diff_no_differences.txt"))
    _write_result(
        tmp_path, "prod", "failed\nmake diff exited with 2\n", "Unable to resolve AWS account"
    )
    _write_result(tmp_path, "odd", "maybe\n")
    comment = formatter.render([formatter.read_result(tmp_path, n) for n in ("dev", "prod", "odd")])
    assert "| `dev` | ✅ no changes | 0 | no |" in comment
    assert "| `prod` | ❌ failed: make diff exited with 2 |" in comment
    assert "Unable to resolve AWS account" in comment
    assert "unreadable status 'maybe'" in comment
    assert "Security-relevant changes" not in comment


def test_long_diffs_are_cut_to_fit_and_say_so(formatter: ModuleType, tmp_path: Path) -> None:
    huge = _fixture("cdk_diff_security_changes.txt") + "\n".join(
        f"[+] AWS::SNS::Topic Topic{i} Topic{i}AB12" for i in range(6_000)
    )
    for name in ("dev", "staging", "prod"):
        _write_result(tmp_path, name, "ok\n", huge)
    results = [formatter.read_result(tmp_path, n) for n in ("dev", "staging", "prod")]
    comment = formatter.render(results, budget=formatter.DEFAULT_BUDGET)
    assert len(huge) * 3 > formatter.COMMENT_LIMIT
    assert len(comment) <= formatter.DEFAULT_BUDGET
    assert comment.count("more lines cut to fit the comment") == 3
    assert "cut to fit: dev, staging, prod" in comment
    # The summary and the security section survive the cut.
    assert "| `prod` | 🔐 changes | +6001 ~3 -1 |" in comment
    assert comment.index("### 🔐 Security-relevant changes") < comment.index("### Full diffs")


def test_code_fences_outgrow_backticks_in_the_output(formatter: ModuleType, tmp_path: Path) -> None:
    _write_result(tmp_path, "dev", "failed\nboom\n", "error near ```json and ````")
    comment = formatter.render([formatter.read_result(tmp_path, "dev")])
    assert "`````\nerror near ```json and ````\n`````" in comment


def test_table_cells_escape_pipes(formatter: ModuleType, tmp_path: Path) -> None:
    _write_result(tmp_path, "dev", "failed\nexit | code 2\n")
    comment = formatter.render([formatter.read_result(tmp_path, "dev")])
    assert "| `dev` | ❌ failed: exit \\| code 2 |" in comment


def test_command_line(
    formatter: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_result(tmp_path, "dev", "ok\n", _fixture("cdk_diff_no_differences.txt"))
    assert formatter.main([str(tmp_path), "--environments", '["dev"]']) == 0
    assert capsys.readouterr().out.startswith(formatter.MARKER + "\n")
    with pytest.raises(SystemExit) as exit_info:
        formatter.main([str(tmp_path), "--environments", "dev"])
    assert exit_info.value.code == 2
    assert "--environments: must be a JSON list" in capsys.readouterr().err
