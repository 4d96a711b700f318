"""A small model repository, shaped like facebook/musicgen-small, for the staging tests."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from constructs_lib.model_staging.runtime.staging.budget import Unlimited
from constructs_lib.model_staging.runtime.staging.hub import HubClient
from constructs_lib.model_staging.runtime.staging.s3_location import S3Location
from constructs_lib.model_staging.runtime.staging.snapshot import SnapshotResult, stage_snapshot
from reliability.results import record
from tests.support.fake_hub import LFS_SUFFIXES, FakeHub

MODEL_ID = "facebook/musicgen-tiny"
PART_SIZE = 64 * 1024
INFERENCE_FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "special_tokens_map.json",
    "spiece.model",
    "tokenizer.json",
    "tokenizer_config.json",
]


def repo_files(seed: int = 0, weights_size: int = 5 * PART_SIZE + 123) -> dict[str, bytes]:
    rng = random.Random(seed)
    weights = rng.randbytes(weights_size)
    return {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": b"# a model card\n",
        "config.json": json.dumps({"model_type": "musicgen", "seed": seed}).encode(),
        "generation_config.json": b'{"max_length": 1500}',
        "preprocessor_config.json": b'{"sampling_rate": 32000}',
        "special_tokens_map.json": b'{"eos_token": "</s>"}',
        "tokenizer.json": json.dumps({"vocab": list(range(500))}).encode(),
        "tokenizer_config.json": b'{"model_max_length": 512}',
        "spiece.model": rng.randbytes(3000),
        "model.safetensors": weights,
        "pytorch_model.bin": weights,
        "flax_model.msgpack": weights[:1000],
        "samples/cover.png": b"\x89PNG",
    }


def stage(
    s3: Any,
    bucket: str,
    *,
    revision: str = "main",
    budget: Any = None,
    token: str | None = None,
    model_id: str = MODEL_ID,
    workers: int = 4,
    **hub_options: Any,
) -> SnapshotResult:
    """Stage with `workers` parallel parts; `hub_options` override the Hub client's defaults
    (here 2 attempts without backoff)."""
    options = {"attempts": 2, "backoff_seconds": 0, **hub_options}
    with HubClient(token=token, **options) as hub:
        return stage_snapshot(
            s3=s3,
            hub=hub,
            model_id=model_id,
            revision=revision,
            models_root=S3Location(bucket=bucket, prefix="models/"),
            budget=budget or Unlimited(),
            part_size=PART_SIZE,
            workers=workers,
        )


def read(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


class PartBudget:
    """Answers "not exhausted" to the first `units` checks (the runtime checks before each
    file and each part), then "exhausted"."""

    def __init__(self, units: int) -> None:
        self.left = units

    def exhausted(self) -> bool:
        if self.left <= 0:
            return True
        self.left -= 1
        return False


class FaultRow:
    """One row of `make reliability`'s staging fault matrix, timed from the test's start.

    A test calls `record` after its assertions, so a row exists only for a fault that was
    injected and handled as the test requires.
    """

    def __init__(self) -> None:
        self._began = time.monotonic()

    def record(self, fault: str, *, faults: int, retries: int, outcome: str) -> None:
        record(
            f"staging: {fault}",
            cases=1,
            faults=faults,
            retries=retries,
            outcome=outcome,
            seconds=round(time.monotonic() - self._began, 2),
        )


def repeated_requests(hub: FakeHub) -> int:
    """Requests the Hub answered more than once (same path and Range): the client's retries.

    An LFS file's `resolve` request only redirects to the CDN, whose request is the one counted.
    """
    asked = [
        (request.path, request.headers.get("Range", ""))
        for request in hub.requests
        if not ("/resolve/" in request.path and request.path.endswith(LFS_SUFFIXES))
    ]
    return len(asked) - len(set(asked))


def outcome_of(result: SnapshotResult) -> str:
    return "staged and verified" if result.done else "not done: resumes at the next poll"
