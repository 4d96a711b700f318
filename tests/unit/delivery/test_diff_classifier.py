"""What counts as security-relevant and destructive, on the CLI's real output for this app.

Each fixture is one pull-request-like change (fixtures/app_diffs/README.md); the changes that
are not about security must not be flagged, whatever their property names say.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.unit.delivery.delivery_paths import APP_DIFFS


def _changes(parser: ModuleType, name: str) -> tuple[Any, ...]:
    text = parser.clean((APP_DIFFS / f"{name}.txt").read_text(encoding="utf-8"))
    return parser.parse(text).changes


def _flagged(parser: ModuleType, classifier: ModuleType, name: str) -> dict[str, Any]:
    return {
        c.name: classifier.security_reasons(c)
        for c in _changes(parser, name)
        if classifier.security_reasons(c)
    }


@pytest.mark.parametrize("name", ["instance_type", "tags_description", "metadata_only"])
def test_changes_that_grant_nothing_are_not_flagged(
    parser: ModuleType, classifier: ModuleType, name: str
) -> None:
    changes = _changes(parser, name)
    assert _flagged(parser, classifier, name) == {}
    if name == "instance_type":
        # The scaling policy's TargetTrackingScalingPolicyConfiguration changes: not IAM.
        (tracking,) = [c for c in changes if c.name == "Scaling/Target/BacklogTracking"]
        assert "TargetTrackingScalingPolicyConfiguration" in {p.name for p in tracking.properties}
    if name == "tags_description":
        # IAM roles and a KMS key change, but only their tags and a description.
        (role,) = [c for c in changes if c.name == "EndpointExecutionRole"]
        assert {p.name for p in role.properties} == {"Description", "Tags"}
        assert any(c.resource_type == "AWS::KMS::Key" for c in changes)


def test_a_policy_statement_is_an_iam_policy_change(
    parser: ModuleType, classifier: ModuleType
) -> None:
    assert _flagged(parser, classifier, "iam_statement") == {
        "EndpointExecutionPolicy": (("IAM policy", "PolicyDocument"),)
    }


def test_each_security_category_is_recognised_by_what_changed(
    parser: ModuleType, classifier: ModuleType
) -> None:
    assert _flagged(parser, classifier, "security_categories") == {
        "EndpointExecutionRole": (("principal", "AssumeRolePolicyDocument"),),
        "Notifications/TopicKey": (("key policy", "KeyPolicy"),),
        "AsyncIO/Bucket": (("encryption", "BucketEncryption"),),
        "Endpoint/EndpointConfig": (("encryption", "AsyncInferenceConfig.KmsKeyId"),),
        "ModelArtifacts/Bucket": (("public access", "PublicAccessBlockConfiguration"),),
        "Endpoint/Model": (("network", "EnableNetworkIsolation"),),
    }


def test_moved_buckets_and_keys_flag_what_follows_them(
    parser: ModuleType, classifier: ModuleType
) -> None:
    assert _flagged(parser, classifier, "bucket_replacement") == {
        "AccessLogs/Policy": (("resource policy", "Bucket"), ("resource policy", "PolicyDocument")),
        "ModelArtifacts/Bucket/Policy": (("resource policy", "Bucket"),),
        # The old key goes and a new one comes: the topics and the endpoint policy follow it.
        "Notifications/TopicKey": (("key policy", "AWS::KMS::Key"),),
        "Notifications/SuccessTopic": (("encryption", "KmsMasterKeyId"),),
        "Notifications/ErrorTopic": (("encryption", "KmsMasterKeyId"),),
        "EndpointExecutionPolicy": (("IAM policy", "PolicyDocument"),),
    }


def test_a_new_environment_flags_every_permission_it_creates(
    parser: ModuleType, classifier: ModuleType
) -> None:
    changes = _changes(parser, "environment_added")
    assert {c.change for c in changes} == {"+"}
    flagged = {c.resource_type for c in changes if classifier.security_reasons(c)}
    assert flagged == {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::KMS::Key",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
    }
    assert not any(
        classifier.security_reasons(c) for c in changes if c.resource_type == "AWS::S3::Bucket"
    )


def _destructive(parser: ModuleType, classifier: ModuleType, name: str) -> list[tuple[str, ...]]:
    return [
        (c.impact, c.resource_type, c.name, str(classifier.blocks_merge(c)))
        for c in _changes(parser, name)
        if c.is_destructive
    ]


def test_a_new_instance_type_replaces_the_endpoint_but_nothing_stateful(
    parser: ModuleType, classifier: ModuleType
) -> None:
    destructive = _destructive(parser, classifier, "instance_type")
    assert destructive == [
        ("destroy", "AWS::SageMaker::Endpoint", "Endpoint/EndpointMlG5Xlarge", "False"),
        ("replace", "AWS::SageMaker::EndpointConfig", "Endpoint/EndpointConfig", "False"),
        ("replace", "AWS::ApplicationAutoScaling::ScalableTarget", "Scaling/Target", "False"),
        (
            "replace",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Scaling/Target/BacklogTracking",
            "False",
        ),
        ("replace", "AWS::ApplicationAutoScaling::ScalingPolicy", "Scaling/WakeUp", "False"),
    ]
    endpoint = next(c for c in _changes(parser, "instance_type") if c.impact == "destroy")
    assert "clients must re-read the EndpointName output" in classifier.meaning(endpoint)


def test_replaced_and_orphaned_buckets_and_keys_block_the_merge(
    parser: ModuleType, classifier: ModuleType
) -> None:
    changes = _changes(parser, "bucket_replacement")
    blocking = {
        c.name: (c.impact, classifier.meaning(c)) for c in changes if classifier.blocks_merge(c)
    }
    assert set(blocking) == {"AccessLogs", "ModelArtifacts/Bucket", "Notifications/TopicKey"}
    assert blocking["AccessLogs"][0] == "orphan"
    assert blocking["Notifications/TopicKey"] == (
        "orphan",
        "the key is kept outside the stack; nothing uses it any more",
    )
    assert blocking["AccessLogs"][1].startswith("a retained bucket is orphaned, not deleted")
    assert blocking["ModelArtifacts/Bucket"][0] == "replace"
    assert (
        "staged weights and code packages are not carried over"
        in (blocking["ModelArtifacts/Bucket"][1])
    )
    # The bucket policies are replaced too, but lose nothing.
    assert {c.name for c in changes if c.is_destructive} - set(blocking) == {
        "AccessLogs/Policy",
        "ModelArtifacts/Bucket/Policy",
    }


@pytest.mark.parametrize(
    "name", ["iam_statement", "tags_description", "environment_added", "security_categories"]
)
def test_other_changes_block_nothing(parser: ModuleType, classifier: ModuleType, name: str) -> None:
    assert not any(classifier.blocks_merge(c) for c in _changes(parser, name))


def test_every_destructive_change_of_the_fixtures_has_a_specific_meaning(
    parser: ModuleType, classifier: ModuleType
) -> None:
    generic = set(classifier.GENERIC_MEANINGS.values())
    for path in APP_DIFFS.glob("*.txt"):
        for change in _changes(parser, path.stem):
            if change.is_destructive:
                assert classifier.meaning(change) not in generic, (path.name, change.name)
