from __future__ import annotations

import pytest

from musicgen_client.errors import ConfigurationError
from musicgen_client.locations import S3Location
from musicgen_client.stack_outputs import settings_from_outputs, stack_name_for

OUTPUTS = {
    "EndpointName": "musicgen-dev",
    "InputS3Uri": "s3://musicgen-bucket/async-input/",
    "OutputS3Uri": "s3://musicgen-bucket/async-output/",
    "FailureS3Uri": "s3://musicgen-bucket/async-failure",
    "SuccessTopicArn": "arn:aws:sns:us-east-1:123456789012:ok",
    "ErrorTopicArn": "arn:aws:sns:us-east-1:123456789012:err",
    "ModelCommit": "a" * 40,
    "MaxDurationSeconds": "30",
}


def test_outputs_become_settings():
    settings = settings_from_outputs(OUTPUTS, stack_name="MusicGen-dev")
    assert settings.endpoint_name == "musicgen-dev"
    assert settings.input_prefix == S3Location("musicgen-bucket", "async-input/")
    assert settings.failure_prefix == S3Location("musicgen-bucket", "async-failure/")
    assert settings.topic_arns == (OUTPUTS["SuccessTopicArn"], OUTPUTS["ErrorTopicArn"])
    assert settings.max_duration_seconds == 30.0
    assert settings.model_commit == "a" * 40


def test_stack_name_of_an_environment():
    assert stack_name_for("prod") == "MusicGen-prod"


def test_missing_outputs_are_named():
    outputs = {
        key: value for key, value in OUTPUTS.items() if key not in ("InputS3Uri", "EndpointName")
    }
    with pytest.raises(
        ConfigurationError, match=r"stack MusicGen-dev: missing output.*EndpointName, InputS3Uri"
    ):
        settings_from_outputs(outputs, stack_name="MusicGen-dev")


def test_malformed_outputs_are_named():
    with pytest.raises(ConfigurationError, match="MaxDurationSeconds must be a number"):
        settings_from_outputs({**OUTPUTS, "MaxDurationSeconds": "long"}, stack_name="MusicGen-dev")
    with pytest.raises(ConfigurationError, match="MusicGen-dev OutputS3Uri: must be an S3 URI"):
        settings_from_outputs({**OUTPUTS, "OutputS3Uri": "bucket/out"}, stack_name="MusicGen-dev")


def test_optional_outputs_may_be_absent():
    required = {
        key: OUTPUTS[key] for key in ("EndpointName", "InputS3Uri", "OutputS3Uri", "FailureS3Uri")
    }
    settings = settings_from_outputs(required, stack_name="MusicGen-dev")
    assert settings.topic_arns == ()
    assert settings.max_duration_seconds is None
