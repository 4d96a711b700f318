"""Parse SageMaker async notifications, whether raw or wrapped in the SNS envelope SQS receives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class NotificationFormatError(ValueError):
    """A message that is not a SageMaker async-inference notification."""


class InvocationStatus(StrEnum):
    COMPLETED = "Completed"
    FAILED = "Failed"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class InvocationEvent:
    """What SageMaker reported about one inference."""

    inference_id: str
    status: InvocationStatus
    endpoint_name: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    content_type: str | None = None
    event_time: str | None = None


def parse_sqs_body(body: str) -> InvocationEvent:
    """Parse an SQS message body: the SNS envelope (default delivery) or the bare message (raw)."""
    document = _load_object(body, "SQS message body")
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return parse_notification(document["Message"])
    return parse_notification(document)


def parse_notification(message: str | Mapping[str, Any]) -> InvocationEvent:
    """Parse the SageMaker notification (the SNS `Message`), given as JSON text or a mapping."""
    document = _load_object(message, "notification") if isinstance(message, str) else message
    if document.get("eventName") not in (None, "InferenceResult"):
        raise NotificationFormatError(
            f"eventName: expected 'InferenceResult', got {document['eventName']!r}"
        )
    inference_id = document.get("inferenceId")
    if not isinstance(inference_id, str) or not inference_id:
        raise NotificationFormatError("inferenceId: missing from the notification")
    raw_status = document.get("invocationStatus")
    try:
        status = InvocationStatus(str(raw_status))
    except ValueError:
        allowed = ", ".join(member.value for member in InvocationStatus)
        raise NotificationFormatError(
            f"invocationStatus: expected one of {allowed}, got {raw_status!r}"
        ) from None
    request = _mapping(document.get("requestParameters"))
    response = _mapping(document.get("responseParameters"))
    # Public sources disagree on where a failure location sits; accept both places.
    failure_location = document.get("failureLocation") or response.get("failureLocation")
    return InvocationEvent(
        inference_id=inference_id,
        status=status,
        endpoint_name=request.get("endpointName"),
        output_location=response.get("outputLocation"),
        failure_location=failure_location,
        failure_reason=document.get("failureReason"),
        content_type=response.get("contentType"),
        event_time=document.get("eventTime"),
    )


def _load_object(text: str, what: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotificationFormatError(f"{what}: not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise NotificationFormatError(f"{what}: expected a JSON object")
    return document


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
