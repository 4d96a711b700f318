"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Node 20 is end-of-life: without these, jsii prints a banner in every test that synthesizes.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from musicgen_local.moto_server import FAKE_CREDENTIALS, running_s3_server
from tests.import_identity import modules_loaded_twice
from tests.support.shared_s3_servers import SHARED_S3_ENDPOINT_ENV


@pytest.fixture(scope="session", autouse=True)
def inference_code_is_loaded_once() -> Iterator[None]:
    """Fail the session when any test loaded a module of inference_code/ under a second name."""
    yield
    twice = modules_loaded_twice()
    assert not twice, f"inference_code modules loaded under a second name: {twice}"


@pytest.fixture(scope="session")
def s3_endpoint_url() -> Iterator[str]:
    """Endpoint URL of a moto S3 server process shared by the whole test session (or by many:
    `tests.support.shared_s3_servers`)."""
    if shared := os.environ.get(SHARED_S3_ENDPOINT_ENV):
        yield shared
        return
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so boto3 never reaches for a real profile."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    os.environ.pop("AWS_ENDPOINT_URL", None)
