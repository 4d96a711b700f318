"""The batch progress bar, its ETA, the summary table and the clip file names."""

from __future__ import annotations

import io

import pytest

from inference_code.request_schema import GenerationRequest
from musicgen_client.batch import BatchProgress, BatchReport, LineFailure, clip_file_names
from musicgen_client.batch import eta_seconds as eta
from musicgen_client.batch_display import BatchProgressDisplay, format_progress, format_summary


def test_eta_extrapolates_this_runs_rate():
    assert eta(finished=0, remaining=10, elapsed=30.0) is None
    assert eta(finished=10, remaining=30, elapsed=20.0) == pytest.approx(60.0)


def test_progress_bar_counts_and_times():
    progress = BatchProgress(
        total=100,
        done=40,
        skipped=10,
        failed=2,
        running=8,
        waiting=40,
        elapsed_seconds=62.0,
        eta_seconds=95.0,
    )
    text = format_progress(progress)
    assert text.startswith("[" + "#" * 12 + "-" * 12 + "] 52/100")
    assert "done 40 · skipped 10 · failed 2 · in flight 8 · queued 40" in text
    assert "1m 02s elapsed · ETA 1m 35s" in text
    assert "ETA ?" in format_progress(
        BatchProgress(3, 0, 0, 0, 1, 2, elapsed_seconds=1.0, eta_seconds=None)
    )


def test_off_a_terminal_progress_is_logged_sparingly_and_the_end_always():
    stream = io.StringIO()
    display = BatchProgressDisplay(stream)
    for done in range(5):
        display(BatchProgress(5, done, 0, 0, 1, 4 - done, float(done), None))
    display.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[") and "0/5" in lines[0]
    assert "4/5" in lines[1]


def test_summary_table_lists_failures_by_line():
    report = BatchReport(
        total=6,
        done=[1, 2],
        skipped=[3],
        failed=[LineFailure(4, "duration: must be > 0 and <= 4 (got 9)")],
        unfinished=[5, 6],
        resumed=2,
        elapsed_seconds=75.0,
    )
    text = format_summary(report)
    assert "done                         2" in text
    assert "skipped (files existed)      1" in text
    assert "unfinished                   2" in text
    assert "total                        6" in text
    assert "in 1m 15s, 2 collected from an earlier run" in text
    assert "  line 4: duration: must be > 0 and <= 4 (got 9)" in text
    assert "stopped with 2 line(s) unfinished; run the same command again" in text


def test_clip_names_follow_line_format_and_prompt_count():
    one = GenerationRequest(prompts=("a",), format="flac")
    two = GenerationRequest(prompts=("a", "b"))
    assert clip_file_names("prompts", 7, 4, one) == ["prompts-0007.flac"]
    assert clip_file_names("prompts", 12, 5, two) == ["prompts-00012-0.wav", "prompts-00012-1.wav"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_rewritten_in_place():
    stream = _Terminal()
    display = BatchProgressDisplay(stream)
    display(BatchProgress(2, 0, 0, 0, 1, 1, 0.0, None))
    display(BatchProgress(2, 1, 0, 0, 1, 0, 1.0, 1.0))
    display.finish()
    text = stream.getvalue()
    assert text.count("\r\033[K") == 2
    assert text.endswith("ETA 1s\n") and text.count("\n") == 1
