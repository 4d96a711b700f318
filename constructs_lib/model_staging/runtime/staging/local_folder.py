"""Stage `model_id@revision` into a local folder: `<root>/<model_id>/<commit>/`.

The operator CLI's target for the local loop (`python -m musicgen_local --model-dir`): the same
file selection and Hub digests as the S3 snapshot, each file written under a temporary name and
renamed once verified, `manifest.json` last. A re-run skips a complete snapshot.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from .digests import ContentDigest
from .hub import HubClient
from .selection import HubFile, select_inference_files
from .snapshot import DEFAULT_PART_SIZE, MANIFEST_NAME, validate_model_id

LOG = logging.getLogger(__name__)
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class LocalSnapshot:
    model_id: str
    commit: str
    path: Path
    files_copied: int
    bytes_from_hub: int


def _target(folder: Path, file: HubFile) -> Path:
    relative = PurePosixPath(file.path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"Hub file listing: unsafe path {file.path!r}")
    return folder.joinpath(*relative.parts)


def _complete(folder: Path) -> bool:
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return False
    manifest = json.loads(manifest_path.read_text())
    return all(
        (folder / entry["path"]).is_file()
        and (folder / entry["path"]).stat().st_size == entry["size"]
        for entry in manifest["files"]
    )


def _fetch(
    hub: HubClient, model_id: str, commit: str, file: HubFile, target: Path, part_size: int
) -> str:
    """Write `file` to `target`, verified against the Hub's digests; its sha256."""
    digest = ContentDigest(file)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    target.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("wb") as out:
        for start in range(0, file.size, part_size):
            end = min(start + part_size, file.size) - 1
            data = hub.download(
                model_id, commit, file.path, start=start, end=end, file_size=file.size
            )
            digest.update(data)
            out.write(data)
    try:
        sha256 = digest.verify()
    except Exception:
        partial.unlink()
        raise
    os.replace(partial, target)
    return sha256


def stage_to_folder(
    *,
    hub: HubClient,
    model_id: str,
    revision: str,
    root: Path,
    part_size: int = DEFAULT_PART_SIZE,
) -> LocalSnapshot:
    """Stage what inference needs below `root`; return where the checkpoint is."""
    validate_model_id(model_id)
    info = hub.revision_info(model_id, revision)
    folder = root.joinpath(*model_id.split("/"), info.commit)
    if _complete(folder):
        LOG.info("%s@%s already staged at %s", model_id, info.commit, folder)
        return LocalSnapshot(model_id, info.commit, folder, 0, 0)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    copied = 0
    for file in select_inference_files(info.files):
        sha256 = _fetch(hub, model_id, info.commit, file, _target(folder, file), part_size)
        entries.append({"path": file.path, "size": file.size, "sha256": sha256})
        copied += file.size
    manifest = {
        "model_id": model_id,
        "revision": revision,
        "commit": info.commit,
        "source": hub.endpoint,
        "staged_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    LOG.info("%s@%s staged at %s (%d files)", model_id, info.commit, folder, len(entries))
    return LocalSnapshot(model_id, info.commit, folder, len(entries), copied)
