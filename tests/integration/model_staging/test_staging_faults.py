"""Staging against a Hub that misbehaves (each fault injected by the fake Hub) and an S3 that
fails chosen operations (a proxy in front of the S3 server process). Each test is a row of
`make reliability`'s staging fault matrix: the fault, how often it hit, the retries it cost, the
outcome and the time."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from constructs_lib.model_staging.runtime.staging.budget import Deadline
from constructs_lib.model_staging.runtime.staging.digests import VerificationError
from constructs_lib.model_staging.runtime.staging.hub import (
    HubClient,
    HubDeadlineError,
    HubError,
)
from constructs_lib.model_staging.runtime.staging.s3_client import S3_RETRIES
from constructs_lib.model_staging.runtime.staging.transfer import VERIFIED_TAG
from musicgen_local.moto_server import FAKE_CREDENTIALS
from tests.integration.model_staging.staging_fixtures import (
    MODEL_ID,
    PART_SIZE,
    FaultRow,
    keys,
    outcome_of,
    read,
    repeated_requests,
    repo_files,
    stage,
)
from tests.support.fake_hub import FakeHub, Fault
from tests.support.s3_fault_proxy import S3FaultProxy, running_s3_fault_proxy

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

WEIGHTS = "model.safetensors"


def prefix_of(commit: str) -> str:
    return f"models/{MODEL_ID}/{commit}/"


def weight_requests(hub: FakeHub, start: int | None = None) -> list[str]:
    """Range headers of the weights' byte requests (to the CDN), optionally of one part only."""
    return [
        request.headers.get("Range", "")
        for request in hub.file_requests()
        if request.path.startswith("/cdn/")
        and request.path.endswith(WEIGHTS)
        and (start is None or request.headers.get("Range", "").startswith(f"bytes={start}-"))
    ]


def assert_staged(s3: Any, bucket: str, commit: str, files: dict[str, bytes]) -> None:
    prefix = prefix_of(commit)
    assert prefix + "manifest.json" in keys(s3, bucket)
    assert read(s3, bucket, prefix + WEIGHTS) == files[WEIGHTS]
    sha256 = hashlib.sha256(files[WEIGHTS]).hexdigest()
    assert s3.get_object_tagging(Bucket=bucket, Key=prefix + WEIGHTS)["TagSet"] == [
        {"Key": VERIFIED_TAG, "Value": sha256}
    ]


class Sleeps:
    """Records the waits the Hub client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", path=WEIGHTS, start=2 * PART_SIZE),
        Fault("early_close", path=WEIGHTS, start=2 * PART_SIZE),
        Fault("status", path=WEIGHTS, start=2 * PART_SIZE, status=500),
        Fault("status", path=WEIGHTS, start=2 * PART_SIZE, status=502),
        Fault("status", path=WEIGHTS, start=2 * PART_SIZE, status=503),
        Fault("status", path=WEIGHTS, start=2 * PART_SIZE, status=429),
        Fault("early_close", path="tokenizer.json"),
        Fault("early_close", path="/api/models/"),
        Fault("status", path="/api/models/", status=504),
    ],
    ids=lambda fault: f"{fault.kind}-{fault.status}-{fault.path.strip('/')}",
)
def test_a_transient_fault_is_retried(
    fake_hub: FakeHub, s3: Any, bucket: str, fault: Fault, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fake_hub.inject(fault)

    result = stage(s3, bucket)

    assert result.done
    assert fault.hits == 1
    assert_staged(s3, bucket, repo.commit, files)
    if fault.start is not None:
        assert len(weight_requests(fake_hub, fault.start)) == 2
    where = f"part 3 of {fault.path}" if fault.start else fault.path.strip("/")
    fault_row.record(
        f"Hub {fault.status if fault.kind == 'status' else fault.kind} on {where}",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=outcome_of(result),
    )


def test_every_part_reset_once_still_stages(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    faults = [
        fake_hub.inject(Fault("reset", path=WEIGHTS, start=start))
        for start in range(0, len(files[WEIGHTS]), PART_SIZE)
    ]

    result = stage(s3, bucket, workers=4)

    assert result.done
    assert [fault.hits for fault in faults] == [1] * 6
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        "Hub reset on every part, 4 workers",
        faults=sum(fault.hits for fault in faults),
        retries=repeated_requests(fake_hub),
        outcome=outcome_of(result),
    )


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "3", 3.0), (503, "2", 2.0), (429, "http-date", 60.0)],
)
def test_retry_after_is_honoured(
    fake_hub: FakeHub,
    s3: Any,
    bucket: str,
    status: int,
    retry_after: str,
    expected: float,
    fault_row: FaultRow,
) -> None:
    """Waits are recorded, not slept; an HTTP date counts down while the test runs."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    header = retry_after
    if retry_after == "http-date":
        header = formatdate(time.time() + 61, usegmt=True)
    fault = fake_hub.inject(
        Fault("status", path=WEIGHTS, start=PART_SIZE, status=status, retry_after=header, times=2)
    )
    sleeps = Sleeps()

    result = stage(s3, bucket, attempts=4, backoff_seconds=0.01, sleep=sleeps)

    assert result.done
    assert len(sleeps.seconds) == 2
    slack = 20 if retry_after == "http-date" else 0
    assert all(expected - slack <= seconds <= expected + 1.01 for seconds in sleeps.seconds)
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        f"Hub {status} + Retry-After {retry_after} (waits recorded, not slept)",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=f"{outcome_of(result)}; waited {', '.join(f'{s:.0f}' for s in sleeps.seconds)} s",
    )


def test_retry_after_beyond_the_deadline_stops_the_run_at_once(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    """In a Lambda the run reports "not done" and the next poll resumes from the parts kept."""
    fake_hub.add_repo(MODEL_ID, repo_files())
    fault = fake_hub.inject(
        Fault("status", path=WEIGHTS, status=429, retry_after="3600", times=None)
    )
    sleeps = Sleeps()

    result = stage(s3, bucket, deadline=Deadline(30), attempts=4, sleep=sleeps)

    assert not result.done
    assert sleeps.seconds == []
    fault_row.record(
        "Hub 429 + Retry-After 3600 s, 30 s left",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=outcome_of(result),
    )


def test_retry_after_beyond_the_client_limit_is_a_clear_error(
    fake_hub: FakeHub, fault_row: FaultRow
) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    fault = fake_hub.inject(Fault("status", path="config.json", status=503, retry_after="3600"))
    sleeps = Sleeps()

    with (
        HubClient(sleep=sleeps, max_retry_after_seconds=300) as hub,
        pytest.raises(
            HubError, match=r"config\.json bytes 0-\d+: the Hub asked to retry after 3600 s, more"
        ) as refused,
    ):
        hub.download(MODEL_ID, repo.commit, "config.json", start=0, end=9, file_size=10)
    assert sleeps.seconds == []
    fault_row.record(
        "Hub 503 + Retry-After 3600 s, client limit 300 s",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=f"failed: {refused.value}",
    )


def test_a_stalling_server_is_given_up_on_and_retried(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fault = fake_hub.inject(Fault("stall", path=WEIGHTS, start=PART_SIZE, seconds=20))

    began = time.monotonic()
    result = stage(s3, bucket, stall_seconds=1)

    assert result.done
    assert time.monotonic() - began < 10
    assert len(weight_requests(fake_hub, PART_SIZE)) == 2
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        "Hub stall 20 s on part 2 (silence limit 1 s)",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=outcome_of(result),
    )


def test_a_trickling_server_is_given_up_on_and_retried(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    """64 KiB at 5 KiB/s would take 13 s; one attempt may take 2 s."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fault = fake_hub.inject(
        Fault("trickle", path=WEIGHTS, start=PART_SIZE, slice_bytes=512, seconds=0.1)
    )

    began = time.monotonic()
    result = stage(s3, bucket, attempt_seconds=2)

    assert result.done
    assert time.monotonic() - began < 8
    assert len(weight_requests(fake_hub, PART_SIZE)) == 2
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        "Hub trickle 5 KiB/s on part 2 (attempt limit 2 s)",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=outcome_of(result),
    )


@pytest.mark.parametrize(
    "fault",
    [
        Fault("trickle", path=WEIGHTS, times=None, slice_bytes=256, seconds=0.2),
        Fault("stall", path=WEIGHTS, times=None, seconds=30),
    ],
    ids=lambda fault: fault.kind,
)
def test_the_deadline_bounds_a_request_and_its_retries(
    fake_hub: FakeHub, fault: Fault, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fake_hub.inject(fault)

    began = time.monotonic()
    with (
        HubClient(deadline=Deadline(2), stall_seconds=10, backoff_seconds=0) as hub,
        pytest.raises(HubDeadlineError, match=rf"{WEIGHTS} bytes 0-65535: out of time") as cut,
    ):
        hub.download(
            MODEL_ID,
            repo.commit,
            WEIGHTS,
            start=0,
            end=PART_SIZE - 1,
            file_size=len(files[WEIGHTS]),
        )

    assert time.monotonic() - began < 3
    fault_row.record(
        f"Hub {fault.kind} on every request, 2 s deadline",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=f"stopped: {cut.value}",
    )


def test_an_ignored_range_fails_without_retrying(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    fault = fake_hub.inject(Fault("ignore_range", path=WEIGHTS, start=PART_SIZE, times=None))

    with pytest.raises(
        HubError, match=rf"{WEIGHTS} bytes 65536-131071: the Hub ignored the Range header"
    ) as refused:
        stage(s3, bucket)

    assert len(weight_requests(fake_hub, PART_SIZE)) == 1
    assert not {prefix_of(repo.commit) + name for name in ("manifest.json", WEIGHTS)} & set(
        keys(s3, bucket)
    )
    fault_row.record(
        "Hub ignores Range on part 2",
        faults=fault.hits,
        retries=repeated_requests(fake_hub),
        outcome=f"failed, nothing staged: {refused.value}",
    )


def test_corrupt_bytes_fail_the_file_and_a_rerun_starts_it_again(
    fake_hub: FakeHub, s3: Any, bucket: str, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fault = fake_hub.inject(Fault("corrupt", path=WEIGHTS, start=3 * PART_SIZE))

    with pytest.raises(VerificationError, match=rf"{WEIGHTS}: sha256 mismatch"):
        stage(s3, bucket)
    assert prefix_of(repo.commit) + WEIGHTS not in keys(s3, bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    retries = repeated_requests(fake_hub)

    rerun = stage(s3, bucket)
    assert rerun.done
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        "Hub corrupts one byte of part 4",
        faults=fault.hits,
        retries=retries,
        outcome=f"sha256 mismatch, nothing kept; rerun {outcome_of(rerun)}",
    )


@pytest.fixture
def s3_proxy(staging_env: str) -> Iterator[S3FaultProxy]:
    with running_s3_fault_proxy(staging_env) as proxy:
        yield proxy


def proxied_s3(proxy: S3FaultProxy) -> Any:
    """A client through the proxy that does not retry: each injected error reaches the runtime."""
    return boto3.client(
        "s3",
        endpoint_url=proxy.url,
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_a_failed_complete_is_completed_from_the_listed_parts_on_the_next_run(
    fake_hub: FakeHub, s3: Any, bucket: str, s3_proxy: S3FaultProxy, fault_row: FaultRow
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fault = s3_proxy.inject("CompleteMultipartUpload", times=None)
    through_proxy = proxied_s3(s3_proxy)

    with pytest.raises(ClientError, match="CompleteMultipartUpload"):
        stage(through_proxy, bucket)
    assert s3_proxy.calls["UploadPart"] == 6
    s3_proxy.clear()
    fake_hub.requests.clear()

    rerun = stage(through_proxy, bucket)
    assert rerun.done

    assert weight_requests(fake_hub) == []
    assert s3_proxy.calls["UploadPart"] == 0
    assert s3_proxy.calls["CompleteMultipartUpload"] == 1
    assert s3_proxy.calls["GetObject"] >= 1  # verified by reading it back
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        "S3 500 on CompleteMultipartUpload, no S3 retries",
        faults=fault.hits,
        retries=0,
        outcome=f"failed; rerun completed from listed parts, read back, {outcome_of(rerun)}",
    )


def test_a_completed_upload_whose_bytes_are_wrong_is_deleted_after_completing(
    fake_hub: FakeHub, s3: Any, bucket: str, s3_proxy: S3FaultProxy
) -> None:
    """Completing from listed parts is safe: the read-back still checks size and sha256."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    s3_proxy.inject("CompleteMultipartUpload", times=None)
    through_proxy = proxied_s3(s3_proxy)
    with pytest.raises(ClientError):
        stage(through_proxy, bucket)
    repo.listed_sha256[WEIGHTS] = "0" * 64
    s3_proxy.clear()

    with pytest.raises(VerificationError, match=rf"{WEIGHTS}: sha256 mismatch"):
        stage(through_proxy, bucket)

    assert prefix_of(repo.commit) + WEIGHTS not in keys(s3, bucket)
    assert s3_proxy.calls["CompleteMultipartUpload"] == 1


# The S3 calls of a first staging run, in the order they come.
FIRST_RUN_OPERATIONS = [
    "GetObject",
    "HeadObject",
    "PutObject",
    "ListMultipartUploads",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "PutObjectTagging",
]


def runtime_s3(proxy: S3FaultProxy) -> Any:
    """A client through the proxy with the staging runtime's own retry configuration."""
    return boto3.client(
        "s3",
        endpoint_url=proxy.url,
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        config=Config(retries=S3_RETRIES),
    )


@pytest.mark.parametrize("operation", FIRST_RUN_OPERATIONS)
def test_throttling_of_any_s3_operation_is_retried(
    fake_hub: FakeHub,
    s3: Any,
    bucket: str,
    s3_proxy: S3FaultProxy,
    operation: str,
    fault_row: FaultRow,
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fault = s3_proxy.inject(operation, status=503, code="SlowDown", times=2)

    result = stage(runtime_s3(s3_proxy), bucket)

    assert result.done
    assert fault.hits == 2
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        f"S3 503 SlowDown x2 on {operation}",
        faults=fault.hits,
        retries=fault.hits,
        outcome=outcome_of(result),
    )


@pytest.mark.parametrize("operation", FIRST_RUN_OPERATIONS)
def test_a_refused_s3_operation_stages_nothing_and_a_rerun_finishes(
    fake_hub: FakeHub,
    s3: Any,
    bucket: str,
    s3_proxy: S3FaultProxy,
    operation: str,
    fault_row: FaultRow,
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fault = s3_proxy.inject(operation, status=403, code="AccessDenied", times=None)
    through_proxy = runtime_s3(s3_proxy)

    # A HEAD answer has no body: botocore names the status instead of the error code.
    with pytest.raises(
        ClientError, match=rf"\((AccessDenied|403)\) when calling the {operation} operation"
    ):
        stage(through_proxy, bucket)
    assert prefix_of(repo.commit) + "manifest.json" not in keys(s3, bucket)
    # Refused calls are not retried: each part in flight (UploadPart) is refused once.
    assert s3_proxy.calls[operation] == fault.hits >= 1
    s3_proxy.clear()

    rerun = stage(through_proxy, bucket)

    assert rerun.done
    assert_staged(s3, bucket, repo.commit, files)
    fault_row.record(
        f"S3 403 AccessDenied on {operation}",
        faults=fault.hits,
        retries=0,
        outcome=f"failed naming {operation}, no manifest; rerun {outcome_of(rerun)}",
    )
