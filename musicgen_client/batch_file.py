"""Read a batch file: JSON Lines, one request object per line, bounded before any work starts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BATCH_LINES = 100_000
# A line may carry a base64 melody or audio prompt (30 s of 48 kHz stereo WAV is ~7.7 MiB).
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_BATCH_FILE_BYTES = 512 * 1024 * 1024


class BatchFileError(ValueError):
    """The batch file as a whole cannot be used (missing, too big, too many lines)."""


@dataclass(frozen=True)
class BatchLine:
    """One non-blank line: its request object, or why it is not one.

    `digest` identifies the line's content, so a resumed run never collects a result submitted
    for a line that has since been edited.
    """

    number: int
    request: dict[str, Any] | None
    problem: str | None
    digest: str


def read_batch_file(path: Path) -> list[BatchLine]:
    """Every non-blank line of `path`, numbered from 1 as an editor shows them."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise BatchFileError(f"{path}: cannot be read ({error.strerror})") from None
    if size > MAX_BATCH_FILE_BYTES:
        raise BatchFileError(
            f"{path}: must be at most {MAX_BATCH_FILE_BYTES // 2**20} MiB, got {size // 2**20} MiB;"
            " split it into several batches"
        )
    lines: list[BatchLine] = []
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            if len(lines) == MAX_BATCH_LINES:
                raise BatchFileError(
                    f"{path}: must hold at most {MAX_BATCH_LINES} requests; split it"
                )
            lines.append(_parse_line(number, raw))
    if not lines:
        raise BatchFileError(f"{path}: holds no requests (one JSON object per line)")
    return lines


def _parse_line(number: int, raw: bytes) -> BatchLine:
    text = raw.strip()
    digest = hashlib.sha256(text).hexdigest()
    if len(text) > MAX_LINE_BYTES:
        problem = f"must be at most {MAX_LINE_BYTES // 2**20} MiB, got {len(text)} bytes"
        return BatchLine(number, None, problem, digest)
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return BatchLine(number, None, f"not valid JSON ({error})", digest)
    if not isinstance(document, dict):
        problem = f"must be a JSON object (a request), got {type(document).__name__}"
        return BatchLine(number, None, problem, digest)
    return BatchLine(number, document, None, digest)
