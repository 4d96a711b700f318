"""Snapshot `model_id@revision` from the Hub into `<models root><model_id>/<commit>/`.

`manifest.json` is written last: a prefix without it is never complete, whatever it holds.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .budget import Budget
from .hub import HubClient
from .s3_location import S3Location
from .selection import select_inference_files
from .transfer import DEFAULT_WORKERS, FileStager, TransferStats, is_missing

LOG = logging.getLogger(__name__)
MANIFEST_NAME = "manifest.json"
DEFAULT_PART_SIZE = 64 * 1024 * 1024
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_model_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id) or ".." in model_id:
        raise ValueError(
            f"model id: must be owner/name of letters, digits, '.', '_' or '-' (got {model_id!r})"
        )
    return model_id


def snapshot_location(models_root: S3Location, model_id: str, commit: str) -> S3Location:
    return models_root.child(validate_model_id(model_id), commit)


@dataclass(frozen=True)
class SnapshotResult:
    done: bool
    model_id: str
    commit: str
    location: S3Location
    stats: TransferStats


def read_manifest(s3: Any, location: S3Location) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key(MANIFEST_NAME))["Body"]
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    with body:
        return json.loads(body.read())


def _manifest_intact(s3: Any, location: S3Location, manifest: dict[str, Any]) -> bool:
    """Every file the manifest lists is still there with its size."""
    for entry in manifest["files"]:
        try:
            head = s3.head_object(Bucket=location.bucket, Key=location.key(entry["path"]))
        except ClientError as error:
            if is_missing(error):
                return False
            raise
        if head["ContentLength"] != entry["size"]:
            return False
    return True


def stage_snapshot(
    *,
    s3: Any,
    hub: HubClient,
    model_id: str,
    revision: str,
    models_root: S3Location,
    budget: Budget,
    part_size: int = DEFAULT_PART_SIZE,
    workers: int = DEFAULT_WORKERS,
    requested_revision: str | None = None,
) -> SnapshotResult:
    """Stage what inference needs; `done` is False when the budget ran out first (call again).

    `revision` is what is resolved on the Hub (the Lambda passes the commit it resolved first, so a
    branch moving between polls cannot mix two commits); `requested_revision` is recorded.
    """
    validate_model_id(model_id)
    info = hub.revision_info(model_id, revision)
    location = snapshot_location(models_root, model_id, info.commit)
    stats = TransferStats()
    manifest = read_manifest(s3, location)
    if manifest is not None:
        if _manifest_intact(s3, location, manifest):
            LOG.info("%s@%s already staged at %s", model_id, info.commit, location.uri)
            return SnapshotResult(True, model_id, info.commit, location, stats)
        LOG.warning("%s: files listed in the manifest are missing; staging again", location.uri)
        s3.delete_object(Bucket=location.bucket, Key=location.key(MANIFEST_NAME))
    files = select_inference_files(info.files)
    stager = FileStager(
        s3=s3,
        hub=hub,
        model_id=model_id,
        commit=info.commit,
        destination=location,
        budget=budget,
        part_size=part_size,
        workers=workers,
    )
    entries = []
    for file in files:
        sha256 = stager.stage(file)
        if sha256 is None:
            return SnapshotResult(False, model_id, info.commit, location, stager.stats)
        entries.append({"path": file.path, "size": file.size, "sha256": sha256})
    manifest = {
        "model_id": model_id,
        "revision": requested_revision or revision,
        "commit": info.commit,
        "source": hub.endpoint,
        "staged_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
    }
    s3.put_object(
        Bucket=location.bucket,
        Key=location.key(MANIFEST_NAME),
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    LOG.info("%s@%s staged at %s (%d files)", model_id, info.commit, location.uri, len(entries))
    return SnapshotResult(True, model_id, info.commit, location, stager.stats)
