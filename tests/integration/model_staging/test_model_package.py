"""Packaging a staged snapshot (or user-staged weights) with `code/` into a model prefix."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from constructs_lib.model_staging.runtime.staging.budget import Unlimited
from constructs_lib.model_staging.runtime.staging.package import (
    build_package,
    delete_package,
    package_location,
    snapshot_weights,
    user_weights,
)
from constructs_lib.model_staging.runtime.staging.s3_location import S3Location
from tests.integration.model_staging.staging_fixtures import (
    INFERENCE_FILES,
    MODEL_ID,
    PART_SIZE,
    PartBudget,
    keys,
    read,
    repo_files,
    stage,
)
from tests.support.fake_hub import FakeHub

pytestmark = pytest.mark.integration

CODE = {
    "inference.py": b"def model_fn(model_dir, context=None):\n    return model_dir\n",
    "request_schema.py": b"FIELDS = ()\n",
    "assets/presets.json": b"{}",
}
CODE_HASH = "c0de" * 16


def packages_root(bucket: str) -> S3Location:
    return S3Location(bucket=bucket, prefix="packages/")


def build(s3: Any, bucket: str, weights: Any, *, budget: Any = None) -> tuple[bool, S3Location]:
    destination = package_location(packages_root(bucket), MODEL_ID, weights.version, CODE_HASH)
    done = build_package(
        s3=s3,
        weights=weights,
        code=CODE,
        destination=destination,
        budget=budget or Unlimited(),
        copy_part_size=2 * PART_SIZE,
    )
    return done, destination


def test_package_holds_weights_and_code_and_nothing_else(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files()
    fake_hub.add_repo(MODEL_ID, files)
    snapshot = stage(s3, bucket)
    fake_hub.requests.clear()
    weights = snapshot_weights(s3, snapshot.location)

    done, destination = build(s3, bucket, weights)

    assert done
    assert destination.uri == (f"s3://{bucket}/packages/{MODEL_ID}/{snapshot.commit}/{CODE_HASH}/")
    expected = sorted(
        [destination.key(name) for name in INFERENCE_FILES]
        + [destination.key(f"code/{name}") for name in CODE]
    )
    assert keys(s3, bucket, destination.prefix) == expected
    for name in INFERENCE_FILES:
        assert read(s3, bucket, destination.key(name)) == files[name]
    for name, body in CODE.items():
        assert read(s3, bucket, destination.key(f"code/{name}")) == body
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=destination.prefix)
    sizes = [obj["Size"] for page in pages for obj in page["Contents"]]
    assert 0 not in sizes
    weights_head = s3.head_object(Bucket=bucket, Key=destination.key("model.safetensors"))
    assert weights_head["ETag"].endswith('-3"')  # copied server-side in 3 parts
    assert (
        weights_head["Metadata"]["sha256"] == hashlib.sha256(files["model.safetensors"]).hexdigest()
    )
    for name in ("config.json", "model.safetensors"):
        assert s3.get_object_tagging(Bucket=bucket, Key=destination.key(name))["TagSet"] == []
    assert fake_hub.file_requests() == []  # weights come from models/, never from the Hub again


def test_package_build_resumes_and_cleans_strays(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    weights = snapshot_weights(s3, stage(s3, bucket).location)
    destination = package_location(packages_root(bucket), MODEL_ID, weights.version, CODE_HASH)
    s3.put_object(Bucket=bucket, Key=destination.key("code/"), Body=b"")  # a console "folder"
    s3.put_object(Bucket=bucket, Key=destination.key("old.txt"), Body=b"stale")

    assert not build(s3, bucket, weights, budget=PartBudget(2))[0]
    assert len(keys(s3, bucket, destination.prefix)) == 2
    assert build(s3, bucket, weights)[0]

    listed = keys(s3, bucket, destination.prefix)
    assert destination.key("code/") not in listed and destination.key("old.txt") not in listed
    assert len(listed) == len(INFERENCE_FILES) + len(CODE)


def test_new_code_hash_or_new_weights_make_a_new_prefix(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files(seed=1))
    first = snapshot_weights(s3, stage(s3, bucket).location)
    fake_hub.add_repo(MODEL_ID, repo_files(seed=2))
    second = snapshot_weights(s3, stage(s3, bucket).location)
    root = packages_root(bucket)

    locations = {
        package_location(root, MODEL_ID, first.version, CODE_HASH),
        package_location(root, MODEL_ID, first.version, "f00d" * 16),
        package_location(root, MODEL_ID, second.version, CODE_HASH),
    }

    assert len(locations) == 3
    assert package_location(root, MODEL_ID, first.version, CODE_HASH) in locations


def test_snapshot_without_manifest_is_refused(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    partial = stage(s3, bucket, budget=PartBudget(4))

    with pytest.raises(RuntimeError, match=r"snapshot s3://.* is not complete: it has no manifest"):
        snapshot_weights(s3, partial.location)


def test_user_staged_weights(s3: Any, bucket: str) -> None:
    source = S3Location(bucket=bucket, prefix="byo/musicgen/")
    files = {k: v for k, v in repo_files().items() if k in INFERENCE_FILES}
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=source.key(name), Body=body)
    s3.put_object(Bucket=bucket, Key=source.prefix, Body=b"")  # a "folder" key

    weights = user_weights(s3, source)
    done, destination = build(s3, bucket, weights)

    assert done
    assert weights.version.startswith("s3-") and len(weights.version) == 19
    assert user_weights(s3, source).version == weights.version
    assert keys(s3, bucket, destination.prefix) == sorted(
        [destination.key(name) for name in files] + [destination.key(f"code/{n}") for n in CODE]
    )
    assert read(s3, bucket, destination.key("model.safetensors")) == files["model.safetensors"]
    s3.put_object(Bucket=bucket, Key=source.key("config.json"), Body=b'{"changed": true}')
    assert user_weights(s3, source).version != weights.version


def test_user_staged_weights_need_a_config(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="byo/model.safetensors", Body=b"weights")

    with pytest.raises(ValueError, match=r"model_s3_uri: s3://.*/byo/ must hold config.json"):
        user_weights(s3, S3Location(bucket=bucket, prefix="byo/"))


def test_delete_package_removes_only_its_prefix(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    snapshot = stage(s3, bucket)
    _, destination = build(s3, bucket, snapshot_weights(s3, snapshot.location))

    assert delete_package(s3=s3, location=destination, budget=Unlimited())

    assert keys(s3, bucket, "packages/") == []
    assert len(keys(s3, bucket, snapshot.location.prefix)) == len(INFERENCE_FILES) + 1


def test_user_uri_of_a_staged_snapshot_uses_its_manifest(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """An operator staged with the CLI and points model_s3_uri at the snapshot it printed."""
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    snapshot = stage(s3, bucket)

    weights = user_weights(s3, S3Location.parse(snapshot.location.uri))

    assert weights.version == repo.commit
    assert [file.path for file in weights.files] == INFERENCE_FILES
    assert all(file.sha256 for file in weights.files)
