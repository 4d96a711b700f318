"""Raw traffic on the local async loop: upload, invoke, and collect every outcome it leaves.

The client library checks requests before upload, so a bad request would never reach the
endpoint through it; this goes the way any SDK user's code goes (put the JSON, InvokeEndpointAsync
with its InputLocation) and then reads back what SageMaker promises: one `<id>.out` or
`<id>-error.out` per request, and one notification per request on the success or error topic.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3

from musicgen_local.moto_server import FAKE_CREDENTIALS


@dataclass(frozen=True)
class Outcome:
    inference_id: str
    outputs: list[bytes]  # bodies of <id>.out
    failures: list[bytes]  # bodies of <id>-error.out
    notifications: list[dict[str, Any]]  # parsed SageMaker messages

    @property
    def latency_seconds(self) -> float | None:
        """receivedTime to eventTime of the (first) notification: SageMaker's view."""
        if not self.notifications:
            return None
        message = self.notifications[0]
        return (_time(message["eventTime"]) - _time(message["receivedTime"])).total_seconds()


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LoopTraffic:
    """Clients of the loop's S3, SNS, SQS and SageMaker runtime; one SQS queue on both topics."""

    outputs: dict[str, str]
    aws_endpoint_url: str
    runtime_endpoint_url: str
    queue_url: str = ""
    _seen_messages: set[str] = field(default_factory=set)
    _notifications: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        self._session = session
        self.s3 = session.client("s3", endpoint_url=self.aws_endpoint_url)
        self.sqs = session.client("sqs", endpoint_url=self.aws_endpoint_url)
        self.sns = session.client("sns", endpoint_url=self.aws_endpoint_url)
        self.bucket = self.outputs["InputS3Uri"].removeprefix("s3://").split("/", 1)[0]
        queue = self.sqs.create_queue(QueueName=f"reliability-{uuid.uuid4().hex[:8]}")
        self.queue_url = queue["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        for topic in ("SuccessTopicArn", "ErrorTopicArn"):
            self.sns.subscribe(
                TopicArn=self.outputs[topic],
                Protocol="sqs",
                Endpoint=arn["Attributes"]["QueueArn"],
            )

    def runtime(self) -> Any:
        """A SageMaker runtime client (one per thread: boto3 clients are not shared safely)."""
        return self._session.client("sagemaker-runtime", endpoint_url=self.runtime_endpoint_url)

    def submit(self, runtime: Any, body: bytes, inference_id: str) -> None:
        key = f"async-input/{inference_id}.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        runtime.invoke_endpoint_async(
            EndpointName=self.outputs["EndpointName"],
            InputLocation=f"s3://{self.bucket}/{key}",
            ContentType="application/json",
            Accept="application/json",
            InferenceId=inference_id,
        )

    def drain_notifications(self) -> None:
        while True:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = received.get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                if message["MessageId"] in self._seen_messages:
                    continue
                self._seen_messages.add(message["MessageId"])
                payload = json.loads(json.loads(message["Body"])["Message"])
                self._notifications[payload["inferenceId"]].append(payload)

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def wait_for(self, inference_ids: list[str], *, timeout: float) -> dict[str, Outcome]:
        """Every id's objects and notifications once each has a notification (or at timeout).

        Then it waits one more second and looks again, so a duplicate that arrives late counts.
        """
        deadline = time.monotonic() + timeout
        wanted = set(inference_ids)
        while time.monotonic() < deadline:
            self.drain_notifications()
            if wanted <= set(self._notifications):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        self.drain_notifications()
        out_keys = self._keys("async-output/")
        error_keys = self._keys("async-failure/")
        outcomes = {}
        for inference_id in inference_ids:
            outputs = [
                self._read(key) for key in out_keys if key == f"async-output/{inference_id}.out"
            ]
            failures = [
                self._read(key)
                for key in error_keys
                if key == f"async-failure/{inference_id}-error.out"
            ]
            outcomes[inference_id] = Outcome(
                inference_id=inference_id,
                outputs=outputs,
                failures=failures,
                notifications=list(self._notifications.get(inference_id, [])),
            )
        return outcomes

    def notified_ids(self) -> set[str]:
        return set(self._notifications)

    def _read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
