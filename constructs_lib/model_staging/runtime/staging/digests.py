"""Content digests the Hub publishes: sha256 for LFS files, the git blob id for the others."""

from __future__ import annotations

import hashlib

from .selection import HubFile


class VerificationError(RuntimeError):
    """A staged file differs from what the Hub says it is; the message names the file."""


class ContentDigest:
    """Incremental sha256 plus, for non-LFS files, the git blob sha1 of the same bytes.

    An LFS file's blob id is that of its pointer file, so its content's sha1 is not computed
    (it would cost as much CPU as the sha256, for nothing).
    """

    def __init__(self, file: HubFile) -> None:
        self._file = file
        self._sha256 = hashlib.sha256()
        self._git_blob = None
        if file.blob_id:
            self._git_blob = hashlib.sha1(usedforsecurity=False)
            self._git_blob.update(f"blob {file.size}\0".encode())
        self.length = 0

    def update(self, chunk: bytes | bytearray) -> None:
        self._sha256.update(chunk)
        if self._git_blob is not None:
            self._git_blob.update(chunk)
        self.length += len(chunk)

    def verify(self) -> str:
        """The sha256 of the bytes seen, after checking size and the Hub's digest."""
        file = self._file
        if self.length != file.size:
            raise VerificationError(
                f"{file.path}: size mismatch: got {self.length} bytes, the Hub lists {file.size}"
            )
        sha256 = self._sha256.hexdigest()
        if file.sha256 and sha256 != file.sha256:
            raise VerificationError(
                f"{file.path}: sha256 mismatch: got {sha256}, the Hub lists {file.sha256}"
            )
        if self._git_blob is not None and self._git_blob.hexdigest() != file.blob_id:
            raise VerificationError(
                f"{file.path}: git blob id mismatch: got {self._git_blob.hexdigest()}, "
                f"the Hub lists {file.blob_id}"
            )
        return sha256
