"""The CLI and the library, unchanged, against the local async endpoint."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

from musicgen_client import (
    GenerationResult,
    InferenceFailedError,
    MusicGenClient,
    Progress,
    WaitTimeoutError,
)
from tests.integration.e2e.cli_runs import (
    RESULT_TIMEOUT_SECONDS,
    WAIT,
    explicit_target,
    generate_on_stack,
    musicgen,
    tree_python,
)
from tests.integration.e2e.conftest import (
    MAX_CONCURRENT_INVOCATIONS,
    REPO_ROOT,
    STACK_NAME,
    LocalStack,
)

pytestmark = pytest.mark.integration

SAMPLE_RATE = 32_000


def bounded(what: str, wait: Callable[[], GenerationResult]) -> GenerationResult:
    """`wait()` (which must carry a timeout); a timeout fails the test naming what never came."""
    try:
        return wait()
    except WaitTimeoutError as error:
        pytest.fail(f"{what} was not received: {error}")


def _silent_wav(*, seconds: float) -> bytes:
    buffer = io.BytesIO()
    silence = np.zeros(round(seconds * SAMPLE_RATE))
    soundfile.write(buffer, silence, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _objects(stack: LocalStack, prefix: str) -> list[str]:
    s3 = stack.session().client("s3")
    listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_cli_writes_audio_of_the_requested_length(aws_environment, cli_env, tmp_path):
    done = generate_on_stack(
        "calm lofi beat with piano", "--duration", "1.5", "--seed", "7", "-o", "beat.wav", *WAIT,
        env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    audio, rate = soundfile.read(tmp_path / "beat.wav")
    assert rate == SAMPLE_RATE
    assert len(audio) == round(1.5 * SAMPLE_RATE)
    assert "seed=7" in done.stdout
    assert "queued" in done.stderr and "downloading" in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["beat.wav"]


def test_cli_several_prompts_write_numbered_files(aws_environment, cli_env, tmp_path):
    done = generate_on_stack(
        "jazz trio", "ambient pad strings", "--duration", "1", "--seed", "3", "-o", "beat.flac",
        *WAIT, env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["beat-0.flac", "beat-1.flac"]
    first, second = (soundfile.read(tmp_path / f"beat-{index}.flac")[0] for index in (0, 1))
    assert len(first) == len(second) == SAMPLE_RATE
    assert "prompt='jazz trio'" in done.stdout and "prompt='ambient pad strings'" in done.stdout


def test_cli_bad_request_is_refused_before_upload(aws_environment, cli_env, tmp_path):
    before = _objects(aws_environment, "async-input/")
    done = generate_on_stack(
        "calm lofi beat", "--duration", "60", "-o", "beat.wav", env=cli_env, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "duration: must be > 0 and <= 4" in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert _objects(aws_environment, "async-input/") == before


def test_cli_endpoint_failure_prints_the_field_and_writes_nothing(
    aws_environment, cli_env, tmp_path
):
    # Without the stack the client cannot know the endpoint's limit: the endpoint refuses.
    outputs = aws_environment.outputs
    done = musicgen(
        "generate", "calm lofi beat", "--duration", "6", "-o", "beat.wav",
        *explicit_target(outputs), *WAIT, env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "the endpoint reported a failure" in done.stderr
    assert "duration" in done.stderr and "<= 4" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_imports_the_code_of_this_tree(tmp_path):
    decoy = tmp_path / "other-checkout"
    for package in ("musicgen_client", "inference_code"):
        (decoy / package).mkdir(parents=True)
        (decoy / package / "__init__.py").write_text("")
    located = tree_python(
        "-c",
        "import inference_code, musicgen_client; "
        "print(musicgen_client.__file__); print(inference_code.__file__)",
        env={**os.environ, "PYTHONPATH": str(decoy)},
        cwd=tmp_path,
    )
    assert located.returncode == 0, located.stderr
    for path in located.stdout.split():
        assert Path(path).is_relative_to(REPO_ROOT), f"{path} is not from {REPO_ROOT}"


def test_cli_fetch_of_a_refused_request_exits_1_naming_the_field(
    aws_environment, cli_env, tmp_path
):
    # Without the stack the client cannot know the endpoint's limit: the endpoint refuses.
    outputs = aws_environment.outputs
    target = explicit_target(outputs)
    submitted = musicgen(
        "generate", "calm lofi beat", "--duration", "6", "--no-wait", *target, env=cli_env,
        cwd=tmp_path,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    inference_id = submitted.stdout.split("inference id:", 1)[1].split()[0]
    aws_environment.emulator.wait_until_idle()
    assert aws_environment.emulator.record.outcomes[inference_id] == "Failed"

    fetched = musicgen("fetch", inference_id, "-o", "late.wav", *target, env=cli_env, cwd=tmp_path)

    assert fetched.returncode == 1, (fetched.stdout, fetched.stderr)
    assert f"the endpoint reported a failure for {inference_id}" in fetched.stderr
    assert "duration" in fetched.stderr and "<= 4" in fetched.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_notify_sqs_and_cleans_up_its_queue(aws_environment, cli_env, tmp_path):
    session = aws_environment.session()
    done = generate_on_stack(
        "upbeat electronic dance track", "--duration", "1", "--seed", "11", "--notify", "sqs", "-o",
        "out/", *WAIT, env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "out").iterdir()
    assert written.suffix == ".wav"
    assert len(soundfile.read(written)[0]) == SAMPLE_RATE
    assert (
        session.client("sqs").list_queues(QueueNamePrefix="musicgen-client-").get("QueueUrls", [])
        == []
    )
    sns = session.client("sns")
    for key in ("SuccessTopicArn", "ErrorTopicArn"):
        topic = aws_environment.outputs[key]
        assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_cli_no_wait_then_fetch(aws_environment, cli_env, tmp_path):
    submitted = generate_on_stack(
        "slow sad violin", "--duration", "1", "--seed", "5", "--no-wait", env=cli_env, cwd=tmp_path
    )
    assert submitted.returncode == 0, submitted.stderr
    lines = dict(line.split(":", 1) for line in submitted.stdout.splitlines()[:4])
    inference_id = lines["inference id"].strip()
    assert lines["output"].strip().endswith(f"async-output/{inference_id}.out")
    assert lines["failure"].strip().endswith(f"async-failure/{inference_id}-error.out")
    assert list(tmp_path.iterdir()) == []
    aws_environment.emulator.wait_until_idle()
    fetched = musicgen(
        "fetch", inference_id, "--env", "e2e", "-o", "late.wav", env=cli_env, cwd=tmp_path
    )
    assert fetched.returncode == 0, fetched.stderr
    assert len(soundfile.read(tmp_path / "late.wav")[0]) == SAMPLE_RATE
    assert "seed=5" in fetched.stdout


def test_twenty_concurrent_requests_none_lost_none_mixed_up(aws_environment):
    client = MusicGenClient.from_stack(STACK_NAME)
    words = ["calm", "lofi", "jazz", "rock", "epic", "happy", "sad", "slow", "fast", "synth"]
    requests = [
        {
            "prompt": f"{words[n % 10]} {words[(n * 3 + 1) % 10]} beat",
            "seed": 1000 + n,
            "duration": 0.5,
        }
        for n in range(20)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        submissions = list(pool.map(client.submit, requests))
    assert len({submission.inference_id for submission in submissions}) == 20
    results = [
        bounded(
            f"result {n} of 20 ({submission.inference_id})",
            lambda submission=submission: client.wait(submission, timeout=240),
        )
        for n, submission in enumerate(submissions)
    ]
    for request, submission, result in zip(requests, submissions, results, strict=True):
        assert result.inference_id == submission.inference_id
        (clip,) = result.clips
        assert (clip.prompt, clip.seed) == (request["prompt"], request["seed"])
        assert clip.duration == pytest.approx(0.5)
    # Different seeds must give different audio, or a mix-up could go unnoticed.
    assert len({result.clips[0].audio for result in results}) == 20
    outcomes = aws_environment.emulator.record.outcomes
    assert all(outcomes[s.inference_id] == "Completed" for s in submissions)
    assert aws_environment.emulator.record.peak_in_flight <= MAX_CONCURRENT_INVOCATIONS


def test_library_same_seed_same_audio(aws_environment):
    client = MusicGenClient.from_stack(STACK_NAME)
    assert client.settings.model_commit == "0" * 40
    assert client.settings.max_duration_seconds == 4.0
    first = bounded(
        "the polled result",
        lambda: client.generate(
            "calm piano", duration=0.5, seed=42, timeout=RESULT_TIMEOUT_SECONDS
        ),
    )
    again = bounded(
        "the result notified through SQS",
        lambda: client.generate(
            "calm piano", duration=0.5, seed=42, notify="sqs", timeout=RESULT_TIMEOUT_SECONDS
        ),
    )
    assert first.clips[0].audio == again.clips[0].audio
    assert first.inference_id != again.inference_id


def test_library_failure_through_sqs_names_the_field(aws_environment):
    client = MusicGenClient.from_stack(STACK_NAME)
    melody = _silent_wav(seconds=0.5)
    with pytest.raises(InferenceFailedError) as failure:
        client.generate(
            "calm piano",
            duration=0.5,
            melody=melody,
            notify="sqs",
            timeout=RESULT_TIMEOUT_SECONDS,
        )
    assert "melody" in failure.value.message
    assert failure.value.failure_location.endswith(f"{failure.value.inference_id}-error.out")


def test_library_bare_audio_accept(aws_environment):
    client = MusicGenClient.from_stack(STACK_NAME)
    submission = client.submit(
        {"prompt": "calm piano", "duration": 0.5, "seed": 1}, accept="audio/wav"
    )
    (clip,) = bounded(
        "the bare audio result",
        lambda: client.wait(submission, timeout=RESULT_TIMEOUT_SECONDS),
    ).clips
    assert (clip.format, clip.sample_rate, clip.seed) == ("wav", SAMPLE_RATE, None)
    assert clip.duration == pytest.approx(0.5)


def test_ctrl_c_while_listening_removes_the_temporary_queue(aws_environment):
    client = MusicGenClient.from_stack(STACK_NAME)
    submission = client.submit({"prompt": "calm piano", "duration": 0.5})

    def interrupt(progress: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.wait(submission, notify="sqs", on_progress=interrupt, timeout=RESULT_TIMEOUT_SECONDS)
    sqs = aws_environment.session().client("sqs")
    assert sqs.list_queues(QueueNamePrefix="musicgen-client-").get("QueueUrls", []) == []
    aws_environment.emulator.wait_until_idle()


def test_cli_fetch_too_early_and_unknown_stack(aws_environment, cli_env, tmp_path):
    early = musicgen("fetch", "never-submitted", "--env", "e2e", env=cli_env, cwd=tmp_path)
    assert early.returncode == 4
    assert "never-submitted has no result yet" in early.stderr
    unknown = musicgen("generate", "calm piano", "--env", "nope", env=cli_env, cwd=tmp_path)
    assert unknown.returncode == 2
    assert "stack MusicGen-nope: cannot be read" in unknown.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_cold_start_and_an_expired_request(cold_endpoint, tmp_path):
    done = generate_on_stack(
        "calm piano", "--duration", "0.5", "--request-ttl", "60", "--notify", "sqs", "-o",
        "beat.wav", *WAIT, env=cold_endpoint, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "cold start likely" in done.stderr
    assert "expired before it was processed" in done.stderr
    assert list(tmp_path.iterdir()) == []
