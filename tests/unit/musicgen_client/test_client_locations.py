from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from musicgen_client.errors import ConfigurationError
from musicgen_client.locations import (
    S3Location,
    check_inference_id,
    failure_location,
    inference_id_from_location,
    new_inference_id,
    output_location,
    request_location,
)


def test_new_inference_id_is_unique_short_and_time_ordered():
    early = new_inference_id(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = new_inference_id(datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert re.fullmatch(r"musicgen-20250102T030405Z-[0-9a-f]{32}", early)
    assert early < late
    ids = {new_inference_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(inference_id) <= 64 and check_inference_id(inference_id) for inference_id in ids)


@pytest.mark.parametrize(
    ("inference_id", "rule"),
    [
        ("", "1-64 characters"),
        ("x" * 65, "1-64 characters"),
        ("-leading-dash", "must start with a letter or digit"),
        ("has space", "only letters, digits"),
        ("slash/inside", "only letters, digits"),
    ],
)
def test_check_inference_id_names_the_rule(inference_id, rule):
    with pytest.raises(ConfigurationError, match=rf"inference_id: .*{re.escape(rule)}"):
        check_inference_id(inference_id)


def test_prefix_parsing_adds_the_trailing_slash():
    prefix = S3Location.parse_prefix("s3://my-bucket/async-input", field="input_s3_uri")
    assert prefix == S3Location("my-bucket", "async-input/")
    assert S3Location.parse_prefix("s3://my-bucket/", field="x").key == ""


@pytest.mark.parametrize("uri", ["my-bucket/key", "https://my-bucket/key", "s3://", "s3://UPPER/x"])
def test_bad_s3_uri_names_the_field(uri):
    with pytest.raises(ConfigurationError, match=r"output_s3_uri: must be an S3 URI"):
        S3Location.parse(uri, field="output_s3_uri")


def test_object_names_follow_the_async_contract():
    inference_id = "musicgen-20250102T030405Z-abc"
    assert request_location(S3Location("my-bucket", "async-input/"), inference_id).uri == (
        "s3://my-bucket/async-input/musicgen-20250102T030405Z-abc.json"
    )
    assert output_location(S3Location("my-bucket", "async-output/"), inference_id).uri == (
        "s3://my-bucket/async-output/musicgen-20250102T030405Z-abc.out"
    )
    assert failure_location(S3Location("my-bucket", "async-failure/"), inference_id).uri == (
        "s3://my-bucket/async-failure/musicgen-20250102T030405Z-abc-error.out"
    )


def test_inference_id_is_recovered_from_either_location():
    assert inference_id_from_location("s3://my-bucket/async-output/abc-1.out") == "abc-1"
    assert inference_id_from_location("s3://my-bucket/async-failure/abc-1-error.out") == "abc-1"
    with pytest.raises(ConfigurationError, match="location: must name an object ending in"):
        inference_id_from_location("s3://my-bucket/async-output/abc.wav")
