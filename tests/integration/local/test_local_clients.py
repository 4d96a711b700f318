"""Four clients against `make local`, configured only by the variables it prints.

The `musicgen` CLI, the boto3, AWS CLI and JavaScript SDK v3 examples the README shows
(examples/): each writes a WAV for a good request, and exits 1 printing the failure object,
which names the field, for a bad one.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from tests.integration.local.local_command import REPO_ROOT, LocalCommand

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "examples"
CLIENT_TIMEOUT_SECONDS = 180
GOOD_REQUEST = {"prompt": "calm piano", "duration": 1.0, "seed": 7}
# The loop's endpoint allows 30 s.
BAD_REQUEST = {"prompt": "calm piano", "duration": 31}
SAMPLE_RATE = 32_000
# On Node 20 the JavaScript SDK writes a notice to stderr that versions from 2027 need Node 22.
NODE_20_QUIET = {"AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"}


def _example_command(client: str) -> list[str]:
    if client == "boto3":
        return [sys.executable, str(EXAMPLES / "invoke_async_boto3.py")]
    if client == "aws-cli":
        # The AWS CLI of this environment, as `make test` installs it (requirements-dev.txt).
        return ["bash", str(EXAMPLES / "invoke_async_cli.sh")]
    node = shutil.which("node")
    assert node, "node is needed for the JavaScript SDK example"
    return [node, str(EXAMPLES / "invoke_async.mjs")]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The AWS CLI is a console script of this interpreter's environment.
    path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        args,
        env={**env, "PATH": path, **NODE_20_QUIET},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def _assert_wav(path: Path) -> None:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:16]
    audio, rate = soundfile.read(io.BytesIO(data))
    assert rate == SAMPLE_RATE
    assert len(audio) == int(GOOD_REQUEST["duration"] * SAMPLE_RATE)
    assert abs(audio).max() > 0


@pytest.mark.parametrize("client", ["boto3", "aws-cli", "javascript-sdk-v3"])
def test_an_sdk_gets_audio_and_a_failure_object(
    client: str, local_command: LocalCommand, local_shell: dict[str, str], tmp_path: Path
) -> None:
    names = [local_shell["MUSICGEN_BUCKET"], local_shell["MUSICGEN_ENDPOINT_NAME"]]
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(GOOD_REQUEST))
    bad.write_text(json.dumps(BAD_REQUEST))

    done = _run([*_example_command(client), *names, str(good), "clip.wav"], local_shell, tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_wav(tmp_path / "clip.wav")

    refused = _run([*_example_command(client), *names, str(bad), "bad.wav"], local_shell, tmp_path)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    failure = json.loads(refused.stderr)
    assert failure["code"] == 400
    assert failure["message"].startswith("duration:"), failure
    assert not (tmp_path / "bad.wav").exists()


def test_the_musicgen_cli_reads_the_local_stack(
    local_command: LocalCommand, local_shell: dict[str, str], tmp_path: Path
) -> None:
    env = {**local_shell, "PYTHONPATH": str(REPO_ROOT)}
    done = _run(
        [sys.executable, "-m", "musicgen_client", "generate", "--env", "local", "calm piano",
         "--duration", "1", "--seed", "7", "-o", "clip.wav", "--timeout", "120"],
        env,
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _assert_wav(tmp_path / "clip.wav")


def _readme_clients_block() -> str:
    """The first bash block of the README's "Try it locally" section that writes request.json."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Try it locally", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    (block,) = [block for block in blocks if "request.json" in block]
    return block


def test_the_readme_calls_it_from_four_clients(
    local_command: LocalCommand, local_shell: dict[str, str], tmp_path: Path
) -> None:
    # The user's shell in the repository, with the virtualenv's `python` and `musicgen` first.
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    (tmp_path / "node_modules").symlink_to(REPO_ROOT / "node_modules", target_is_directory=True)
    env = {**local_shell, "PYTHONPATH": str(REPO_ROOT)}

    done = _run(["bash", "-euo", "pipefail", "-c", _readme_clients_block()], env, tmp_path)

    assert done.returncode == 0, (done.stdout, done.stderr)
    for name in ("musicgen.wav", "boto3.wav", "cli.wav", "js.wav"):
        data = (tmp_path / name).read_bytes()
        assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", name
        audio, rate = soundfile.read(io.BytesIO(data))
        assert (len(audio), rate) == (5 * SAMPLE_RATE, SAMPLE_RATE), name
