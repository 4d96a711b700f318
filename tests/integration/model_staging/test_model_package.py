"""Packaging a staged snapshot (or user-staged weights) with `code/` into a model prefix."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

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


class Requests:
    """The S3 operations a client sends, recorded by a boto3 event hook (they still reach the
    server): how much work a build does is part of its behaviour."""

    def __init__(self, s3: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        s3.meta.events.register("before-parameter-build.s3", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def named(self, *names: str) -> list[tuple[str, dict[str, Any]]]:
        return [(name, params) for name, params in self.calls if name in names]


def stage_user_weights(s3: Any, bucket: str, files: dict[str, bytes]) -> S3Location:
    source = S3Location(bucket=bucket, prefix="byo/musicgen/")
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=source.key(name), Body=body)
    return source


def staged_weights(kind: str, fake_hub: FakeHub, s3: Any, bucket: str) -> Any:
    files = repo_files()
    if kind == "snapshot":
        fake_hub.add_repo(MODEL_ID, files)
        return snapshot_weights(s3, stage(s3, bucket).location)
    inference = {name: body for name, body in files.items() if name in INFERENCE_FILES}
    return user_weights(s3, stage_user_weights(s3, bucket, inference))


WRITES = ("CopyObject", "UploadPartCopy", "PutObject", "DeleteObjects", "CreateMultipartUpload")


@pytest.mark.parametrize("kind", ["snapshot", "user"])
def test_rebuilding_a_package_redoes_only_what_is_missing(
    kind: str, fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    weights = staged_weights(kind, fake_hub, s3, bucket)
    _, destination = build(s3, bucket, weights)
    complete = keys(s3, bucket, destination.prefix)
    requests = Requests(s3)

    assert build(s3, bucket, weights)[0]

    assert requests.named(*WRITES) == []
    assert keys(s3, bucket, destination.prefix) == complete
    last_code = destination.key(f"code/{list(CODE)[-1]}")
    s3.delete_object(Bucket=bucket, Key=last_code)
    s3.delete_object(Bucket=bucket, Key=destination.key("tokenizer.json"))
    requests.calls.clear()

    assert build(s3, bucket, weights)[0]

    written = sorted(params["Key"] for _, params in requests.named(*WRITES))
    assert written == sorted([last_code, destination.key("tokenizer.json")])
    assert keys(s3, bucket, destination.prefix) == complete
    assert read(s3, bucket, last_code) == CODE[list(CODE)[-1]]


def test_weights_that_clash_with_the_code_folder_are_refused(s3: Any, bucket: str) -> None:
    source = stage_user_weights(
        s3, bucket, {"config.json": b"{}", "code/inference.py": b"print('weights')\n"}
    )
    weights = user_weights(s3, source)
    destination = package_location(packages_root(bucket), MODEL_ID, weights.version, CODE_HASH)
    clash = re.escape(f"files ['{destination.key('code/inference.py')}'] clash with the code")

    with pytest.raises(ValueError, match=f"^weights: {clash} folder code/$"):
        build(s3, bucket, weights)

    assert keys(s3, bucket, destination.prefix) == []


def test_budget_running_out_before_the_code_is_not_a_complete_package(s3: Any, bucket: str) -> None:
    files = {name: body for name, body in repo_files().items() if name in INFERENCE_FILES}
    weights = user_weights(s3, stage_user_weights(s3, bucket, files))

    done, destination = build(s3, bucket, weights, budget=PartBudget(len(files)))

    assert not done
    assert keys(s3, bucket, destination.prefix) == sorted(destination.key(name) for name in files)


def uploads(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
    return sorted(upload["Key"] for page in pages for upload in page.get("Uploads", []))


@pytest.mark.parametrize("operation", ["build", "delete"])
def test_unfinished_uploads_are_aborted_below_the_package_only(
    operation: str, s3: Any, bucket: str
) -> None:
    """An interrupted run leaves part copies in flight; a neighbour package's are not ours."""
    files = {name: body for name, body in repo_files().items() if name in INFERENCE_FILES}
    weights = user_weights(s3, stage_user_weights(s3, bucket, files))
    destination = package_location(packages_root(bucket), MODEL_ID, weights.version, CODE_HASH)
    neighbour = package_location(packages_root(bucket), MODEL_ID, weights.version, "f00d" * 16)
    ours = destination.key("model.safetensors")
    theirs = neighbour.key("model.safetensors")
    for key in (ours, theirs):
        s3.create_multipart_upload(Bucket=bucket, Key=key)

    if operation == "build":
        assert build(s3, bucket, weights)[0]
    else:
        assert delete_package(s3=s3, location=destination, budget=Unlimited())

    assert uploads(s3, bucket) == [theirs]


def put_many(s3: Any, bucket: str, names: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), names))


MORE_THAN_A_BATCH = 1001  # DeleteObjects takes at most 1000 keys


def test_delete_package_deletes_more_than_one_batch(s3: Any, bucket: str) -> None:
    location = S3Location(bucket=bucket, prefix=f"packages/{MODEL_ID}/v1/{CODE_HASH}/")
    names = [location.key(f"shard-{index:05}.bin") for index in range(MORE_THAN_A_BATCH)]
    put_many(s3, bucket, [*names, "packages/other.bin"])
    requests = Requests(s3)

    assert delete_package(s3=s3, location=location, budget=Unlimited())

    batches = [len(params["Delete"]["Objects"]) for _, params in requests.named("DeleteObjects")]
    assert batches == [1000, 1]
    assert keys(s3, bucket, "packages/") == ["packages/other.bin"]


def test_delete_package_stops_when_the_budget_runs_out(s3: Any, bucket: str) -> None:
    location = S3Location(bucket=bucket, prefix=f"packages/{MODEL_ID}/v1/{CODE_HASH}/")
    put_many(s3, bucket, [location.key("config.json")])

    assert not delete_package(s3=s3, location=location, budget=PartBudget(0))

    assert keys(s3, bucket, location.prefix) == [location.key("config.json")]


def test_build_cleans_more_than_one_batch_of_strays(s3: Any, bucket: str) -> None:
    files = {name: body for name, body in repo_files().items() if name in INFERENCE_FILES}
    weights = user_weights(s3, stage_user_weights(s3, bucket, files))
    destination = package_location(packages_root(bucket), MODEL_ID, weights.version, CODE_HASH)
    put_many(s3, bucket, [destination.key(f"stray-{n:05}") for n in range(MORE_THAN_A_BATCH)])
    requests = Requests(s3)

    assert build(s3, bucket, weights)[0]

    batches = [len(params["Delete"]["Objects"]) for _, params in requests.named("DeleteObjects")]
    assert batches == [1000, 1]
    assert len(keys(s3, bucket, destination.prefix)) == len(files) + len(CODE)


def test_copies_carry_only_the_package_metadata_and_one_part_files_are_copied_whole(
    s3: Any, bucket: str
) -> None:
    """A user's own object metadata (here a wrong sha256) must not follow the copy."""
    source = S3Location(bucket=bucket, prefix="byo/musicgen/")
    s3.put_object(
        Bucket=bucket, Key=source.key("config.json"), Body=b"{}", Metadata={"sha256": "0" * 64}
    )
    s3.put_object(Bucket=bucket, Key=source.key("model.safetensors"), Body=bytes(2 * PART_SIZE))

    _, destination = build(s3, bucket, user_weights(s3, source))

    assert s3.head_object(Bucket=bucket, Key=destination.key("config.json"))["Metadata"] == {}
    whole = s3.head_object(Bucket=bucket, Key=destination.key("model.safetensors"))
    assert whole["ContentLength"] == 2 * PART_SIZE
    assert "-" not in whole["ETag"]  # exactly one part: a plain copy, not a 1-part upload


def test_user_weights_version_is_the_fingerprint_of_the_listing(s3: Any, bucket: str) -> None:
    """The version names the package prefix: hashing the listing differently in a release would
    rebuild every user-staged package under a new prefix, and replace every Model."""
    source = stage_user_weights(s3, bucket, {"config.json": b"{}", "model.safetensors": b"w" * 9})
    s3.put_object(Bucket=bucket, Key=source.key("empty/"), Body=b"")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=source.prefix)["Contents"]
    rows = [f"{o['Key']}\t{o['Size']}\t{o['ETag']}" for o in listed if not o["Key"].endswith("/")]

    version = user_weights(s3, source).version

    assert version == "s3-" + hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def test_a_failed_delete_of_strays_is_an_error_naming_three_keys(s3: Any, bucket: str) -> None:
    files = {name: body for name, body in repo_files().items() if name in INFERENCE_FILES}
    weights = user_weights(s3, stage_user_weights(s3, bucket, files))
    destination = package_location(packages_root(bucket), MODEL_ID, weights.version, CODE_HASH)
    locked = [destination.key(f"locked-{n}") for n in range(5)]
    put_many(s3, bucket, locked)
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{bucket}/{destination.prefix}locked-*",
    }
    s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )

    with pytest.raises(RuntimeError, match=rf"^deleting objects in s3://{bucket}/ failed: ") as err:
        build(s3, bucket, weights)

    assert sum(key in str(err.value) for key in locked) == 3
    assert keys(s3, bucket, destination.prefix) == locked


def test_an_object_deleted_after_the_listing_is_copied_again(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """A concurrent clean-up removes a file between the build's listing and its check."""
    weights = staged_weights("snapshot", fake_hub, s3, bucket)
    _, destination = build(s3, bucket, weights)
    vanishing = destination.key("model.safetensors")
    other = boto3.client("s3", region_name=s3.meta.region_name)

    def delete_first(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == vanishing and keys(other, bucket, vanishing):
            other.delete_object(Bucket=bucket, Key=vanishing)

    s3.meta.events.register("before-parameter-build.s3.HeadObject", delete_first)

    assert build(s3, bucket, weights)[0]

    assert read(s3, bucket, vanishing) == repo_files()["model.safetensors"]


def test_a_failed_part_copy_aborts_its_upload(s3: Any, bucket: str) -> None:
    """The weights changed under the build: the part copies fail and leave no upload behind."""
    source = stage_user_weights(
        s3, bucket, {"config.json": b"{}", "model.safetensors": bytes(3 * PART_SIZE)}
    )
    weights = user_weights(s3, source)
    s3.delete_object(Bucket=bucket, Key=source.key("model.safetensors"))

    with pytest.raises(ClientError, match="UploadPartCopy"):
        build(s3, bucket, weights)

    assert uploads(s3, bucket) == []


def test_multipart_copies_number_their_parts_from_one(s3: Any, bucket: str) -> None:
    """Parallel downloaders (the CRT's) fetch an object by part number, starting at part 1."""
    body = bytes(range(256)) * (5 * PART_SIZE // 256)
    source = stage_user_weights(s3, bucket, {"config.json": b"{}", "model.safetensors": body})

    _, destination = build(s3, bucket, user_weights(s3, source))

    key = destination.key("model.safetensors")
    parts = [s3.head_object(Bucket=bucket, Key=key, PartNumber=n) for n in (1, 3)]
    assert [part["PartsCount"] for part in parts] == [3, 3]
    assert [part["ContentLength"] for part in parts] == [2 * PART_SIZE, PART_SIZE]
