"""A stand-in that plays SageMaker's asynchronous-inference role for one endpoint.

Nothing here can reach AWS, so the local loop (and the end-to-end tests on it) is assembled from
real parts (an S3/SNS/SQS server, the container's model server) and this stand-in for the piece
in between.
It speaks the `sagemaker-runtime` wire protocol botocore sends (so the client under test runs
unchanged, pointed here with `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`), queues each request, and a
pool of `max_concurrent_invocations` workers (MaxConcurrentInvocationsPerInstance) does what
SageMaker does: read the input object, POST it to the container's `/invocations`, write
`<id>.out` or `<id>-error.out`, and publish the notification to the success or error topic.
It also answers `DescribeEndpoint` (`AWS_ENDPOINT_URL_SAGEMAKER`): zero instances until
`cold_start_seconds` after the first request, one afterwards, like an endpoint scaled to zero.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import boto3
import requests

from musicgen_local.moto_server import FAKE_CREDENTIALS

ASYNC_PATH_PREFIX = "/endpoints/"
ASYNC_PATH_SUFFIX = "/async-invocations"
HEADER = "X-Amzn-SageMaker-"
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900
DEFAULT_REQUEST_TTL_SECONDS = 21600


@dataclass(frozen=True)
class EmulatedEndpoint:
    """The async endpoint's configuration, as an `AsyncInferenceConfig` would hold it."""

    name: str
    output_s3_uri: str
    failure_s3_uri: str
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    max_concurrent_invocations: int = 1
    region: str = "us-east-1"
    # Seconds from the first request until the (scaled-to-zero) instance serves; meanwhile
    # requests wait in the queue and DescribeEndpoint reports no instance.
    cold_start_seconds: float = 0.0
    # Queue time counts against RequestTTLSeconds multiplied by this; botocore refuses a TTL
    # under 60 s, so a test shrinks it to see `Expired` within seconds.
    request_ttl_scale: float = 1.0


@dataclass(frozen=True)
class _Job:
    inference_id: str
    input_location: str
    content_type: str
    accept: str
    invocation_timeout_seconds: int
    request_ttl_seconds: int
    received_time: datetime
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class EmulatorRecord:
    """What the emulator did, for assertions: every outcome and the peak concurrency."""

    outcomes: dict[str, str] = field(default_factory=dict)
    peak_in_flight: int = 0
    in_flight: int = 0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class AsyncSageMakerEmulator:
    """Start with `running_async_sagemaker(...)`; `url` is what the SageMaker clients point at."""

    def __init__(
        self, *, endpoint: EmulatedEndpoint, model_url: str, aws_endpoint_url: str, port: int = 0
    ):
        self.endpoint = endpoint
        self.model_url = model_url.rstrip("/")
        self.record = EmulatorRecord()
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=endpoint.region,
        )
        self._s3 = session.client("s3", endpoint_url=aws_endpoint_url)
        self._sns = session.client("sns", endpoint_url=aws_endpoint_url)
        self._instances = 0
        self._instance_ready = threading.Event()
        self._cold_start: threading.Timer | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._serve_jobs, name=f"sagemaker-worker-{n}", daemon=True)
            for n in range(endpoint.max_concurrent_invocations)
        ]
        self._threads.append(
            threading.Thread(target=self._server.serve_forever, name="sagemaker-http", daemon=True)
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        if self._cold_start is not None:
            self._cold_start.cancel()
        self._instance_ready.set()
        for _ in range(self.endpoint.max_concurrent_invocations):
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
        self._server.server_close()

    def wait_until_idle(self, timeout: float = 120) -> None:
        """Block until every accepted request has an outcome."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._jobs.unfinished_tasks:
            raise TimeoutError(f"{self._jobs.unfinished_tasks} request(s) still unprocessed")

    # -- the HTTP side -------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = emulator._dispatch(self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                encoded = json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean; outcomes are in `record`

        return Handler

    def _dispatch(
        self, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        target = headers.get("X-Amz-Target", "")
        if path == "/" and target == "SageMaker.DescribeEndpoint":
            return self._describe_endpoint(json.loads(body or b"{}"))
        if path.startswith(ASYNC_PATH_PREFIX) and path.endswith(ASYNC_PATH_SUFFIX):
            name = unquote(path[len(ASYNC_PATH_PREFIX) : -len(ASYNC_PATH_SUFFIX)])
            return self._invoke_async(name, headers, body)
        return _error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no route for {path}")

    def _describe_endpoint(self, request: dict[str, Any]) -> tuple[int, dict[str, str], dict]:
        if request.get("EndpointName") != self.endpoint.name:
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationException",
                f'Could not find endpoint "{request.get("EndpointName")}".',
            )
        now = time.time()
        return (
            HTTPStatus.OK,
            {},
            {
                "EndpointName": self.endpoint.name,
                "EndpointArn": f"arn:aws:sagemaker:{self.endpoint.region}:123456789012:endpoint/"
                + self.endpoint.name.lower(),
                "EndpointConfigName": self.endpoint.name,
                "EndpointStatus": "InService",
                "CreationTime": now,
                "LastModifiedTime": now,
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "CurrentInstanceCount": self._instances,
                        "DesiredInstanceCount": self._instances,
                    }
                ],
            },
        )

    def _invoke_async(
        self, name: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if name != self.endpoint.name:
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                f"Endpoint {name} of account 123456789012 not found.",
            )
        input_location = headers.get(HEADER + "InputLocation")
        if not input_location or body:
            return _error(
                HTTPStatus.BAD_REQUEST,
                "ValidationError",
                "This emulator accepts InputLocation only (no inline Body)",
            )
        inference_id = headers.get(HEADER + "Inference-Id") or str(uuid.uuid4())
        job = _Job(
            inference_id=inference_id,
            input_location=input_location,
            content_type=headers.get(HEADER + "Content-Type") or "application/octet-stream",
            accept=headers.get(HEADER + "Accept") or "*/*",
            invocation_timeout_seconds=int(
                headers.get(HEADER + "InvocationTimeoutSeconds")
                or DEFAULT_INVOCATION_TIMEOUT_SECONDS
            ),
            request_ttl_seconds=int(
                headers.get(HEADER + "RequestTTLSeconds") or DEFAULT_REQUEST_TTL_SECONDS
            ),
            received_time=datetime.now(UTC),
        )
        self._start_instance()
        self._jobs.put(job)
        return (
            HTTPStatus.ACCEPTED,
            {
                HEADER + "OutputLocation": self._output_uri(inference_id),
                HEADER + "FailureLocation": self._failure_uri(inference_id),
            },
            {"InferenceId": inference_id},
        )

    def _start_instance(self) -> None:
        with self._lock:
            if self._cold_start is not None:
                return
            self._cold_start = threading.Timer(
                self.endpoint.cold_start_seconds, self._instance_started
            )
            self._cold_start.daemon = True
            self._cold_start.start()

    def _instance_started(self) -> None:
        self._instances = 1
        self._instance_ready.set()

    def _output_uri(self, inference_id: str) -> str:
        return self.endpoint.output_s3_uri.rstrip("/") + f"/{inference_id}.out"

    def _failure_uri(self, inference_id: str) -> str:
        return self.endpoint.failure_s3_uri.rstrip("/") + f"/{inference_id}-error.out"

    # -- the worker side -----------------------------------------------------------------------

    def _serve_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._instance_ready.wait()
                with self._lock:
                    self.record.in_flight += 1
                    self.record.peak_in_flight = max(
                        self.record.peak_in_flight, self.record.in_flight
                    )
                try:
                    self._process(job)
                except Exception as error:  # a harness bug must show up as an outcome, not hang
                    self._record(job, f"emulator error: {error!r}")
                finally:
                    with self._lock:
                        self.record.in_flight -= 1
            finally:
                self._jobs.task_done()

    def _record(self, job: _Job, outcome: str) -> None:
        """Record `outcome` before anything the client can see (an object, a notification).

        A test reads the record as soon as the client has its result; recording afterwards
        would race with it.
        """
        with self._lock:
            self.record.outcomes[job.inference_id] = outcome

    def _process(self, job: _Job) -> None:
        ttl = job.request_ttl_seconds * self.endpoint.request_ttl_scale
        if time.monotonic() - job.queued_at > ttl:
            self._record(job, "Expired")
            self._notify(job, "Expired", failure_reason="Request expired in the queue")
            return
        bucket, key = _split_s3_uri(job.input_location)
        try:
            payload = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            self._fail(job, b"", f"ClientError: input {job.input_location} does not exist")
            return
        try:
            response = requests.post(
                f"{self.model_url}/invocations",
                data=payload,
                headers={"Content-Type": job.content_type, "Accept": job.accept},
                timeout=job.invocation_timeout_seconds,
            )
        except requests.Timeout:
            self._fail(job, b"", "ModelError: invocation timed out")
            return
        except requests.RequestException as error:
            self._fail(job, b"", f"ModelError: model container unreachable ({error})")
            return
        if response.status_code >= 400:
            kind = "client" if response.status_code < 500 else "server"
            reason = (
                f"ClientError: Received {kind} error ({response.status_code}) from primary with "
                f'message "{response.text[:500]}". See the endpoint\'s logs for more information.'
            )
            self._fail(job, response.content, reason)
            return
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        bucket, key = _split_s3_uri(self._output_uri(job.inference_id))
        self._record(job, "Completed")
        self._s3.put_object(Bucket=bucket, Key=key, Body=response.content, ContentType=content_type)
        self._notify(
            job,
            "Completed",
            response_parameters={
                "contentType": content_type,
                "outputLocation": self._output_uri(job.inference_id),
            },
        )

    def _fail(self, job: _Job, body: bytes, reason: str) -> None:
        bucket, key = _split_s3_uri(self._failure_uri(job.inference_id))
        self._record(job, "Failed")
        self._s3.put_object(
            Bucket=bucket, Key=key, Body=body or reason.encode(), ContentType="text/plain"
        )
        self._notify(
            job,
            "Failed",
            failure_reason=reason,
            response_parameters={
                "contentType": "text/plain; charset=utf-8",
                "failureLocation": self._failure_uri(job.inference_id),
            },
        )

    def _notify(
        self,
        job: _Job,
        status: str,
        *,
        failure_reason: str | None = None,
        response_parameters: dict[str, str] | None = None,
    ) -> None:
        topic = (
            self.endpoint.success_topic_arn
            if status == "Completed"
            else (self.endpoint.error_topic_arn)
        )
        if topic is None:
            return
        message: dict[str, Any] = {
            "awsRegion": self.endpoint.region,
            "eventTime": _iso(datetime.now(UTC)),
            "receivedTime": _iso(job.received_time),
            "invocationStatus": status,
            "requestParameters": {
                "endpointName": self.endpoint.name,
                "inputLocation": job.input_location,
                "contentType": job.content_type,
                "accept": job.accept,
            },
            "responseParameters": response_parameters or {},
            "inferenceId": job.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if failure_reason is not None:
            message["failureReason"] = failure_reason
        self._sns.publish(TopicArn=topic, Message=json.dumps(message))


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    return status, {"x-amzn-ErrorType": code}, {"__type": code, "message": message}


@contextmanager
def running_async_sagemaker(
    *, endpoint: EmulatedEndpoint, model_url: str, aws_endpoint_url: str, port: int = 0
) -> Iterator[AsyncSageMakerEmulator]:
    """Run the emulator for `endpoint` on `port` (0: a free one), forwarding to `model_url`."""
    emulator = AsyncSageMakerEmulator(
        endpoint=endpoint, model_url=model_url, aws_endpoint_url=aws_endpoint_url, port=port
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
