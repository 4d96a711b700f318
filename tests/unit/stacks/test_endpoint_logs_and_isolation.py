"""The endpoint's log retention and network isolation, as the environment table sets them."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.unit.stacks.conftest import Synth

SMALL = {"model_id": "facebook/musicgen-small"}


def _only(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.items()))


def _endpoint_id(template: Template) -> str:
    endpoint_id, _ = _only(template, "AWS::SageMaker::Endpoint")
    return endpoint_id


@pytest.mark.parametrize(("raw", "expected"), [({}, None), ({"network_isolation": True}, True)])
def test_network_isolation_comes_from_the_table_and_is_absent_when_off(
    synth: Synth, raw: dict[str, Any], expected: bool | None
) -> None:
    template = synth({"dev": {**SMALL, **raw}})["MusicGen-dev"]
    _, model = _only(template, "AWS::SageMaker::Model")
    # Absent, not false, when off: a new property value would replace a deployed Model.
    assert model["Properties"].get("EnableNetworkIsolation") is expected


def test_shipped_environments_leave_network_isolation_off(dev: Template, prod: Template) -> None:
    for template in (dev, prod):
        _, model = _only(template, "AWS::SageMaker::Model")
        assert "EnableNetworkIsolation" not in model["Properties"]


@pytest.mark.parametrize(("raw", "days"), [({}, 30), ({"log_retention_days": 365}, 365)])
def test_endpoint_log_group_gets_the_tables_retention_after_the_endpoint_exists(
    synth: Synth, raw: dict[str, Any], days: int
) -> None:
    template = synth({"dev": {**SMALL, **raw}})["MusicGen-dev"]
    _, retention = _only(template, "Custom::LogRetention")
    properties = retention["Properties"]
    assert properties["RetentionInDays"] == days
    # Named after the endpoint's generated name: CloudFormation runs it after the endpoint.
    assert properties["LogGroupName"] == {
        "Fn::Join": [
            "",
            ["/aws/sagemaker/Endpoints/", {"Fn::GetAtt": [_endpoint_id(template), "EndpointName"]}],
        ]
    }
    assert properties["RemovalPolicy"] == "retain"
    # No CloudFormation log group races SageMaker for the endpoint's name.
    assert not [
        group
        for group in template.find_resources("AWS::Logs::LogGroup").values()
        if "/aws/sagemaker/" in str(group["Properties"].get("LogGroupName", ""))
    ]


def test_shipped_environments_keep_endpoint_logs_for_their_retention(
    dev: Template, prod: Template
) -> None:
    assert _only(dev, "Custom::LogRetention")[1]["Properties"]["RetentionInDays"] == 14
    assert _only(prod, "Custom::LogRetention")[1]["Properties"]["RetentionInDays"] == 90


def _retention_role_statements(template: Template) -> tuple[str, list[dict[str, Any]]]:
    _, retention = _only(template, "Custom::LogRetention")
    handler_id = retention["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    role_id = template.find_resources("AWS::Lambda::Function")[handler_id]["Properties"]["Role"][
        "Fn::GetAtt"
    ][0]
    policies = [
        (policy_id, policy)
        for policy_id, policy in template.find_resources("AWS::IAM::Policy").items()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    assert len(policies) == 1, policies
    policy_id, policy = policies[0]
    assert not template.find_resources("AWS::IAM::Role")[role_id]["Properties"].get(
        "ManagedPolicyArns"
    )
    return policy_id, policy["Properties"]["PolicyDocument"]["Statement"]


def test_retention_handler_may_touch_only_endpoint_log_groups_and_its_own_logs(
    dev: Template,
) -> None:
    policy_id, statements = _retention_role_statements(dev)
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert set(by_sid) == {"EndpointLogGroupRetention", "OwnLambdaLogs"}
    endpoint_group = by_sid["EndpointLogGroupRetention"]
    assert sorted(endpoint_group["Action"]) == ["logs:CreateLogGroup", "logs:PutRetentionPolicy"]
    # SageMaker's endpoint groups: naming this endpoint's would turn every instance-type change
    # (a new endpoint) into an IAM change of `cdk diff`.
    assert endpoint_group["Resource"]["Fn::Join"][1][-1] == ":log-group:/aws/sagemaker/Endpoints/*"
    assert "*" not in str(by_sid["OwnLambdaLogs"]["Action"])
    assert "/aws/lambda/*" in str(by_sid["OwnLambdaLogs"]["Resource"])
    assert all(statement["Resource"] != "*" for statement in statements)
    # The handler runs only once its permissions exist.
    _, retention = _only(dev, "Custom::LogRetention")
    assert policy_id in retention["DependsOn"]
