"""One `python -m musicgen_local` (the `make local` command) for the clients' tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.local.local_command import LocalCommand, start_local_command


@pytest.fixture(scope="session")
def local_command(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCommand]:
    stderr_path = tmp_path_factory.mktemp("local-command") / "stderr.txt"
    command = start_local_command(["--port", "0", "--sagemaker-port", "0"], stderr_path=stderr_path)
    try:
        yield command
    finally:
        try:
            command.ctrl_c()
        finally:
            command.kill_leftovers()


@pytest.fixture
def local_shell(local_command: LocalCommand) -> dict[str, str]:
    """A user's shell after pasting the command's `export` lines (no other AWS settings)."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**inherited, **local_command.environment}
