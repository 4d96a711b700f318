"""The CLI never surprises, against the local loop: reused ids, limits, raw failure objects."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from musicgen_client import InferenceFailedError, MusicGenClient
from tests.integration.e2e.cli_runs import generate_on_stack
from tests.integration.e2e.conftest import MAX_DURATION_SECONDS, LocalStack

pytestmark = pytest.mark.integration


def _explicit_client(stack: LocalStack) -> MusicGenClient:
    """The endpoint by name, without the stack: the client does not know its duration limit."""
    outputs = stack.outputs
    return MusicGenClient(
        endpoint_name=outputs["EndpointName"],
        input_s3_uri=outputs["InputS3Uri"],
        output_s3_uri=outputs["OutputS3Uri"],
        failure_s3_uri=outputs["FailureS3Uri"],
        session=stack.session(),
    )


def test_a_reused_inference_id_is_refused_unless_overwritten(aws_environment, cli_env, tmp_path):
    inference_id = f"take-{uuid.uuid4().hex[:12]}"

    def generate(seed: str, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return generate_on_stack(
            "calm piano", "--duration", "0.5", "--seed", seed,
            "--inference-id", inference_id, "-o", name, *extra, env=cli_env, cwd=tmp_path,
        )  # fmt: skip

    first = generate("1", "first.wav")
    assert first.returncode == 0, first.stderr
    reused = generate("2", "second.wav")
    assert reused.returncode == 2
    assert f"inference_id: {inference_id} was used before" in reused.stderr
    assert f"async-output/{inference_id}.out exists" in reused.stderr
    assert not (tmp_path / "second.wav").exists()
    replaced = generate("2", "second.wav", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    # The old result would be seed 1's audio: what arrives must be the new request's.
    assert "seed=2" in replaced.stdout
    assert (tmp_path / "second.wav").read_bytes() != (tmp_path / "first.wav").read_bytes()


@pytest.mark.parametrize("duration", ["0", "9"])
def test_duration_is_checked_against_the_stacks_limit(aws_environment, cli_env, tmp_path, duration):
    done = generate_on_stack("calm piano", "--duration", duration, env=cli_env, cwd=tmp_path)
    assert done.returncode == 2
    limit = f"{MAX_DURATION_SECONDS:g}"
    assert f"duration: must be > 0 and <= {limit} (got {duration})" in done.stderr
    assert "3600" not in done.stderr


def test_the_raw_failure_object_is_the_model_servers_json(aws_environment):
    client = _explicit_client(aws_environment)
    submission = client.submit({"prompt": "calm piano", "duration": 6})
    with pytest.raises(InferenceFailedError) as failure:
        client.wait(submission, timeout=60)
    assert failure.value.message == "duration: must be > 0 and <= 4 (got 6)"
    bucket, key = submission.failure_location.removeprefix("s3://").split("/", 1)
    s3 = aws_environment.session().client("s3")
    raw = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # What a user of another SDK reads: the README documents exactly this object.
    assert raw == {
        "code": 400,
        "type": raw["type"],
        "message": "duration: must be > 0 and <= 4 (got 6)",
    }
    assert isinstance(raw["type"], str) and raw["type"]


def test_undecodable_audio_is_reported_without_a_python_repr(aws_environment):
    client = _explicit_client(aws_environment)
    broken_wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40
    with pytest.raises(InferenceFailedError) as failure:
        client.generate("calm piano", duration=0.5, audio_prompt=broken_wav, timeout=60)
    message = failure.value.message
    assert message.startswith("audio_prompt: must be a base64-encoded WAV or FLAC file")
    assert "object at 0x" not in message and "BytesIO" not in message
