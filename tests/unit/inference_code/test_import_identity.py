"""The handler's modules have one name everywhere: in the container, the client and the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from musicgen_client import RequestValidationError
from tests.import_identity import INFERENCE_CODE, modules_loaded_twice

# The toolkit's way: code/ (a copy of inference_code/) first on sys.path, `inference` top-level.
CONTAINER_IMPORT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import inference
try:
    inference.input_fn('{"prompt": ""}', "application/json")
except Exception as error:
    raised = type(error)
import inference_code.request_schema as schema
print(json.dumps({
    "raised_schema_error": raised is schema.RequestValidationError,
    "package_path": list(sys.modules["inference_code"].__path__),
    "bare_names": sorted(
        name for name in ("request_schema", "contract", "audio_codec", "model_loading")
        if name in sys.modules
    ),
}))
"""


def test_the_client_catches_what_the_handler_raises(hooks: ModuleType) -> None:
    with pytest.raises(RequestValidationError, match="prompt: must not be blank"):
        hooks.input_fn('{"prompt": ""}', "application/json")
    assert modules_loaded_twice() == []


def test_the_container_layout_loads_code_as_the_one_package(tmp_path: Path) -> None:
    code = tmp_path / "model" / "code"
    shutil.copytree(INFERENCE_CODE, code, ignore=shutil.ignore_patterns("__pycache__"))

    finished = subprocess.run(
        [sys.executable, "-c", CONTAINER_IMPORT, str(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert json.loads(finished.stdout.splitlines()[-1]) == {
        "raised_schema_error": True,
        "package_path": [str(code.resolve())],
        "bare_names": [],
    }
