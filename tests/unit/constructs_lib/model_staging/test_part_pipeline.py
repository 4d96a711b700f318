"""The parallel part pipeline on its own: plain functions stand for the Hub and S3 (no server),
so each property is checked in milliseconds and the mutation run can afford it."""

from __future__ import annotations

import hashlib
import random
import threading
import time

import pytest

from constructs_lib.model_staging.runtime.staging.digests import ContentDigest
from constructs_lib.model_staging.runtime.staging.part_pipeline import (
    PartPipeline,
    PartSpan,
    UploadedPart,
)
from constructs_lib.model_staging.runtime.staging.selection import HubFile

PART = 1000
CONTENT = random.Random(3).randbytes(10 * PART + 17)
WAIT_SECONDS = 5.0


def spans(first: int = 1, offset: int = 0) -> list[PartSpan]:
    return [
        PartSpan(number, start, min(start + PART, len(CONTENT)) - 1)
        for number, start in enumerate(range(offset, len(CONTENT), PART), start=first)
    ]


def digest() -> ContentDigest:
    return ContentDigest(
        HubFile("w.safetensors", len(CONTENT), hashlib.sha256(CONTENT).hexdigest(), None)
    )


def fetch(span: PartSpan) -> bytes:
    return CONTENT[span.start : span.end + 1]


class Uploads:
    """Records what was uploaded; `delay` makes chosen parts slow."""

    def __init__(self, delay: dict[int, float] | None = None) -> None:
        self.parts: dict[int, bytes] = {}
        self.delay = delay or {}
        self._lock = threading.Lock()

    def __call__(self, span: PartSpan, data: bytes | bytearray) -> str:
        time.sleep(self.delay.get(span.number, 0.0))
        with self._lock:
            self.parts[span.number] = bytes(data)
        return f"etag-{span.number}"


def test_parts_finishing_in_reverse_order_are_hashed_in_file_order() -> None:
    def reversed_fetch(span: PartSpan) -> bytes:
        time.sleep(0.02 * (12 - span.number))
        return fetch(span)

    uploads = Uploads()
    file_digest = digest()
    pipeline = PartPipeline(
        fetch=reversed_fetch, upload=uploads, digest=file_digest, workers=4, stop=lambda: False
    )

    parts = pipeline.run(spans())

    assert pipeline.finished
    assert file_digest.verify() == hashlib.sha256(CONTENT).hexdigest()
    assert parts == [UploadedPart(s.number, f"etag-{s.number}", s.size) for s in spans()]
    assert b"".join(uploads.parts[number] for number in sorted(uploads.parts)) == CONTENT


def test_a_part_is_hashed_while_it_is_still_uploading() -> None:
    """Each upload waits until the digest has seen its part: hashing after the upload would
    never get there."""
    file_digest = digest()
    hashed: dict[int, threading.Event] = {s.number: threading.Event() for s in spans()}

    def upload(span: PartSpan, data: bytes | bytearray) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        while file_digest.length <= span.end and time.monotonic() < deadline:
            time.sleep(0.005)
        if file_digest.length > span.end:
            hashed[span.number].set()
        return "etag"

    PartPipeline(fetch=fetch, upload=upload, digest=file_digest, workers=3, stop=lambda: False).run(
        spans()
    )

    assert [number for number, event in hashed.items() if not event.is_set()] == []


def test_a_slot_is_freed_by_the_part_that_is_done_not_the_oldest() -> None:
    """Part 1 uploads slowly; parts 2.. are hashed and uploaded meanwhile, so later parts start
    before part 1's upload ends, and never more than `workers` parts hold memory."""
    started: list[tuple[int, float]] = []
    holding = 0
    most_held = 0
    lock = threading.Lock()

    def tracked_fetch(span: PartSpan) -> bytes:
        nonlocal holding, most_held
        with lock:
            started.append((span.number, time.monotonic()))
            holding += 1
            most_held = max(most_held, holding)
        return fetch(span)

    uploads = Uploads(delay={1: 0.8})

    def tracked_upload(span: PartSpan, data: bytes | bytearray) -> str:
        nonlocal holding
        etag = uploads(span, data)
        with lock:
            holding -= 1
        return etag

    began = time.monotonic()
    PartPipeline(
        fetch=tracked_fetch, upload=tracked_upload, digest=digest(), workers=2, stop=lambda: False
    ).run(spans())

    starts = dict(started)
    assert starts[5] - began < 0.6
    assert most_held <= 2


def test_a_stop_lets_the_parts_under_way_finish_and_reports_unfinished() -> None:
    answers = iter([False, False, False, True])
    uploads = Uploads()
    pipeline = PartPipeline(
        fetch=fetch, upload=uploads, digest=digest(), workers=2, stop=lambda: next(answers)
    )

    parts = pipeline.run(spans())

    assert not pipeline.finished
    assert [part.number for part in parts] == [1, 2, 3]
    assert sorted(uploads.parts) == [1, 2, 3]


def test_a_failing_part_is_raised_and_no_part_starts_after_it() -> None:
    started: list[int] = []

    def failing_fetch(span: PartSpan) -> bytes:
        started.append(span.number)
        if span.number == 3:
            raise ConnectionError("part 3 failed")
        time.sleep(0.5)
        return fetch(span)

    with pytest.raises(ConnectionError, match="part 3 failed"):
        PartPipeline(
            fetch=failing_fetch, upload=Uploads(), digest=digest(), workers=4, stop=lambda: False
        ).run(spans())
    assert sorted(started) == [1, 2, 3, 4]


def test_a_resumed_upload_without_a_digest_numbers_parts_from_its_spans() -> None:
    uploads = Uploads()
    pipeline = PartPipeline(fetch=fetch, upload=uploads, digest=None, workers=3, stop=lambda: False)

    parts = pipeline.run(spans(first=4, offset=3 * PART))

    assert pipeline.finished
    assert [part.number for part in parts] == list(range(4, 12))
    assert sum(part.size for part in parts) == len(CONTENT) - 3 * PART


def test_the_loop_sleeps_while_a_hashed_part_is_still_uploading() -> None:
    """Nothing can be released until the slow upload ends: the loop must wait for it, not spin
    (a spinning loop takes the CPU the workers' TLS and the next part's hashing need). Measured in
    this thread's CPU time, which other load on the machine does not inflate."""
    pipeline = PartPipeline(
        fetch=fetch,
        upload=Uploads(delay={1: 0.5}),
        digest=digest(),
        workers=1,
        stop=lambda: False,
    )
    started = time.thread_time()

    parts = pipeline.run(spans()[:2])

    assert [part.number for part in parts] == [1, 2]
    assert time.thread_time() - started < 0.2
