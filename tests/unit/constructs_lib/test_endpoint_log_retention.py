"""EndpointLogRetention in a bare stack: the retention table, its rule and cdk-nag."""

from __future__ import annotations

import pytest
from aws_cdk import Stack
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from constructs_lib.endpoint_log_retention import LOG_RETENTION_DAYS, EndpointLogRetention
from constructs_lib.nag_acknowledgements import nag_packs
from tests.unit.constructs_lib.conftest import EndpointFactory


def test_each_accepted_retention_synthesizes_as_that_many_days() -> None:
    stack = Stack()
    for days, retention in LOG_RETENTION_DAYS.items():
        logs.LogGroup(stack, f"Group{days}", retention=retention)
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values()
    assert sorted(group["Properties"]["RetentionInDays"] for group in groups) == sorted(
        LOG_RETENTION_DAYS
    )


def test_a_retention_cloudwatch_refuses_is_named() -> None:
    with pytest.raises(ValueError, match=r"^retention_days: must be one of 1, 3, .* \(got 10\)$"):
        EndpointLogRetention(Stack(), "Logs", endpoint_name="musicgen", retention_days=10)


def test_a_literal_endpoint_name_names_the_group() -> None:
    stack = Stack()
    retention = EndpointLogRetention(stack, "Logs", endpoint_name="musicgen", retention_days=7)
    assert retention.log_group_name == "/aws/sagemaker/Endpoints/musicgen"
    Template.from_stack(stack).has_resource_properties(
        "Custom::LogRetention",
        {"LogGroupName": "/aws/sagemaker/Endpoints/musicgen", "RetentionInDays": 7},
    )


def test_cdk_nag_packs_find_nothing_unacknowledged(endpoint_factory: EndpointFactory) -> None:
    stack = Stack()
    endpoint = endpoint_factory(stack)
    retention = EndpointLogRetention(
        stack, "Logs", endpoint_name=endpoint.endpoint_name, retention_days=30
    )
    assert [
        (violation.rule_name, [r.construct_path for r in violation.violating_resources])
        for pack in nag_packs(retention)
        for violation in pack.validate_scope(retention).violations
    ] == []
