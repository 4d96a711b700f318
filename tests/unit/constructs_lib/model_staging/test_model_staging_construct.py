"""The ModelStaging construct in a minimal stack: provider, properties, attributes, cdk-nag."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from constructs_lib.model_staging import ModelStaging
from constructs_lib.nag_acknowledgements import nag_packs

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
MODEL_ID = "facebook/musicgen-small"


@pytest.fixture(scope="module")
def code_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("inference_code")
    (directory / "inference.py").write_text("def model_fn(model_dir):\n    return model_dir\n")
    (directory / "__pycache__").mkdir()
    (directory / "__pycache__" / "inference.cpython-312.pyc").write_bytes(b"\0")
    return directory


def build(code_directory: Path | str, **overrides: Any) -> tuple[cdk.Stack, ModelStaging]:
    app = cdk.App()
    stack = cdk.Stack(
        app, "StagingTest", env=cdk.Environment(account="123456789012", region="eu-west-1")
    )
    bucket = s3.Bucket(stack, "ModelBucket")
    props: dict[str, Any] = {
        "model_bucket": bucket,
        "model_id": MODEL_ID,
        "model_revision": "main",
        "code_directory": str(code_directory),
        **overrides,
    }
    staging = ModelStaging(stack, "Staging", **props)
    return stack, staging


@pytest.fixture(scope="module")
def synthesized(code_directory: Path) -> tuple[cdk.Stack, ModelStaging, Template]:
    stack, staging = build(code_directory, hub_token_secret_name="hf-hub-token")
    return stack, staging, Template.from_stack(stack)


def resources_of(template: Template, kind: str) -> dict[str, Any]:
    return template.find_resources(kind)


def test_provider_wires_on_event_and_is_complete(synthesized: Any) -> None:
    _, _, template = synthesized
    functions = resources_of(template, "AWS::Lambda::Function")
    handlers = {
        props["Properties"]["Handler"]: props["Properties"]
        for props in functions.values()
        if props["Properties"]["Handler"].startswith("staging.")
    }
    assert set(handlers) == {
        "staging.lambda_handler.on_event",
        "staging.lambda_handler.is_complete",
    }
    is_complete = handlers["staging.lambda_handler.is_complete"]
    assert is_complete["Runtime"] == "python3.14"
    assert is_complete["Timeout"] == 900
    assert is_complete["MemorySize"] == 2048
    assert "Environment" not in is_complete  # no secrets or endpoints baked into the function
    template.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    framework_on_event = next(
        logical_id
        for logical_id, props in functions.items()
        if "USER_ON_EVENT_FUNCTION_ARN" in json.dumps(props)
    )
    for kind in ("Custom::ModelSnapshot", "Custom::ModelPackage"):
        (resource,) = resources_of(template, kind).values()
        assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": [framework_on_event, "Arn"]}


def test_waiter_state_machine_logs_under_vendedlogs_one_group_per_stack(
    synthesized: Any, code_directory: Path
) -> None:
    """Step Functions grows the account's 5,120-character CloudWatch Logs resource policy for
    every other log group it delivers to (bp-cwl.html)."""
    _, _, template = synthesized
    (machine,) = resources_of(template, "AWS::StepFunctions::StateMachine").values()
    (destination,) = machine["Properties"]["LoggingConfiguration"]["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = resources_of(template, "AWS::Logs::LogGroup")[group_id]["Properties"]
    name = group["LogGroupName"]
    assert name.startswith("/aws/vendedlogs/states/StagingTest") and name.endswith("-waiter")
    assert group["RetentionInDays"] == 90

    other = Template.from_stack(build(code_directory)[0])
    other_names = {
        props["Properties"].get("LogGroupName")
        for props in other.find_resources("AWS::Logs::LogGroup").values()
    }
    assert name in other_names  # the same stack and path give the same name at every synth

    app = cdk.App()
    renamed = cdk.Stack(app, "OtherStagingStack")
    ModelStaging(
        renamed,
        "Staging",
        model_bucket=s3.Bucket(renamed, "ModelBucket"),
        model_id=MODEL_ID,
        model_revision="main",
        code_directory=str(code_directory),
    )
    renamed_names = {
        props["Properties"].get("LogGroupName")
        for props in Template.from_stack(renamed).find_resources("AWS::Logs::LogGroup").values()
    }
    assert name not in renamed_names
    assert any(str(n).startswith("/aws/vendedlogs/states/OtherStagingStack") for n in renamed_names)


def test_custom_resource_properties(synthesized: Any) -> None:
    stack, staging, template = synthesized
    bucket_ref = {
        "Ref": stack.get_logical_id(stack.node.find_child("ModelBucket").node.default_child)
    }
    ((snapshot_id, snapshot),) = resources_of(template, "Custom::ModelSnapshot").items()
    assert {k: v for k, v in snapshot["Properties"].items() if k != "ServiceToken"} == {
        "Bucket": bucket_ref,
        "KeyPrefix": "models/",
        "ModelId": MODEL_ID,
        "Revision": "main",
        "HubTokenSecretName": "hf-hub-token",
    }
    (package,) = resources_of(template, "Custom::ModelPackage").values()
    properties = package["Properties"]
    assert properties["SnapshotUri"] == {"Fn::GetAtt": [snapshot_id, "SnapshotUri"]}
    assert properties["KeyPrefix"] == "packages/"
    assert properties["ModelId"] == MODEL_ID
    assert properties["CodeHash"] == staging.code_hash
    assert properties["CodeKey"] == f"{staging.code_hash}.zip"
    assert "ModelS3Uri" not in properties


def test_attributes(synthesized: Any) -> None:
    stack, staging, template = synthesized
    (package_id,) = resources_of(template, "Custom::ModelPackage")
    assert stack.resolve(staging.commit) == {"Fn::GetAtt": [package_id, "Commit"]}
    assert stack.resolve(staging.model_data_url) == {"Fn::GetAtt": [package_id, "ModelDataUrl"]}
    assert staging.package_objects_pattern == "packages/facebook/musicgen-small/*"
    assert isinstance(staging.grant_principal, iam.Role)


def test_handler_role_permissions(synthesized: Any) -> None:
    stack, staging, template = synthesized
    role_id = stack.get_logical_id(staging.grant_principal.node.default_child)
    policies = [
        props["Properties"]
        for props in resources_of(template, "AWS::IAM::Policy").values()
        if props["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]
    rendered = json.dumps(statements)
    assert "secret:hf-hub-token-??????" in rendered
    assert f"/{staging.code_hash}.zip" in rendered
    assert '"Action": "s3:*"' not in rendered and '"Resource": "*"' not in rendered
    tagging = next(s for s in statements if "s3:PutObjectTagging" in s["Action"])
    assert tagging["Action"] == ["s3:GetObjectTagging", "s3:PutObjectTagging"]
    assert tagging["Resource"]["Fn::Join"][1][-1] == "/models/*"
    # The custom resources wait for the role's policy, or their first call would be denied.
    for kind in ("Custom::ModelSnapshot", "Custom::ModelPackage"):
        (resource,) = resources_of(template, kind).values()
        policy_id = stack.get_logical_id(
            staging.grant_principal.node.find_child("DefaultPolicy").node.default_child
        )
        assert policy_id in resource["DependsOn"]


def test_cdk_nag_finds_nothing_unacknowledged(synthesized: Any) -> None:
    _, staging, _ = synthesized
    assert [
        (v.rule_name, [r.construct_path for r in v.violating_resources])
        for pack in nag_packs(staging)
        for v in pack.validate_scope(staging).violations
    ] == []


def test_acknowledgements_carry_reasons(synthesized: Any) -> None:
    _, staging, _ = synthesized
    entries = [
        entry.data
        for construct in staging.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    ]
    reasons = {rule: reason for data in entries for rule, reason in data.items()}
    assert reasons and all(len(reason) > 40 for reason in reasons.values())


def test_synth_is_stable_and_ignores_bytecode(code_directory: Path, tmp_path: Path) -> None:
    first = Template.from_stack(build(code_directory)[0]).to_json()
    second = Template.from_stack(build(code_directory)[0]).to_json()
    assert first == second

    without_bytecode = tmp_path / "clean"
    without_bytecode.mkdir()
    (without_bytecode / "inference.py").write_bytes((code_directory / "inference.py").read_bytes())
    clean = Template.from_stack(build(without_bytecode)[0]).to_json()
    assert clean == first


def test_inputs_change_the_properties(code_directory: Path, tmp_path: Path) -> None:
    def package_properties(stack: cdk.Stack) -> dict[str, Any]:
        (package,) = Template.from_stack(stack).find_resources("Custom::ModelPackage").values()
        return package["Properties"]

    base = build(code_directory)[0]
    pinned = build(code_directory, model_revision="a" * 40)[0]
    (snapshot,) = Template.from_stack(pinned).find_resources("Custom::ModelSnapshot").values()
    assert snapshot["Properties"]["Revision"] == "a" * 40

    changed_code = tmp_path / "code"
    changed_code.mkdir()
    (changed_code / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    assert (
        package_properties(build(changed_code)[0])["CodeHash"]
        != package_properties(base)["CodeHash"]
    )


def test_user_staged_weights_skip_the_snapshot(code_directory: Path) -> None:
    stack, staging = build(code_directory, model_s3_uri="s3://weights/musicgen")
    template = Template.from_stack(stack)

    template.resource_count_is("Custom::ModelSnapshot", 0)
    (package,) = template.find_resources("Custom::ModelPackage").values()
    assert package["Properties"]["ModelS3Uri"] == "s3://weights/musicgen"
    assert "SnapshotUri" not in package["Properties"]
    statements = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert '"s3:prefix": ["musicgen/*"]' in statements
    assert ':s3:::weights/musicgen/*"' in statements
    assert [
        violation.rule_name
        for pack in nag_packs(staging)
        for violation in pack.validate_scope(staging).violations
    ] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"model_id": "musicgen-small"},
            r"model_id: must be a Hugging Face model id 'owner/name' \(got 'musicgen-small'\)",
        ),
        ({"model_revision": ""}, r"model_revision: must be a branch, tag or commit"),
        ({"model_revision": "main "}, r"model_revision: .* \(got 'main '\)"),
        (
            {"model_s3_uri": "weights/musicgen"},
            r"model_s3_uri: must start with s3:// \(got 'weights/musicgen'\)",
        ),
        ({"hub_token_secret_name": " "}, r"hub_token_secret_name: must be a secret name or None"),
        (
            {"code_directory": "/nonexistent"},
            r"code_directory: must hold inference.py \(got '/nonexistent'\)",
        ),
    ],
)
def test_bad_props_are_named(code_directory: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(overrides.pop("code_directory", code_directory), **overrides)
