"""The local loop assembled: a stack's outputs in moto, the model server, the async emulator.

`running_local_loop` starts every part and yields what a user's shell needs (`environment`:
the `AWS_ENDPOINT_URL_*` variables, region and dummy credentials) and what a client reads
(the stack outputs). The end-to-end tests build the same loop from the same functions, with
their session's shared servers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from constructs_lib.container_environment import model_server_environment
from inference_code import contract
from musicgen_local.async_sagemaker_emulator import (
    AsyncSageMakerEmulator,
    EmulatedEndpoint,
    running_async_sagemaker,
)
from musicgen_local.model_server import running_model_server
from musicgen_local.moto_server import FAKE_CREDENTIALS, running_s3_server

REGION = FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]
# The services a client of the endpoint talks to, by the suffix of their AWS_ENDPOINT_URL_*
# variable (the service id, upper-cased, spaces as underscores):
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
MOTO_SERVICES = ("S3", "SNS", "SQS", "CLOUDFORMATION")
EMULATED_SERVICES = ("SAGEMAKER_RUNTIME", "SAGEMAKER")
DEFAULT_MAX_DURATION_SECONDS = 30.0


@dataclass(frozen=True)
class LocalEndpoint:
    """Names of the endpoint the loop plays, as a deployment of environment `env_name` has."""

    env_name: str
    endpoint_name: str
    bucket: str
    max_duration_seconds: float = DEFAULT_MAX_DURATION_SECONDS

    @property
    def stack_name(self) -> str:
        return contract.stack_name_for(self.env_name)


@dataclass(frozen=True)
class LocalLoop:
    """A running loop: the stack outputs, the emulator, and the shell environment to export."""

    endpoint: LocalEndpoint
    outputs: dict[str, str]
    environment: dict[str, str]
    emulator: AsyncSageMakerEmulator


def local_session() -> boto3.Session:
    """A session with the loop's dummy credentials, whatever the calling shell holds."""
    return boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )


def stack_template(endpoint: LocalEndpoint) -> dict[str, Any]:
    """Stand-ins for the bucket and topics, and the outputs the real stack declares."""
    prefix = f"s3://{endpoint.bucket}"
    return {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": endpoint.bucket}},
            "SuccessTopic": {"Type": "AWS::SNS::Topic"},
            "ErrorTopic": {"Type": "AWS::SNS::Topic"},
        },
        "Outputs": {
            contract.OUTPUT_ENDPOINT_NAME: {"Value": endpoint.endpoint_name},
            contract.OUTPUT_INPUT_S3_URI: {"Value": f"{prefix}/{contract.ASYNC_INPUT_PREFIX}"},
            contract.OUTPUT_OUTPUT_S3_URI: {"Value": f"{prefix}/{contract.ASYNC_OUTPUT_PREFIX}"},
            contract.OUTPUT_FAILURE_S3_URI: {"Value": f"{prefix}/{contract.ASYNC_FAILURE_PREFIX}"},
            contract.OUTPUT_SUCCESS_TOPIC_ARN: {"Value": {"Ref": "SuccessTopic"}},
            contract.OUTPUT_ERROR_TOPIC_ARN: {"Value": {"Ref": "ErrorTopic"}},
            contract.OUTPUT_MODEL_COMMIT: {"Value": "0" * 40},
            contract.OUTPUT_MAX_DURATION_SECONDS: {"Value": f"{endpoint.max_duration_seconds:g}"},
        },
    }


def create_stack(aws_endpoint_url: str, endpoint: LocalEndpoint) -> dict[str, str]:
    """Create the endpoint's stack in moto's CloudFormation; return its outputs."""
    cloudformation = local_session().client("cloudformation", endpoint_url=aws_endpoint_url)
    cloudformation.create_stack(
        StackName=endpoint.stack_name, TemplateBody=json.dumps(stack_template(endpoint))
    )
    described = cloudformation.describe_stacks(StackName=endpoint.stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}


def emulated_endpoint(
    endpoint: LocalEndpoint, outputs: Mapping[str, str], **settings: Any
) -> EmulatedEndpoint:
    """The emulator's configuration for the stack's outputs; `settings` as EmulatedEndpoint's."""
    return EmulatedEndpoint(
        name=endpoint.endpoint_name,
        output_s3_uri=outputs[contract.OUTPUT_OUTPUT_S3_URI],
        failure_s3_uri=outputs[contract.OUTPUT_FAILURE_S3_URI],
        success_topic_arn=outputs[contract.OUTPUT_SUCCESS_TOPIC_ARN],
        error_topic_arn=outputs[contract.OUTPUT_ERROR_TOPIC_ARN],
        region=REGION,
        **settings,
    )


def shell_environment(aws_endpoint_url: str, sagemaker_url: str) -> dict[str, str]:
    """What a shell exports so that any AWS SDK or the AWS CLI talks to the loop."""
    return {
        **{f"AWS_ENDPOINT_URL_{service}": aws_endpoint_url for service in MOTO_SERVICES},
        **{f"AWS_ENDPOINT_URL_{service}": sagemaker_url for service in EMULATED_SERVICES},
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    }


def serve_model(
    model_dir: Path, endpoint: LocalEndpoint, *, startup_timeout: float = 120
) -> AbstractContextManager[str]:
    """The model server on `model_dir` with the container environment the stack deploys."""
    environment = model_server_environment(
        model_id="local/musicgen", max_duration_seconds=endpoint.max_duration_seconds
    )
    return running_model_server(model_dir, env=environment, startup_timeout=startup_timeout)


@contextmanager
def running_local_loop(
    model_dir: Path,
    endpoint: LocalEndpoint,
    *,
    aws_port: int = 0,
    sagemaker_port: int = 0,
    max_concurrent_invocations: int = 1,
    startup_timeout: float = 120,
) -> Iterator[LocalLoop]:
    """Start moto, the stack, the model server on `model_dir` and the emulator; stop them all."""
    with (
        running_s3_server(port=aws_port) as aws_endpoint_url,
        serve_model(model_dir, endpoint, startup_timeout=startup_timeout) as model_url,
    ):
        outputs = create_stack(aws_endpoint_url, endpoint)
        settings = emulated_endpoint(
            endpoint, outputs, max_concurrent_invocations=max_concurrent_invocations
        )
        with running_async_sagemaker(
            endpoint=settings,
            model_url=model_url,
            aws_endpoint_url=aws_endpoint_url,
            port=sagemaker_port,
        ) as emulator:
            yield LocalLoop(
                endpoint=endpoint,
                outputs=outputs,
                environment=shell_environment(aws_endpoint_url, emulator.url),
                emulator=emulator,
            )
