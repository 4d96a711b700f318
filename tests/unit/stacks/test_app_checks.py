"""Whole-app checks: cdk-nag, cfn-lint, template snapshots, and the app's command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app_builder import build_app
from tests.unit.stacks.conftest import REPO, SHIPPED_CONTEXT, Assembly

SNAPSHOTS = Path(__file__).parent / "snapshots"
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def test_cdk_nag_finds_nothing_unacknowledged(shipped_assembly: Assembly) -> None:
    # Synthesis succeeded, and the AwsSolutions plugin fails it on any unacknowledged finding
    # (shown by the next test); a report, when written, must hold no violation either.
    report_path = shipped_assembly.outdir / "validation-report.json"
    if report_path.exists():
        for plugin in json.loads(report_path.read_text())["pluginReports"]:
            assert plugin["conclusion"] == "success", plugin["violations"]
    assert list(shipped_assembly.outdir.glob("MusicGen-*.template.json"))


def test_cdk_nag_reports_a_new_finding(tmp_path: Path) -> None:
    """The plugin is really wired: an unacknowledged finding stops synthesis."""
    from aws_cdk import aws_sqs as sqs

    app = App(context={**SHIPPED_CONTEXT, "env": "dev"}, outdir=str(tmp_path))
    stacks = build_app(app)
    sqs.Queue(stacks[0], "UnencryptedQueueWithoutDeadLetters")
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS3"):
        app.synth()


def test_every_acknowledgement_gives_a_specific_reason(shipped_assembly: Assembly) -> None:
    reasons = {
        rule: reason
        for construct in shipped_assembly.app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule, reason in entry.data.items()
    }
    assert reasons, "no acknowledgements found: the metadata format changed"
    for rule, reason in reasons.items():
        assert len(reason) >= 40, f"{rule}: reason too vague: {reason!r}"


def test_cfn_lint_finds_no_errors(shipped_assembly: Assembly) -> None:
    templates = sorted(shipped_assembly.outdir.glob("MusicGen-*.template.json"))
    assert [t.name for t in templates] == [
        "MusicGen-dev.template.json",
        "MusicGen-prod.template.json",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors


def _masked(template: dict[str, Any]) -> dict[str, Any]:
    """Asset hashes change with any byte of runtime code; the snapshot pins the rest."""
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


@pytest.mark.parametrize("stack_name", ["MusicGen-dev", "MusicGen-prod"])
def test_template_matches_snapshot(shipped: dict[str, Template], stack_name: str) -> None:
    actual = _masked(shipped[stack_name].to_json())
    path = SNAPSHOTS / f"{stack_name}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert actual == expected, (
        f"{stack_name} changed; review `cdk diff`, then run `UPDATE_SNAPSHOTS=1 make test`"
    )


def _run_app(tmp_path: Path, context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def test_app_selects_one_environment(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {**SHIPPED_CONTEXT, "env": "prod"})
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.glob("*.template.json")] == ["MusicGen-prod.template.json"]


def test_app_rejects_unknown_environment_in_one_line(tmp_path: Path) -> None:
    result = _run_app(tmp_path, {**SHIPPED_CONTEXT, "env": "staging"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Invalid configuration: environments.staging.*: unknown environment; "
        "known environments: dev, prod"
    )


def test_app_stops_on_a_bad_field_in_one_line(tmp_path: Path) -> None:
    table = {"dev": {"model_id": "facebook/musicgen-small", "min_instances": 3, "max_instances": 2}}
    result = _run_app(tmp_path, {**SHIPPED_CONTEXT, "environments": table})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Invalid configuration: environments.dev.max_instances: must be >= min_instances (3)"
        " (got 2)"
    )
    assert not list(tmp_path.glob("*.template.json"))


def test_app_rejects_container_versions_missing_from_the_image_table(tmp_path: Path) -> None:
    table = {"dev": {"model_id": "facebook/musicgen-small", "dlc": {"transformers": "4.99.0"}}}
    result = _run_app(tmp_path, {**SHIPPED_CONTEXT, "environments": table})
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "Invalid configuration: environments.dev.dlc: no Hugging Face inference image for "
        "transformers 4.99.0; known: "
    )
