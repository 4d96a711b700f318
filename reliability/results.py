"""Figures a test hands to `make reliability`'s table.

A test marked `reliability` calls `record(...)` with what it measured; when the run was started
by `python -m reliability` (`make reliability`), the figures are appended as one JSON line to the
file named by `RELIABILITY_RESULTS`, and the runner prints them as one row. In any other run
(`make test`, a bare pytest) nothing is written, so the same test serves both.
"""

from __future__ import annotations

import json
import os
from typing import Any

RESULTS_VARIABLE = "RELIABILITY_RESULTS"


def record(section: str, **figures: Any) -> None:
    """One row of the table: `section` names it; figures use the table's column names
    (cases, faults, requests, lost, duplicated, rss_growth_mb, recovery_seconds) or any other
    name, which the row lists after them."""
    path = os.environ.get(RESULTS_VARIABLE)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as results:
        results.write(json.dumps({"section": section, **figures}) + "\n")
