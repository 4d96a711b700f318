"""`musicgen generate` has one flag per field of the request table, and each flag reaches the
request as that field. A field added to `GenerationOptions` without a flag fails here."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from inference_code.request_schema import OPTIONS, OptionKind, RequestOption
from musicgen_client.cli import build_parser, request_flag, request_from_arguments
from tests.unit.musicgen_client.conftest import AudioFactory


def _sample(option: RequestOption, wav: Path) -> tuple[list[str], Any]:
    """Command-line words giving `option` a value other than its default, and that value."""
    match option.kind:
        case OptionKind.BOOLEAN:
            return [], not option.default
        case OptionKind.CHOICE:
            choice = option.choices[-1]
            return [choice], choice
        case OptionKind.AUDIO:
            return [str(wav)], base64.b64encode(wav.read_bytes()).decode("ascii")
    assert option.bound is not None and option.bound.low is not None
    value = int(option.bound.low) + 1
    return [str(value)], value


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_request_field_has_a_flag_that_sets_it(
    name: str, tmp_path: Path, make_wav: AudioFactory
) -> None:
    wav = tmp_path / "input.wav"
    wav.write_bytes(make_wav(seconds=0.1))
    words, expected = _sample(OPTIONS[name], wav)
    args = build_parser().parse_args(
        ["generate", "calm piano", request_flag(name, OPTIONS[name]), *words]
    )

    assert request_from_arguments(args) == {"prompt": "calm piano", name: expected}


def test_the_request_flags_are_exactly_the_table() -> None:
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command")
    generate = commands.choices["generate"]
    (group,) = [group for group in generate._action_groups if group.title.startswith("request")]

    assert [action.dest for action in group._group_actions] == list(OPTIONS)


def test_no_flag_leaves_every_field_to_the_endpoint() -> None:
    args = build_parser().parse_args(["generate", "calm piano"])

    assert request_from_arguments(args) == {"prompt": "calm piano"}
