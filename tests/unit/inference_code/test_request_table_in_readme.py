"""The README's request table says what the schema's option table says: names, types, defaults,
bounds. A field added to, or changed in, `GenerationOptions` without the README fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inference_code.request_schema import (
    MIN_DURATION_SECONDS,
    OPTIONS,
    OptionKind,
    RequestOption,
)

README = Path(__file__).resolve().parents[3] / "README.md"
TABLE_HEADING = "Request body (`Content-Type: application/json`):"
BOUND = re.compile(r"^(?P<low>[\d.^]+) (?P<low_op>≤|<) \w (?P<high_op>≤|<) (?P<high>[\d.^]+)")


def _request_rows() -> dict[str, list[str]]:
    text = README.read_text(encoding="utf-8")
    lines = text[text.index(TABLE_HEADING) :].splitlines()[2:]
    table = [line for line in lines[: lines.index("")] if line.startswith("|")]
    rows: dict[str, list[str]] = {}
    for line in table[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0]] = cells[1:]
    return rows


def _number(text: str) -> float:
    base, _, exponent = text.partition("^")
    return float(base) ** int(exponent) if exponent else float(base)


def _type_cell(option: RequestOption) -> str:
    if option.kind is OptionKind.CHOICE:
        return r" \| ".join(f"`{choice}`" for choice in option.choices)
    if option.kind is OptionKind.AUDIO:
        return "base64 audio (wav/flac)"
    return option.kind.value


def _default_matches(option: RequestOption, cell: str) -> bool:
    default = option.default
    if default is None:
        return cell == ("—" if option.default_text == "none" else option.default_text)
    if isinstance(default, bool):
        return cell == str(default).lower()
    if isinstance(default, str):
        return cell == f"`{default}`"
    return _number(cell.split(",")[0]) == default


def test_the_table_lists_the_prompt_then_every_option_in_order() -> None:
    assert list(_request_rows()) == ["`prompt` or `prompts`", *(f"`{name}`" for name in OPTIONS)]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_rows_type_default_and_bounds_are_the_options(name: str) -> None:
    option = OPTIONS[name]
    type_cell, default_cell, rule_cell = _request_rows()[f"`{name}`"]

    assert type_cell.split(",")[0] == _type_cell(option)
    assert _default_matches(option, default_cell), default_cell
    if name == "duration":
        # Its upper bound is each endpoint's own; its floor is one audio frame.
        assert rule_cell.startswith(
            f"one audio frame ({MIN_DURATION_SECONDS:g} s) ≤ d ≤ the endpoint's "
            "`max_duration_seconds`"
        )
    elif option.bound is not None:
        match = BOUND.match(rule_cell)
        assert match, rule_cell
        assert _number(match["low"]) == option.bound.low
        assert (match["low_op"] == "≤") == option.bound.low_inclusive
        assert _number(match["high"]) == option.bound.high
        assert (match["high_op"] == "≤") == option.bound.high_inclusive
