"""`running_model_server` reports a failed start with the server's own words and leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicgen_local.model_server import ModelServerError, running_model_server

pytestmark = pytest.mark.integration


def test_failed_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text("")
    # No Java at JAVA_HOME: the frontend cannot start; the toolkit gives up after 1 s.
    broken = {"JAVA_HOME": str(tmp_path / "no-java"), "SAGEMAKER_STARTUP_TIMEOUT": "1"}

    # The wrapper usually exits at once; on a loaded machine it can hang after "Failed to reap
    # children process" until the health deadline. Either way the error must carry the log tail.
    with (
        pytest.raises(ModelServerError, match=r"exited with status|not healthy after") as raised,
        running_model_server(model_dir, env=broken, startup_timeout=60),
    ):
        pytest.fail("the server must not come up without Java")

    assert "java not found" in str(raised.value)


def test_model_dir_without_handler_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ModelServerError, match=r"has no code/inference\.py"),
        running_model_server(tmp_path, startup_timeout=1),
    ):
        pytest.fail("no server may start without a handler")
