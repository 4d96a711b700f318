"""One deployable MusicGen environment: storage, model staging, async endpoint, scaling, alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnElement, CfnOutput, Stack
from constructs import Construct

from constructs_lib.async_endpoint import (
    AsyncEndpoint,
    AsyncOutput,
    Capacity,
    DeployCapacity,
    ServedModel,
)
from constructs_lib.container_environment import model_server_environment
from constructs_lib.container_image import inference_image
from constructs_lib.endpoint_log_retention import EndpointLogRetention
from constructs_lib.endpoint_monitoring import EndpointMonitoring
from constructs_lib.model_staging import ModelStaging
from constructs_lib.notification_topics import NotificationTopics
from constructs_lib.scale_to_zero import ScaleToZero
from constructs_lib.secure_bucket import SecureBucket, ServerAccessLogs
from inference_code import contract
from stacks.environment_config import EnvironmentConfig
from stacks.model_sizing import model_size_for

INFERENCE_CODE_DIR = Path(__file__).resolve().parent.parent / "inference_code"
# The execution role, its policy and the volume key were deployed at the stack's top level before
# AsyncEndpoint owned them; a new logical id would replace the role, then the Model and the
# EndpointConfig, and start a GPU instance.
_DEPLOYED_LOGICAL_IDS = {
    "Endpoint/ExecutionRole/Resource": "EndpointExecutionRole1819D26F",
    "Endpoint/ExecutionRole/DefaultPolicy/Resource": "EndpointExecutionPolicyDEC6B388",
    "Endpoint/VolumeKey/Resource": "EndpointVolumeKeyEF424478",
}


class MusicGenStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        size = model_size_for(config.model_id)

        access_logs = SecureBucket(self, "AccessLogs", access_logs=None, retention_days=365).bucket
        model_bucket = SecureBucket(
            self, "ModelArtifacts", access_logs=ServerAccessLogs(access_logs, "models/")
        )
        async_bucket = SecureBucket(
            self,
            "AsyncIO",
            access_logs=ServerAccessLogs(access_logs, "async/"),
            destroy_on_delete=config.destroy_async_data_on_delete,
            expiring_prefixes=(
                contract.ASYNC_INPUT_PREFIX,
                contract.ASYNC_OUTPUT_PREFIX,
                contract.ASYNC_FAILURE_PREFIX,
            ),
            retention_days=config.output_retention_days,
        )
        notifications = NotificationTopics(
            self, "Notifications", notification_emails=config.notification_emails
        )
        staging = ModelStaging(
            self,
            "ModelStaging",
            model_bucket=model_bucket.bucket,
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

        endpoint = AsyncEndpoint(
            self,
            "Endpoint",
            model=ServedModel(
                image_uri=image.uri,
                model_data_url=staging.model_data_url,
                environment=model_server_environment(
                    model_id=config.model_id,
                    max_duration_seconds=config.max_duration_seconds,
                    extend_stride_seconds=config.extend_stride_seconds,
                ),
                download_timeout_seconds=size.download_timeout_seconds,
                startup_timeout_seconds=size.startup_timeout_seconds,
                volume_size_gb=size.volume_size_gb,
                network_isolation=config.network_isolation,
            ),
            output=AsyncOutput(
                output_path=async_bucket.s3_url(contract.ASYNC_OUTPUT_PREFIX),
                failure_path=async_bucket.s3_url(contract.ASYNC_FAILURE_PREFIX),
                success_topic=notifications.success_topic,
                error_topic=notifications.error_topic,
            ),
            capacity=Capacity(
                instance_type=config.instance_type,
                initial_instance_count=max(1, config.min_instances),
                max_concurrent_invocations_per_instance=config.max_concurrent_invocations_per_instance,
                on_deploy=DeployCapacity(config.deploy_capacity),
            ),
        )
        self._keep_deployed_logical_ids()
        EndpointLogRetention(
            self,
            "EndpointLogs",
            endpoint_name=endpoint.endpoint_name,
            retention_days=config.log_retention_days,
        )

        model_bucket.grant_read_objects(
            endpoint,
            staging.package_objects_pattern,
            sid="ReadModel",
            reason="Read-only, this model's package prefix; its sub-prefix (commit and code "
            "hash) changes on every deployment.",
        )
        model_bucket.grant_list_objects(endpoint, staging.package_objects_pattern, sid="ListModel")
        async_bucket.grant_read_objects(
            endpoint,
            f"{contract.ASYNC_INPUT_PREFIX}*",
            sid="ReadRequests",
            reason="SageMaker reads requests whose keys clients choose, under one prefix.",
        )
        for index, location in enumerate(config.extra_input_locations):
            location.grant_read(endpoint, sid=f"ReadExtraInput{index}")
        async_bucket.grant_write_objects(
            endpoint,
            f"{contract.ASYNC_OUTPUT_PREFIX}*",
            f"{contract.ASYNC_FAILURE_PREFIX}*",
            sid="WriteResults",
            reason="SageMaker names results and errors after inference ids, under two prefixes.",
        )
        notifications.grant_publish(endpoint)
        image.grant_pull(endpoint)

        ScaleToZero(
            self,
            "Scaling",
            endpoint=endpoint,
            min_instances=config.min_instances,
            max_instances=config.max_instances,
            backlog_per_instance_target=config.backlog_per_instance_target,
            scale_in_cooldown_seconds=config.scale_in_cooldown,
            scale_out_cooldown_seconds=config.scale_out_cooldown,
        )
        EndpointMonitoring(
            self,
            "Monitoring",
            endpoint=endpoint,
            error_topic=notifications.error_topic,
            oldest_request_alarm_seconds=config.oldest_request_alarm_seconds,
        )

        for key, value, description in (
            (contract.OUTPUT_ENDPOINT_NAME, endpoint.endpoint_name, "Name of the async endpoint"),
            (
                contract.OUTPUT_INPUT_S3_URI,
                async_bucket.s3_url(contract.ASYNC_INPUT_PREFIX),
                "Upload request JSON under this prefix",
            ),
            (
                contract.OUTPUT_OUTPUT_S3_URI,
                async_bucket.s3_url(contract.ASYNC_OUTPUT_PREFIX),
                "Results appear here as <inference-id>.out",
            ),
            (
                contract.OUTPUT_FAILURE_S3_URI,
                async_bucket.s3_url(contract.ASYNC_FAILURE_PREFIX),
                "Errors appear here as <inference-id>-error.out",
            ),
            (
                contract.OUTPUT_SUCCESS_TOPIC_ARN,
                notifications.success_topic.topic_arn,
                "Completed inferences",
            ),
            (
                contract.OUTPUT_ERROR_TOPIC_ARN,
                notifications.error_topic.topic_arn,
                "Failed inferences and alarms",
            ),
            (
                contract.OUTPUT_MODEL_COMMIT,
                staging.commit,
                f"Commit of {config.model_id} being served",
            ),
            (
                contract.OUTPUT_MAX_DURATION_SECONDS,
                f"{config.max_duration_seconds:g}",
                "Longest clip a request may ask for",
            ),
        ):
            CfnOutput(self, key, value=value, description=description)

    def _keep_deployed_logical_ids(self) -> None:
        for construct in self.node.find_all():
            path = construct.node.path.removeprefix(f"{self.node.path}/")
            if isinstance(construct, CfnElement) and path in _DEPLOYED_LOGICAL_IDS:
                construct.override_logical_id(_DEPLOYED_LOGICAL_IDS[path])
