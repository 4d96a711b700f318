"""SecureBucket in a bare stack: settings, the access-log variant, and prefix grants."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.secure_bucket import SecureBucket, ServerAccessLogs
from tests.unit.constructs_lib.conftest import acknowledged, grantee_role, statements_of

TLS_DENY = Match.object_like(
    {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
)


def _logged_bucket(stack: Stack, **props: Any) -> SecureBucket:
    logs = s3.Bucket(stack, "Logs")
    return SecureBucket(stack, "Data", access_logs=ServerAccessLogs(logs, "data/"), **props)


def test_bucket_is_encrypted_private_tls_only_and_logged() -> None:
    stack = Stack()
    _logged_bucket(stack)
    template = Template.from_stack(stack)
    target = Capture()
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": target},
                "LogFilePrefix": "data/",
            },
        },
    )
    assert target.as_string().startswith("Logs")
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([TLS_DENY])}},
    )
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})


def test_expiring_prefixes_and_aborted_uploads() -> None:
    stack = Stack()
    _logged_bucket(stack, expiring_prefixes=("in/", "out/"), retention_days=3)
    Template.from_stack(stack).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        "Status": "Enabled",
                    },
                    {"Prefix": "in/", "ExpirationInDays": 3, "Status": "Enabled"},
                    {"Prefix": "out/", "ExpirationInDays": 3, "Status": "Enabled"},
                ]
            }
        },
    )


def test_expiring_prefixes_need_a_retention() -> None:
    with pytest.raises(ValueError, match="retention_days is required"):
        _logged_bucket(Stack(), expiring_prefixes=("in/",))


def test_destroy_on_delete_empties_and_deletes_the_bucket() -> None:
    stack = Stack()
    _logged_bucket(stack, destroy_on_delete=True)
    template = Template.from_stack(stack)
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Delete"})
    template.resource_count_is("Custom::S3AutoDeleteObjects", 1)


def test_access_log_target_keeps_the_logical_id_of_a_plain_bucket() -> None:
    """The variant's bucket is its default child: same logical id as `s3.Bucket(scope, id)`."""
    plain = Stack()
    s3.Bucket(plain, "AccessLogs")
    stack = Stack()
    target = SecureBucket(stack, "AccessLogs", access_logs=None, retention_days=365)
    template = Template.from_stack(stack)
    assert set(template.find_resources("AWS::S3::Bucket")) == set(
        Template.from_stack(plain).find_resources("AWS::S3::Bucket")
    )
    (bucket,) = template.find_resources("AWS::S3::Bucket").values()
    assert "LoggingConfiguration" not in bucket["Properties"]
    assert bucket["Properties"]["LifecycleConfiguration"] == {
        "Rules": [{"ExpirationInDays": 365, "Status": "Enabled"}]
    }
    assert bucket["Properties"]["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]
    }
    assert "AwsSolutions-S1" in acknowledged(target)


def test_access_log_target_needs_a_retention() -> None:
    with pytest.raises(ValueError, match="retention_days is required"):
        SecureBucket(Stack(), "AccessLogs", access_logs=None)


REASON = "clients and SageMaker choose the keys under these prefixes"


def _granted() -> tuple[Stack, SecureBucket, iam.Role]:
    stack = Stack()
    bucket = _logged_bucket(stack)
    role = grantee_role(stack)
    bucket.grant_read_objects(role, "in/*", sid="Read", reason=REASON)
    bucket.grant_list_objects(role, "in/*", sid="List")
    bucket.grant_write_objects(role, "out/*", "err/*", sid="Write", reason=REASON)
    return stack, bucket, role


def test_prefix_grants_name_exactly_the_prefix_and_nothing_broader() -> None:
    stack, _, _ = _granted()
    template = Template.from_stack(stack)
    bucket_id = Capture()
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "Read",
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": {
                                "Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/in/*"]]
                            },
                        }
                    ]
                )
            }
        },
    )
    assert bucket_id.as_string().startswith("DataBucket")
    statements = {s["Sid"]: s for s in statements_of(template)}
    assert set(statements) == {"Read", "List", "Write"}
    assert statements["List"] == {
        "Sid": "List",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": {"Fn::GetAtt": [bucket_id.as_string(), "Arn"]},
        "Condition": {"StringLike": {"s3:prefix": ["in/*"]}},
    }
    assert sorted(statements["Write"]["Action"]) == ["s3:AbortMultipartUpload", "s3:PutObject"]
    suffixes = sorted(r["Fn::Join"][1][1] for r in statements["Write"]["Resource"])
    assert suffixes == ["/err/*", "/out/*"]
    for statement in statements.values():
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action and not action.startswith("s3:GetBucket")


def test_wildcard_grants_acknowledge_the_finding_on_the_grantee_with_the_reason() -> None:
    stack, bucket, role = _granted()
    arn = f"<{stack.get_logical_id(bucket.bucket.node.default_child)}.Arn>"
    assert acknowledged(role) == {
        f"AwsSolutions-IAM5[Resource::{arn}/{pattern}]": REASON
        for pattern in ("in/*", "out/*", "err/*")
    }
