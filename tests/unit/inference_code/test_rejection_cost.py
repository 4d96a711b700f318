"""Refusing each hostile request costs a fresh worker less than 256 MB of peak RSS and 5 s.

`reliability.rejection_cost` runs in its own process: the handler imported as the container's
worker imports it, tiny models loaded and warmed by a good request with audio, then every case of
the hostile corpus in a fresh process forked from that warm one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reliability.hostile_corpus import CASES
from reliability.rejection_cost import MAX_RSS_GROWTH_MB, MAX_SECONDS
from reliability.results import record

REPO_ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT_SECONDS = 300

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def costs(tiny_model_dirs: dict[str, Path]) -> list[dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.rejection_cost",
            "--model",
            f"mono={tiny_model_dirs['mono']}",
            "--model",
            f"melody={tiny_model_dirs['melody']}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for result in results:
        record(
            f"hostile: {result['case']}",
            cases=1,
            rss_growth_mb=result.get("rss_growth_mb"),
            seconds=result.get("seconds"),
            refused_naming=result.get("field"),
        )
    return results


def test_every_case_was_measured(costs: list[dict]) -> None:
    assert [result["case"] for result in costs] == [case.name for case in CASES]
    assert all("error" not in result for result in costs), costs


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_refusal_is_cheap(costs: list[dict], case) -> None:
    (result,) = [result for result in costs if result["case"] == case.name]
    assert result.get("field") == case.field, result
    assert result["rss_growth_mb"] < MAX_RSS_GROWTH_MB, result
    assert result["seconds"] < MAX_SECONDS, result


def test_the_measurement_sees_memory_a_case_costs(tiny_model_dirs: dict[str, Path]) -> None:
    """A good request that decodes 20 s of 192 kHz stereo must show up as growth (> 20 MB)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json; from reliability import rejection_cost as r;"
            "from reliability.hostile_corpus import HostileCase, silent_flac, _audio_request;"
            "hooks = r._load_hooks(); model = hooks.model_fn(sys.argv[1]);"
            "body = _audio_request(silent_flac(seconds=20, rate=192_000, channels=2));"
            "case = HostileCase('valid', 'none', lambda: body);"
            "print(json.dumps(r.measure(hooks, model, case, body).__dict__))",
            str(tiny_model_dirs["mono"]),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["field"] is None
    assert result["rss_growth_mb"] > 20
