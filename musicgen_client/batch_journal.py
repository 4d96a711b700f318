"""The batch state file: which lines have a request in flight, kept beside the clips.

An append-only JSON Lines journal, written line by line as requests are queued and finished, so
a run killed at any moment leaves a file the next run can read (a torn last line is ignored).
Each run starts by rewriting it with only the submissions still in flight.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from musicgen_client.client import Submission
from musicgen_client.output_files import write_atomically

JOURNAL_SUFFIX = ".musicgen-batch.jsonl"
SUBMITTED = "submitted"
FINISHED = "finished"


def journal_path(folder: Path, stem: str) -> Path:
    """`<folder>/.<stem>.musicgen-batch.jsonl`: one journal per prompts file and folder."""
    return folder / f".{stem}{JOURNAL_SUFFIX}"


@dataclass(frozen=True)
class InFlight:
    """A line's request that was queued and whose result nobody has collected yet."""

    line: int
    digest: str
    submission: Submission


def read_in_flight(path: Path) -> dict[int, InFlight]:
    """Replay the journal: the last unfinished submission of each line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    in_flight: dict[int, InFlight] = {}
    for raw in text.splitlines():
        event = _decode(raw)
        if event is None:
            continue
        line = event["line"]
        if event["event"] == SUBMITTED:
            in_flight[line] = InFlight(line, event["digest"], Submission(**event["submission"]))
        elif event["event"] == FINISHED:
            current = in_flight.get(line)
            if current is not None and current.submission.inference_id == event["inference_id"]:
                del in_flight[line]
    return in_flight


def _decode(raw: str) -> dict[str, Any] | None:
    """An event, or None for what a kill mid-write or a hand edit can leave behind."""
    try:
        event = json.loads(raw)
        if not isinstance(event, dict):
            return None
        if event["event"] == SUBMITTED:
            Submission(**event["submission"])
            str(event["digest"])
        elif event["event"] == FINISHED:
            str(event["inference_id"])
        else:
            return None
        int(event["line"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return event


class BatchJournal:
    """Append events for one batch; thread-safe, each event flushed as one whole line."""

    def __init__(self, path: Path, still_in_flight: list[InFlight]):
        write_atomically(path, b"".join(_encode(_submitted(entry)) for entry in still_in_flight))
        self.path = path
        self._lock = threading.Lock()
        self._stream: IO[bytes] = path.open("ab")

    def submitted(self, entry: InFlight) -> None:
        self._append(_submitted(entry))

    def finished(self, line: int, inference_id: str) -> None:
        self._append({"event": FINISHED, "line": line, "inference_id": inference_id})

    def close(self) -> None:
        with self._lock:
            self._stream.close()

    def _append(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(_encode(event))
            self._stream.flush()


def _submitted(entry: InFlight) -> dict[str, Any]:
    return {
        "event": SUBMITTED,
        "line": entry.line,
        "digest": entry.digest,
        "submission": dataclasses.asdict(entry.submission),
    }


def _encode(event: dict[str, Any]) -> bytes:
    return (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
