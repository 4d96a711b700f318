"""The inference image resolved offline, and its pull grant."""

from __future__ import annotations

import pytest
from aws_cdk import Environment, Stack
from aws_cdk.assertions import Match, Template

from constructs_lib.container_image import UnsupportedContainerVersions, inference_image
from tests.unit.constructs_lib.conftest import acknowledged, grantee_role, statements_of

VERSIONS = {"transformers": "4.51.3", "pytorch": "2.6.0", "instance_type": "ml.g5.xlarge"}


def test_concrete_region_gets_a_literal_uri_and_repository() -> None:
    stack = Stack(env=Environment(account="123456789012", region="us-east-1"))
    image = inference_image(stack, **VERSIONS)
    assert image.uri == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
    )
    assert stack.resolve(image.repository_arn) == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference",
            ],
        ]
    }


def test_region_agnostic_stack_looks_the_image_up_per_region() -> None:
    stack = Stack()
    image = inference_image(stack, **VERSIONS)
    assert stack.resolve(image.uri) == {
        "Fn::FindInMap": ["InferenceImageByRegion", {"Ref": "AWS::Region"}, "uri"]
    }
    mapping = Template.from_stack(stack).to_json()["Mappings"]["InferenceImageByRegion"]
    assert mapping["cn-north-1"]["account"] == "727897471807"


def test_unknown_versions_are_refused_with_the_known_ones() -> None:
    with pytest.raises(UnsupportedContainerVersions, match=r"transformers 4\.99\.0; known: "):
        inference_image(Stack(), **{**VERSIONS, "transformers": "4.99.0"})


def test_grant_pull_is_one_repository_plus_registry_authentication() -> None:
    stack = Stack(env=Environment(account="123456789012", region="us-east-1"))
    role = grantee_role(stack)
    inference_image(stack, **VERSIONS).grant_pull(role)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Sid": "PullImage",
                        "Effect": "Allow",
                        "Action": [
                            "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer",
                            "ecr:BatchCheckLayerAvailability",
                        ],
                        "Resource": Match.object_like({"Fn::Join": Match.any_value()}),
                    },
                    {
                        "Sid": "AuthenticateToRegistry",
                        "Effect": "Allow",
                        "Action": "ecr:GetAuthorizationToken",
                        "Resource": "*",
                    },
                ]
            }
        },
    )
    assert "repository/huggingface-pytorch-inference" in str(statements_of(template)[0])
    assert "AwsSolutions-IAM5[Resource::*]" in acknowledged(role)
