"""Snapshot staging against a fake Hub and a real S3 server process."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from constructs_lib.model_staging.runtime.staging.budget import Deadline
from constructs_lib.model_staging.runtime.staging.digests import VerificationError
from constructs_lib.model_staging.runtime.staging.hub import (
    USER_AGENT,
    HubError,
    RevisionNotFoundError,
)
from constructs_lib.model_staging.runtime.staging.transfer import (
    _READ_BACK_CHUNK,
    SHA256_METADATA,
    VERIFIED_TAG,
)
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
from tests.support.connect_proxy import running_connect_proxy
from tests.support.fake_hub import FakeHub

pytestmark = pytest.mark.integration


def prefix_of(commit: str) -> str:
    return f"models/{MODEL_ID}/{commit}/"


def first_weights_byte_fetched(fake_hub: FakeHub) -> int:
    """The lowest Range start of the weights' requests (parallel parts arrive in any order)."""
    return min(
        int(request.headers["Range"].removeprefix("bytes=").split("-")[0])
        for request in fake_hub.file_requests()
        if request.path.endswith("model.safetensors")
    )


def test_full_copy_is_byte_identical_with_manifest(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)

    result = stage(s3, bucket)

    prefix = prefix_of(repo.commit)
    assert result.done and result.commit == repo.commit
    assert result.stats.files_copied == len(INFERENCE_FILES)
    assert sorted(result.stats.copied) == INFERENCE_FILES
    assert result.stats.bytes_from_hub == sum(len(files[name]) for name in INFERENCE_FILES)
    assert result.location.uri == f"s3://{bucket}/{prefix}"
    assert keys(s3, bucket) == sorted(prefix + name for name in [*INFERENCE_FILES, "manifest.json"])
    for name in INFERENCE_FILES:
        assert read(s3, bucket, prefix + name) == files[name], name
    manifest = json.loads(read(s3, bucket, prefix + "manifest.json"))
    assert manifest["model_id"] == MODEL_ID
    assert manifest["commit"] == repo.commit
    assert manifest["revision"] == "main"
    assert manifest["source"] == fake_hub.url
    assert manifest["staged_at"]
    assert manifest["files"] == [
        {"path": name, "size": len(files[name]), "sha256": hashlib.sha256(files[name]).hexdigest()}
        for name in INFERENCE_FILES
    ]
    weights_key = prefix + "model.safetensors"
    assert s3.head_object(Bucket=bucket, Key=weights_key)["ETag"].endswith('-6"')  # 6 parts
    # Small files are put whole, the weights in parts: each way records and tags the sha256.
    for entry in manifest["files"]:
        key = prefix + entry["path"]
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {
            SHA256_METADATA: entry["sha256"]
        }, key
        tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        assert tags == [{"Key": VERIFIED_TAG, "Value": entry["sha256"]}], key


def test_branch_and_tag_resolve_to_the_commit(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files(), branches={"v1.0": ""})
    repo.branches["v1.0"] = repo.commit

    by_tag = stage(s3, bucket, revision="v1.0")
    by_commit = stage(s3, bucket, revision=repo.commit)

    assert by_tag.commit == by_commit.commit == repo.commit
    assert by_tag.location == by_commit.location
    manifest = json.loads(read(s3, bucket, prefix_of(repo.commit) + "manifest.json"))
    assert manifest["revision"] == "v1.0"


def test_second_run_copies_nothing(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    stage(s3, bucket)
    assert fake_hub.file_requests()
    fake_hub.requests.clear()

    again = stage(s3, bucket)

    assert again.done
    assert fake_hub.file_requests() == []
    assert again.stats.files_copied == again.stats.bytes_from_hub == 0


def test_files_staged_before_an_interruption_are_not_fetched_again(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """No manifest yet (the run stopped): verified objects are skipped, the rest is copied."""
    files = repo_files()
    fake_hub.add_repo(MODEL_ID, files)
    first = stage(s3, bucket, budget=PartBudget(3))  # config.json, generation_config.json
    assert not first.done
    assert first.stats.copied == ["config.json", "generation_config.json"]
    fake_hub.requests.clear()

    second = stage(s3, bucket)

    assert second.done
    fetched = {request.path.rsplit("/", 1)[1] for request in fake_hub.file_requests()}
    assert fetched == set(INFERENCE_FILES) - {"config.json", "generation_config.json"}
    assert second.stats.files_skipped == 2


# 8 files, one check before each, plus one before each of the 6 parts of the weights: 14 checks.
@pytest.mark.parametrize("units", [0, 1, 3, 4, 6, 9, 11, 13, 14])
def test_manifest_is_only_written_once_everything_is_staged(
    fake_hub: FakeHub, s3: Any, bucket: str, units: int
) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())

    result = stage(s3, bucket, budget=PartBudget(units))

    manifest_key = prefix_of(repo.commit) + "manifest.json"
    assert result.done == (manifest_key in keys(s3, bucket))
    assert result.done == (units >= 14)


def test_resume_mid_file_after_the_budget_runs_out(
    fake_hub: FakeHub, s3: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    caplog.set_level(logging.INFO, logger="constructs_lib.model_staging.runtime.staging.transfer")
    # 2 small files before the weights in path order, then 1 check to start the file + 2 parts.
    first = stage(s3, bucket, budget=PartBudget(2 + 1 + 2))
    assert not first.done
    size = len(files["model.safetensors"])
    stop = f"model.safetensors: time budget exhausted at byte {2 * PART_SIZE} of {size}"
    assert f"{stop}; continuing next run" in caplog.messages
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [upload["Key"] for upload in uploads] == [weights_key]
    fake_hub.requests.clear()

    second = stage(s3, bucket)

    assert second.done
    weight_ranges = sorted(
        (
            request.headers["Range"]
            for request in fake_hub.file_requests()
            if request.path.startswith("/cdn/") and request.path.endswith("model.safetensors")
        ),
        key=lambda header: int(header.removeprefix("bytes=").split("-")[0]),
    )
    expected = [
        f"bytes={start}-{min(start + PART_SIZE, size) - 1}"
        for start in range(2 * PART_SIZE, size, PART_SIZE)
    ]
    assert weight_ranges == expected
    assert read(s3, bucket, weights_key) == files["model.safetensors"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    sha256 = hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert s3.get_object_tagging(Bucket=bucket, Key=weights_key)["TagSet"] == [
        {"Key": VERIFIED_TAG, "Value": sha256}
    ]


def test_resume_after_the_hub_drops_connections(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    fake_hub.drop_file_requests_after = 2 + 2  # two small files, then two parts of the weights

    # One part at a time, so that which request is dropped is deterministic.
    with pytest.raises(HubError, match=r"model\.safetensors bytes 131072-196607: failed after 2"):
        stage(s3, bucket, workers=1)
    assert prefix_of(repo.commit) + "manifest.json" not in keys(s3, bucket)

    fake_hub.drop_file_requests_after = None
    fake_hub.requests.clear()
    result = stage(s3, bucket)

    assert result.done
    # The resumed run fetches its parts in parallel, so the Hub records them in no fixed order:
    # what matters is that none before the dropped part is fetched again.
    assert first_weights_byte_fetched(fake_hub) == 2 * PART_SIZE
    assert (
        read(s3, bucket, prefix_of(repo.commit) + "model.safetensors") == files["model.safetensors"]
    )


def test_a_file_of_exactly_one_part_is_copied_in_one_put(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files(weights_size=PART_SIZE)
    repo = fake_hub.add_repo(MODEL_ID, files)

    assert stage(s3, bucket).done

    weights_key = prefix_of(repo.commit) + "model.safetensors"
    assert read(s3, bucket, weights_key) == files["model.safetensors"]
    etag = s3.head_object(Bucket=bucket, Key=weights_key)["ETag"]
    assert etag == '"' + hashlib.md5(files["model.safetensors"]).hexdigest() + '"'  # not "-1"


def test_a_completed_but_unverified_object_is_read_back(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """A run that completed a resumed upload but stopped before tagging it verified."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    s3.put_object(Bucket=bucket, Key=weights_key, Body=files["model.safetensors"])
    fake_hub.requests.clear()

    result = stage(s3, bucket)

    assert result.done
    assert not any(r.path.endswith("model.safetensors") for r in fake_hub.file_requests())
    assert s3.get_object_tagging(Bucket=bucket, Key=weights_key)["TagSet"][0]["Key"] == VERIFIED_TAG


def test_an_upload_with_every_part_but_not_completed_is_completed_and_read_back(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """A run that uploaded the last part but was stopped before completing the upload."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    weights = files["model.safetensors"]
    sha256 = hashlib.sha256(weights).hexdigest()
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=weights_key, Metadata={SHA256_METADATA: sha256}
    )["UploadId"]
    for number, start in enumerate(range(0, len(weights), PART_SIZE), start=1):
        s3.upload_part(
            Bucket=bucket,
            Key=weights_key,
            UploadId=upload_id,
            PartNumber=number,
            Body=weights[start : start + PART_SIZE],
        )
    fake_hub.requests.clear()

    result = stage(s3, bucket)

    assert result.done
    assert "model.safetensors" in result.stats.copied
    assert not any(r.path.endswith("model.safetensors") for r in fake_hub.file_requests())
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert read(s3, bucket, weights_key) == weights
    assert s3.head_object(Bucket=bucket, Key=weights_key)["ETag"].endswith('-6"')  # the 6 parts
    assert s3.get_object_tagging(Bucket=bucket, Key=weights_key)["TagSet"] == [
        {"Key": VERIFIED_TAG, "Value": sha256}
    ]


def test_the_newest_open_upload_is_resumed_and_older_ones_aborted(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """Two runs that stopped mid-file each left an open upload of the key; the newer one got
    further (two parts against one), so resuming it fetches less from the Hub.

    moto lists every upload with one fixed `Initiated` (2010-11-10T20:48:33Z), where S3 reports
    when each was created. The hook gives the listing the times S3 would: one minute apart, in the
    order this test created them.
    """
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    weights = files["model.safetensors"]
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    created: list[str] = []
    for parts in (1, 2):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=weights_key)["UploadId"]
        created.append(upload_id)
        for number in range(1, parts + 1):
            s3.upload_part(
                Bucket=bucket,
                Key=weights_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=weights[(number - 1) * PART_SIZE : number * PART_SIZE],
            )
    started = datetime(2026, 1, 1, tzinfo=UTC)

    def initiated_in_creation_order(parsed: dict[str, Any], **_: Any) -> None:
        for upload in parsed.get("Uploads", []):
            upload["Initiated"] = started + timedelta(minutes=created.index(upload["UploadId"]))

    s3.meta.events.register("after-call.s3.ListMultipartUploads", initiated_in_creation_order)

    assert stage(s3, bucket).done

    first = first_weights_byte_fetched(fake_hub)
    assert first == 2 * PART_SIZE, "the newest upload (2 parts) was not resumed"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert read(s3, bucket, weights_key) == weights


def test_an_open_upload_holding_more_than_the_file_is_aborted_and_restarted(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    """Parts that add up to more bytes than the Hub's file cannot be its start: that upload is
    aborted and the file is uploaded afresh."""
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    weights = files["model.safetensors"]
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=weights_key)["UploadId"]
    s3.upload_part(
        Bucket=bucket, Key=weights_key, UploadId=upload_id, PartNumber=1, Body=weights + b"x"
    )

    assert stage(s3, bucket).done

    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert read(s3, bucket, weights_key) == weights


def test_the_budget_can_run_out_between_chunks_of_a_read_back(
    fake_hub: FakeHub, s3: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An unverified object one byte longer than a read-back chunk is read in two chunks; the
    budget is checked before each, so a run can stop in between and the next one verifies it."""
    files = repo_files(weights_size=_READ_BACK_CHUNK + 1)
    repo = fake_hub.add_repo(MODEL_ID, files)
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    s3.put_object(Bucket=bucket, Key=weights_key, Body=files["model.safetensors"])
    caplog.set_level(logging.INFO, logger="constructs_lib.model_staging.runtime.staging.transfer")

    # 2 small files before the weights in path order, then the first chunk of the read-back.
    first = stage(s3, bucket, budget=PartBudget(2 + 1))

    assert not first.done
    stop = "model.safetensors: time budget exhausted while reading it back; continuing next run"
    assert stop in caplog.messages
    assert s3.get_object_tagging(Bucket=bucket, Key=weights_key)["TagSet"] == []
    fake_hub.requests.clear()

    second = stage(s3, bucket)

    assert second.done
    assert not any(r.path.endswith("model.safetensors") for r in fake_hub.file_requests())
    assert s3.get_object_tagging(Bucket=bucket, Key=weights_key)["TagSet"] == [
        {"Key": VERIFIED_TAG, "Value": hashlib.sha256(files["model.safetensors"]).hexdigest()}
    ]


def test_a_corrupt_unverified_object_is_deleted_and_restaged(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    weights_key = prefix_of(repo.commit) + "model.safetensors"
    corrupt = bytes(len(files["model.safetensors"]))
    s3.put_object(Bucket=bucket, Key=weights_key, Body=corrupt)

    with pytest.raises(VerificationError, match=r"model\.safetensors: sha256 mismatch"):
        stage(s3, bucket)
    assert weights_key not in keys(s3, bucket)

    assert stage(s3, bucket).done
    assert read(s3, bucket, weights_key) == files["model.safetensors"]


def test_sha256_mismatch_fails_naming_the_file(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    repo.listed_sha256["model.safetensors"] = "0" * 64

    with pytest.raises(
        VerificationError,
        match=r"model\.safetensors: sha256 mismatch: got [0-9a-f]{64}, the Hub lists 0{64}",
    ):
        stage(s3, bucket)

    prefix = prefix_of(repo.commit)
    assert prefix + "manifest.json" not in keys(s3, bucket)
    assert prefix + "model.safetensors" not in keys(s3, bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_sha256_mismatch_after_a_resume_deletes_the_object(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    repo.listed_sha256["model.safetensors"] = "0" * 64
    assert not stage(s3, bucket, budget=PartBudget(2 + 1 + 2)).done

    with pytest.raises(VerificationError, match=r"model\.safetensors: sha256 mismatch"):
        stage(s3, bucket)

    assert not [
        key for key in keys(s3, bucket) if key.endswith(("model.safetensors", "manifest.json"))
    ]


@pytest.mark.parametrize(
    ("name", "listed_delta", "message"),
    [
        ("model.safetensors", -1, r"model\.safetensors bytes .*: size mismatch"),
        ("model.safetensors", +1, r"model\.safetensors bytes .*: size mismatch"),
        ("tokenizer.json", +5, r"tokenizer\.json bytes .*: size mismatch"),
        ("spiece.model", -7, r"spiece\.model bytes .*: size mismatch"),
    ],
)
def test_size_mismatch_fails_naming_the_file(
    fake_hub: FakeHub, s3: Any, bucket: str, name: str, listed_delta: int, message: str
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    repo.listed_sizes[name] = len(files[name]) + listed_delta

    with pytest.raises(HubError, match=message):
        stage(s3, bucket)

    prefix = prefix_of(repo.commit)
    assert prefix + "manifest.json" not in keys(s3, bucket)
    assert prefix + name not in keys(s3, bucket)


def test_git_blob_mismatch_of_a_small_file_fails(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    repo = fake_hub.add_repo(MODEL_ID, repo_files())
    repo.served["config.json"] = repo.files["config.json"].replace(b"musicgen", b"musicgem")

    with pytest.raises(VerificationError, match=r"config\.json: git blob id mismatch"):
        stage(s3, bucket)
    assert keys(s3, bucket) == []


def test_unknown_revision_is_a_clear_error(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())

    with pytest.raises(
        RevisionNotFoundError,
        match=rf"model {MODEL_ID} at revision no-such-branch: not found on the Hub "
        r"\(HTTP 404 RevisionNotFound\)",
    ):
        stage(s3, bucket, revision="no-such-branch")


def test_unknown_model_is_a_clear_error(fake_hub: FakeHub, s3: Any, bucket: str) -> None:
    with pytest.raises(
        RevisionNotFoundError, match=r"model facebook/nope at revision main: not found"
    ):
        stage(s3, bucket, model_id="facebook/nope")


def test_pickled_weights_are_taken_only_without_safetensors(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files()
    del files["model.safetensors"]
    repo = fake_hub.add_repo(MODEL_ID, files)

    stage(s3, bucket)

    staged = {key.rsplit("/", 1)[1] for key in keys(s3, bucket, prefix_of(repo.commit))}
    assert "pytorch_model.bin" in staged
    assert not staged & {"flax_model.msgpack", "README.md", ".gitattributes", "cover.png"}


def test_gated_model_needs_the_token_and_it_never_reaches_the_cdn(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files, token="hf_secret")
    with pytest.raises(
        RevisionNotFoundError, match=r"access refused by the Hub \(HTTP 401 GatedRepo\)"
    ):
        stage(s3, bucket)

    assert stage(s3, bucket, token="hf_secret").done

    hub_requests = [r for r in fake_hub.requests if not r.path.startswith("/cdn/")]
    cdn_requests = [r for r in fake_hub.requests if r.path.startswith("/cdn/")]
    assert cdn_requests and all("Authorization" not in r.headers for r in cdn_requests)
    assert all(r.headers.get("Authorization") == "Bearer hf_secret" for r in hub_requests[1:])
    assert {r.headers["User-Agent"] for r in fake_hub.requests} == {USER_AGENT}
    assert (
        read(s3, bucket, prefix_of(repo.commit) + "model.safetensors") == files["model.safetensors"]
    )


def test_deadline_of_zero_copies_nothing_and_reports_not_done(
    fake_hub: FakeHub, s3: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_hub.add_repo(MODEL_ID, repo_files())
    caplog.set_level(logging.INFO, logger="constructs_lib.model_staging.runtime.staging.transfer")

    result = stage(s3, bucket, budget=Deadline(0))

    assert not result.done
    stop = "config.json: time budget exhausted before starting; continuing next run"
    assert stop in caplog.messages
    assert keys(s3, bucket) == []


def test_a_manifest_whose_files_vanished_is_repaired(
    fake_hub: FakeHub, s3: Any, bucket: str
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    stage(s3, bucket)
    prefix = prefix_of(repo.commit)
    s3.delete_object(Bucket=bucket, Key=prefix + "tokenizer.json")

    assert not stage(s3, bucket, budget=PartBudget(0)).done
    assert prefix + "manifest.json" not in keys(s3, bucket)
    assert stage(s3, bucket).done
    assert read(s3, bucket, prefix + "tokenizer.json") == files["tokenizer.json"]


def test_the_hub_is_reached_through_the_proxy_the_environment_names(
    fake_hub: FakeHub, s3: Any, bucket: str, staging_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = repo_files()
    repo = fake_hub.add_repo(MODEL_ID, files)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with running_connect_proxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url.replace("//", "//stager:s%40cret@"))
        monkeypatch.setenv("no_proxy", staging_env.removeprefix("http://"))  # S3 goes direct

        assert stage(s3, bucket).done

    netlocs = {url.removeprefix("http://") for url in (fake_hub.url, fake_hub.cdn_url)}
    assert {target for target, _ in proxy.tunnels} == netlocs
    credentials = base64.b64encode(b"stager:s@cret").decode()
    assert {authorization for _, authorization in proxy.tunnels} == {f"Basic {credentials}"}
    assert (
        read(s3, bucket, prefix_of(repo.commit) + "model.safetensors") == files["model.safetensors"]
    )
