"""Parts transferred in parallel: bounded workers, kept-alive connections, hashing in file order."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.integration.model_staging.staging_fixtures import (
    MODEL_ID,
    PART_SIZE,
    read,
    repo_files,
    stage,
)
from tests.support.fake_hub import FakeHub, Fault, RecordedRequest

pytestmark = pytest.mark.integration

WEIGHTS = "model.safetensors"
PARTS = 6


def part_requests(hub: FakeHub) -> dict[int, RecordedRequest]:
    """The first CDN request of each part of the weights, by part start."""
    first: dict[int, RecordedRequest] = {}
    for request in hub.file_requests():
        if request.path.startswith("/cdn/") and request.path.endswith(WEIGHTS):
            start = int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
            first.setdefault(start, request)
    return first


def test_parts_are_fetched_at_the_same_time(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    files = repo_files()
    fake_hub.add_repo(MODEL_ID, files)
    fake_hub.bytes_per_second = PART_SIZE  # a part takes 1 s on one connection

    assert stage(s3, bucket, workers=4).done

    starts = sorted(request.at for request in part_requests(fake_hub).values())
    assert len(starts) == PARTS
    assert starts[3] - starts[0] < 0.6  # four parts began before the first could finish


def test_parts_reuse_kept_alive_connections(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())

    assert stage(s3, bucket, workers=2).done

    cdn = [r for r in fake_hub.file_requests() if r.path.startswith("/cdn/") and WEIGHTS in r.path]
    assert len(cdn) == PARTS
    assert len({request.connection for request in cdn}) <= 2
    hub_requests = [r for r in fake_hub.requests if not r.path.startswith("/cdn/")]
    assert len({request.connection for request in hub_requests}) <= 2


def test_a_slow_first_part_holds_the_window_and_the_digest_stays_in_order(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """Part 1 takes 1.6 s, the others a moment: with 2 workers, part 2 finishes and waits in the
    reorder window; part 3 starts only once part 1 was hashed, so at most 2 parts are held."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fake_hub.inject(Fault("trickle", path=WEIGHTS, start=0, slice_bytes=4096, seconds=0.1))

    result = stage(s3, bucket, workers=2)

    assert result.done
    first = part_requests(fake_hub)
    assert first[PART_SIZE].at - first[0].at < 1.0
    assert first[2 * PART_SIZE].at - first[0].at > 1.4
    weights_key = result.location.key(WEIGHTS)
    assert read(s3, bucket, weights_key) == files[WEIGHTS]
    manifest = json.loads(read(s3, bucket, result.location.key("manifest.json")))
    staged = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    assert staged[WEIGHTS] == hashlib.sha256(files[WEIGHTS]).hexdigest()
    assert result.commit == repo.commit
