"""How a batch run picks up where the last one stopped (S3 and SageMaker runtime: moto server)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import boto3
import pytest

import musicgen_client.request
from inference_code.request_schema import parse_request
from musicgen_client.batch import BatchRun
from musicgen_client.batch_file import read_batch_file
from musicgen_client.batch_journal import BatchJournal, InFlight, journal_path, read_in_flight
from musicgen_client.client import MusicGenClient, Submission


@pytest.fixture
def bucket(s3_endpoint_url, aws_credentials, monkeypatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint_url)
    name = f"musicgen-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _client(bucket: str) -> MusicGenClient:
    return MusicGenClient(
        endpoint_name="musicgen-test",
        input_s3_uri=f"s3://{bucket}/async-input/",
        output_s3_uri=f"s3://{bucket}/async-output/",
        failure_s3_uri=f"s3://{bucket}/async-failure/",
    )


def _earlier_submission(bucket: str, inference_id: str) -> Submission:
    return Submission(
        inference_id=inference_id,
        input_location=f"s3://{bucket}/async-input/{inference_id}.json",
        output_location=f"s3://{bucket}/async-output/{inference_id}.out",
        failure_location=f"s3://{bucket}/async-failure/{inference_id}-error.out",
        submitted_at=time.time(),
        request_ttl_seconds=21600,
        invocation_timeout_seconds=3600,
    )


def _response(audio: bytes) -> bytes:
    clip = {"index": 0, "prompt": "a", "seed": 1, "audio": base64.b64encode(audio).decode()}
    return json.dumps({"model_id": "m", "sample_rate": 32000, "clips": [clip]}).encode()


def test_resume_collects_skips_resubmits_and_cleans_up(bucket, tmp_path, make_wav, monkeypatch):
    checked: list[object] = []

    def counting_parse(payload, **limits):
        checked.append(payload)
        return parse_request(payload, **limits)

    # Each line is checked once, when the run is planned; its submission is not checked again.
    monkeypatch.setattr(musicgen_client.request, "parse_request", counting_parse)
    s3 = boto3.client("s3")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "a", "duration": 1}\n{"prompt": "b edited", "duration": 1}\n{"prompt": "c"}\n'
    )
    first, edited, present = read_batch_file(prompts)
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "prompts-0003.wav").write_bytes(b"kept as is")
    (clips / ".prompts-0001.wav.0123abcd.part").write_bytes(b"torn")
    # The killed run had queued lines 1 and 2; both results are in S3 by now.
    audio_one, audio_two = make_wav(seconds=0.5), make_wav(seconds=0.25)
    earlier = {1: _earlier_submission(bucket, "old-1"), 2: _earlier_submission(bucket, "old-2")}
    for number, audio in ((1, audio_one), (2, audio_two)):
        key = earlier[number].output_location.split("/", 3)[3]
        s3.put_object(Bucket=bucket, Key=key, Body=_response(audio))
    journal = BatchJournal(journal_path(clips, "prompts"), [])
    journal.submitted(InFlight(1, first.digest, earlier[1]))
    journal.submitted(InFlight(2, "digest-of-line-2-before-the-edit", earlier[2]))
    journal.close()

    report = BatchRun(
        client=_client(bucket),
        lines=[first, edited, present],
        folder=clips,
        stem="prompts",
        max_duration_seconds=30,
        parallel=2,
    ).run(timeout=30)

    assert report.resumed == 1
    assert report.skipped == [3]
    assert (clips / "prompts-0001.wav").read_bytes() == audio_one
    assert (clips / "prompts-0003.wav").read_bytes() == b"kept as is"
    # Line 2 changed since it was queued: its old result must not be taken, it is submitted again.
    assert not (clips / "prompts-0002.wav").exists()
    inputs = s3.list_objects_v2(Bucket=bucket, Prefix="async-input/").get("Contents", [])
    (resubmitted,) = [
        json.loads(s3.get_object(Bucket=bucket, Key=i["Key"])["Body"].read()) for i in inputs
    ]
    assert resubmitted == {"prompt": "b edited", "duration": 1}
    assert len(checked) == 3
    assert not list(clips.glob("*.part"))
    assert 1 not in read_in_flight(journal_path(clips, "prompts"))


def test_invalid_lines_fail_with_their_numbers_without_aws(bucket, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a", "duration": 45}\n\n{"prompt": "a", "colour": "red"}\n{\n')
    report = BatchRun(
        client=_client(bucket),
        lines=read_batch_file(prompts),
        folder=tmp_path / "clips",
        stem="prompts",
        max_duration_seconds=30,
    ).run()
    messages = {failure.line: failure.message for failure in report.failed}
    assert messages[1] == "duration: must be > 0 and <= 30 (got 45)"
    assert messages[3].startswith("colour: is not a known field")
    assert messages[4].startswith("not valid JSON")
    assert report.done == [] and report.unfinished == []
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0
