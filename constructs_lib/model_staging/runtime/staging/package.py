"""Assemble the deployable model prefix: the weights plus `code/`, copied server-side in S3.

The prefix is `<packages root><model_id>/<weights version>/<code hash>/`, so new code or new weights
give a new prefix (and a new SageMaker Model) and an older deployment's prefix is rebuilt exactly.
It holds only the model's files: no manifest, no state, no 0-byte "folder" keys.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from .budget import Budget
from .s3_location import S3Location
from .snapshot import MANIFEST_NAME, read_manifest, validate_model_id
from .transfer import SHA256_METADATA, is_missing

LOG = logging.getLogger(__name__)
CODE_FOLDER = "code/"
DEFAULT_COPY_PART_SIZE = 512 * 1024 * 1024
_COPY_THREADS = 8
_CODE_HASH = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_DELETE_BATCH = 1000


@dataclass(frozen=True)
class WeightFile:
    path: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class WeightsSource:
    """Where the weights are and which version they are (the commit, or a content fingerprint)."""

    location: S3Location
    version: str
    files: tuple[WeightFile, ...]


def snapshot_weights(s3: Any, snapshot: S3Location) -> WeightsSource:
    """The weights of a staged snapshot; refuses a snapshot whose manifest is not written yet."""
    manifest = read_manifest(s3, snapshot)
    if manifest is None:
        raise RuntimeError(f"snapshot {snapshot.uri} is not complete: it has no {MANIFEST_NAME}")
    files = tuple(
        WeightFile(path=entry["path"], size=entry["size"], sha256=entry["sha256"])
        for entry in manifest["files"]
    )
    return WeightsSource(location=snapshot, version=manifest["commit"], files=files)


def user_weights(s3: Any, source: S3Location) -> WeightsSource:
    """Weights a user staged at `model_s3_uri`: every object below it except "folder" keys.

    Its version is a fingerprint of the listing (keys, sizes, ETags): other bytes, other prefix.
    """
    listed = list(_list_objects(s3, source))
    # Decided from the listing: a GET of a missing manifest is "403", not "404", for a role that
    # may list only this prefix.
    if any(obj["Key"] == source.key(MANIFEST_NAME) for obj in listed):
        return snapshot_weights(s3, source)
    objects = [obj for obj in listed if not obj["Key"].endswith("/")]
    files = tuple(
        WeightFile(path=obj["Key"][len(source.prefix) :], size=obj["Size"], sha256=None)
        for obj in objects
    )
    if not any(file.path == "config.json" for file in files):
        raise ValueError(
            f"model_s3_uri: {source.uri} must hold config.json (found {len(files)} files)"
        )
    listing = "\n".join(f"{obj['Key']}\t{obj['Size']}\t{obj['ETag']}" for obj in objects)
    version = "s3-" + hashlib.sha256(listing.encode()).hexdigest()[:16]
    return WeightsSource(location=source, version=version, files=files)


def package_location(
    packages_root: S3Location, model_id: str, weights_version: str, code_hash: str
) -> S3Location:
    if not _CODE_HASH.match(code_hash):
        raise ValueError(
            f"code hash: must be 8-128 letters, digits, '_' or '-' (got {code_hash!r})"
        )
    return packages_root.child(validate_model_id(model_id), weights_version, code_hash)


def code_files_from_zip(archive: bytes) -> dict[str, bytes]:
    """The files of a code asset zip by relative path, without directories or bytecode."""
    files = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        for info in bundle.infolist():
            path = PurePosixPath(info.filename)
            if info.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"code asset: unsafe path {info.filename!r} in the archive")
            files[path.as_posix()] = bundle.read(info)
    if "inference.py" not in files:
        raise ValueError(f"code asset: must hold inference.py at its root (got {sorted(files)})")
    return files


def build_package(
    *,
    s3: Any,
    weights: WeightsSource,
    code: Mapping[str, bytes],
    destination: S3Location,
    budget: Budget,
    copy_part_size: int = DEFAULT_COPY_PART_SIZE,
) -> bool:
    """Make `destination` hold exactly the weights and `code/`; False when the budget ran out."""
    bucket = destination.bucket
    code_entries = {
        CODE_FOLDER + path: (body, hashlib.sha256(body).hexdigest()) for path, body in code.items()
    }
    weight_keys = {destination.key(file.path): file for file in weights.files}
    clashes = sorted(set(weight_keys) & {destination.key(path) for path in code_entries})
    if clashes:
        raise ValueError(f"weights: files {clashes} clash with the code folder {CODE_FOLDER}")
    wanted = set(weight_keys) | {destination.key(path) for path in code_entries}
    existing = {obj["Key"]: obj["Size"] for obj in _list_objects(s3, destination)}
    _delete_keys(s3, bucket, sorted(set(existing) - wanted))
    _abort_uploads(s3, destination)
    for key, file in weight_keys.items():
        if _is_current(s3, bucket, key, existing, file.size, file.sha256):
            continue
        if budget.exhausted():
            return False
        source = {"Bucket": weights.location.bucket, "Key": weights.location.key(file.path)}
        _copy(s3, source, bucket, key, file, copy_part_size)
    for path, (body, sha256) in code_entries.items():
        key = destination.key(path)
        if _is_current(s3, bucket, key, existing, len(body), sha256):
            continue
        if budget.exhausted():
            return False
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={SHA256_METADATA: sha256})
    LOG.info("package %s complete (%d files)", destination.uri, len(wanted))
    return True


def delete_package(*, s3: Any, location: S3Location, budget: Budget) -> bool:
    """Delete every object below `location`; False when the budget ran out first."""
    _abort_uploads(s3, location)
    keys = [obj["Key"] for obj in _list_objects(s3, location)]
    for start in range(0, len(keys), _DELETE_BATCH):
        if budget.exhausted():
            return False
        _delete_keys(s3, location.bucket, keys[start : start + _DELETE_BATCH])
    LOG.info("package %s deleted (%d objects)", location.uri, len(keys))
    return True


def _list_objects(s3: Any, location: S3Location) -> Iterator[dict[str, Any]]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix):
        yield from page.get("Contents", [])


def _delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            raise RuntimeError(f"deleting objects in s3://{bucket}/ failed: {answer['Errors'][:3]}")


def _abort_uploads(s3: Any, location: S3Location) -> None:
    """Unfinished copies of an interrupted run: they are redone, not resumed (copies are fast)."""
    paginator = s3.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(
                Bucket=location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )


def _is_current(
    s3: Any, bucket: str, key: str, existing: Mapping[str, int], size: int, sha256: str | None
) -> bool:
    if existing.get(key) != size:
        return False
    if sha256 is None:
        return True
    try:
        metadata = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
    except ClientError as error:
        if is_missing(error):
            return False
        raise
    return metadata.get(SHA256_METADATA) == sha256


def _copy(
    s3: Any, source: dict[str, str], bucket: str, key: str, file: WeightFile, part_size: int
) -> None:
    """Server-side copy; files over one part are copied as parallel part copies."""
    metadata = {SHA256_METADATA: file.sha256} if file.sha256 else {}
    if file.size <= part_size:
        s3.copy_object(
            CopySource=source,
            Bucket=bucket,
            Key=key,
            Metadata=metadata,
            MetadataDirective="REPLACE",
            # The snapshot's verification tag stays in models/ (and needs no tagging permission).
            TaggingDirective="REPLACE",
        )
        LOG.info("%s: copied (%d bytes)", key, file.size)
        return
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)["UploadId"]
    ranges = [
        (number, start, min(start + part_size, file.size) - 1)
        for number, start in enumerate(range(0, file.size, part_size), start=1)
    ]

    def copy_part(span: tuple[int, int, int]) -> dict[str, Any]:
        number, start, end = span
        answer = s3.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource=source,
            CopySourceRange=f"bytes={start}-{end}",
        )
        return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

    try:
        with ThreadPoolExecutor(max_workers=_COPY_THREADS) as pool:
            parts = list(pool.map(copy_part, ranges))
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except Exception:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    LOG.info("%s: copied (%d bytes in %d parts)", key, file.size, len(parts))
