"""A temporary SQS queue subscribed to the endpoint's success and error topics.

Used for `notify="sqs"`: a long poll on SQS learns of a result within a second of SageMaker
publishing it, without polling S3. The queue and its subscriptions live only as long as the
`with` block, and are removed even when the block is left by Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from musicgen_client.notifications import InvocationEvent, NotificationFormatError, parse_sqs_body

LOG = logging.getLogger(__name__)
MAX_LONG_POLL_SECONDS = 20


def queue_policy(queue_arn: str, topic_arns: Sequence[str]) -> str:
    """The queue policy that lets exactly these topics deliver to the queue."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowMusicGenNotificationTopics",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": list(topic_arns)}},
                }
            ],
        }
    )


class NotificationQueue:
    """Context manager: creates, subscribes, and on exit unsubscribes and deletes the queue."""

    def __init__(self, *, sqs: Any, sns: Any, topic_arns: Sequence[str]):
        self._sqs = sqs
        self._sns = sns
        self._topic_arns = tuple(topic_arns)
        self._queue_url: str | None = None
        self._subscription_arns: list[str] = []

    def __enter__(self) -> NotificationQueue:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _create(self) -> None:
        name = f"musicgen-client-{uuid.uuid4().hex}"
        self._queue_url = self._sqs.create_queue(
            QueueName=name, Attributes={"MessageRetentionPeriod": "3600"}
        )["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self._sqs.set_queue_attributes(
            QueueUrl=self._queue_url,
            Attributes={"Policy": queue_policy(queue_arn, self._topic_arns)},
        )
        for topic_arn in self._topic_arns:
            response = self._sns.subscribe(
                TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True
            )
            self._subscription_arns.append(response["SubscriptionArn"])

    def receive(self, wait_seconds: float) -> list[InvocationEvent]:
        """Long-poll up to `wait_seconds` (at most 20); return the notifications received."""
        if self._queue_url is None:
            raise RuntimeError("NotificationQueue.receive called outside its `with` block")
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=max(0, min(MAX_LONG_POLL_SECONDS, math.ceil(wait_seconds))),
        )
        events: list[InvocationEvent] = []
        for message in response.get("Messages", []):
            try:
                events.append(parse_sqs_body(message["Body"]))
            except NotificationFormatError as error:
                # Only our topics deliver here, but one malformed message must not end the wait.
                LOG.debug("ignoring a message that is not a SageMaker notification: %s", error)
            self._sqs.delete_message(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return events

    def close(self) -> None:
        """Unsubscribe and delete the queue; safe to call twice, never raises for cleanup errors."""
        while self._subscription_arns:
            arn = self._subscription_arns.pop()
            try:
                self._sns.unsubscribe(SubscriptionArn=arn)
            except (BotoCoreError, ClientError) as error:
                LOG.warning("could not remove subscription %s: %s", arn, error)
        if self._queue_url is not None:
            url, self._queue_url = self._queue_url, None
            try:
                self._sqs.delete_queue(QueueUrl=url)
            except (BotoCoreError, ClientError) as error:
                LOG.warning("could not delete temporary queue %s: %s", url, error)
