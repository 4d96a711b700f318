"""The SageMaker Model, asynchronous EndpointConfig and Endpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

VARIANT_NAME = "AllTraffic"


class AsyncEndpoint(Construct):
    """An async inference endpoint serving one model from an uncompressed S3 prefix.

    The Model and EndpointConfig are immutable in SageMaker: any change to the image, the
    environment or the model prefix replaces them, and the Endpoint moves to the new config in
    place. The Endpoint's logical id carries the instance type: SageMaker refuses to change the
    instance type of a variant registered as a scalable target, so a new instance type gets a new
    endpoint (and scalable target) and the old pair is removed after it is in service.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        execution_role: iam.IRole,
        execution_policy: iam.Policy,
        image_uri: str,
        model_data_url: str,
        environment: Mapping[str, str],
        instance_type: str,
        initial_instance_count: int,
        output_path: str,
        failure_path: str,
        success_topic_arn: str,
        error_topic_arn: str,
        max_concurrent_invocations_per_instance: int,
        model_data_download_timeout_seconds: int,
        container_startup_timeout_seconds: int,
        volume_size_gb: int | None = None,
        volume_kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=execution_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                environment=dict(environment),
                model_data_source=sagemaker.CfnModel.ModelDataSourceProperty(
                    s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                        s3_uri=model_data_url,
                        s3_data_type="S3Prefix",
                        compression_type="None",
                    )
                ),
            ),
        )
        # SageMaker checks the role's permissions when it creates the Model: the policy must
        # exist first, not only the role.
        self.model.node.add_dependency(execution_policy)

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=volume_kms_key.key_arn if volume_kms_key else None,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    instance_type=instance_type,
                    initial_instance_count=initial_instance_count,
                    initial_variant_weight=1.0,
                    model_data_download_timeout_in_seconds=model_data_download_timeout_seconds,
                    container_startup_health_check_timeout_in_seconds=container_startup_timeout_seconds,
                    volume_size_in_gb=volume_size_gb,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=max_concurrent_invocations_per_instance
                ),
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=output_path,
                    s3_failure_path=failure_path,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=success_topic_arn,
                        error_topic=error_topic_arn,
                    ),
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            f"Endpoint{_logical_id_part(instance_type)}",
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint_name = self.endpoint.attr_endpoint_name
        self.variant_name = VARIANT_NAME


def _logical_id_part(instance_type: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", instance_type))
