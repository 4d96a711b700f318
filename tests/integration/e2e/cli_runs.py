"""The `musicgen` CLI as the end-to-end tests run it: a subprocess importing this tree's code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from inference_code import contract
from tests.integration.e2e.conftest import ENV_NAME, REPO_ROOT

CLI_TIMEOUT_SECONDS = 120
# Each wait has its own bound, below pytest's: a lost result fails naming what never came.
RESULT_TIMEOUT_SECONDS = 60
WAIT = ("--timeout", str(RESULT_TIMEOUT_SECONDS))


def tree_python(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Python with this tree first on the import path.

    Without the pin a subprocess imports the packages from wherever the virtualenv's editable
    install (or the caller's PYTHONPATH) points: another checkout's code, not the code under test.
    """
    try:
        return subprocess.run(
            [sys.executable, *args],
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"`python {' '.join(args)}` did not finish within {error.timeout:g} s")


def musicgen(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return tree_python("-m", "musicgen_client", *args, env=env, cwd=cwd)


def generate_on_stack(
    *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`musicgen generate ARGS --env e2e`: the endpoint and its limits from the local stack."""
    return musicgen("generate", *args, "--env", ENV_NAME, env=env, cwd=cwd)


def explicit_target(outputs: Mapping[str, str]) -> tuple[str, ...]:
    """The endpoint named by flags instead of `--env`: the CLI does not know its duration limit."""
    return (
        "--endpoint-name", outputs[contract.OUTPUT_ENDPOINT_NAME],
        "--input-s3-uri", outputs[contract.OUTPUT_INPUT_S3_URI],
        "--output-s3-uri", outputs[contract.OUTPUT_OUTPUT_S3_URI],
        "--failure-s3-uri", outputs[contract.OUTPUT_FAILURE_S3_URI],
    )  # fmt: skip
