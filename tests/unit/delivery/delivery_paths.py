"""Where the delivery files live, and loading the workflow scripts (not a package) by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SCRIPTS = REPO_ROOT / ".github" / "scripts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Real `cdk diff` output of this app, written by regenerate_diff_fixtures.py.
APP_DIFFS = FIXTURES / "app_diffs"


def load_script(name: str) -> ModuleType:
    # The scripts import each other by name, as they do when the workflow runs them.
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader, name
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: dataclasses look their module up while being defined.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
