from __future__ import annotations

import os
from pathlib import Path

import pytest

from musicgen_client.output_files import clip_paths, write_atomically
from musicgen_client.results import Clip


def _clips(count: int, fmt: str = "wav") -> list[Clip]:
    return [Clip(i, f"p{i}", i, 1.0, 32000, 1, fmt, b"") for i in range(count)]


def test_one_clip_goes_exactly_where_asked(tmp_path):
    assert clip_paths(str(tmp_path / "beat.wav"), "id", _clips(1)) == [tmp_path / "beat.wav"]


def test_several_clips_are_numbered_after_the_file_name(tmp_path):
    paths = clip_paths(str(tmp_path / "beat.wav"), "id", _clips(2))
    assert paths == [tmp_path / "beat-0.wav", tmp_path / "beat-1.wav"]


def test_a_name_without_suffix_takes_the_clip_format(tmp_path):
    paths = clip_paths(str(tmp_path / "beat"), "id", _clips(2, "flac"))
    assert paths == [tmp_path / "beat-0.flac", tmp_path / "beat-1.flac"]


def test_folder_targets_name_files_after_the_inference_id(tmp_path):
    assert clip_paths(str(tmp_path) + "/new/", "abc", _clips(1)) == [tmp_path / "new" / "abc.wav"]
    assert clip_paths(str(tmp_path), "abc", _clips(2)) == [
        tmp_path / "abc-0.wav",
        tmp_path / "abc-1.wav",
    ]
    assert clip_paths(None, "abc", _clips(1)) == [Path("abc.wav")]


def test_write_atomically_creates_folders_and_replaces(tmp_path):
    target = tmp_path / "out" / "beat.wav"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert [path.name for path in target.parent.iterdir()] == ["beat.wav"]


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "beat.wav", b"audio")
    assert list(tmp_path.iterdir()) == []
