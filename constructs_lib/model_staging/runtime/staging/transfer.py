"""Copy one Hub file into S3: streamed by ranged GETs into a resumable multipart upload.

Nothing goes through local disk. Parts are fetched and uploaded by `workers` threads at once and
hashed in file order as their downloads end (`part_pipeline`, the reorder buffer), so at most
`workers` parts are in memory. Progress lives in S3 itself (the open multipart
upload and its parts), so a run that stops when its budget runs out continues where it stopped;
a resumed upload is verified by reading the object back (hash state does not survive a run).
A staged object is trusted only when it carries the `staging-verified-sha256` tag, which is set
after its size and digest were checked.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .budget import Budget
from .digests import ContentDigest, VerificationError
from .hub import HubClient, HubDeadlineError
from .part_pipeline import PartPipeline, PartSpan
from .s3_location import S3Location
from .selection import HubFile

LOG = logging.getLogger(__name__)
VERIFIED_TAG = "staging-verified-sha256"
SHA256_METADATA = "sha256"
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_WORKERS = 8
_READ_BACK_CHUNK = 8 * 1024 * 1024


@dataclass
class TransferStats:
    files_copied: int = 0
    files_skipped: int = 0
    bytes_from_hub: int = 0
    copied: list[str] = field(default_factory=list)


class _OutOfBudget(Exception):
    """Raised inside a file's transfer when the run must stop; the work done so far stays in S3."""


def is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class FileStager:
    """Stages the files of one model commit below `destination`."""

    def __init__(
        self,
        *,
        s3: Any,
        hub: HubClient,
        model_id: str,
        commit: str,
        destination: S3Location,
        budget: Budget,
        part_size: int,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be at least 1 (got {workers})")
        self._workers = workers
        self._s3 = s3
        self._hub = hub
        self._model_id = model_id
        self._commit = commit
        self._destination = destination
        self._budget = budget
        self._part_size = part_size
        self.stats = TransferStats()

    def stage(self, file: HubFile) -> str | None:
        """The staged file's sha256, or None when the budget ran out before it was finished."""
        key = self._destination.key(file.path)
        try:
            existing = self._existing_sha256(key, file)
            if existing is not None:
                self.stats.files_skipped += 1
                return existing
            self._check_budget(file, "before starting")
            if file.sha256 and file.size > self._part_size:
                sha256 = self._multipart(key, file)
            else:
                sha256 = self._single(key, file)
        except (_OutOfBudget, HubDeadlineError) as stop:
            LOG.info("%s; continuing next run", stop)
            return None
        self.stats.files_copied += 1
        self.stats.copied.append(file.path)
        return sha256

    def _check_budget(self, file: HubFile, where: str) -> None:
        if self._budget.exhausted():
            raise _OutOfBudget(f"{file.path}: time budget exhausted {where}")

    def _existing_sha256(self, key: str, file: HubFile) -> str | None:
        """The sha256 of an already staged and verified object; None if it must be (re)staged."""
        bucket = self._destination.bucket
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        tags = self._s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        verified = next((tag["Value"] for tag in tags if tag["Key"] == VERIFIED_TAG), None)
        size_matches = head["ContentLength"] == file.size
        if verified and size_matches and (file.sha256 is None or verified == file.sha256):
            return verified
        if size_matches and verified is None:
            # Completed by an earlier run that stopped before verifying it (a resumed upload).
            LOG.info("%s: staged but not yet verified; reading it back", file.path)
            return self._read_back(key, file)
        LOG.info("%s: staged object does not match the Hub; staging it again", file.path)
        self._s3.delete_object(Bucket=bucket, Key=key)
        return None

    def _single(self, key: str, file: HubFile) -> str:
        body = self._hub.download(
            self._model_id, self._commit, file.path, start=0, end=file.size - 1, file_size=file.size
        )
        self.stats.bytes_from_hub += len(body)
        digest = ContentDigest(file)
        digest.update(body)
        sha256 = digest.verify()
        self._s3.put_object(
            Bucket=self._destination.bucket,
            Key=key,
            Body=body,
            Metadata={SHA256_METADATA: sha256},
            Tagging=urllib.parse.urlencode({VERIFIED_TAG: sha256}),
        )
        LOG.info("%s: copied %d bytes", file.path, file.size)
        return sha256

    def _multipart(self, key: str, file: HubFile) -> str:
        upload_id, parts = self._resumable_upload(key, file)
        offset = sum(part["Size"] for part in parts)
        if offset == file.size:
            # Every part is in S3: an earlier run failed to complete the upload (or stopped first).
            LOG.info("%s: all %d parts already uploaded; completing", file.path, len(parts))
            self._complete(key, upload_id, parts)
            return self._read_back(key, file)
        digest = None if offset else ContentDigest(file)
        if offset:
            LOG.info("%s: resuming at byte %d of %d", file.path, offset, file.size)
        self._transfer_parts(key, file, upload_id, parts, digest)
        if digest is None:
            self._complete(key, upload_id, parts)
            return self._read_back(key, file)
        try:
            sha256 = digest.verify()
        except VerificationError:
            self._s3.abort_multipart_upload(
                Bucket=self._destination.bucket, Key=key, UploadId=upload_id
            )
            raise
        self._complete(key, upload_id, parts)
        self._tag_verified(key, sha256)
        LOG.info("%s: copied %d bytes in %d parts", file.path, file.size, len(parts))
        return sha256

    def _transfer_parts(
        self,
        key: str,
        file: HubFile,
        upload_id: str,
        parts: list[dict[str, Any]],
        digest: ContentDigest | None,
    ) -> None:
        """Fetch and upload the parts after `parts`, `workers` at a time, appending them in order
        (hashed in file order by `PartPipeline`, the reorder buffer)."""
        offset = sum(part["Size"] for part in parts)
        spans: list[PartSpan] = []
        while offset < file.size:
            end = min(offset + self._part_size, file.size) - 1
            spans.append(PartSpan(len(parts) + len(spans) + 1, offset, end))
            offset = end + 1

        def fetch(span: PartSpan) -> bytes | bytearray:
            return self._hub.download(
                self._model_id,
                self._commit,
                file.path,
                start=span.start,
                end=span.end,
                file_size=file.size,
            )

        def upload(span: PartSpan, data: bytes | bytearray) -> str:
            return self._s3.upload_part(
                Bucket=self._destination.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=span.number,
                Body=data,
            )["ETag"]

        pipeline = PartPipeline(
            fetch=fetch,
            upload=upload,
            digest=digest,
            workers=self._workers,
            stop=self._budget.exhausted,
        )
        for part in pipeline.run(spans):
            parts.append({"PartNumber": part.number, "ETag": part.etag, "Size": part.size})
            self.stats.bytes_from_hub += part.size
        if not pipeline.finished:
            done = sum(part["Size"] for part in parts)
            raise _OutOfBudget(f"{file.path}: time budget exhausted at byte {done} of {file.size}")

    def _complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self._s3.complete_multipart_upload(
            Bucket=self._destination.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
            },
        )

    def _resumable_upload(self, key: str, file: HubFile) -> tuple[str, list[dict[str, Any]]]:
        """The newest open upload of `key` with its leading run of parts, or a new upload.

        The key holds the commit, so any open upload of it carries the same bytes; other open
        uploads of the key are aborted.
        """
        bucket = self._destination.bucket
        uploads = sorted(
            self._open_uploads(key), key=lambda upload: upload["Initiated"], reverse=True
        )
        for stale in uploads[1:]:
            self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=stale["UploadId"])
        if uploads:
            upload_id = uploads[0]["UploadId"]
            parts = self._leading_parts(key, upload_id)
            if sum(part["Size"] for part in parts) <= file.size:
                return upload_id, parts
            self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        # Only LFS files, which carry the Hub's sha256, are uploaded in parts (`stage`).
        created = self._s3.create_multipart_upload(
            Bucket=bucket, Key=key, Metadata={SHA256_METADATA: file.sha256}
        )
        return created["UploadId"], []

    def _open_uploads(self, key: str) -> list[dict[str, Any]]:
        paginator = self._s3.get_paginator("list_multipart_uploads")
        return [
            upload
            for page in paginator.paginate(Bucket=self._destination.bucket, Prefix=key)
            for upload in page.get("Uploads", [])
            if upload["Key"] == key
        ]

    def _leading_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """Parts 1..n without a gap; later parts (a parallel run that stopped) are overwritten as
        the upload continues."""
        paginator = self._s3.get_paginator("list_parts")
        listed = {
            part["PartNumber"]: part
            for page in paginator.paginate(
                Bucket=self._destination.bucket, Key=key, UploadId=upload_id
            )
            for part in page.get("Parts", [])
        }
        leading = []
        number = 1
        while number in listed:
            part = listed[number]
            leading.append({"PartNumber": number, "ETag": part["ETag"], "Size": part["Size"]})
            number += 1
        return leading

    def _read_back(self, key: str, file: HubFile) -> str:
        """Verify a completed object by streaming it back (hash state does not survive a resume).

        A mismatching object is deleted so it is never taken as valid.
        """
        bucket = self._destination.bucket
        digest = ContentDigest(file)
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            while chunk := body.read(_READ_BACK_CHUNK):
                self._check_budget(file, "while reading it back")
                digest.update(chunk)
        finally:
            body.close()
        try:
            sha256 = digest.verify()
        except VerificationError:
            self._s3.delete_object(Bucket=bucket, Key=key)
            raise
        self._tag_verified(key, sha256)
        LOG.info("%s: verified by reading it back (%d bytes)", file.path, file.size)
        return sha256

    def _tag_verified(self, key: str, sha256: str) -> None:
        self._s3.put_object_tagging(
            Bucket=self._destination.bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": VERIFIED_TAG, "Value": sha256}]},
        )
