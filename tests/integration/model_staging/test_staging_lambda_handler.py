"""The custom resources' Lambda handlers driven through a Provider-framework lifecycle."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from constructs_lib.model_staging.runtime.staging import lambda_handler
from constructs_lib.model_staging.runtime.staging.hub import (
    HubDeadlineError,
    RevisionNotFoundError,
)
from tests.integration.model_staging.staging_fixtures import (
    INFERENCE_FILES,
    MODEL_ID,
    FaultRow,
    keys,
    read,
    repeated_requests,
    repo_files,
)
from tests.support.fake_hub import FakeHub, Fault

pytestmark = pytest.mark.integration
reliable = pytest.mark.reliability

RUNTIME_DIRECTORY = Path(lambda_handler.__file__).parents[1]
CODE_KEY = "0123abcd" * 8 + ".zip"


class LambdaContext:
    def __init__(self, remaining_seconds: float) -> None:
        self.remaining_ms = int(remaining_seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


FULL_RUN = LambdaContext(900)


class CountdownContext:
    """A Lambda context whose remaining time runs down with the clock, as Lambda's does."""

    def __init__(self, remaining_seconds: float) -> None:
        self._end = time.monotonic() + remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


def code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inference.py", "def model_fn(model_dir):\n    return model_dir\n")
        archive.writestr("helpers/", "")
        archive.writestr("helpers/audio.py", "RATE = 32000\n")
        archive.writestr("__pycache__/inference.cpython-312.pyc", b"\0")
    return buffer.getvalue()


def run(event: dict[str, Any], context: LambdaContext = FULL_RUN) -> dict[str, Any]:
    """What the Provider framework does: on_event once, then is_complete until done."""
    answer = lambda_handler.on_event(event, context)
    event = {**event, **answer, "Data": answer.get("Data", {})}
    for _ in range(5):
        completion = lambda_handler.is_complete(event, context)
        if completion["IsComplete"]:
            return {**event, "Data": {**event["Data"], **completion.get("Data", {})}}
        assert "Data" not in completion
    raise AssertionError("is_complete never reported done")


def snapshot_event(bucket: str, request: str = "Create", **extra: str) -> dict[str, Any]:
    properties = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework",
        "Bucket": bucket,
        "KeyPrefix": "models/",
        "ModelId": MODEL_ID,
        "Revision": "main",
        **extra,
    }
    return {
        "RequestType": request,
        "ResourceType": lambda_handler.SNAPSHOT_RESOURCE,
        "ResourceProperties": properties,
    }


def package_event(bucket: str, snapshot_uri: str, request: str = "Create") -> dict[str, Any]:
    properties = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework",
        "Bucket": bucket,
        "KeyPrefix": "packages/",
        "ModelId": MODEL_ID,
        "CodeBucket": bucket,
        "CodeKey": CODE_KEY,
        "CodeHash": CODE_KEY.removesuffix(".zip"),
        "SnapshotUri": snapshot_uri,
    }
    return {
        "RequestType": request,
        "ResourceType": lambda_handler.PACKAGE_RESOURCE,
        "ResourceProperties": properties,
    }


@pytest.fixture
def code_bucket(s3: Any, bucket: str) -> str:
    s3.put_object(Bucket=bucket, Key=CODE_KEY, Body=code_zip())
    return bucket


def test_create_redeploy_and_delete(
    fake_hub: FakeHub, s3: Any, bucket: str, code_bucket: str
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)

    snapshot = run(snapshot_event(bucket))
    snapshot_uri = f"s3://{bucket}/models/{MODEL_ID}/{repo.commit}/"
    assert snapshot["PhysicalResourceId"] == snapshot_uri
    assert snapshot["Data"] == {"Commit": repo.commit, "SnapshotUri": snapshot_uri}

    package = run(package_event(bucket, snapshot_uri))
    package_prefix = f"packages/{MODEL_ID}/{repo.commit}/{CODE_KEY.removesuffix('.zip')}/"
    assert package["PhysicalResourceId"] == f"s3://{bucket}/{package_prefix}"
    assert package["Data"] == {
        "Commit": repo.commit,
        "ModelDataUrl": f"s3://{bucket}/{package_prefix}",
    }
    assert keys(s3, bucket, package_prefix) == sorted(
        [package_prefix + name for name in INFERENCE_FILES]
        + [package_prefix + "code/inference.py", package_prefix + "code/helpers/audio.py"]
    )
    assert read(s3, bucket, package_prefix + "model.safetensors") == files["model.safetensors"]

    fake_hub.requests.clear()
    assert run(snapshot_event(bucket, "Update"))["PhysicalResourceId"] == snapshot_uri
    assert (
        run(package_event(bucket, snapshot_uri, "Update"))["PhysicalResourceId"]
        == (package["PhysicalResourceId"])
    )
    assert fake_hub.file_requests() == []

    delete = {"PhysicalResourceId": package["PhysicalResourceId"]}
    run({**package_event(bucket, snapshot_uri, "Delete"), **delete})
    run({**snapshot_event(bucket, "Delete"), "PhysicalResourceId": snapshot_uri})
    assert keys(s3, bucket, "packages/") == []
    assert len(keys(s3, bucket, "models/")) == len(INFERENCE_FILES) + 1


def test_delete_of_a_foreign_physical_id_deletes_nothing(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="packages/keep.txt", Body=b"x")
    for physical_id in (
        f"s3://{bucket}/packages/",
        "2f6a-request-id",
        f"s3://{bucket}/models/a/b/c/d/",
    ):
        event = {**package_event(bucket, "", "Delete"), "PhysicalResourceId": physical_id}
        assert lambda_handler.is_complete(event, FULL_RUN) == {"IsComplete": True}
    assert keys(s3, bucket) == ["packages/keep.txt"]


@reliable
def test_a_run_out_of_time_reports_not_done(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    event = snapshot_event(bucket)
    answer = lambda_handler.on_event(event, FULL_RUN)
    no_time = LambdaContext(lambda_handler.SAFETY_MARGIN_SECONDS)

    assert lambda_handler.is_complete({**event, **answer}, no_time) == {"IsComplete": False}
    assert keys(s3, bucket) == []
    fault_row.record(
        "Lambda is_complete with only the safety margin left",
        faults=1,
        retries=0,
        outcome="IsComplete false, nothing written",
    )


@pytest.fixture
def short_margins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Margins scaled down with the remaining time, so that a run of seconds shows the limits."""
    monkeypatch.setattr(lambda_handler, "SAFETY_MARGIN_SECONDS", 3.0)
    monkeypatch.setattr(lambda_handler, "HUB_MARGIN_SECONDS", 1.0)


@reliable
def test_a_stalled_download_ends_before_the_lambda_times_out(
    fake_hub: FakeHub, s3: Any, bucket: str, short_margins: None, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    stall = fake_hub.inject(Fault("stall", path="model.safetensors", times=None, seconds=60))
    event = snapshot_event(bucket)
    event = {**event, **lambda_handler.on_event(event, FULL_RUN)}

    began = time.monotonic()
    assert lambda_handler.is_complete(event, CountdownContext(6)) == {"IsComplete": False}
    cut_after = time.monotonic() - began
    assert cut_after < 6
    retries = repeated_requests(fake_hub)
    prefix = f"models/{MODEL_ID}/{repo.commit}/"
    staged_first = {"config.json", "generation_config.json"}
    assert set(keys(s3, bucket)) == {prefix + name for name in staged_first}

    stall.times = stall.hits  # the Hub recovers
    fake_hub.requests.clear()
    assert lambda_handler.is_complete(event, FULL_RUN) == {"IsComplete": True}
    fetched = {request.path.rsplit("/", 1)[1] for request in fake_hub.file_requests()}
    assert fetched == set(INFERENCE_FILES) - staged_first
    assert read(s3, bucket, prefix + "model.safetensors") == files["model.safetensors"]
    fault_row.record(
        "Lambda is_complete, Hub stalls the weights, 6 s left",
        faults=stall.hits,
        retries=retries,
        outcome=f"IsComplete false after {cut_after:.1f} s; next poll staged the rest",
    )


@reliable
def test_on_event_gives_up_on_a_stalled_hub_before_the_lambda_times_out(
    fake_hub: FakeHub, s3: Any, bucket: str, short_margins: None, fault_row: FaultRow
) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    stall = fake_hub.inject(Fault("stall", path="/api/models/", times=None, seconds=60))

    began = time.monotonic()
    with pytest.raises(HubDeadlineError, match=r"at revision main: out of time") as cut:
        lambda_handler.on_event(snapshot_event(bucket), CountdownContext(4))
    assert time.monotonic() - began < 4
    fault_row.record(
        "Lambda on_event, Hub listing stalls, 4 s left",
        faults=stall.hits,
        retries=repeated_requests(fake_hub),
        outcome=f"failed before the Lambda timeout: {cut.value}",
    )


def test_unknown_revision_fails_on_event(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())

    with pytest.raises(RevisionNotFoundError, match="at revision v9: not found on the Hub"):
        lambda_handler.on_event(snapshot_event(bucket, Revision="v9"), FULL_RUN)


def test_token_secret_is_read_from_secrets_manager(
    fake_hub: FakeHub, s3: Any, bucket: str, staging_env: str
) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files(), token="hf_gated")
    boto3.client("secretsmanager").create_secret(
        Name=f"hub-token-{bucket}", SecretString='{"token": "hf_gated"}'
    )

    snapshot = run(snapshot_event(bucket, HubTokenSecretName=f"hub-token-{bucket}"))

    assert snapshot["Data"]["Commit"] == repo.commit


def test_missing_property_is_named(s3: Any, bucket: str) -> None:
    event = snapshot_event(bucket)
    del event["ResourceProperties"]["ModelId"]

    with pytest.raises(ValueError, match="resource property ModelId: must be a non-empty string"):
        lambda_handler.on_event(event, FULL_RUN)


def test_the_runtime_imports_as_a_lambda_task_root() -> None:
    """Lambda puts the asset folder on sys.path and imports `staging.lambda_handler`."""
    probe = "import staging.lambda_handler as h; print(h.on_event.__module__)"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(RUNTIME_DIRECTORY)!r}); {probe}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "staging.lambda_handler"
