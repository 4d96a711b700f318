"""The one-line progress display the CLI keeps on stderr while it waits."""

from __future__ import annotations

from typing import TextIO

from musicgen_client.progress import Progress


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


class ProgressLine:
    """On a terminal, rewrite one line in place; elsewhere (logs, CI) print each new phase."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._interactive = stream.isatty()
        self._last_phase: str | None = None
        self._dirty = False

    def __call__(self, progress: Progress) -> None:
        elapsed = format_elapsed(progress.elapsed_seconds)
        text = f"{progress.inference_id}: {progress.phase} ({elapsed})"
        if self._interactive:
            self._stream.write("\r\033[K" + text)
            self._dirty = True
        elif progress.phase != self._last_phase:
            self._stream.write(text + "\n")
        self._last_phase = progress.phase
        self._stream.flush()

    def finish(self) -> None:
        """End the rewritten line so later output starts on a fresh one."""
        if self._dirty:
            self._stream.write("\n")
            self._stream.flush()
            self._dirty = False
