"""Where clips are written, and writing them so an interrupted run leaves no partial file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from musicgen_client.results import Clip


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
    if is_folder_target(output):
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


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: the file is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
