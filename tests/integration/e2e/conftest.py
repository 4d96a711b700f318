"""The end-to-end loop, assembled from real parts.

The loop of `make local` (`musicgen_local.loop`) on this session's shared moto server: a
`MusicGen-e2e` stack whose outputs have the real stack's keys, the container's model server on a
tiny random MusicGen, the async emulator in between. The client and CLI only learn the endpoint
URLs from the `AWS_ENDPOINT_URL_*` variables `make local` prints.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from musicgen_local.async_sagemaker_emulator import (
    AsyncSageMakerEmulator,
    running_async_sagemaker,
)
from musicgen_local.code_package import install_inference_code
from musicgen_local.loop import (
    REGION,
    LocalEndpoint,
    create_stack,
    emulated_endpoint,
    serve_model,
    shell_environment,
)
from musicgen_local.tiny_musicgen import build_tiny_musicgen

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_NAME = "e2e"
MAX_DURATION_SECONDS = 4.0
# The bucket is per session: the moto server is shared with other tests.
ENDPOINT = LocalEndpoint(
    env_name=ENV_NAME,
    endpoint_name="musicgen-e2e",
    bucket=f"musicgen-e2e-{uuid.uuid4().hex[:12]}",
    max_duration_seconds=MAX_DURATION_SECONDS,
)
STACK_NAME = ENDPOINT.stack_name
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
        return boto3.Session(region_name=REGION)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model laid out like /opt/ml/model: weights plus `code/` (inference_code)."""
    model_dir = build_tiny_musicgen(tmp_path_factory.mktemp("e2e") / "model", variant="mono")
    install_inference_code(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def model_server_url(tiny_model_dir: Path) -> Iterator[str]:
    with serve_model(tiny_model_dir, ENDPOINT) as url:
        yield url


@pytest.fixture(scope="session")
def local_stack(s3_endpoint_url: str, model_server_url: str) -> Iterator[LocalStack]:
    outputs = create_stack(s3_endpoint_url, ENDPOINT)
    with running_async_sagemaker(
        endpoint=emulated_endpoint(
            ENDPOINT, outputs, max_concurrent_invocations=MAX_CONCURRENT_INVOCATIONS
        ),
        model_url=model_server_url,
        aws_endpoint_url=s3_endpoint_url,
    ) as emulator:
        yield LocalStack(
            outputs=outputs,
            bucket=ENDPOINT.bucket,
            environment=shell_environment(s3_endpoint_url, emulator.url),
            emulator=emulator,
        )


def _without_aws_variables() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}


@pytest.fixture
def aws_environment(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """Point this process's AWS SDK at the local stack, exactly as a user's shell would."""
    for name in os.environ:
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in local_stack.environment.items():
        monkeypatch.setenv(name, value)
    return local_stack


@pytest.fixture
def cli_env(local_stack: LocalStack) -> dict[str, str]:
    """The environment of a `musicgen` subprocess: the user's, plus the local endpoint URLs.

    It imports this tree's code, not whatever checkout the virtualenv's editable install names.
    """
    return {**_without_aws_variables(), **local_stack.environment, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture
def cold_endpoint(
    local_stack: LocalStack, model_server_url: str, s3_endpoint_url: str
) -> Iterator[dict[str, str]]:
    """The same endpoint, scaled to zero with a slow cold start and a queue TTL of ~1 s.

    Yields the environment of a CLI that talks to it.
    """
    endpoint = emulated_endpoint(
        ENDPOINT, local_stack.outputs, cold_start_seconds=3.0, request_ttl_scale=1 / 60
    )
    with running_async_sagemaker(
        endpoint=endpoint, model_url=model_server_url, aws_endpoint_url=s3_endpoint_url
    ) as emulator:
        yield {
            **_without_aws_variables(),
            **shell_environment(s3_endpoint_url, emulator.url),
        }
        emulator.wait_until_idle()
