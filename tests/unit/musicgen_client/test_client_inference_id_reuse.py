"""A caller-chosen inference id that already has a result is refused, or its result replaced."""

from __future__ import annotations

import uuid

import boto3
import pytest

from musicgen_client import InferenceIdInUseError, MusicGenClient


@pytest.fixture
def client_and_bucket(s3_endpoint_url, aws_credentials, monkeypatch):
    """A client whose S3 and SageMaker runtime calls go to the moto server process."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint_url)
    bucket = f"musicgen-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    client = MusicGenClient(
        endpoint_name="musicgen-test",
        input_s3_uri=f"s3://{bucket}/async-input/",
        output_s3_uri=f"s3://{bucket}/async-output/",
        failure_s3_uri=f"s3://{bucket}/async-failure/",
    )
    return client, bucket


def _keys(bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.mark.parametrize(
    "earlier", [["async-output/take-1.out"], ["async-failure/take-1-error.out"]]
)
def test_an_id_with_a_result_is_refused_before_upload(client_and_bucket, earlier):
    client, bucket = client_and_bucket
    for key in earlier:
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"old result")
    with pytest.raises(
        InferenceIdInUseError, match="inference_id: take-1 was used before"
    ) as error:
        client.submit({"prompt": "calm piano"}, inference_id="take-1")
    assert error.value.existing == [f"s3://{bucket}/{key}" for key in earlier]
    assert _keys(bucket) == earlier


def test_overwrite_deletes_the_old_result_first(client_and_bucket):
    client, bucket = client_and_bucket
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="async-output/take-1.out", Body=b"old result")
    s3.put_object(Bucket=bucket, Key="async-failure/take-1-error.out", Body=b"old failure")
    submission = client.submit({"prompt": "calm piano"}, inference_id="take-1", overwrite=True)
    assert submission.inference_id == "take-1"
    assert _keys(bucket) == ["async-input/take-1.json"]


def test_a_fresh_id_and_generated_ids_are_accepted(client_and_bucket):
    client, bucket = client_and_bucket
    client.submit({"prompt": "calm piano"}, inference_id="take-2")
    first = client.submit({"prompt": "calm piano"})
    second = client.submit({"prompt": "calm piano"})
    assert first.inference_id != second.inference_id
    assert len(_keys(bucket)) == 3
