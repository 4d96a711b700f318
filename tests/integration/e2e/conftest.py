"""The end-to-end loop, assembled from real parts.

moto's server plays S3, SNS, SQS and CloudFormation (a `MusicGen-e2e` stack whose outputs have
the real stack's keys); the container's model server serves `inference_code/` on a tiny random
MusicGen; `AsyncSageMakerEmulator` plays SageMaker's async queue in between. The client and CLI
only learn the endpoint URLs from the standard `AWS_ENDPOINT_URL*` variables.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from constructs_lib.container_environment import model_server_environment
from inference_code import contract
from tests.support.async_sagemaker_emulator import (
    AsyncSageMakerEmulator,
    EmulatedEndpoint,
    running_async_sagemaker,
)
from tests.support.model_server import running_model_server
from tests.support.s3_server import FAKE_CREDENTIALS
from tests.support.tiny_musicgen import build_tiny_musicgen

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_NAME = "e2e"
STACK_NAME = contract.stack_name_for(ENV_NAME)
ENDPOINT_NAME = "musicgen-e2e"
MAX_DURATION_SECONDS = 4.0
# Two workers, so requests really overlap and a mix-up between them could show.
MAX_CONCURRENT_INVOCATIONS = 2


@dataclass(frozen=True)
class LocalStack:
    """The deployed-looking endpoint: its stack outputs and the processes behind them."""

    outputs: dict[str, str]
    bucket: str
    environment: dict[str, str]
    emulator: AsyncSageMakerEmulator

    def session(self) -> boto3.Session:
        return boto3.Session(region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model laid out like /opt/ml/model: weights plus `code/` (inference_code)."""
    model_dir = build_tiny_musicgen(tmp_path_factory.mktemp("e2e") / "model", variant="mono")
    shutil.copytree(
        REPO_ROOT / "inference_code",
        model_dir / "code",
        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"),
    )
    return model_dir


@pytest.fixture(scope="session")
def model_server_url(tiny_model_dir: Path) -> Iterator[str]:
    environment = model_server_environment(
        model_id="tiny/musicgen", max_duration_seconds=MAX_DURATION_SECONDS
    )
    with running_model_server(tiny_model_dir, env=environment) as url:
        yield url


def _stack_template(bucket: str) -> dict:
    """Stand-ins for the bucket and topics, and the outputs the real stack declares."""
    prefix = f"s3://{bucket}"
    return {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}},
            "SuccessTopic": {"Type": "AWS::SNS::Topic"},
            "ErrorTopic": {"Type": "AWS::SNS::Topic"},
        },
        "Outputs": {
            contract.OUTPUT_ENDPOINT_NAME: {"Value": ENDPOINT_NAME},
            contract.OUTPUT_INPUT_S3_URI: {"Value": f"{prefix}/{contract.ASYNC_INPUT_PREFIX}"},
            contract.OUTPUT_OUTPUT_S3_URI: {"Value": f"{prefix}/{contract.ASYNC_OUTPUT_PREFIX}"},
            contract.OUTPUT_FAILURE_S3_URI: {"Value": f"{prefix}/{contract.ASYNC_FAILURE_PREFIX}"},
            contract.OUTPUT_SUCCESS_TOPIC_ARN: {"Value": {"Ref": "SuccessTopic"}},
            contract.OUTPUT_ERROR_TOPIC_ARN: {"Value": {"Ref": "ErrorTopic"}},
            contract.OUTPUT_MODEL_COMMIT: {"Value": "0" * 40},
            contract.OUTPUT_MAX_DURATION_SECONDS: {"Value": f"{MAX_DURATION_SECONDS:g}"},
        },
    }


@pytest.fixture(scope="session")
def local_stack(s3_endpoint_url: str, model_server_url: str) -> Iterator[LocalStack]:
    bucket = f"musicgen-e2e-{uuid.uuid4().hex[:12]}"
    session = boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    cloudformation = session.client("cloudformation", endpoint_url=s3_endpoint_url)
    cloudformation.create_stack(
        StackName=STACK_NAME, TemplateBody=json.dumps(_stack_template(bucket))
    )
    described = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}
    endpoint = EmulatedEndpoint(
        name=ENDPOINT_NAME,
        output_s3_uri=outputs[contract.OUTPUT_OUTPUT_S3_URI],
        failure_s3_uri=outputs[contract.OUTPUT_FAILURE_S3_URI],
        success_topic_arn=outputs[contract.OUTPUT_SUCCESS_TOPIC_ARN],
        error_topic_arn=outputs[contract.OUTPUT_ERROR_TOPIC_ARN],
        max_concurrent_invocations=MAX_CONCURRENT_INVOCATIONS,
    )
    with running_async_sagemaker(
        endpoint=endpoint, model_url=model_server_url, aws_endpoint_url=s3_endpoint_url
    ) as emulator:
        environment = {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": s3_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": emulator.url,
            "AWS_ENDPOINT_URL_SAGEMAKER": emulator.url,
        }
        yield LocalStack(outputs=outputs, bucket=bucket, environment=environment, emulator=emulator)


@pytest.fixture
def aws_environment(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """Point this process's AWS SDK at the local stack, exactly as a user's shell would."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in local_stack.environment.items():
        monkeypatch.setenv(name, value)
    return local_stack


@pytest.fixture
def cli_env(local_stack: LocalStack) -> dict[str, str]:
    """The environment of a `musicgen` subprocess: the user's, plus the local endpoint URLs."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**inherited, **local_stack.environment}


@pytest.fixture
def cold_endpoint(
    local_stack: LocalStack, model_server_url: str, s3_endpoint_url: str
) -> Iterator[dict[str, str]]:
    """The same endpoint, scaled to zero with a slow cold start and a queue TTL of ~1 s.

    Yields the environment of a CLI that talks to it.
    """
    outputs = local_stack.outputs
    endpoint = EmulatedEndpoint(
        name=ENDPOINT_NAME,
        output_s3_uri=outputs[contract.OUTPUT_OUTPUT_S3_URI],
        failure_s3_uri=outputs[contract.OUTPUT_FAILURE_S3_URI],
        success_topic_arn=outputs[contract.OUTPUT_SUCCESS_TOPIC_ARN],
        error_topic_arn=outputs[contract.OUTPUT_ERROR_TOPIC_ARN],
        cold_start_seconds=3.0,
        request_ttl_scale=1 / 60,
    )
    with running_async_sagemaker(
        endpoint=endpoint, model_url=model_server_url, aws_endpoint_url=s3_endpoint_url
    ) as emulator:
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        yield {
            **inherited,
            **local_stack.environment,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": emulator.url,
            "AWS_ENDPOINT_URL_SAGEMAKER": emulator.url,
        }
        emulator.wait_until_idle()
