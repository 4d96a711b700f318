"""ModelStaging: Hub weights snapshot + deployable model prefix, as two custom resources.

The snapshot (`models/<model_id>/<commit>/`) is an immutable cache staged once per commit; the
package (`packages/<model_id>/<commit>/<code hash>/`) holds the weights and `code/` and is what
the SageMaker Model's uncompressed `ModelDataSource` points at. Both are built by the Lambda runtime
next to this file, through the CDK Provider framework so that copies larger than one Lambda run
continue in `is_complete` polls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import (
    Aws,
    CustomResource,
    Duration,
    Names,
    RemovalPolicy,
    Token,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from constructs_lib.nag_acknowledgements import INLINE_POLICY_REASON, acknowledge, arn_in_finding
from inference_code.contract import (
    MODEL_ID_RULE,
    PACKAGE_RESOURCE_TYPE,
    SNAPSHOT_RESOURCE_TYPE,
    is_model_id,
)

from .runtime.staging.s3_location import S3Location

RUNTIME_DIRECTORY = Path(__file__).parent / "runtime"
MODELS_PREFIX = "models/"
PACKAGES_PREFIX = "packages/"
HANDLER_RUNTIME = lambda_.Runtime.PYTHON_3_14
# Parts of 64 MiB are held in memory while uploaded; memory also buys network and CPU (sha256).
STAGING_MEMORY_MB = 2048
BYTECODE_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache"]
VENDED_STATE_MACHINE_LOGS = "/aws/vendedlogs/states/"


class ModelStaging(Construct):
    """Stages `model_id@model_revision` (or `model_s3_uri`) plus `code_directory` for SageMaker.

    Attributes:
        commit: the resolved Hub commit (or `s3-<fingerprint>` of user-staged weights).
        model_data_url: `s3://<bucket>/packages/<model_id>/<commit>/<code hash>/` (trailing `/`).
        package_objects_pattern: `packages/<model_id>/*`, for the endpoint role's read grant.
        code_hash: the inference code asset hash (the last segment of the package prefix).
        grant_principal: the handlers' role (it may read/write `models/*` and `packages/*` of
            `model_bucket`, nothing else there).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_bucket: s3.IBucket,
        model_id: str,
        model_revision: str,
        code_directory: str,
        hub_token_secret_name: str | None = None,
        model_s3_uri: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        _validate(model_id, model_revision, code_directory, hub_token_secret_name, model_s3_uri)

        code = s3_assets.Asset(
            self, "InferenceCode", path=code_directory, exclude=BYTECODE_EXCLUDES
        )
        role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Stages {model_id} and its inference code into the model bucket",
        )
        # Only the code zip, not the whole bootstrap bucket as `Asset.grant_read` would give.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{Aws.PARTITION}:s3:::{code.s3_bucket_name}/{code.s3_object_key}"],
            )
        )
        if hub_token_secret_name:
            secretsmanager.Secret.from_secret_name_v2(
                self, "HubToken", hub_token_secret_name
            ).grant_read(role)
        _grant_model_bucket(role, model_bucket)
        handlers = _StagingHandlers(self, "Handlers", role=role)
        provider = _provider(self, handlers)

        def staged(
            construct_id: str, resource_type: str, properties: dict[str, str]
        ) -> CustomResource:
            resource = CustomResource(
                self,
                construct_id,
                service_token=provider.service_token,
                resource_type=resource_type,
                properties=properties,
            )
            # The handlers need their permissions before CloudFormation invokes them.
            resource.node.add_dependency(role)
            return resource

        package_properties = {
            "Bucket": model_bucket.bucket_name,
            "KeyPrefix": PACKAGES_PREFIX,
            "ModelId": model_id,
            "CodeBucket": code.s3_bucket_name,
            "CodeKey": code.s3_object_key,
            "CodeHash": code.asset_hash,
        }
        if model_s3_uri:
            package_properties["ModelS3Uri"] = model_s3_uri
            _grant_read_source(role, model_s3_uri)
        else:
            snapshot_properties = {
                "Bucket": model_bucket.bucket_name,
                "KeyPrefix": MODELS_PREFIX,
                "ModelId": model_id,
                "Revision": model_revision,
            }
            if hub_token_secret_name:
                snapshot_properties["HubTokenSecretName"] = hub_token_secret_name
            snapshot = staged("Snapshot", SNAPSHOT_RESOURCE_TYPE, snapshot_properties)
            package_properties["SnapshotUri"] = snapshot.get_att_string("SnapshotUri")
        package = staged("Package", PACKAGE_RESOURCE_TYPE, package_properties)

        self.commit: str = package.get_att_string("Commit")
        self.model_data_url: str = package.get_att_string("ModelDataUrl")
        self.package_objects_pattern: str = f"{PACKAGES_PREFIX}{model_id}/*"
        self.grant_principal: iam.IRole = role
        self.code_hash: str = code.asset_hash


def _grant_model_bucket(role: iam.Role, bucket: s3.IBucket) -> None:
    """Read/write the snapshot and package prefixes; the runtime tags verified snapshot objects."""
    objects = [bucket.arn_for_objects(f"{prefix}*") for prefix in (MODELS_PREFIX, PACKAGES_PREFIX)]
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            resources=objects,
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObjectTagging", "s3:PutObjectTagging"],
            resources=[bucket.arn_for_objects(f"{MODELS_PREFIX}*")],
        )
    )
    # No prefix condition: without ListBucket on the bucket, a missing key reads as 403, not 404.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
            resources=[bucket.bucket_arn],
        )
    )
    if isinstance(bucket.node.default_child, s3.CfnBucket):
        acknowledge(
            role,
            {
                f"AwsSolutions-IAM5[Resource::{arn_in_finding(bucket)}/{prefix}*]": (
                    f"Staging writes the model's files (names from the Hub repository) under "
                    f"{prefix} of the model bucket, and nothing else in it."
                )
                for prefix in (MODELS_PREFIX, PACKAGES_PREFIX)
            },
        )


def _grant_read_source(role: iam.Role, model_s3_uri: str) -> None:
    """Read access to user-staged weights: list the prefix, read the objects below it."""
    source = S3Location.parse(model_s3_uri, field="model_s3_uri")
    bucket_arn = f"arn:{Aws.PARTITION}:s3:::{source.bucket}"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{source.prefix}*"]}},
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{source.prefix}*"])
    )
    acknowledge(
        role,
        {
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{source.bucket}/"
            f"{source.prefix}*]": (
                "model_s3_uri names a prefix of user-staged weights; staging reads every object "
                "below it (their names are the model's files) and nothing else."
            )
        },
    )


def _validate(
    model_id: str,
    model_revision: str,
    code_directory: str,
    hub_token_secret_name: str | None,
    model_s3_uri: str | None,
) -> None:
    if not Token.is_unresolved(model_id) and not is_model_id(model_id):
        raise ValueError(f"model_id: {MODEL_ID_RULE} (got {model_id!r})")
    if not model_revision or model_revision != model_revision.strip():
        raise ValueError(
            "model_revision: must be a branch, tag or commit without surrounding spaces "
            f"(got {model_revision!r})"
        )
    if not (Path(code_directory) / "inference.py").is_file():
        raise ValueError(f"code_directory: must hold inference.py (got {code_directory!r})")
    if hub_token_secret_name is not None and not hub_token_secret_name.strip():
        raise ValueError("hub_token_secret_name: must be a secret name or None (got an empty one)")
    if model_s3_uri is not None:
        S3Location.parse(model_s3_uri, field="model_s3_uri")


class _StagingHandlers(Construct):
    """The runtime's two Lambda functions (same code, same role, one log group)."""

    def __init__(self, scope: Construct, construct_id: str, *, role: iam.IRole) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group.grant_write(role)
        code = lambda_.Code.from_asset(str(RUNTIME_DIRECTORY), exclude=BYTECODE_EXCLUDES)
        common: dict[str, Any] = {
            "runtime": HANDLER_RUNTIME,
            "code": code,
            "role": role,
            "log_group": log_group,
            "logging_format": lambda_.LoggingFormat.JSON,
        }
        self.on_event = lambda_.Function(
            self,
            "OnEvent",
            handler="staging.lambda_handler.on_event",
            description="Model staging: resolve the Hub revision / package location",
            timeout=Duration.minutes(5),
            memory_size=512,
            **common,
        )
        self.is_complete = lambda_.Function(
            self,
            "IsComplete",
            handler="staging.lambda_handler.is_complete",
            description="Model staging: copy weights and code in budgeted slices until done",
            timeout=Duration.minutes(15),
            memory_size=STAGING_MEMORY_MB,
            **common,
        )


def _provider(scope: Construct, handlers: _StagingHandlers) -> cr.Provider:
    """The Provider framework, with its own roles and logs so nothing relies on managed policies."""
    framework_logs = logs.LogGroup(
        scope,
        "ProviderLogs",
        retention=logs.RetentionDays.THREE_MONTHS,
        removal_policy=RemovalPolicy.DESTROY,
    )
    roles = []
    for name in ("ProviderOnEventRole", "ProviderCompleteRole"):
        framework_role = iam.Role(
            scope, name, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
        framework_logs.grant_write(framework_role)
        roles.append(framework_role)
    provider = cr.Provider(
        scope,
        "Provider",
        on_event_handler=handlers.on_event,
        is_complete_handler=handlers.is_complete,
        query_interval=Duration.seconds(30),
        # CloudFormation gives a custom resource at most one hour.
        total_timeout=Duration.hours(1),
        framework_on_event_role=roles[0],
        framework_complete_and_timeout_role=roles[1],
        log_group=framework_logs,
        disable_waiter_state_machine_logging=False,
        waiter_state_machine_log_options=cr.LogOptions(
            destination=_waiter_logs(scope), level=sfn.LogLevel.ALL, include_execution_data=False
        ),
    )
    _acknowledge_provider_findings(scope, provider, handlers)
    return provider


def _waiter_logs(scope: Construct) -> logs.LogGroup:
    """The waiter state machine's log group, named under `/aws/vendedlogs/states/`.

    Step Functions adds each log group it delivers to into the account's CloudWatch Logs resource
    policy, which is limited to 5,120 characters; CloudWatch Logs enables the groups under
    `/aws/vendedlogs/` as a whole instead, so these do not grow it
    (https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html).
    A prefix needs an explicit name: CDK generates it from the construct path (the stack name
    included, at most 255 characters), so it is unique per stack and known at synth.
    """
    return logs.LogGroup(
        scope,
        "WaiterLogs",
        log_group_name=f"{VENDED_STATE_MACHINE_LOGS}{Names.unique_resource_name(scope)}-waiter",
        retention=logs.RetentionDays.THREE_MONTHS,
        removal_policy=RemovalPolicy.DESTROY,
    )


# NIST 800-53 rev 5 rules that the staging functions, their roles and logs break by design.
_NIST_STAGING_FINDINGS = {
    "NIST.800.53.R5-IAMNoInlinePolicy": INLINE_POLICY_REASON,
    "NIST.800.53.R5-LambdaInsideVPC": (
        "Staging downloads from the Hugging Face Hub over the internet: inside a VPC the "
        "functions would need a NAT gateway (billed hourly) for a job that runs once per deploy."
    ),
    "NIST.800.53.R5-LambdaConcurrency": (
        "Only CloudFormation invokes these, one custom resource at a time; reserved concurrency "
        "fails the deploy in accounts whose unreserved concurrency is at its minimum of 10."
    ),
    "NIST.800.53.R5-LambdaDLQ": (
        "CloudFormation and the waiter state machine invoke these and receive each failure as "
        "the custom resource's FAILED status with its reason; a dead-letter queue sees nothing."
    ),
    "NIST.800.53.R5-CloudWatchLogGroupEncrypted": (
        "CloudWatch Logs encrypts these groups at rest with its own keys; they hold staging "
        "progress (model id, file names, sizes, hashes), never prompts, audio or the Hub token."
    ),
}


def _acknowledge_provider_findings(
    scope: Construct, provider: cr.Provider, handlers: _StagingHandlers
) -> None:
    """Findings on the policies and state machine that the Provider framework generates."""
    invoked: list[IConstruct] = [handlers.on_event, handlers.is_complete]
    invoked += [
        child
        for name in ("framework-isComplete", "framework-onTimeout")
        if (child := provider.node.try_find_child(name)) is not None
    ]
    findings = {
        f"AwsSolutions-IAM5[Resource::{arn_in_finding(function)}:*]": (
            "The Provider framework may invoke any version of its own functions (CDK's generated "
            "policy); the function ARN itself is specific."
        )
        for function in invoked
    }
    findings["AwsSolutions-IAM5[Resource::*]"] = (
        "The waiter state machine's CloudWatch Logs delivery actions (logs:CreateLogDelivery, "
        "logs:DescribeResourcePolicies, ...) do not support resource-level permissions."
    )
    findings["AwsSolutions-SF2"] = (
        "The waiter state machine only polls is_complete every 30 s during a deployment; its full "
        "execution history is logged to CloudWatch, X-Ray traces would add nothing."
    )
    acknowledge(scope, findings | _NIST_STAGING_FINDINGS)
