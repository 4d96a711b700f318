"""ExternalInputLocation grants: read-only, one prefix, a key only when one is named."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk.assertions import Template

from constructs_lib.external_input import ExternalInputLocation
from tests.unit.constructs_lib.conftest import grantee_role, statements_of
from tests.unit.stacks.test_app_checks import unacknowledged_findings

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SEED_PREFIX = ExternalInputLocation("sagemaker-eu-west-1-123456789012", "musicgen_large/input/")
OBJECTS = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":s3:::sagemaker-eu-west-1-123456789012/musicgen_large/input/*",
        ],
    ]
}


def test_grant_read_is_get_object_below_the_prefix_only() -> None:
    stack = Stack()
    SEED_PREFIX.grant_read(grantee_role(stack), sid="ReadExtraInput0")

    assert statements_of(Template.from_stack(stack)) == [
        {
            "Sid": "ReadExtraInput0",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": OBJECTS,
        }
    ]


def test_a_named_key_adds_decrypt_through_s3_only() -> None:
    stack = Stack()
    location = ExternalInputLocation(SEED_PREFIX.bucket, SEED_PREFIX.prefix, kms_key_arn=KEY_ARN)
    location.grant_read(grantee_role(stack), sid="ReadExtraInput0")

    assert statements_of(Template.from_stack(stack))[1] == {
        "Sid": "ReadExtraInput0Key",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": KEY_ARN,
        "Condition": {
            "StringEquals": {
                "kms:ViaService": {
                    "Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
                }
            }
        },
    }


def test_cdk_nag_sees_the_prefix_wildcard_acknowledged() -> None:
    stack = Stack()
    SEED_PREFIX.grant_read(grantee_role(stack), sid="ReadExtraInput0")

    findings = unacknowledged_findings(stack)
    assert [rule for rule, _ in findings if rule.startswith("AwsSolutions-IAM5")] == []
