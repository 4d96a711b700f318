"""`make reliability`: run every test marked `reliability`, print what they measured as one table.

The tests (hostile corpus, rejection cost, schema properties, the staging fault matrix, load and
worker kill on the local loop, the model-server harness; any other suite joins by marking its
tests `reliability` and calling `reliability.results.record`) run in one pytest process, on
loopback only, each bounded by pytest-timeout and the whole run by `--timeout`. The last line
printed is one JSON object: the rows, the totals and whether every test passed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reliability.results import RESULTS_VARIABLE

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_SECONDS = 1800
COLUMNS = (
    ("cases", "cases"),
    ("faults", "faults"),
    ("requests", "requests"),
    ("lost", "lost"),
    ("duplicated", "dup"),
    ("rss_growth_mb", "peak RSS +MB"),
    ("seconds", "s"),
    ("recovery_seconds", "recovery s"),
)
SUMMED = ("cases", "faults", "requests", "lost", "duplicated")


def run_tests(results: Path, timeout: float, pytest_args: Sequence[str]) -> tuple[int, str]:
    env = {**os.environ, RESULTS_VARIABLE: str(results)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "reliability",
        *pytest_args,
    ]
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or ""
        text = output.decode() if isinstance(output, bytes) else output
        return 124, text + f"\nreliability run stopped after {timeout:g} s"
    return done.returncode, done.stdout + done.stderr


def read_rows(results: Path) -> list[dict[str, Any]]:
    if not results.exists():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return " ".join(str(value).split())


def render_table(rows: list[dict[str, Any]]) -> str:
    known = {key for key, _ in COLUMNS} | {"section"}
    header = ["section", *(title for _, title in COLUMNS), "other figures"]
    lines = [header]
    for row in rows:
        others = ", ".join(f"{k}={_cell(v)}" for k, v in row.items() if k not in known)
        lines.append([row["section"], *(_cell(row.get(key)) for key, _ in COLUMNS), others])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed: dict[str, Any] = {key: sum(row.get(key) or 0 for row in rows) for key in SUMMED}
    growths = [row["rss_growth_mb"] for row in rows if row.get("rss_growth_mb") is not None]
    recoveries = [
        row["recovery_seconds"] for row in rows if row.get("recovery_seconds") is not None
    ]
    summed["max_rss_growth_mb"] = max(growths) if growths else None
    summed["recovery_seconds"] = recoveries
    return summed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (paths, -k ...)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        results = Path(scratch) / "results.jsonl"
        status, output = run_tests(results, args.timeout, args.pytest_args)
        rows = read_rows(results)
    summary_line = next(
        (line for line in reversed(output.splitlines()) if " passed" in line or " failed" in line),
        output.strip().splitlines()[-1] if output.strip() else "no pytest output",
    )
    if status != 0:
        print(output[-6000:])
    print(render_table(rows))
    summary = totals(rows)
    print(
        f"\n{summary['cases']} cases tried, {summary['faults']} faults injected, "
        f"{summary['requests']} requests, {summary['lost']} lost, "
        f"{summary['duplicated']} duplicated; pytest: {summary_line.strip()}"
    )
    print(
        json.dumps(
            {"passed": status == 0, "pytest": summary_line.strip(), "totals": summary, "rows": rows}
        )
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
