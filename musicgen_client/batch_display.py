"""What `musicgen batch` shows: a progress bar on stderr and a summary table on stdout."""

from __future__ import annotations

import time
from typing import TextIO

from musicgen_client.batch import BatchProgress, BatchReport
from musicgen_client.terminal_progress import format_elapsed

BAR_WIDTH = 24
# Off a terminal (CI logs) a new line is printed at most this often, and at the end.
LOG_INTERVAL_SECONDS = 5.0


def format_progress(progress: BatchProgress) -> str:
    finished = progress.done + progress.skipped + progress.failed
    filled = round(BAR_WIDTH * finished / progress.total) if progress.total else BAR_WIDTH
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    eta = "?" if progress.eta_seconds is None else format_elapsed(progress.eta_seconds)
    skipped = f" · skipped {progress.skipped}" if progress.skipped else ""
    return (
        f"[{bar}] {finished}/{progress.total}  done {progress.done}{skipped}"
        f" · failed {progress.failed} · in flight {progress.running} · queued {progress.waiting}"
        f" · {format_elapsed(progress.elapsed_seconds)} elapsed · ETA {eta}"
    )


class BatchProgressDisplay:
    """On a terminal, one bar rewritten in place; elsewhere a line now and then."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._interactive = stream.isatty()
        self._last_text: str | None = None
        self._last_logged = float("-inf")
        self._pending: str | None = None

    def __call__(self, progress: BatchProgress) -> None:
        text = format_progress(progress)
        if self._interactive:
            self._stream.write("\r\033[K" + text)
            self._stream.flush()
            self._last_text = text
            return
        now = time.monotonic()
        if now - self._last_logged >= LOG_INTERVAL_SECONDS:
            self._stream.write(text + "\n")
            self._stream.flush()
            self._last_logged = now
            self._last_text = text
            self._pending = None
        else:
            self._pending = text

    def finish(self) -> None:
        """End the bar's line (terminal) or print the last state not yet logged."""
        if self._interactive and self._last_text is not None:
            self._stream.write("\n")
        elif self._pending is not None and self._pending != self._last_text:
            self._stream.write(self._pending + "\n")
        self._stream.flush()


def format_summary(report: BatchReport) -> str:
    rows = [
        ("done", len(report.done)),
        ("skipped (files existed)", len(report.skipped)),
        ("failed", len(report.failed)),
        ("unfinished", len(report.unfinished)),
        ("total", report.total),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'lines':<{width}}  count", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {count:>5}" for name, count in rows]
    resumed = f", {report.resumed} collected from an earlier run" if report.resumed else ""
    lines.append(f"in {format_elapsed(report.elapsed_seconds)}{resumed}")
    if report.failed:
        lines.append("failed lines:")
        lines += [f"  line {failure.line}: {failure.message}" for failure in report.failed]
    if report.unfinished:
        reason = "interrupted" if report.interrupted else "stopped"
        lines.append(
            f"{reason} with {len(report.unfinished)} line(s) unfinished; run the same command "
            "again to collect what is in flight and submit the rest"
        )
    return "\n".join(lines) + "\n"
