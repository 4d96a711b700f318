from __future__ import annotations

import json

import pytest

from musicgen_client.notification_queue import queue_policy
from musicgen_client.notifications import (
    InvocationStatus,
    NotificationFormatError,
    parse_notification,
    parse_sqs_body,
)

REQUEST = {
    "endpointName": "musicgen-dev",
    "inputLocation": "s3://bucket/async-input/abc.json",
    "contentType": "application/json",
    "accept": "application/json",
}


def _message(status: str, **extra) -> dict:
    return {
        "awsRegion": "us-east-1",
        "eventTime": "2025-01-02T03:04:05.678Z",
        "receivedTime": "2025-01-02T03:04:00.000Z",
        "invocationStatus": status,
        "requestParameters": REQUEST,
        "inferenceId": "abc",
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
        **extra,
    }


def _sns_envelope(message: dict) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:success",
            "Message": json.dumps(message),
            "Timestamp": "2025-01-02T03:04:05.700Z",
        }
    )


def test_completed_through_the_sns_envelope():
    message = _message(
        "Completed",
        responseParameters={
            "contentType": "application/json",
            "outputLocation": "s3://bucket/async-output/abc.out",
        },
    )
    event = parse_sqs_body(_sns_envelope(message))
    assert event.status is InvocationStatus.COMPLETED
    assert event.inference_id == "abc"
    assert event.endpoint_name == "musicgen-dev"
    assert event.output_location == "s3://bucket/async-output/abc.out"
    assert event.content_type == "application/json"
    assert event.failure_location is None and event.failure_reason is None


def test_raw_delivery_body_is_the_message_itself():
    event = parse_sqs_body(json.dumps(_message("Completed")))
    assert event.status is InvocationStatus.COMPLETED


@pytest.mark.parametrize(
    "placement",
    [
        {"failureLocation": "s3://bucket/async-failure/abc-error.out"},
        {"responseParameters": {"failureLocation": "s3://bucket/async-failure/abc-error.out"}},
    ],
    ids=["top-level", "under-responseParameters"],
)
def test_failed_reads_the_failure_location_wherever_it_sits(placement):
    message = _message("Failed", failureReason="ClientError: duration: must be > 0", **placement)
    event = parse_sqs_body(_sns_envelope(message))
    assert event.status is InvocationStatus.FAILED
    assert event.failure_location == "s3://bucket/async-failure/abc-error.out"
    assert event.failure_reason == "ClientError: duration: must be > 0"


def test_expired():
    event = parse_notification(json.dumps(_message("Expired")))
    assert event.status is InvocationStatus.EXPIRED
    assert event.output_location is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        (json.dumps({**_message("Completed"), "inferenceId": ""}), "inferenceId: missing"),
        (
            json.dumps(_message("Done")),
            "invocationStatus: expected one of Completed, Failed, Expired",
        ),
        (json.dumps({**_message("Completed"), "eventName": "Other"}), "eventName: expected"),
    ],
)
def test_foreign_messages_are_rejected(message, error):
    with pytest.raises(NotificationFormatError, match=error):
        parse_notification(message)


def test_a_cloudwatch_alarm_on_the_error_topic_is_not_mistaken_for_a_result():
    alarm = {
        "AlarmName": "MusicGen-dev-OldestRequest",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed",
        "Trigger": {"MetricName": "ApproximateAgeOfOldestRequest"},
    }
    with pytest.raises(NotificationFormatError, match="inferenceId: missing"):
        parse_sqs_body(_sns_envelope(alarm))


def test_queue_policy_admits_exactly_the_two_topics():
    topics = ["arn:aws:sns:us-east-1:123456789012:ok", "arn:aws:sns:us-east-1:123456789012:err"]
    policy = json.loads(queue_policy("arn:aws:sqs:us-east-1:123456789012:q", topics))
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topics}}
