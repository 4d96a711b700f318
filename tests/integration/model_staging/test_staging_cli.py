"""`python -m constructs_lib.model_staging stage ...` end to end, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from constructs_lib.model_staging.runtime.staging.cli import main
from tests.integration.model_staging.staging_fixtures import (
    INFERENCE_FILES,
    MODEL_ID,
    FaultRow,
    keys,
    read,
    repo_files,
)
from tests.support.fake_hub import FakeHub
from tests.support.s3_fault_proxy import S3FaultProxy, running_s3_fault_proxy

pytestmark = pytest.mark.integration


def cli(*args: str, s3_endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI with this process's environment (HF_ENDPOINT, AWS_ENDPOINT_URL, credentials)."""
    env = dict(os.environ)
    if s3_endpoint:
        env["AWS_ENDPOINT_URL"] = s3_endpoint
    return subprocess.run(
        [sys.executable, "-m", "constructs_lib.model_staging", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )


@pytest.fixture
def s3_proxy(staging_env: str) -> Iterator[S3FaultProxy]:
    with running_s3_fault_proxy(staging_env) as proxy:
        yield proxy


def test_stage_end_to_end_then_nothing_to_do(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    prefix = f"models/{MODEL_ID}/{repo.commit}/"
    args = (
        "stage",
        "--model-id",
        MODEL_ID,
        "--revision",
        "main",
        "--s3-uri",
        f"s3://{bucket}/models",
    )

    first = cli(*args, "--part-size-mib", "5")

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"staged {MODEL_ID}@main (commit {repo.commit}) at s3://{bucket}/{prefix}: "
        f"{len(INFERENCE_FILES)} files copied, 0 already staged, "
        f"{sum(len(files[name]) for name in INFERENCE_FILES)} bytes from the Hub"
    )
    assert read(s3, bucket, prefix + "model.safetensors") == files["model.safetensors"]
    assert json.loads(read(s3, bucket, prefix + "manifest.json"))["commit"] == repo.commit

    second = cli(*args)
    assert second.returncode == 0, second.stderr
    assert "0 files copied, 0 already staged, 0 bytes from the Hub" in second.stdout
    assert keys(s3, bucket) == sorted(prefix + name for name in [*INFERENCE_FILES, "manifest.json"])


def test_stage_with_a_token_secret(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files(), token="hf_operator")
    boto3.client("secretsmanager").create_secret(Name=f"cli-{bucket}", SecretString="hf_operator\n")
    args = ("stage", "--model-id", MODEL_ID, "--s3-uri", f"s3://{bucket}/models/")

    refused = cli(*args)
    staged = cli(*args, "--token-secret", f"cli-{bucket}")

    assert refused.returncode == 1
    assert "access refused by the Hub (HTTP 401 GatedRepo)" in refused.stderr
    assert staged.returncode == 0, staged.stderr
    assert f"models/{MODEL_ID}/{repo.commit}/manifest.json" in keys(s3, bucket)


def test_unknown_revision_exits_1_with_the_reason(fake_hub: FakeHub, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())

    result = cli(
        "stage", "--model-id", MODEL_ID, "--revision", "nope", "--s3-uri", f"s3://{bucket}/m/"
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: model {MODEL_ID} at revision nope: not found on the Hub (HTTP 404 "
        "RevisionNotFound); check the model id and that the revision is an existing branch, "
        "tag or commit"
    )


def test_an_s3_failure_is_one_line_without_a_traceback(
    fake_hub: FakeHub, bucket: str, s3_proxy: S3FaultProxy
) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    s3_proxy.inject("PutObject", status=403, code="AccessDenied", times=None)

    result = cli(
        "stage", "--model-id", MODEL_ID, "--s3-uri", f"s3://{bucket}/m/", s3_endpoint=s3_proxy.url
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: AWS: An error occurred (AccessDenied) when calling the PutObject operation: "
        "injected by the test proxy into PutObject"
    )


@pytest.mark.reliability
@pytest.mark.heavy
def test_s3_is_retried_as_often_as_in_the_lambda(
    fake_hub: FakeHub, s3: Any, bucket: str, s3_proxy: S3FaultProxy, fault_row: FaultRow
) -> None:
    """Six throttled answers in a row: boto3's default (5 attempts) gives up, staging's does not.

    Slow (standard-mode backoff, about 30 s): `make reliability`.
    """
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    fault = s3_proxy.inject("PutObject", status=503, code="SlowDown", times=6)

    result = cli(
        "stage", "--model-id", MODEL_ID, "--s3-uri", f"s3://{bucket}/m/", s3_endpoint=s3_proxy.url
    )

    assert result.returncode == 0, result.stderr
    assert fault.hits == 6
    assert f"m/{MODEL_ID}/{repo.commit}/manifest.json" in keys(s3, bucket)
    fault_row.record(
        "CLI: S3 503 SlowDown x6 on PutObject",
        faults=fault.hits,
        retries=fault.hits,
        outcome="exit 0, manifest written",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stage", "--s3-uri", "s3://b/"], "the following arguments are required: --model-id"),
        (
            ["stage", "--model-id", "musicgen", "--s3-uri", "s3://b/"],
            "argument --model-id: must be owner/name of letters, digits, '.', '_' or '-' "
            "(got 'musicgen')",
        ),
        (
            ["stage", "--model-id", "a/b", "--s3-uri", "b/models"],
            "argument --s3-uri: must start with s3:// (got 'b/models')",
        ),
        (
            ["stage", "--model-id", "a/b", "--s3-uri", "s3://b/", "--part-size-mib", "1"],
            "argument --part-size-mib: must be between 5 and 5120 (got 1)",
        ),
        (
            ["stage", "--model-id", "a/b", "--s3-uri", "s3://b/", "--workers", "0"],
            "argument --workers: must be between 1 and 32 (got 0)",
        ),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_arguments_are_named(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
