"""Objects already in S3 are trusted only when their recorded sha256 is the one expected.

An object left by an earlier run, by hand or by another revision can have the right size and a
plausible tag or metadata; the runtime must compare the recorded digest, not just its presence.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import Any

import pytest

from constructs_lib.model_staging.runtime.staging.budget import Unlimited
from constructs_lib.model_staging.runtime.staging.package import (
    build_package,
    package_location,
    snapshot_weights,
)
from constructs_lib.model_staging.runtime.staging.s3_location import S3Location
from constructs_lib.model_staging.runtime.staging.transfer import SHA256_METADATA, VERIFIED_TAG
from tests.integration.model_staging.staging_fixtures import (
    MODEL_ID,
    PART_SIZE,
    read,
    repo_files,
    stage,
)
from tests.support.fake_hub import FakeHub

pytestmark = pytest.mark.integration

WEIGHTS = "model.safetensors"
CODE = {"inference.py": b"def model_fn(model_dir, context=None):\n    return model_dir\n"}
CODE_HASH = "c0de" * 16
WRONG_SHA256 = "0" * 64


def sha256_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_an_object_tagged_with_another_sha256_is_staged_again(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    key = f"models/{MODEL_ID}/{repo.commit}/{WEIGHTS}"
    other_bytes = bytes(len(files[WEIGHTS]))  # the right size, other content
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=other_bytes,
        Tagging=urllib.parse.urlencode({VERIFIED_TAG: sha256_of(other_bytes)}),
    )
    fake_hub.requests.clear()

    result = stage(s3, bucket)

    assert result.done
    assert WEIGHTS in result.stats.copied
    assert any(request.path.endswith(WEIGHTS) for request in fake_hub.file_requests())
    assert read(s3, bucket, key) == files[WEIGHTS]
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
        {"Key": VERIFIED_TAG, "Value": sha256_of(files[WEIGHTS])}
    ]


@pytest.mark.parametrize("name", [WEIGHTS, "config.json", "code/inference.py"])
def test_a_package_object_of_the_right_size_with_other_sha256_is_copied_again(
    fake_hub: FakeHub, s3: Any, bucket: str, name: str
) -> None:
    files = repo_files()
    fake_hub.add_repo(MODEL_ID, files)
    weights = snapshot_weights(s3, stage(s3, bucket).location)
    destination = package_location(
        S3Location(bucket=bucket, prefix="packages/"), MODEL_ID, weights.version, CODE_HASH
    )

    def build() -> bool:
        return build_package(
            s3=s3,
            weights=weights,
            code=CODE,
            destination=destination,
            budget=Unlimited(),
            copy_part_size=2 * PART_SIZE,
        )

    assert build()
    expected = CODE["inference.py"] if name.startswith("code/") else files[name]
    key = destination.key(name)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=bytes(len(expected)),
        Metadata={SHA256_METADATA: WRONG_SHA256},
    )

    assert build()

    assert read(s3, bucket, key) == expected
    assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {
        SHA256_METADATA: sha256_of(expected)
    }
