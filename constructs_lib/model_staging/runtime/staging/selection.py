"""Which files of a Hub repository inference needs, with what the Hub says about each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

# Weight formats other than safetensors: PyTorch pickles are only taken when a repository has no
# safetensors at all; Flax/TF/ONNX/Core ML weights are never used by the PyTorch container.
_PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_FOREIGN_WEIGHT_SUFFIXES = (".msgpack", ".h5", ".onnx", ".tflite", ".mlmodel", ".ot")
# Configs, tokenizers and processors: json, sentencepiece (`spiece.model`), BPE vocabularies.
_SUPPORT_SUFFIXES = (".json", ".model", ".txt", ".tiktoken")
_DOCUMENT_STEMS = ("readme", "license", "licence", "notice", "citation", "model_card")


@dataclass(frozen=True)
class HubFile:
    """One file of a repository revision: its path, size and the digests the Hub publishes."""

    path: str
    size: int
    sha256: str | None  # LFS files only
    blob_id: str | None  # git blob id (sha1 of "blob <size>\0" + content) for non-LFS files

    @classmethod
    def from_sibling(cls, sibling: Mapping[str, Any]) -> HubFile:
        """Build from one entry of `siblings` in `/api/models/<id>/revision/<rev>?blobs=true`."""
        path = sibling.get("rfilename")
        if not isinstance(path, str) or not path:
            raise ValueError(f"Hub file listing: entry without rfilename: {dict(sibling)!r}")
        lfs = sibling.get("lfs") or {}
        size = lfs.get("size", sibling.get("size"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(
                f"Hub file listing: {path}: size must be a non-negative integer (got {size!r}); "
                "the revision API must be called with blobs=true"
            )
        sha256 = lfs.get("sha256") if lfs else None
        blob_id = None if lfs else sibling.get("blobId")
        return cls(path=path, size=size, sha256=sha256 or None, blob_id=blob_id or None)


def _is_pickle_index(name: str) -> bool:
    return name.endswith(tuple(f"{suffix}.index.json" for suffix in _PICKLE_WEIGHT_SUFFIXES))


def _is_wanted(path: str, *, has_safetensors: bool) -> bool:
    pure = PurePosixPath(path)
    name = pure.name.lower()
    if any(part.startswith(".") for part in pure.parts) or name.startswith(_DOCUMENT_STEMS):
        return False
    if name.endswith(".safetensors"):
        return True
    if name.endswith(_FOREIGN_WEIGHT_SUFFIXES):
        return False
    if name.endswith(_PICKLE_WEIGHT_SUFFIXES) or _is_pickle_index(name):
        return not has_safetensors
    return name.endswith(_SUPPORT_SUFFIXES)


def select_inference_files(files: Iterable[HubFile]) -> list[HubFile]:
    """The files inference needs, sorted by path; fails when no weights would be copied."""
    files = list(files)
    has_safetensors = any(file.path.endswith(".safetensors") for file in files)
    wanted = sorted(
        (file for file in files if _is_wanted(file.path, has_safetensors=has_safetensors)),
        key=lambda file: file.path,
    )
    if not any(file.path.endswith((".safetensors", *_PICKLE_WEIGHT_SUFFIXES)) for file in wanted):
        raise ValueError(
            "Hub file listing: no *.safetensors (or PyTorch *.bin) weights in the revision; "
            f"files seen: {sorted(file.path for file in files)}"
        )
    if not any(file.path == "config.json" for file in wanted):
        raise ValueError("Hub file listing: no config.json at the repository root")
    return wanted
