"""`make reliability`'s table: rows as the tests recorded them, totals, a JSON last line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reliability import results
from reliability.__main__ import read_rows, render_table, totals

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_record_writes_only_inside_a_reliability_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results.jsonl"
    monkeypatch.delenv(results.RESULTS_VARIABLE, raising=False)
    results.record("nothing", cases=1)
    assert not target.exists()
    monkeypatch.setenv(results.RESULTS_VARIABLE, str(target))
    results.record("hostile: x", cases=1, rss_growth_mb=1.5)
    results.record("load", requests=200, lost=0, duplicated=0, p95_s=1.25)
    assert read_rows(target) == [
        {"section": "hostile: x", "cases": 1, "rss_growth_mb": 1.5},
        {"section": "load", "requests": 200, "lost": 0, "duplicated": 0, "p95_s": 1.25},
    ]


def test_table_and_totals() -> None:
    rows = [
        {"section": "hostile: a", "cases": 1, "rss_growth_mb": 1.5},
        {"section": "hostile: b", "cases": 1, "rss_growth_mb": 3.0},
        {"section": "load", "requests": 200, "lost": 0, "duplicated": 0, "p95_s": 1.25},
        {"section": "kill", "requests": 2, "faults": 1, "recovery_seconds": 4.5},
    ]
    table = render_table(rows).splitlines()
    assert table[0].split(" | ")[0].strip() == "section"
    assert len(table) == 2 + len(rows)
    assert "p95_s=1.25" in table[4]
    summary = totals(rows)
    assert (summary["cases"], summary["requests"], summary["faults"]) == (2, 202, 1)
    assert (summary["max_rss_growth_mb"], summary["recovery_seconds"]) == (3.0, [4.5])


def test_runner_prints_json_last_and_fails_with_its_tests(tmp_path: Path) -> None:
    test_file = tmp_path / "test_sample.py"
    test_file.write_text(
        "import pytest\n"
        "from reliability.results import record\n"
        "pytestmark = pytest.mark.reliability\n"
        "def test_measures():\n    record('sample', cases=3, lost=0)\n"
        "def test_breaks():\n    assert False\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "reliability", "--", str(test_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["passed"] is False
    assert last["rows"] == [{"section": "sample", "cases": 3, "lost": 0}]
    assert "1 failed, 1 passed" in last["pytest"]
