"""Each module of inference_code/ must be loaded once, as `inference_code.<module>`.

Loaded a second time under its bare name (`request_schema`, as with `inference_code/` on
sys.path), a module holds a second `RequestValidationError` class that `except` clauses written
against the first never catch.
"""

from __future__ import annotations

import sys
from pathlib import Path

INFERENCE_CODE = (Path(__file__).resolve().parents[1] / "inference_code").resolve()


def modules_loaded_twice() -> list[str]:
    """`name (file)` for each loaded module from inference_code/ not named inference_code.*."""
    found = []
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if location is None or Path(location).resolve().parent != INFERENCE_CODE:
            continue
        if name != f"inference_code.{Path(location).stem}" and name != "inference_code":
            found.append(f"{name} ({location})")
    return sorted(found)
