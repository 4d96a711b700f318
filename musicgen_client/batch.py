"""`musicgen batch`: many requests with bounded concurrency, collected as they finish, resumable.

Each line of the batch file is one request. A line whose files exist is skipped; a line whose
request is still in flight according to the journal (see `batch_journal`) is collected, not
submitted again; every other line is submitted. At most `parallel` requests are in flight at
once, which is also what lets the endpoint's backlog-based autoscaling add instances.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from inference_code.request_schema import GenerationRequest, RequestValidationError
from musicgen_client.aws_errors import AWS_ERRORS
from musicgen_client.backoff import Backoff
from musicgen_client.batch_file import BatchLine
from musicgen_client.batch_journal import BatchJournal, InFlight, journal_path, read_in_flight
from musicgen_client.client import MusicGenClient, Submission
from musicgen_client.errors import InferenceExpiredError, InferenceFailedError, MusicGenClientError
from musicgen_client.output_files import PARTIAL_SUFFIX, write_atomically
from musicgen_client.request import CheckedRequest, check_request
from musicgen_client.results import GenerationResult

DEFAULT_PARALLEL = 8
MAX_PARALLEL = 256
# Batch requests wait behind each other: poll often at first, and never slower than this.
BATCH_BACKOFF = Backoff(initial=0.5, factor=1.5, maximum=10.0)
PROGRESS_INTERVAL_SECONDS = 0.5


class LineStatus(StrEnum):
    WAITING = "queued"
    RUNNING = "in flight"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNFINISHED = "unfinished"


@dataclass(frozen=True)
class BatchProgress:
    """Counts for the progress bar; `eta_seconds` is None until something finished this run."""

    total: int
    done: int
    skipped: int
    failed: int
    running: int
    waiting: int
    elapsed_seconds: float
    eta_seconds: float | None


@dataclass(frozen=True)
class LineFailure:
    line: int
    message: str


@dataclass
class BatchReport:
    """What a run did; `unfinished` lines are still in flight (or never submitted)."""

    total: int
    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[LineFailure] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    resumed: int = 0
    elapsed_seconds: float = 0.0
    interrupted: bool = False
    files: dict[int, list[Path]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    line: BatchLine
    request: CheckedRequest
    paths: list[Path]
    resume: Submission | None


class _Stopped(Exception):
    """The run was told to stop; the line's request (if any) stays in the journal."""


def clip_file_names(stem: str, number: int, width: int, request: GenerationRequest) -> list[str]:
    """`<stem>-<line>.<format>`; a line of several prompts: `<stem>-<line>-<index>.<format>`."""
    base = f"{stem}-{number:0{width}d}"
    suffix = "." + request.format
    if len(request.prompts) == 1:
        return [base + suffix]
    return [f"{base}-{index}{suffix}" for index in range(len(request.prompts))]


def eta_seconds(*, finished: int, remaining: int, elapsed: float) -> float | None:
    """Remaining lines at this run's rate so far; None before the first one finished."""
    if finished == 0 or elapsed <= 0:
        return None
    return remaining * elapsed / finished


class BatchRun:
    def __init__(
        self,
        *,
        client: MusicGenClient,
        lines: list[BatchLine],
        folder: Path,
        stem: str,
        max_duration_seconds: float | None,
        parallel: int = DEFAULT_PARALLEL,
        backoff: Backoff = BATCH_BACKOFF,
    ):
        if not 1 <= parallel <= MAX_PARALLEL:
            raise ValueError(f"parallel: must be 1-{MAX_PARALLEL}, got {parallel}")
        self._client = client
        self._lines = lines
        self._folder = folder
        self._stem = stem
        self._max_duration = max_duration_seconds
        self._parallel = parallel
        self._backoff = backoff
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status: dict[int, LineStatus] = {}
        self._rejected = 0
        self._report = BatchReport(total=len(lines))

    def run(
        self,
        *,
        timeout: float | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> BatchReport:
        """Process every line; Ctrl-C and `timeout` stop early, leaving the journal resumable."""
        started = time.monotonic()
        self._folder.mkdir(parents=True, exist_ok=True)
        self._remove_partial_files()
        jobs = self._plan(read_in_flight(journal_path(self._folder, self._stem)))
        journal = BatchJournal(
            journal_path(self._folder, self._stem),
            [
                InFlight(job.line.number, job.line.digest, job.resume)
                for job in jobs
                if job.resume is not None
            ],
        )
        self._report.resumed = sum(job.resume is not None for job in jobs)
        try:
            with ThreadPoolExecutor(self._parallel, thread_name_prefix="musicgen-batch") as pool:
                futures = [pool.submit(self._process, job, journal) for job in jobs]
                self._watch(futures, started, timeout, on_progress)
        finally:
            journal.close()
        self._report.elapsed_seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(self._progress(started))
        self._report.done.sort()
        self._report.failed.sort(key=lambda failure: failure.line)
        self._report.unfinished.sort()
        return self._report

    # -- planning ------------------------------------------------------------------------------

    def _plan(self, in_flight: dict[int, InFlight]) -> list[_Job]:
        width = max(4, len(str(self._lines[-1].number)))
        jobs: list[_Job] = []
        for line in self._lines:
            request = self._check(line)
            if request is None:
                self._rejected += 1
                continue
            names = clip_file_names(self._stem, line.number, width, request.parsed)
            paths = [self._folder / name for name in names]
            if all(path.exists() for path in paths):
                self._set(line.number, LineStatus.SKIPPED)
                self._report.skipped.append(line.number)
                continue
            earlier = in_flight.get(line.number)
            resume = earlier.submission if earlier and earlier.digest == line.digest else None
            jobs.append(_Job(line, request, paths, resume))
            self._set(line.number, LineStatus.WAITING)
        # What is already queued on the endpoint is collected first: it holds no new capacity.
        jobs.sort(key=lambda job: job.resume is None)
        return jobs

    def _check(self, line: BatchLine) -> CheckedRequest | None:
        if line.request is None:
            self._fail(line.number, line.problem or "not a request")
            return None
        try:
            return check_request(line.request, max_duration_seconds=self._max_duration)
        except RequestValidationError as error:
            self._fail(line.number, str(error))
            return None

    def _remove_partial_files(self) -> None:
        """Temporary files a killed run left behind (`write_atomically` names them so)."""
        for leftover in self._folder.glob(f".{self._stem}-*{PARTIAL_SUFFIX}"):
            leftover.unlink(missing_ok=True)

    # -- running -------------------------------------------------------------------------------

    def _watch(
        self,
        futures: list[Future[None]],
        started: float,
        timeout: float | None,
        on_progress: Callable[[BatchProgress], None] | None,
    ) -> None:
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(
                    pending, timeout=PROGRESS_INTERVAL_SECONDS, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    future.result()
                if on_progress is not None:
                    on_progress(self._progress(started))
                if timeout is not None and time.monotonic() - started >= timeout:
                    self._stop.set()
        except KeyboardInterrupt:
            self._stop.set()
            self._report.interrupted = True
            wait(pending)
        except BaseException:
            self._stop.set()
            raise

    def _process(self, job: _Job, journal: BatchJournal) -> None:
        number = job.line.number
        if self._stop.is_set():
            self._unfinished(number)
            return
        self._set(number, LineStatus.RUNNING)
        try:
            submission = job.resume or self._submit(job, journal)
            result = self._collect(submission)
            self._write(job, result)
        except _Stopped:
            self._unfinished(number)
            return
        except (InferenceFailedError, InferenceExpiredError) as error:
            message = error.message if isinstance(error, InferenceFailedError) else str(error)
            self._fail(number, message)
        except (MusicGenClientError, RequestValidationError, OSError, *AWS_ERRORS) as error:
            # Not the endpoint's verdict: the request, if queued, stays in the journal.
            self._fail(number, _one_line(error))
            return
        journal.finished(number, submission.inference_id)

    def _submit(self, job: _Job, journal: BatchJournal) -> Submission:
        submission = self._client.submit(job.request)
        journal.submitted(InFlight(job.line.number, job.line.digest, submission))
        return submission

    def _collect(self, submission: Submission) -> GenerationResult:
        for delay in self._backoff.delays():
            result = self._client.poll(submission)
            if result is not None:
                return result
            if self._stop.wait(delay):
                raise _Stopped
        raise AssertionError("Backoff.delays() is infinite")

    def _write(self, job: _Job, result: GenerationResult) -> None:
        if len(result.clips) != len(job.paths):
            raise MusicGenClientError(
                f"expected {len(job.paths)} clip(s), the endpoint returned {len(result.clips)}"
            )
        for clip, path in zip(result.clips, job.paths, strict=True):
            if path.suffix != clip.suffix:
                raise MusicGenClientError(f"asked for {path.suffix}, got {clip.format}")
        for clip, path in zip(result.clips, job.paths, strict=True):
            write_atomically(path, clip.audio)
        with self._lock:
            self._status[job.line.number] = LineStatus.DONE
            self._report.done.append(job.line.number)
            self._report.files[job.line.number] = job.paths

    # -- bookkeeping ---------------------------------------------------------------------------

    def _set(self, number: int, status: LineStatus) -> None:
        with self._lock:
            self._status[number] = status

    def _fail(self, number: int, message: str) -> None:
        with self._lock:
            self._status[number] = LineStatus.FAILED
            self._report.failed.append(LineFailure(number, message))

    def _unfinished(self, number: int) -> None:
        with self._lock:
            self._status[number] = LineStatus.UNFINISHED
            self._report.unfinished.append(number)

    def _progress(self, started: float) -> BatchProgress:
        with self._lock:
            counts = {status: 0 for status in LineStatus}
            for status in self._status.values():
                counts[status] += 1
        elapsed = time.monotonic() - started
        # Lines rejected before submission cost nothing: the rate counts only endpoint answers.
        answered = counts[LineStatus.DONE] + counts[LineStatus.FAILED] - self._rejected
        remaining = counts[LineStatus.RUNNING] + counts[LineStatus.WAITING]
        return BatchProgress(
            total=len(self._lines),
            done=counts[LineStatus.DONE],
            skipped=counts[LineStatus.SKIPPED],
            failed=counts[LineStatus.FAILED],
            running=counts[LineStatus.RUNNING],
            waiting=counts[LineStatus.WAITING],
            elapsed_seconds=elapsed,
            eta_seconds=eta_seconds(finished=answered, remaining=remaining, elapsed=elapsed),
        )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
