"""`musicgen batch` on the local loop: 100 lines, killed mid-batch, resumed."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile

from musicgen_client.batch_journal import journal_path, read_in_flight
from musicgen_client.results import parse_output
from tests.integration.e2e.conftest import LocalStack

pytestmark = pytest.mark.integration

SAMPLE_RATE = 32_000
LINES = 100
TOO_LONG_LINE = 37  # duration over the stack's MaxDurationSeconds: refused before upload
MELODY_LINE = 64  # a melody for a non-melody model: the endpoint refuses it
TWO_PROMPT_LINE = 50
KILL_AFTER_LINES_DONE = 20
RUN_TIMEOUT_SECONDS = 300
PROMPTS_TO_INTERRUPT = 12


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(round(seconds * SAMPLE_RATE)), SAMPLE_RATE, format="WAV")
    return buffer.getvalue()


def _request(number: int, token: str) -> dict:
    request: dict = {"prompt": f"calm piano take {number} {token}", "duration": 0.2, "seed": number}
    if number % 10 == 0:
        request["format"] = "flac"
    if number == TWO_PROMPT_LINE:
        del request["prompt"]
        request["prompts"] = [f"jazz trio take {number} {token}", f"rock take {number} {token}"]
    if number == TOO_LONG_LINE:
        request["duration"] = 9
    if number == MELODY_LINE:
        request["melody"] = base64.b64encode(_wav(0.2)).decode()
    return request


def _expected_files(number: int) -> list[str]:
    suffix = ".flac" if number % 10 == 0 else ".wav"
    if number == TWO_PROMPT_LINE:
        return [f"prompts-{number:04d}-{index}{suffix}" for index in (0, 1)]
    return [f"prompts-{number:04d}{suffix}"]


def _row(status: str, count: int) -> str:
    return f"{status:<23}  {count:>5}"


def _batch_command(prompts: Path, clips: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "musicgen_client",
        "batch",
        str(prompts),
        "-o",
        f"{clips}/",
        "--env",
        "e2e",
        "--parallel",
        "8",
    ]


def _run_batch(
    command: list[str], *, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
    )


def _lines_done(clips: Path) -> set[int]:
    return {
        number
        for number in range(1, LINES + 1)
        if all((clips / name).exists() for name in _expected_files(number))
    }


def _submissions_per_line(stack: LocalStack, token: str) -> dict[int, list[str]]:
    """Every request object uploaded for this test's prompts, by line: who was submitted twice."""
    s3 = stack.session().client("s3")
    found: dict[int, list[str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket, Prefix="async-input/"
    ):
        for item in page.get("Contents", []):
            body = json.loads(s3.get_object(Bucket=stack.bucket, Key=item["Key"])["Body"].read())
            text = body.get("prompt") or body.get("prompts", [""])[0]
            if text.endswith(token):
                inference_id = item["Key"].rsplit("/", 1)[-1].removesuffix(".json")
                found.setdefault(int(text.split()[-2]), []).append(inference_id)
    return found


def _kill_mid_batch(command: list[str], env: dict[str, str], cwd: Path, clips: Path):
    """Start the batch, SIGKILL it once enough lines are done and others are in flight."""
    journal = journal_path(clips, "prompts")
    with (cwd / "first.log").open("w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=log, start_new_session=True
        )
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                assert process.poll() is None, (cwd / "first.log").read_text()
                done = _lines_done(clips)
                if len(done) >= KILL_AFTER_LINES_DONE and set(read_in_flight(journal)) - done:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
                    # What the dead process left: read only now, it wrote until the signal.
                    return _lines_done(clips), read_in_flight(journal)
                time.sleep(0.05)
            raise AssertionError("the batch never reached the point to kill it")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def test_batch_of_100_killed_and_resumed(aws_environment, cli_env, tmp_path):
    token = uuid.uuid4().hex[:8]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(_request(n, token)) + "\n" for n in range(1, LINES + 1)))
    clips = tmp_path / "clips"
    command = _batch_command(prompts, clips)

    done_at_kill, journal_at_kill = _kill_mid_batch(command, cli_env, tmp_path, clips)
    in_flight_at_kill = {
        line: entry for line, entry in journal_at_kill.items() if line not in done_at_kill
    }

    resumed = _run_batch(command, env=cli_env, cwd=tmp_path)
    # Two lines fail by design, so the batch as a whole fails; everything else is written.
    assert resumed.returncode == 1, resumed.stderr
    summary = resumed.stdout
    assert f"line {TOO_LONG_LINE}: duration: must be > 0 and <= 4 (got 9)" in summary
    assert f"line {MELODY_LINE}: melody: is only supported by melody models" in summary
    assert f"{len(in_flight_at_kill)} collected from an earlier run" in summary
    skipped = len(done_at_kill)
    assert _row("skipped (files existed)", skipped) in summary
    assert _row("done", LINES - 2 - skipped) in summary
    assert "/100" in resumed.stderr and "ETA" in resumed.stderr

    valid = [n for n in range(1, LINES + 1) if n not in (TOO_LONG_LINE, MELODY_LINE)]
    expected = sorted(name for n in valid for name in _expected_files(n))
    written = sorted(path.name for path in clips.iterdir() if not path.name.startswith("."))
    assert written == expected
    assert [path.name for path in clips.iterdir() if path.name.endswith(".part")] == []
    for name in expected:
        audio, rate = soundfile.read(clips / name)
        assert (rate, len(audio)) == (SAMPLE_RATE, round(0.2 * SAMPLE_RATE)), name

    # In flight at the kill: collected, not submitted again, and the file is that result.
    submitted = _submissions_per_line(aws_environment, token)
    s3 = aws_environment.session().client("s3")
    for line, entry in in_flight_at_kill.items():
        assert submitted[line] == [entry.submission.inference_id], line
        key = entry.submission.output_location.split("/", 3)[3]
        if line == MELODY_LINE:
            continue
        body = s3.get_object(Bucket=aws_environment.bucket, Key=key)["Body"].read()
        (clip,) = parse_output(body, inference_id=entry.submission.inference_id).clips
        (name,) = _expected_files(line)
        assert (clips / name).read_bytes() == clip.audio
    for line in done_at_kill:
        assert len(submitted[line]) == 1, line
    assert TOO_LONG_LINE not in submitted
    # A kill between queueing a request and journalling it can cost one extra submission per
    # request then in flight, never more.
    assert sum(len(ids) for ids in submitted.values()) <= len(valid) + 1 + 8
    assert read_in_flight(journal_path(clips, "prompts")) == {}

    again = _run_batch(command, env=cli_env, cwd=tmp_path)
    assert again.returncode == 1
    assert _row("skipped (files existed)", len(valid)) in again.stdout
    assert f"line {MELODY_LINE}: melody" in again.stdout


def test_batch_all_done_exits_0(aws_environment, cli_env, tmp_path):
    prompts = tmp_path / "short.jsonl"
    prompts.write_text(
        '{"prompt": "calm piano", "duration": 0.2, "seed": 1}\n\n'
        '{"prompt": "jazz", "duration": 0.2, "format": "flac"}\n'
    )
    done = _run_batch(
        [*_batch_command(prompts, tmp_path / "out"), "--parallel", "1", "--quiet"],
        env=cli_env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        ".short.musicgen-batch.jsonl",
        "short-0001.wav",
        "short-0003.flac",
    ]


def test_batch_ctrl_c_prints_the_summary_and_a_rerun_finishes(aws_environment, cli_env, tmp_path):
    prompts = tmp_path / "short.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"prompt": f"calm piano {n}", "duration": 0.2, "seed": n}) + "\n"
            for n in range(1, PROMPTS_TO_INTERRUPT + 1)
        )
    )
    clips = tmp_path / "out"
    command = [*_batch_command(prompts, clips), "--parallel", "2"]
    # A test run started in the background (`make test &`, some CI runners) ignores SIGINT, and
    # the CLI would inherit that and finish the batch; a terminal's Ctrl-C finds it at default.
    process = subprocess.Popen(
        command, env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while not list(clips.glob("short-*.wav")) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted with" in out and "run the same command again" in out
    assert [path for path in clips.iterdir() if path.name.endswith(".part")] == []

    rerun = _run_batch(command, env=cli_env, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(list(clips.glob("short-*.wav"))) == PROMPTS_TO_INTERRUPT
