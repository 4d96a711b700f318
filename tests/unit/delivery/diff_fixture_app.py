"""The app of app.py with one pull-request-like change applied: the "head" of a diff fixture.

regenerate_diff_fixtures.py runs it as the CDK app (`cdk synth --app ...`) with
DIFF_FIXTURE_CHANGE naming the change. Edits of the environment table go through the context,
edits of the stack through CDK escape hatches on what app.py builds, so the fixtures follow the
app as it evolves: a construct this relies on that has moved stops it with a message naming it.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Aws, CfnResource, Stack, Tags  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from aws_cdk import aws_kms as kms  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk import aws_sagemaker as sagemaker  # noqa: E402
from constructs import IConstruct  # noqa: E402

from constructs_lib.nag_acknowledgements import acknowledge  # noqa: E402
from stacks.app_builder import build_app  # noqa: E402

NEW_ENVIRONMENT = "staging"
Found = TypeVar("Found")


def _find(stack: Stack, path: str, kind: type[Found]) -> Found:
    node: IConstruct = stack
    for part in path.split("/"):
        child = node.node.try_find_child(part)
        if child is None:
            sys.exit(f"diff fixture: {stack.stack_name} has no {path}; update {__file__}")
        node = child
    if not isinstance(node, kind):
        sys.exit(f"diff fixture: {stack.stack_name}/{path} is not a {kind.__name__}")
    return node


def _cfn(stack: Stack, path: str, kind: type[Any]) -> CfnResource:
    resource = _find(stack, path, kind).node.default_child
    assert isinstance(resource, CfnResource), path
    return resource


def _environments(app: App) -> dict[str, Any]:
    return copy.deepcopy(app.node.try_get_context("environments"))


def _only_stack(app: App) -> Stack:
    stacks = build_app(app)
    if len(stacks) != 1:
        sys.exit("diff fixture: synthesize one environment (-c env=NAME)")
    return stacks[0]


def instance_type(app: App) -> None:
    """dev moves to another GPU instance type."""
    table = _environments(app)
    current = table["dev"].get("instance_type")
    table["dev"]["instance_type"] = (
        "ml.g5.4xlarge" if current == "ml.g5.2xlarge" else "ml.g5.2xlarge"
    )
    app.node.set_context("environments", table)
    _only_stack(app)


def iam_statement(app: App) -> None:
    """The endpoint's policy gains one S3 action on the async bucket."""
    stack = _only_stack(app)
    bucket = _find(stack, "AsyncIO/Bucket", s3.Bucket)
    _find(stack, "EndpointExecutionPolicy", iam.Policy).add_statements(
        iam.PolicyStatement(
            sid="LocateAsyncBucket",
            actions=["s3:GetBucketLocation"],
            resources=[bucket.bucket_arn],
        )
    )


def security_categories(app: App) -> None:
    """One change of each kind the classifier knows: a trust policy, a key policy, a bucket's
    encryption, an encryption key nested in the endpoint configuration, public access and
    network isolation."""
    stack = _only_stack(app)
    trust = _find(stack, "EndpointExecutionRole", iam.Role).assume_role_policy
    assert trust is not None
    trust.add_statements(
        iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            principals=[iam.ServicePrincipal("sagemaker.amazonaws.com")],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        )
    )
    key = _find(stack, "Notifications/TopicKey", kms.Key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DescribeForAudit",
            actions=["kms:DescribeKey"],
            principals=[iam.AccountRootPrincipal()],
            resources=["*"],
        )
    )
    _cfn(stack, "AsyncIO/Bucket", s3.Bucket).add_property_override(
        "BucketEncryption.ServerSideEncryptionConfiguration.0.ServerSideEncryptionByDefault."
        "SSEAlgorithm",
        "aws:kms",
    )
    _find(stack, "Endpoint/EndpointConfig", sagemaker.CfnEndpointConfig).add_property_override(
        "AsyncInferenceConfig.OutputConfig.KmsKeyId", key.key_arn
    )
    models = _cfn(stack, "ModelArtifacts/Bucket", s3.Bucket)
    models.add_property_override("PublicAccessBlockConfiguration.RestrictPublicBuckets", False)
    acknowledge(models, {"AwsSolutions-S2": "Diff fixture: a public-access change to classify."})
    model = _find(stack, "Endpoint/Model", sagemaker.CfnModel)
    model.enable_network_isolation = not model.enable_network_isolation


def bucket_replacement(app: App) -> None:
    """The model bucket gets a fixed name (replaced); the access-log bucket and the topics' KMS
    key move to new logical ids (both retained, so orphaned)."""
    stack = _only_stack(app)
    _cfn(stack, "ModelArtifacts/Bucket", s3.Bucket).add_property_override(
        "BucketName", f"musicgen-{stack.stack_name.lower()}-models"
    )
    _cfn(stack, "AccessLogs", s3.Bucket).override_logical_id("ServerAccessLogs")
    _cfn(stack, "Notifications/TopicKey", kms.Key).override_logical_id("NotificationsKey")


def tags_description(app: App) -> None:
    """A cost tag on everything, a reworded stack description and role description."""
    stack = _only_stack(app)
    Tags.of(stack).add("cost-center", "audio-research")
    stack.template_options.description = f"{stack.template_options.description}, reviewed"
    _cfn(stack, "EndpointExecutionRole", iam.Role).add_property_override(
        "Description", "Lets the MusicGen endpoint read its model and requests, write results"
    )


def environment_added(app: App) -> None:
    """A new environment, a copy of dev (synthesize it with -c env=staging)."""
    table = _environments(app)
    table[NEW_ENVIRONMENT] = copy.deepcopy(table["dev"])
    app.node.set_context("environments", table)
    _only_stack(app)


CHANGES: dict[str, Callable[[App], None]] = {
    change.__name__: change
    for change in (
        instance_type,
        iam_statement,
        security_categories,
        bucket_replacement,
        tags_description,
        environment_added,
    )
}


def main() -> None:
    name = os.environ.get("DIFF_FIXTURE_CHANGE", "")
    if name not in CHANGES:
        sys.exit(f"DIFF_FIXTURE_CHANGE must be one of {sorted(CHANGES)}, got {name!r}")
    app = App()
    CHANGES[name](app)
    app.synth()


if __name__ == "__main__":
    main()
