"""The SageMaker Model, asynchronous EndpointConfig and Endpoint, with their execution role."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct, IDependable

from constructs_lib.endpoint_metrics import endpoint_metric
from constructs_lib.instance_types import has_local_nvme
from constructs_lib.nag_acknowledgements import INLINE_POLICY_REASON, acknowledge
from constructs_lib.rotating_key import rotating_key

VARIANT_NAME = "AllTraffic"
SAGEMAKER_LOG_GROUPS = "/aws/sagemaker/Endpoints/"
# How cdk-nag prints the log-group ARN built from pseudo parameters below.
_LOG_GROUPS_ARN = (
    f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{SAGEMAKER_LOG_GROUPS}"
)


@dataclass(frozen=True)
class ServedModel:
    """What the container runs: the image, the uncompressed model prefix and the environment."""

    image_uri: str
    model_data_url: str
    environment: Mapping[str, str]
    download_timeout_seconds: int
    startup_timeout_seconds: int
    # Ignored on instance types with local NVMe storage, where SageMaker rejects it.
    volume_size_gb: int
    # No network for the container (EnableNetworkIsolation); SageMaker still fetches the model
    # data and moves requests and results through S3 itself.
    network_isolation: bool = False


@dataclass(frozen=True)
class AsyncOutput:
    """Where SageMaker writes results and errors, and the topics it notifies."""

    output_path: str
    failure_path: str
    success_topic: sns.ITopic
    error_topic: sns.ITopic


class DeployCapacity(StrEnum):
    """The instance count a deploy of a new Model or EndpointConfig leaves the endpoint with.

    `INITIAL`: the new EndpointConfig's `InitialInstanceCount`; those instances start and must
    pass their health check before the update completes (a busy endpoint drops to that count, an
    idle one runs an instance until it scales in again). `KEEP`: `RetainAllVariantProperties`,
    the count autoscaling set (an endpoint at zero starts nothing, so a broken container shows
    only at the next wake-up).
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html
    """

    INITIAL = "initial"
    KEEP = "keep"


@dataclass(frozen=True)
class Capacity:
    instance_type: str
    initial_instance_count: int
    max_concurrent_invocations_per_instance: int
    on_deploy: DeployCapacity = DeployCapacity.INITIAL


class AsyncEndpoint(Construct):
    """An async inference endpoint serving one model from an uncompressed S3 prefix.

    Props: `model` (ServedModel), `output` (AsyncOutput), `capacity` (Capacity, including what a
    deploy does to the instance count: `DeployCapacity`).

    The endpoint owns its execution role (`grant_principal`): it may write its logs and
    SageMaker metrics and use its volume key; everything else is granted to it by the owning
    constructs (model prefix, request and result prefixes, topics, image). On an instance type
    without local NVMe the storage volume is sized from the model and encrypted with a key of
    its own; on one with NVMe SageMaker rejects both settings, so neither is set.

    The Model and EndpointConfig are immutable in SageMaker: any change to the image, the
    environment or the model prefix replaces them, and the Endpoint moves to the new config in
    place. The Endpoint's logical id carries the instance type: SageMaker refuses to change the
    instance type of a variant registered as a scalable target, so a new instance type gets a new
    endpoint (and scalable target) and the old pair is removed after it is in service.

    Metrics: `metric(name)` for the metrics of `endpoint_metrics.METRICS` (the dimensions
    SageMaker publishes each with), `metric_instances_reporting()`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: ServedModel,
        output: AsyncOutput,
        capacity: Capacity,
    ) -> None:
        super().__init__(scope, construct_id)
        local_nvme = has_local_nvme(capacity.instance_type)
        self.volume_key: kms.Key | None = None
        if not local_nvme:
            self.volume_key = rotating_key(
                self, "VolumeKey", description="Encrypts the MusicGen endpoint's storage volume"
            )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="MusicGen async endpoint: read the model and requests, write results",
        )
        policy = self._grant_own_needs()

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            # Absent rather than false when off: a new property value replaces the Model (and
            # so the EndpointConfig) of a deployed stack.
            enable_network_isolation=model.network_isolation or None,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=model.image_uri,
                environment=dict(model.environment),
                model_data_source=sagemaker.CfnModel.ModelDataSourceProperty(
                    s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                        s3_uri=model.model_data_url,
                        s3_data_type="S3Prefix",
                        compression_type="None",
                    )
                ),
            ),
        )
        # SageMaker checks the role's permissions when it creates the Model: the policy must
        # exist first, not only the role.
        self.model.node.add_dependency(policy)

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=self.volume_key.key_arn if self.volume_key else None,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    instance_type=capacity.instance_type,
                    initial_instance_count=capacity.initial_instance_count,
                    initial_variant_weight=1.0,
                    model_data_download_timeout_in_seconds=model.download_timeout_seconds,
                    container_startup_health_check_timeout_in_seconds=model.startup_timeout_seconds,
                    volume_size_in_gb=None if local_nvme else model.volume_size_gb,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=capacity.max_concurrent_invocations_per_instance
                ),
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=output.output_path,
                    s3_failure_path=output.failure_path,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=output.success_topic.topic_arn,
                        error_topic=output.error_topic.topic_arn,
                    ),
                ),
            ),
        )
        if local_nvme:
            # "Local storage volumes are encrypted using a hardware module on the instance. You
            # can't request a KmsKeyId" (KmsKeyId of
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html).
            acknowledge(
                self.endpoint_config,
                {
                    "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured": (
                        f"SageMaker rejects an endpoint-config KmsKeyId on {capacity.instance_type}"
                        ", whose local NVMe storage a hardware module on the instance encrypts."
                    )
                },
            )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            f"Endpoint{_logical_id_part(capacity.instance_type)}",
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            # Left out rather than false for INITIAL (SageMaker's default): the templates of
            # environments that keep the default do not change.
            retain_all_variant_properties=(
                True if capacity.on_deploy is DeployCapacity.KEEP else None
            ),
        )
        self.endpoint_name: str = self.endpoint.attr_endpoint_name
        self.variant_name = VARIANT_NAME
        # ModelDataDownloadTimeoutInSeconds, then ContainerStartupHealthCheckTimeoutInSeconds
        # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html):
        # an instance that has not downloaded the model and passed its health check within both
        # has failed, so no instance stays "starting" for longer.
        self.instance_startup_limit = Duration.seconds(
            model.download_timeout_seconds + model.startup_timeout_seconds
        )

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self.role

    def metric(
        self, metric_name: str, *, label: str | None = None, period: Duration | None = None
    ) -> cloudwatch.Metric:
        """A metric of `endpoint_metrics.METRICS`, with its published dimensions and statistic."""
        return endpoint_metric(
            metric_name,
            endpoint_name=self.endpoint_name,
            variant_name=self.variant_name,
            label=label,
            period=period,
        )

    def metric_instances_reporting(self, *, label: str | None = None) -> cloudwatch.Metric:
        """The number of running instances: the sample count of their CPU utilisation."""
        return self.metric("CPUUtilization", label=label)

    def _grant_own_needs(self) -> IDependable:
        """Logs and metrics of the endpoint, and its volume key; returns the role's policy."""
        statements = [
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
        if self.volume_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="EncryptVolume",
                    actions=[
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:GenerateDataKeyWithoutPlaintext",
                    ],
                    resources=[self.volume_key.key_arn],
                )
            )
        results = [self.role.add_to_principal_policy(statement) for statement in statements]
        acknowledge(
            self.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "cloudwatch:PutMetricData supports no resource scoping; it is limited to "
                    "SageMaker namespaces by condition."
                ),
                f"AwsSolutions-IAM5[Resource::{_LOG_GROUPS_ARN}*]": (
                    "The endpoint's log group is named after the generated endpoint name, which "
                    "depends on this policy; limited to SageMaker endpoint log groups."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": INLINE_POLICY_REASON,
            },
        )
        policy = results[0].policy_dependable
        if policy is None:
            raise RuntimeError(f"{self.role.node.path} did not create its policy")
        return policy


def _logical_id_part(instance_type: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", instance_type))
