"""Batch files: every non-blank line is one request, numbered as an editor shows it."""

from __future__ import annotations

import pytest

from musicgen_client import batch_file
from musicgen_client.batch_file import BatchFileError, read_batch_file


def test_lines_keep_their_numbers_and_problems(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        '{"prompt": "calm piano", "duration": 2}\n'
        "\n"
        '{"prompt": "rock", \n'
        '["not", "an", "object"]\n'
        '   {"prompts": ["a", "b"]}   \n'
    )
    lines = read_batch_file(path)
    assert [line.number for line in lines] == [1, 3, 4, 5]
    assert lines[0].request == {"prompt": "calm piano", "duration": 2}
    assert lines[1].request is None and lines[1].problem.startswith("not valid JSON")
    assert lines[2].problem == "must be a JSON object (a request), got list"
    assert lines[3].request == {"prompts": ["a", "b"]}


def test_a_line_is_identified_by_its_content(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "a"}\n{"prompt": "b"}\n')
    first, same, other = read_batch_file(path)
    assert first.digest == same.digest != other.digest


def test_bounds(tmp_path, monkeypatch):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(BatchFileError, match="holds no requests"):
        read_batch_file(empty)
    with pytest.raises(BatchFileError, match="cannot be read"):
        read_batch_file(tmp_path / "missing.jsonl")
    many = tmp_path / "many.jsonl"
    many.write_text('{"prompt": "a"}\n' * 4)
    monkeypatch.setattr(batch_file, "MAX_BATCH_LINES", 3)
    with pytest.raises(BatchFileError, match="at most 3 requests"):
        read_batch_file(many)
    monkeypatch.setattr(batch_file, "MAX_BATCH_FILE_BYTES", 10)
    with pytest.raises(BatchFileError, match="split it into several batches"):
        read_batch_file(many)


def test_an_oversized_line_is_a_problem_of_that_line(tmp_path, monkeypatch):
    monkeypatch.setattr(batch_file, "MAX_LINE_BYTES", 20)
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "a much longer prompt"}\n')
    short, long = read_batch_file(path)
    assert short.problem is None
    assert long.request is None and long.problem.startswith("must be at most")
