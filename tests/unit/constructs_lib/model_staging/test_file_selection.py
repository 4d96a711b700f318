"""Which Hub files are staged: what inference needs, never documents or foreign weights."""

from __future__ import annotations

import pytest

from constructs_lib.model_staging.runtime.staging.selection import HubFile, select_inference_files


def listing(*paths: str) -> list[HubFile]:
    return [HubFile(path=path, size=1, sha256=None, blob_id=None) for path in paths]


def selected(*paths: str) -> list[str]:
    return [file.path for file in select_inference_files(listing(*paths))]


def test_musicgen_large_layout() -> None:
    assert selected(
        ".gitattributes",
        "README.md",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
        "special_tokens_map.json",
        "spiece.model",
        "tokenizer.json",
        "tokenizer_config.json",
        "flax_model.msgpack",
        "tf_model.h5",
        "state_dict.pt",
        "LICENSE.txt",
        "assets/waveform.png",
        ".github/workflow.json",
    ) == [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "spiece.model",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_pytorch_weights_only_without_safetensors() -> None:
    assert selected(
        "config.json", "pytorch_model.bin", "pytorch_model.bin.index.json", "flax_model.msgpack"
    ) == ["config.json", "pytorch_model.bin", "pytorch_model.bin.index.json"]


def test_nested_configs_and_vocabularies_are_kept() -> None:
    assert selected(
        "config.json", "model.safetensors", "text_encoder/config.json", "vocab.txt", "merges.txt"
    ) == ["config.json", "merges.txt", "model.safetensors", "text_encoder/config.json", "vocab.txt"]


def test_a_revision_without_weights_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no \*\.safetensors \(or PyTorch \*\.bin\) weights"):
        select_inference_files(listing("config.json", "flax_model.msgpack", "README.md"))


def test_a_revision_without_config_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no config\.json at the repository root"):
        select_inference_files(listing("model.safetensors", "text_encoder/config.json"))


def test_sibling_fields() -> None:
    lfs = HubFile.from_sibling(
        {
            "rfilename": "model.safetensors",
            "size": 134,
            "blobId": "b" * 40,
            "lfs": {"sha256": "a" * 64, "size": 2_000_000_000, "pointerSize": 134},
        }
    )
    plain = HubFile.from_sibling({"rfilename": "config.json", "size": 10, "blobId": "c" * 40})

    assert lfs == HubFile("model.safetensors", 2_000_000_000, "a" * 64, None)
    assert plain == HubFile("config.json", 10, None, "c" * 40)


@pytest.mark.parametrize(
    ("sibling", "message"),
    [
        ({"size": 1}, "entry without rfilename"),
        (
            {"rfilename": "config.json"},
            r"config.json: size must be a non-negative integer \(got None\)",
        ),
        (
            {"rfilename": "config.json", "size": -1},
            r"size must be a non-negative integer \(got -1\)",
        ),
        (
            {"rfilename": "config.json", "size": True},
            r"size must be a non-negative integer \(got True\)",
        ),
    ],
)
def test_bad_siblings_are_named(sibling: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HubFile.from_sibling(sibling)
