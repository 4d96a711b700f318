"""Whole-app checks: cdk-nag, cfn-lint, the template snapshot, and the app's command line."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from aws_cdk import App, Stack, Token
from aws_cdk.assertions import Template

from constructs_lib.nag_acknowledgements import nag_packs
from stacks.app_builder import build_app
from tests.unit.stacks.conftest import REPO, SHIPPED_CONTEXT, Assembly

SNAPSHOTS = Path(__file__).parent / "snapshots"
STACK_NAMES = ["MusicGen-dev", "MusicGen-prod"]
# The environment whose whole template is the snapshot; the other is pinned as its differences.
SNAPSHOT_STACK = "MusicGen-dev"
DIFFERENCES_STACK = "MusicGen-prod"
# Masks every 64-hex string, not only asset hashes: the model package's `CodeHash`/`CodeKey`
# (the inference code's asset hash) and every Lambda code key are masked too, so the snapshot
# cannot see a change of the packaged code. test_the_model_package_ships_this_trees_code does.
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
_ABSENT = "<absent>"


def unacknowledged_findings(stack: Stack) -> list[tuple[str, list[str]]]:
    """Findings of every cdk-nag pack the app runs (AwsSolutions, NIST 800-53 rev 5) in `stack`
    that no acknowledgement covers."""
    packs = nag_packs(stack)
    assert {pack.read_pack_name for pack in packs} == {"AwsSolutions", "NIST.800.53.R5"}
    return sorted(
        (violation.rule_name, sorted(r.construct_path for r in violation.violating_resources))
        for pack in packs
        for violation in pack.validate_scope(stack).violations
    )


def _stack(assembly: Assembly, name: str) -> Stack:
    stack = assembly.app.node.find_child(name)
    assert isinstance(stack, Stack)
    return stack


@pytest.mark.parametrize("stack_name", STACK_NAMES)
def test_cdk_nag_finds_nothing_unacknowledged(shipped_assembly: Assembly, stack_name: str) -> None:
    assert unacknowledged_findings(_stack(shipped_assembly, stack_name)) == []


def test_cdk_nag_reports_a_new_finding(tmp_path: Path) -> None:
    """The same check sees a new finding, and the plugin stops synthesis on it."""
    from aws_cdk import aws_sqs as sqs

    app = App(context={**SHIPPED_CONTEXT, "env": "dev"}, outdir=str(tmp_path))
    (stack,) = build_app(app)
    sqs.Queue(stack, "UnencryptedQueueWithoutDeadLetters")

    assert ("AwsSolutions-SQS3", ["MusicGen-dev/UnencryptedQueueWithoutDeadLetters/Resource"]) in (
        unacknowledged_findings(stack)
    )
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS3"):
        app.synth()


def test_cdk_nag_reports_a_finding_only_the_nist_pack_flags(tmp_path: Path) -> None:
    """A log group without a customer key passes AwsSolutions; NIST 800-53 rev 5 stops it."""
    from aws_cdk import aws_logs as logs

    app = App(context={**SHIPPED_CONTEXT, "env": "prod"}, outdir=str(tmp_path))
    (stack,) = build_app(app)
    logs.LogGroup(stack, "LogsWithoutCustomerKey")

    findings = unacknowledged_findings(stack)
    assert findings == [
        (
            "NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            ["MusicGen-prod/LogsWithoutCustomerKey/Resource"],
        )
    ]
    with pytest.raises(RuntimeError, match=r"NIST\.800\.53\.R5-CloudWatchLogGroupEncrypted"):
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


def _lint_errors(template: dict[str, Any], regions: list[str]) -> list[str]:
    matches = cfnlint.api.lint(json.dumps(template), regions=regions)
    return [str(match) for match in matches if match.rule.severity == "error"]


def _deploy_regions(stack: Stack, template: dict[str, Any]) -> list[str]:
    """The stack's region, or every region its image mapping offers when it is region-agnostic."""
    if not Token.is_unresolved(stack.region):
        return [stack.region]
    return sorted(template["Mappings"]["InferenceImageByRegion"])


@pytest.mark.parametrize("stack_name", STACK_NAMES)
def test_cfn_lint_finds_no_errors_in_any_region_the_stack_offers(
    shipped_assembly: Assembly, stack_name: str
) -> None:
    stack = _stack(shipped_assembly, stack_name)
    template = json.loads((shipped_assembly.outdir / stack.template_file).read_text())
    regions = _deploy_regions(stack, template)
    assert regions and all(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", r) for r in regions), regions

    assert _lint_errors(template, regions) == []

    # cfn-lint really ran on it: the same template with an unknown property, or in a region
    # without SageMaker resource types, is an error.
    broken = copy.deepcopy(template)
    (model,) = (r for r in broken["Resources"].values() if r["Type"] == "AWS::SageMaker::Model")
    model["Properties"]["NotAProperty"] = True
    assert any(
        "E3002" in error and "NotAProperty" in error for error in _lint_errors(broken, regions[:1])
    )
    assert any(
        "E3006" in error and "AWS::SageMaker::Endpoint" in error
        for error in _lint_errors(template, ["me-central-1"])
    )


def _masked(template: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


def _differences(before: Any, after: Any, path: str = "") -> dict[str, Any]:
    """{JSON path: {"dev": value, "prod": value}} for every place the two documents differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: dict[str, Any] = {}
        for key in sorted(set(before) | set(after)):
            found.update(
                _differences(before.get(key, _ABSENT), after.get(key, _ABSENT), f"{path}/{key}")
            )
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = {}
        for index, (left, right) in enumerate(zip(before, after, strict=True)):
            found.update(_differences(left, right, f"{path}/{index}"))
        return found
    if before == after:
        return {}
    return {path: {"dev": before, "prod": after}}


def check_snapshot(path: Path, actual: Any) -> None:
    """Compare `actual` with the stored snapshot; with UPDATE_SNAPSHOTS=1 rewrite it and fail.

    An update never passes: the test that wrote the file has compared nothing.
    """
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        pytest.fail(f"{path.name} updated: review it, then run the tests without UPDATE_SNAPSHOTS")
    expected = json.loads(path.read_text())
    assert actual == expected, (
        f"{path.name} no longer matches; review `cdk diff`, then run `UPDATE_SNAPSHOTS=1 make test`"
    )


def test_template_matches_snapshot(shipped: dict[str, Template]) -> None:
    check_snapshot(SNAPSHOTS / f"{SNAPSHOT_STACK}.json", _masked(shipped[SNAPSHOT_STACK].to_json()))


def test_the_other_environment_differs_only_as_recorded(shipped: dict[str, Template]) -> None:
    differences = _differences(
        _masked(shipped[SNAPSHOT_STACK].to_json()), _masked(shipped[DIFFERENCES_STACK].to_json())
    )
    # The environment table's differences show up where they must.
    assert differences["/Description"]["prod"].startswith("MusicGen facebook/musicgen-large")
    assert differences["/Resources/ScalingTarget6760FBAF/Properties/MaxCapacity"] == {
        "dev": 1,
        "prod": 4,
    }
    check_snapshot(SNAPSHOTS / f"{DIFFERENCES_STACK}.differences-from-dev.json", differences)


def test_updating_a_snapshot_reports_it_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snapshots" / "Example.json"
    monkeypatch.setenv("UPDATE_SNAPSHOTS", "1")
    with pytest.raises(pytest.fail.Exception, match=r"^Example\.json updated: review it"):
        check_snapshot(snapshot, {"Resources": {}})
    assert json.loads(snapshot.read_text()) == {"Resources": {}}

    monkeypatch.delenv("UPDATE_SNAPSHOTS")
    check_snapshot(snapshot, {"Resources": {}})
    with pytest.raises(AssertionError, match=r"Example\.json no longer matches"):
        check_snapshot(snapshot, {"Resources": {"Queue": {}}})


def _files_below(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.mark.parametrize("stack_name", STACK_NAMES)
def test_the_model_package_ships_this_trees_code(
    shipped_assembly: Assembly, shipped: dict[str, Template], stack_name: str
) -> None:
    """The snapshot masks the code hash; here it must name an asset holding inference_code/."""
    (package,) = shipped[stack_name].find_resources("Custom::ModelPackage").values()
    code_hash = package["Properties"]["CodeHash"]
    assert _ASSET_HASH.fullmatch(code_hash), code_hash
    assert package["Properties"]["CodeKey"] == f"{code_hash}.zip"
    staged = shipped_assembly.outdir / f"asset.{code_hash}"
    assert _files_below(staged) == _files_below(REPO / "inference_code")


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
