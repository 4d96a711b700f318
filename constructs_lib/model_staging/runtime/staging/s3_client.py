"""The S3 client of every staging run, the Lambda's and the operator CLI's alike."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from .transfer import DEFAULT_WORKERS

# Standard mode retries throttling, 5xx answers and transient connection errors, with backoff
# and jitter, up to `max_attempts` calls in all (legacy mode, boto3's default, makes 5).
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
S3_RETRIES = {"max_attempts": 10, "mode": "standard"}


def s3_client(*, workers: int = DEFAULT_WORKERS) -> Any:
    """A client with the staging retries and a connection for each parallel part upload."""
    return boto3.client(
        "s3", config=Config(retries=S3_RETRIES, max_pool_connections=max(10, workers + 2))
    )
