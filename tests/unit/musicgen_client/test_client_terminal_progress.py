from __future__ import annotations

import io

from musicgen_client.progress import Phase, Progress
from musicgen_client.terminal_progress import ProgressLine, format_elapsed


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_elapsed_is_human_readable():
    assert format_elapsed(5.9) == "5s"
    assert format_elapsed(62) == "1m 02s"


def test_logs_get_one_line_per_phase():
    stream = io.StringIO()
    line = ProgressLine(stream)
    for phase, elapsed in [
        (Phase.QUEUED, 0),
        (Phase.QUEUED, 1),
        (Phase.COLD_START_LIKELY, 2),
        (Phase.GENERATING, 70),
        (Phase.DOWNLOADING, 75),
    ]:
        line(Progress("abc", phase, elapsed))
    line.finish()
    assert stream.getvalue().splitlines() == [
        "abc: queued (0s)",
        "abc: cold start likely (2s)",
        "abc: generating (1m 10s)",
        "abc: downloading (1m 15s)",
    ]


def test_terminals_get_one_line_rewritten_in_place():
    stream = _Terminal()
    line = ProgressLine(stream)
    line(Progress("abc", Phase.QUEUED, 0))
    line(Progress("abc", Phase.QUEUED, 3))
    line.finish()
    assert stream.getvalue() == "\r\033[Kabc: queued (0s)\r\033[Kabc: queued (3s)\n"
