"""Parts of one file fetched and uploaded by `workers` threads, hashed in file order.

A part holds one of `workers` slots (its bytes in memory) from the start of its download until it
is both uploaded and hashed, so at most `workers` parts are in memory. Hashing is the reorder
buffer: the caller's thread hashes part n as soon as its download ended and part n-1 was hashed,
while uploads run, so the digest never waits for an upload; a slot is freed as soon as its part is
uploaded and hashed, in whatever order the uploads end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .digests import ContentDigest


@dataclass(frozen=True)
class PartSpan:
    """Part `number` of an upload: bytes `start`..`end` (inclusive) of the file."""

    number: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class UploadedPart:
    number: int
    etag: str
    size: int


@dataclass
class _Slot:
    span: PartSpan
    data: bytes | bytearray | None = None
    etag: str | None = None
    hashed: bool = False
    error: BaseException | None = None


class PartPipeline:
    """Runs `fetch` then `upload` for each span on `workers` threads; see the module docstring.

    `stop` is asked before each part starts; once it answers True no part starts, the parts under
    way finish, and `run` returns them with `finished` False.
    """

    def __init__(
        self,
        *,
        fetch: Callable[[PartSpan], bytes | bytearray],
        upload: Callable[[PartSpan, bytes | bytearray], str],
        digest: ContentDigest | None,
        workers: int,
        stop: Callable[[], bool],
    ) -> None:
        self._fetch = fetch
        self._upload = upload
        self._digest = digest
        self._workers = workers
        self._stop = stop
        self._changed = threading.Condition()
        self.finished = False

    def run(self, spans: Sequence[PartSpan]) -> list[UploadedPart]:
        """The uploaded parts in file order (a leading run of `spans` if `finished` is False)."""
        waiting = deque(spans)
        held: dict[int, _Slot] = {}
        unhashed: deque[_Slot] = deque()
        uploaded: list[UploadedPart] = []
        futures: list[Future[None]] = []
        stopped = False
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            try:
                while True:
                    with self._changed:
                        while waiting and len(held) < self._workers and not stopped:
                            if self._stop():
                                stopped = True
                                break
                            slot = _Slot(waiting.popleft())
                            held[slot.span.number] = slot
                            unhashed.append(slot)
                            futures.append(pool.submit(self._work, slot))
                        if not held:
                            break
                        self._changed.wait_for(lambda: self._actionable(held, unhashed))
                        self._raise_first_error(held)
                        head = unhashed[0] if unhashed and unhashed[0].data is not None else None
                    if head is not None and self._digest is not None and head.data is not None:
                        # Outside the lock: the workers keep reporting while this thread hashes.
                        self._digest.update(head.data)
                    with self._changed:
                        if head is not None:
                            head.hashed = True
                            unhashed.popleft()
                        uploaded.extend(self._release(held))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        self.finished = not waiting
        return sorted(uploaded, key=lambda part: part.number)

    def _work(self, slot: _Slot) -> None:
        """One part (a worker thread): its bytes from `fetch`, then into `upload`."""
        try:
            data = self._fetch(slot.span)
            with self._changed:
                slot.data = data
                self._changed.notify()
            etag = self._upload(slot.span, data)
            with self._changed:
                slot.etag = etag
                self._changed.notify()
        except BaseException as error:
            with self._changed:
                slot.error = error
                self._changed.notify()

    def _actionable(self, held: dict[int, _Slot], unhashed: deque[_Slot]) -> bool:
        if unhashed and unhashed[0].data is not None:
            return True
        return any(
            slot.error is not None or (slot.hashed and slot.etag is not None)
            for slot in held.values()
        )

    @staticmethod
    def _raise_first_error(held: dict[int, _Slot]) -> None:
        errors = {number: slot.error for number, slot in held.items() if slot.error is not None}
        if errors:
            raise errors[min(errors)]

    def _release(self, held: dict[int, _Slot]) -> list[UploadedPart]:
        released = []
        for number, slot in list(held.items()):
            if slot.hashed and slot.etag is not None:
                released.append(UploadedPart(number, slot.etag, slot.span.size))
                # Freed now: `run`'s `head` may still name this slot while new parts download.
                slot.data = None
                del held[number]
        return released
