"""Each construct in a bare `Stack()`, the way cdklabs' construct tests build them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns

from constructs_lib.async_endpoint import (
    AsyncEndpoint,
    AsyncOutput,
    Capacity,
    DeployCapacity,
    ServedModel,
)

EndpointFactory = Callable[..., AsyncEndpoint]


def grantee_role(stack: Stack, construct_id: str = "Grantee") -> iam.Role:
    """A role to receive grants; its statements land in its default policy."""
    return iam.Role(stack, construct_id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))


def statements_of(template: Any, role_prefix: str = "Grantee") -> list[dict[str, Any]]:
    """The statements of the one policy attached to the role whose logical id starts so."""
    policies = [
        policy
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if any(r["Ref"].startswith(role_prefix) for r in policy["Properties"]["Roles"])
    ]
    assert len(policies) == 1, policies
    statements: list[dict[str, Any]] = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    return statements


def acknowledged(construct: Any) -> dict[str, str]:
    """The cdk-nag acknowledgements recorded on one construct, rule id -> reason."""
    return {
        rule.removeprefix("Annotation::"): reason
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule, reason in entry.data.items()
    }


@pytest.fixture
def endpoint_factory() -> EndpointFactory:
    """`factory(stack, instance_type=..., **overrides)` -> an AsyncEndpoint with literal props.

    Overrides: `initial_instance_count`, `max_concurrent`, `on_deploy`,
    `download_timeout_seconds`, `startup_timeout_seconds`.
    """

    def build(
        stack: Stack, *, instance_type: str = "ml.g5.xlarge", **capacity: Any
    ) -> AsyncEndpoint:
        return AsyncEndpoint(
            stack,
            "Endpoint",
            model=ServedModel(
                image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/image:1",
                model_data_url="s3://models/packages/owner/name/abc/",
                environment={"MUSICGEN_MODEL_ID": "owner/name"},
                download_timeout_seconds=capacity.get("download_timeout_seconds", 900),
                startup_timeout_seconds=capacity.get("startup_timeout_seconds", 600),
                volume_size_gb=30,
            ),
            output=AsyncOutput(
                output_path="s3://io/async-output/",
                failure_path="s3://io/async-failure/",
                success_topic=sns.Topic(stack, "Success"),
                error_topic=sns.Topic(stack, "Error"),
            ),
            capacity=Capacity(
                instance_type=instance_type,
                initial_instance_count=capacity.get("initial_instance_count", 1),
                max_concurrent_invocations_per_instance=capacity.get("max_concurrent", 1),
                on_deploy=capacity.get("on_deploy", DeployCapacity.INITIAL),
            ),
        )

    return build
