"""Fixtures of the staging tests: a fake Hub, and an S3 server that accepts small parts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from musicgen_local.moto_server import FAKE_CREDENTIALS, running_s3_server
from tests.integration.model_staging.staging_fixtures import FaultRow
from tests.support.fake_hub import FakeHub, running_fake_hub
from tests.support.shared_s3_servers import (
    SHARED_SMALL_PART_S3_ENDPOINT_ENV,
    SMALL_PART_SERVER_ENV,
)


@pytest.fixture(scope="session")
def small_part_s3_endpoint_url() -> Iterator[str]:
    if shared := os.environ.get(SHARED_SMALL_PART_S3_ENDPOINT_ENV):
        yield shared
        return
    with running_s3_server(SMALL_PART_SERVER_ENV) as endpoint:
        yield endpoint


@pytest.fixture
def staging_env(
    aws_credentials: None, small_part_s3_endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """boto3 reaches the S3 server through AWS_ENDPOINT_URL, as it would in an air-gapped VPC."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", small_part_s3_endpoint_url)
    return small_part_s3_endpoint_url


@pytest.fixture
def s3(staging_env: str) -> Any:
    return boto3.client("s3", region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"])


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with running_fake_hub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


@pytest.fixture
def fault_row() -> FaultRow:
    """The test's row in `make reliability`'s staging fault matrix (written only there)."""
    return FaultRow()
