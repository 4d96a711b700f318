"""`make local --model-dir` on weights staged with `stage --local-dir`, then Ctrl-C.

The checkpoint comes from the (fake) Hub through the operator CLI, as a user would fetch the
real one; the loop serves it, answers a request, and a Ctrl-C leaves no process behind: not the
model server's daemonised Java frontend or its workers, not moto's server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicgen_local.model_server import is_frontend
from musicgen_local.tiny_musicgen import build_tiny_musicgen
from tests.integration.local.local_command import REPO_ROOT, start_local_command
from tests.support.fake_hub import running_fake_hub

pytestmark = pytest.mark.integration

MODEL_ID = "tiny/musicgen"


def _stage_from_hub(checkpoint: Path, root: Path) -> Path:
    files = {p.relative_to(checkpoint).as_posix(): p.read_bytes() for p in checkpoint.iterdir()}
    with running_fake_hub() as hub:
        repo = hub.add_repo(MODEL_ID, files)
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        staged = subprocess.run(
            [sys.executable, "-m", "constructs_lib.model_staging", "stage",
             "--model-id", MODEL_ID, "--local-dir", str(root)],
            env={**env, "HF_ENDPOINT": hub.url, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    assert staged.returncode == 0, staged.stderr
    return root / MODEL_ID / repo.commit


def test_a_locally_staged_checkpoint_is_served_and_ctrl_c_stops_every_process(
    tmp_path: Path,
) -> None:
    staged = _stage_from_hub(build_tiny_musicgen(tmp_path / "tiny", variant="mono"), tmp_path)
    command = start_local_command(
        ["--model-dir", str(staged), "--port", "0", "--sagemaker-port", "0"],
        stderr_path=tmp_path / "stderr.txt",
    )
    try:
        request = tmp_path / "request.json"
        request.write_text(json.dumps({"prompt": "jazz trio", "duration": 0.5}))
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
            **command.environment,
        }
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "invoke_async_boto3.py"),
             env["MUSICGEN_BUCKET"], env["MUSICGEN_ENDPOINT_NAME"], str(request), "clip.wav"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "clip.wav").read_bytes()[:4] == b"RIFF"
        running = command.processes()
        # The check below can see every part: the Java frontend left the process tree.
        assert any(is_frontend(process) for process in running), running
        assert len(running) >= 4, running

        status = command.ctrl_c()

        assert status == 0, (tmp_path / "stderr.txt").read_text()[-2000:]
        assert command.processes() == []
        assert "SIGINT: the local loop has stopped." in (tmp_path / "stderr.txt").read_text()
    finally:
        command.kill_leftovers()
    assert not list(staged.glob("code")), "the user's checkpoint must be left as it was"
