"""Written clips honour the umask, and file names must match what the file holds."""

from __future__ import annotations

import os
import stat

import pytest

from musicgen_client.output_files import check_clip_suffix, check_file_suffix, write_atomically
from musicgen_client.results import Clip


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_take_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_atomically(tmp_path / "beat.wav", b"audio")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "beat.wav").stat().st_mode) == mode


@pytest.mark.parametrize("name", ["clip.mp3", "clip.ogg", "take.1", "clip.wav.txt"])
def test_only_wav_and_flac_file_names(name):
    with pytest.raises(ValueError, match=rf"-o {name}: the endpoint writes only \.wav or \.flac"):
        check_file_suffix(name)


@pytest.mark.parametrize("name", ["clip.wav", "clip.FLAC", "clip", "clips/", None])
def test_audio_names_and_folders_pass(name):
    check_file_suffix(name)


def test_a_flac_result_is_not_written_under_a_wav_name(tmp_path):
    clip = Clip(0, "p", 1, 1.0, 32000, 1, "flac", b"")
    with pytest.raises(ValueError, match=r"the result is FLAC, not wav; name the file late\.flac"):
        check_clip_suffix(tmp_path / "late.wav", clip)
    check_clip_suffix(tmp_path / "late.flac", clip)
