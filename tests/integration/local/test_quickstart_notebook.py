"""examples/quickstart.ipynb runs top to bottom against `make local` and makes audio and plots."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.local.local_command import REPO_ROOT

pytestmark = pytest.mark.integration

NOTEBOOK = REPO_ROOT / "examples" / "quickstart.ipynb"
CELL_TIMEOUT_SECONDS = 300


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def test_the_quickstart_notebook_plays_and_plots_a_clip(
    local_shell: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The kernel inherits this process's environment: the user's shell after `make local`.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in local_shell.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("QUICKSTART_DURATION", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert _outputs(notebook) == [], "the notebook is committed without outputs"

    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    outputs = _outputs(notebook)
    assert not [output for output in outputs if output["output_type"] == "error"]
    html = [output["data"].get("text/html", "") for output in outputs if "data" in output]
    assert any("<audio" in text and "audio/wav" in text for text in html), html
    assert any("image/png" in output.get("data", {}) for output in outputs)
    printed = "".join(output.get("text", "") for output in outputs)
    assert "EndpointName" in printed and "1 s, 32000 Hz, 1 channel(s), seed 7" in printed
