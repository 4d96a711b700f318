"""Run a workflow step's `run:` script with bash the way GitHub runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.delivery.delivery_paths import WORKFLOWS

REPOSITORY = "acme/musicgen"


def step(workflow: str, job: str, name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / workflow).read_text(encoding="utf-8"))
    (found,) = [s for s in document["jobs"][job]["steps"] if s.get("name") == name]
    return found


def run_step(
    workflow_step: dict[str, Any],
    cwd: Path,
    env: dict[str, str],
    *,
    path_prefix: Path | None = None,
    timeout: int = 60,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the script as GitHub does (`bash --noprofile --norc -eo pipefail`), in `cwd`, with
    only PATH, the GitHub variables and `env`; returns the result and the step's outputs."""
    script = cwd / ".step.sh"
    script.write_text(workflow_step["run"], encoding="utf-8")
    output_file = cwd / ".github_output"
    output_file.write_text("")
    search_path = os.environ["PATH"]
    if path_prefix:
        search_path = f"{path_prefix}{os.pathsep}{search_path}"
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env={
            "PATH": search_path,
            "HOME": os.environ.get("HOME", str(cwd)),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_REPOSITORY": REPOSITORY,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    outputs = dict(
        line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
    )
    script.unlink()
    output_file.unlink()
    return result, outputs
