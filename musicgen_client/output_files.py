"""Where clips are written, and writing them so an interrupted run leaves no partial file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from musicgen_client.results import Clip

AUDIO_SUFFIXES = (".wav", ".flac")
PARTIAL_SUFFIX = ".part"


def is_folder_target(output: str | None) -> bool:
    """`-o folder/` (trailing separator) or an existing directory means "write into this folder"."""
    if output is None:
        return True
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def clip_paths(output: str | None, inference_id: str, clips: Sequence[Clip]) -> list[Path]:
    """File names for `clips`.

    A file target names the single clip as given, or numbers several (`beat-0.wav`, `beat-1.wav`);
    a folder target (default: the current folder) names them after the inference id.
    """
    if output is None or is_folder_target(output):
        folder = Path(output or ".")
        if len(clips) == 1:
            return [folder / f"{inference_id}{clips[0].suffix}"]
        return [folder / f"{inference_id}-{clip.index}{clip.suffix}" for clip in clips]
    target = Path(output)
    if len(clips) == 1:
        return [target]
    suffix = target.suffix
    return [
        target.with_name(f"{target.stem}-{clip.index}{suffix or clip.suffix}") for clip in clips
    ]


def check_file_suffix(output: str | None, *, flag: str = "-o") -> None:
    """A file target must say what it holds: `.wav` or `.flac` (the contract's formats), or none.

    Raises ValueError naming the flag, so `-o clip.mp3` never receives WAV bytes.
    """
    if is_folder_target(output):
        return
    suffix = Path(output or "").suffix
    if suffix and suffix.lower() not in AUDIO_SUFFIXES:
        raise ValueError(
            f"{flag} {output}: the endpoint writes only {' or '.join(AUDIO_SUFFIXES)} files; "
            "name the file so, or give a folder ending in /"
        )


def check_clip_suffix(path: Path, clip: Clip) -> None:
    """A file named `.wav` must not receive FLAC bytes, nor the reverse (fetch cannot convert)."""
    if path.suffix and path.suffix.lower() != clip.suffix:
        raise ValueError(
            f"-o {path}: the result is {clip.format.upper()}, not {path.suffix.lstrip('.')}; "
            f"name the file {path.with_suffix(clip.suffix).name} or give a folder ending in /"
        )


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: the file is whole or absent.

    The file is created with mode 0666 minus the umask, like any file a shell command writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
