"""One deployable MusicGen environment: storage, model staging, async endpoint, scaling, alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.async_endpoint import AsyncEndpoint
from constructs_lib.container_environment import model_server_environment
from constructs_lib.container_image import inference_image
from constructs_lib.endpoint_monitoring import EndpointMonitoring
from constructs_lib.model_staging import ModelStaging
from constructs_lib.nag_acknowledgements import acknowledge
from constructs_lib.notification_topics import NotificationTopics
from constructs_lib.scale_to_zero import ScaleToZero
from constructs_lib.secure_bucket import SecureBucket
from stacks.environment_config import EnvironmentConfig, has_local_nvme
from stacks.model_sizing import model_size_for

INFERENCE_CODE_DIR = Path(__file__).resolve().parent.parent / "inference_code"
ASYNC_INPUT_PREFIX = "async-input/"
ASYNC_OUTPUT_PREFIX = "async-output/"
ASYNC_FAILURE_PREFIX = "async-failure/"
SAGEMAKER_LOG_GROUPS = "/aws/sagemaker/Endpoints/"
# How cdk-nag prints the log-group ARN built from pseudo parameters below.
_LOG_GROUPS_ARN = (
    f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{SAGEMAKER_LOG_GROUPS}"
)


class MusicGenStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        size = model_size_for(config.model_id)

        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            access_logs,
            {"AwsSolutions-S1": "This is the server-access-log target; logging it would recurse."},
        )
        model_bucket = SecureBucket(
            self, "ModelArtifacts", access_logs_bucket=access_logs, access_logs_prefix="models/"
        ).bucket
        async_bucket = SecureBucket(
            self,
            "AsyncIO",
            access_logs_bucket=access_logs,
            access_logs_prefix="async/",
            destroy_on_delete=config.destroy_async_data_on_delete,
            expiring_prefixes=(ASYNC_INPUT_PREFIX, ASYNC_OUTPUT_PREFIX, ASYNC_FAILURE_PREFIX),
            retention_days=config.output_retention_days,
        ).bucket

        notifications = NotificationTopics(
            self, "Notifications", notification_emails=config.notification_emails
        )

        staging = ModelStaging(
            self,
            "ModelStaging",
            model_bucket=model_bucket,
            model_id=config.model_id,
            model_revision=config.model_revision,
            code_directory=str(INFERENCE_CODE_DIR),
            hub_token_secret_name=config.hub_token_secret_name,
            model_s3_uri=config.model_s3_uri,
        )

        image = inference_image(
            self,
            transformers=config.dlc.transformers,
            pytorch=config.dlc.pytorch,
            instance_type=config.instance_type,
        )
        volume_key = None
        if not has_local_nvme(config.instance_type):
            volume_key = kms.Key(
                self,
                "EndpointVolumeKey",
                description="Encrypts the MusicGen endpoint's storage volume",
                enable_key_rotation=True,
                pending_window=Duration.days(7),
            )

        role = iam.Role(
            self,
            "EndpointExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="MusicGen async endpoint: read the model and requests, write results",
        )
        policy = iam.Policy(self, "EndpointExecutionPolicy")
        role.attach_inline_policy(policy)
        self._grant_endpoint(
            policy,
            model_bucket=model_bucket,
            model_objects=staging.package_objects_pattern,
            async_bucket=async_bucket,
            notifications=notifications,
            repository_arn=image.repository_arn,
            volume_key=volume_key,
        )

        endpoint = AsyncEndpoint(
            self,
            "Endpoint",
            execution_role=role,
            execution_policy=policy,
            image_uri=image.uri,
            model_data_url=staging.model_data_url,
            environment=model_server_environment(
                model_id=config.model_id,
                max_duration_seconds=config.max_duration_seconds,
                extend_stride_seconds=config.extend_stride_seconds,
            ),
            instance_type=config.instance_type,
            initial_instance_count=max(1, config.min_instances),
            output_path=async_bucket.s3_url_for_object(ASYNC_OUTPUT_PREFIX),
            failure_path=async_bucket.s3_url_for_object(ASYNC_FAILURE_PREFIX),
            success_topic_arn=notifications.success_topic.topic_arn,
            error_topic_arn=notifications.error_topic.topic_arn,
            max_concurrent_invocations_per_instance=config.max_concurrent_invocations_per_instance,
            model_data_download_timeout_seconds=size.download_timeout_seconds,
            container_startup_timeout_seconds=size.startup_timeout_seconds,
            volume_size_gb=None if has_local_nvme(config.instance_type) else size.volume_size_gb,
            volume_kms_key=volume_key,
        )

        ScaleToZero(
            self,
            "Scaling",
            endpoint_name=endpoint.endpoint_name,
            variant_name=endpoint.variant_name,
            min_instances=config.min_instances,
            max_instances=config.max_instances,
            backlog_per_instance_target=config.backlog_per_instance_target,
            scale_in_cooldown_seconds=config.scale_in_cooldown,
            scale_out_cooldown_seconds=config.scale_out_cooldown,
        )
        EndpointMonitoring(
            self,
            "Monitoring",
            endpoint_name=endpoint.endpoint_name,
            variant_name=endpoint.variant_name,
            error_topic=notifications.error_topic,
            oldest_request_alarm_seconds=config.oldest_request_alarm_seconds,
        )

        outputs = {
            "EndpointName": (endpoint.endpoint_name, "Name of the async endpoint"),
            "InputS3Uri": (
                async_bucket.s3_url_for_object(ASYNC_INPUT_PREFIX),
                "Upload request JSON under this prefix",
            ),
            "OutputS3Uri": (
                async_bucket.s3_url_for_object(ASYNC_OUTPUT_PREFIX),
                "Results appear here as <inference-id>.out",
            ),
            "FailureS3Uri": (
                async_bucket.s3_url_for_object(ASYNC_FAILURE_PREFIX),
                "Errors appear here as <inference-id>-error.out",
            ),
            "SuccessTopicArn": (notifications.success_topic.topic_arn, "Completed inferences"),
            "ErrorTopicArn": (notifications.error_topic.topic_arn, "Failed inferences and alarms"),
            "ModelCommit": (staging.commit, f"Commit of {config.model_id} being served"),
            "MaxDurationSeconds": (
                f"{config.max_duration_seconds:g}",
                "Longest clip a request may ask for",
            ),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)

    def _grant_endpoint(
        self,
        policy: iam.Policy,
        *,
        model_bucket: s3.IBucket,
        model_objects: str,
        async_bucket: s3.IBucket,
        notifications: NotificationTopics,
        repository_arn: str,
        volume_key: kms.IKey | None,
    ) -> None:
        """Least privilege for the endpoint: each statement names the exact prefix or resource."""
        statements = [
            iam.PolicyStatement(
                sid="ReadModel",
                actions=["s3:GetObject"],
                resources=[model_bucket.arn_for_objects(model_objects)],
            ),
            iam.PolicyStatement(
                sid="ListModel",
                actions=["s3:ListBucket"],
                resources=[model_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [model_objects]}},
            ),
            iam.PolicyStatement(
                sid="ReadRequests",
                actions=["s3:GetObject"],
                resources=[async_bucket.arn_for_objects(f"{ASYNC_INPUT_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[
                    async_bucket.arn_for_objects(f"{ASYNC_OUTPUT_PREFIX}*"),
                    async_bucket.arn_for_objects(f"{ASYNC_FAILURE_PREFIX}*"),
                ],
            ),
            iam.PolicyStatement(
                sid="PublishResults",
                actions=["sns:Publish"],
                resources=[topic.topic_arn for topic in notifications.topics],
            ),
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[notifications.key.key_arn],
            ),
            iam.PolicyStatement(
                sid="PullImage",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[repository_arn],
            ),
            iam.PolicyStatement(
                sid="AuthenticateToRegistry",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
                    f"{SAGEMAKER_LOG_GROUPS}*"
                ],
            ),
            iam.PolicyStatement(
                sid="PublishMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}
                },
            ),
        ]
        if volume_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="EncryptVolume",
                    actions=[
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:GenerateDataKeyWithoutPlaintext",
                    ],
                    resources=[volume_key.key_arn],
                )
            )
        for statement in statements:
            policy.add_statements(statement)
        model_arn = f"<{self.get_logical_id(model_bucket.node.default_child)}.Arn>"
        async_arn = f"<{self.get_logical_id(async_bucket.node.default_child)}.Arn>"
        object_scope = "Object keys under one prefix of a bucket this stack owns"
        acknowledge(
            policy,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource "
                    "scoping; PutMetricData is limited to SageMaker namespaces by condition."
                ),
                f"AwsSolutions-IAM5[Resource::{model_arn}/{model_objects}]": (
                    "Read-only, this model's package prefix; its sub-prefix (commit and code "
                    "hash) changes on every deployment."
                ),
                f"AwsSolutions-IAM5[Resource::{async_arn}/{ASYNC_INPUT_PREFIX}*]": (
                    f"{object_scope}: SageMaker reads requests whose keys clients choose."
                ),
                f"AwsSolutions-IAM5[Resource::{async_arn}/{ASYNC_OUTPUT_PREFIX}*]": (
                    f"{object_scope}: SageMaker names results after inference ids."
                ),
                f"AwsSolutions-IAM5[Resource::{async_arn}/{ASYNC_FAILURE_PREFIX}*]": (
                    f"{object_scope}: SageMaker names errors after inference ids."
                ),
                f"AwsSolutions-IAM5[Resource::{_LOG_GROUPS_ARN}*]": (
                    "The endpoint's log group is named after the generated endpoint name, which "
                    "depends on this policy; limited to SageMaker endpoint log groups."
                ),
            },
        )
