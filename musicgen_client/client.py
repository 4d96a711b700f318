"""`MusicGenClient`: submit requests to the async endpoint, wait for results, fetch them later."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from inference_code.request_schema import GenerationOptions
from musicgen_client.backoff import Backoff
from musicgen_client.errors import (
    ConfigurationError,
    InferenceExpiredError,
    InferenceFailedError,
    InferenceIdInUseError,
    ResultNotReadyError,
    WaitTimeoutError,
)
from musicgen_client.locations import (
    S3Location,
    check_inference_id,
    failure_location,
    inference_id_from_location,
    new_inference_id,
    output_location,
    request_location,
)
from musicgen_client.notification_queue import NotificationQueue
from musicgen_client.notifications import InvocationEvent, InvocationStatus
from musicgen_client.progress import Phase, Progress, ProgressCallback
from musicgen_client.request import CheckedRequest, check_request
from musicgen_client.results import GenerationResult, parse_output
from musicgen_client.stack_outputs import (
    EndpointSettings,
    read_stack_outputs,
    settings_from_outputs,
)

Notify = Literal["poll", "sqs"]
ACCEPT_TYPES = ("application/json", "audio/wav", "audio/flac")
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 3600
DEFAULT_REQUEST_TTL_SECONDS = 21600
# With notify="sqs", S3 is still checked this often in case a notification never arrives.
SQS_SAFETY_CHECK_SECONDS = 60.0
CAPACITY_CHECK_SECONDS = 30.0
EXPIRY_REASON = "no result within RequestTTLSeconds + InvocationTimeoutSeconds"


@dataclass(frozen=True)
class Submission:
    """A request SageMaker has queued; keep `inference_id` to fetch the result later."""

    inference_id: str
    input_location: str
    output_location: str
    failure_location: str
    submitted_at: float
    request_ttl_seconds: int
    invocation_timeout_seconds: int

    @property
    def expires_at(self) -> float:
        """After TTL + invocation timeout SageMaker has either answered or dropped the request."""
        return self.submitted_at + self.request_ttl_seconds + self.invocation_timeout_seconds


class MusicGenClient:
    """Client of one MusicGen async endpoint.

    Build it from a deployed stack with `MusicGenClient.from_stack("MusicGen-dev")`, or from
    explicit names. Endpoints can be redirected with the standard `AWS_ENDPOINT_URL_<SERVICE>`
    variables or a configured `boto3.Session`.
    """

    def __init__(
        self,
        *,
        endpoint_name: str,
        input_s3_uri: str,
        output_s3_uri: str,
        failure_s3_uri: str,
        success_topic_arn: str | None = None,
        error_topic_arn: str | None = None,
        max_duration_seconds: float | None = None,
        model_commit: str | None = None,
        session: boto3.Session | None = None,
        invocation_timeout_seconds: int = DEFAULT_INVOCATION_TIMEOUT_SECONDS,
        request_ttl_seconds: int = DEFAULT_REQUEST_TTL_SECONDS,
    ):
        if not endpoint_name:
            raise ConfigurationError("endpoint_name: must not be empty")
        if not 1 <= invocation_timeout_seconds <= 3600:
            raise ConfigurationError(
                f"invocation_timeout_seconds: must be 1-3600, got {invocation_timeout_seconds}"
            )
        if not 60 <= request_ttl_seconds <= 21600:
            raise ConfigurationError(
                f"request_ttl_seconds: must be 60-21600, got {request_ttl_seconds}"
            )
        self.settings = EndpointSettings(
            endpoint_name=endpoint_name,
            input_prefix=S3Location.parse_prefix(input_s3_uri, field="input_s3_uri"),
            output_prefix=S3Location.parse_prefix(output_s3_uri, field="output_s3_uri"),
            failure_prefix=S3Location.parse_prefix(failure_s3_uri, field="failure_s3_uri"),
            success_topic_arn=success_topic_arn,
            error_topic_arn=error_topic_arn,
            max_duration_seconds=max_duration_seconds,
            model_commit=model_commit,
        )
        self.invocation_timeout_seconds = invocation_timeout_seconds
        self.request_ttl_seconds = request_ttl_seconds
        self._session = session or boto3.Session()
        self._s3 = self._session.client("s3")
        self._runtime = self._session.client("sagemaker-runtime")
        self._sagemaker = self._session.client("sagemaker")
        self._capacity_probe_works = True

    @classmethod
    def from_stack(
        cls, stack_name: str, *, session: boto3.Session | None = None, **options: Any
    ) -> MusicGenClient:
        """A client for the endpoint a deployed `MusicGen-<env>` stack created (its outputs)."""
        session = session or boto3.Session()
        settings = settings_from_outputs(
            read_stack_outputs(session.client("cloudformation"), stack_name), stack_name=stack_name
        )
        return cls(
            endpoint_name=settings.endpoint_name,
            input_s3_uri=settings.input_prefix.uri,
            output_s3_uri=settings.output_prefix.uri,
            failure_s3_uri=settings.failure_prefix.uri,
            success_topic_arn=settings.success_topic_arn,
            error_topic_arn=settings.error_topic_arn,
            max_duration_seconds=settings.max_duration_seconds,
            model_commit=settings.model_commit,
            session=session,
            **options,
        )

    # -- submitting ----------------------------------------------------------------------------

    def submit(
        self,
        request: Mapping[str, Any] | CheckedRequest,
        *,
        accept: str = "application/json",
        inference_id: str | None = None,
        overwrite: bool = False,
    ) -> Submission:
        """Validate `request`, upload it under the input prefix, and queue it on the endpoint.

        Raises `RequestValidationError` (field and rule) before anything is uploaded; a
        `CheckedRequest` (`check`) was checked already and is not checked again. Without
        `inference_id` every submission gets a new unique id. A given id whose output or failure
        object already exists raises `InferenceIdInUseError` (waiting would return the old
        result), unless `overwrite=True`, which deletes those objects first.
        """
        checked = request if isinstance(request, CheckedRequest) else self.check(request)
        parsed = checked.parsed
        if accept not in ACCEPT_TYPES:
            raise ConfigurationError(
                f"accept: must be one of {', '.join(ACCEPT_TYPES)}, got {accept!r}"
            )
        if accept != "application/json" and len(parsed.prompts) != 1:
            raise ConfigurationError(
                f"accept: {accept} returns one bare audio file, so it needs exactly one prompt "
                f"(got {len(parsed.prompts)}); use application/json for several"
            )
        if inference_id:
            inference_id = check_inference_id(inference_id)
            self._claim_inference_id(inference_id, overwrite=overwrite)
        else:
            inference_id = new_inference_id()
        request_object = request_location(self.settings.input_prefix, inference_id)
        self._s3.put_object(
            Bucket=request_object.bucket,
            Key=request_object.key,
            Body=json.dumps(dict(checked.payload)).encode("utf-8"),
            ContentType="application/json",
        )
        try:
            response = self._runtime.invoke_endpoint_async(
                EndpointName=self.settings.endpoint_name,
                InputLocation=request_object.uri,
                ContentType="application/json",
                Accept=accept,
                InferenceId=inference_id,
                InvocationTimeoutSeconds=self.invocation_timeout_seconds,
                RequestTTLSeconds=self.request_ttl_seconds,
            )
        except (BotoCoreError, ClientError):
            # Nothing will ever read the uploaded request: do not leave it behind.
            self._s3.delete_object(Bucket=request_object.bucket, Key=request_object.key)
            raise
        inference_id = response.get("InferenceId") or inference_id
        return Submission(
            inference_id=inference_id,
            input_location=request_object.uri,
            output_location=response.get("OutputLocation")
            or output_location(self.settings.output_prefix, inference_id).uri,
            failure_location=response.get("FailureLocation")
            or failure_location(self.settings.failure_prefix, inference_id).uri,
            submitted_at=time.time(),
            request_ttl_seconds=self.request_ttl_seconds,
            invocation_timeout_seconds=self.invocation_timeout_seconds,
        )

    def _claim_inference_id(self, inference_id: str, *, overwrite: bool) -> None:
        earlier = [
            location
            for location in (
                output_location(self.settings.output_prefix, inference_id),
                failure_location(self.settings.failure_prefix, inference_id),
            )
            if self._exists(location)
        ]
        if not earlier:
            return
        if not overwrite:
            raise InferenceIdInUseError(inference_id, [location.uri for location in earlier])
        for location in earlier:
            self._s3.delete_object(Bucket=location.bucket, Key=location.key)

    def check(self, request: Mapping[str, Any]) -> CheckedRequest:
        """Check `request` against this endpoint's limits, once, for a later `submit`."""
        return check_request(request, max_duration_seconds=self.settings.max_duration_seconds)

    def generate(
        self,
        prompt: str | Sequence[str],
        options: GenerationOptions | None = None,
        *,
        notify: Notify = "poll",
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        **settings: Any,
    ) -> GenerationResult:
        """Submit one request and wait for it; returns the clips in prompt order.

        `options`, and `settings` named as `GenerationOptions` fields (`duration=12, seed=7`),
        give the request's fields; those left out take the endpoint's defaults (the README's
        request table). Raises `InferenceFailedError`, `InferenceExpiredError` or
        `WaitTimeoutError`.
        """
        request = replace(options or GenerationOptions(), **settings).to_payload(prompt)
        if notify == "sqs":
            # Subscribe before submitting, so not even an instant result is missed.
            with self._notification_queue() as queue:
                submission = self.submit(request)
                return self._wait_for_notification(submission, queue, timeout, on_progress)
        submission = self.submit(request)
        return self.wait(submission, timeout=timeout, on_progress=on_progress)

    # -- waiting and fetching ------------------------------------------------------------------

    def wait(
        self,
        submission: Submission,
        *,
        notify: Notify = "poll",
        timeout: float | None = None,
        backoff: Backoff | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Block until `submission` has a result.

        `notify="poll"` checks the output and failure objects with exponential backoff and
        jitter; `notify="sqs"` listens on the endpoint's topics through a temporary SQS queue,
        removed afterwards even on Ctrl-C.
        """
        if notify == "sqs":
            with self._notification_queue() as queue:
                return self._wait_for_notification(submission, queue, timeout, on_progress)
        if notify != "poll":
            raise ConfigurationError(f"notify: must be poll or sqs, got {notify!r}")
        return self._wait_by_polling(submission, backoff or Backoff(), timeout, on_progress)

    def fetch(self, inference_id_or_location: str) -> GenerationResult:
        """The result of an earlier request, by inference id or by its output/failure S3 URI.

        Raises `ResultNotReadyError` while neither object exists, `InferenceFailedError` when
        the failure object does.
        """
        if inference_id_or_location.startswith("s3://"):
            inference_id = inference_id_from_location(inference_id_or_location)
        else:
            inference_id = check_inference_id(inference_id_or_location)
        output = output_location(self.settings.output_prefix, inference_id)
        failure = failure_location(self.settings.failure_prefix, inference_id)
        if inference_id_or_location.startswith("s3://"):
            given = S3Location.parse(inference_id_or_location, field="location")
            if given.key.endswith("-error.out"):
                failure = given
            else:
                output = given
        result = self._check(inference_id, output, failure)
        if result is None:
            raise ResultNotReadyError(inference_id, output.uri, failure.uri)
        return result

    def poll(self, submission: Submission) -> GenerationResult | None:
        """Look once: the result, or None while there is none yet.

        Raises `InferenceFailedError` when the failure object exists and `InferenceExpiredError`
        once SageMaker must have answered or dropped the request.
        """
        output = S3Location.parse(submission.output_location, field="output location")
        failure = S3Location.parse(submission.failure_location, field="failure location")
        result = self._check(submission.inference_id, output, failure)
        if result is None and time.time() > submission.expires_at:
            raise InferenceExpiredError(submission.inference_id, EXPIRY_REASON)
        return result

    def _wait_by_polling(
        self,
        submission: Submission,
        backoff: Backoff,
        timeout: float | None,
        on_progress: ProgressCallback | None,
    ) -> GenerationResult:
        watch = _Watch(self, submission, timeout, on_progress)
        watch.report(Phase.QUEUED)
        for delay in backoff.delays():
            result = self._check_submission(submission, watch)
            if result is not None:
                return result
            watch.tick()
            watch.sleep(delay)
        raise AssertionError("Backoff.delays() is infinite")

    def _wait_for_notification(
        self,
        submission: Submission,
        queue: NotificationQueue,
        timeout: float | None,
        on_progress: ProgressCallback | None,
    ) -> GenerationResult:
        watch = _Watch(self, submission, timeout, on_progress)
        watch.report(Phase.QUEUED)
        last_check = float("-inf")
        while True:
            if time.monotonic() - last_check >= SQS_SAFETY_CHECK_SECONDS:
                result = self._check_submission(submission, watch)
                if result is not None:
                    return result
                last_check = time.monotonic()
            watch.tick()
            for event in queue.receive(watch.remaining(SQS_SAFETY_CHECK_SECONDS)):
                if event.inference_id == submission.inference_id:
                    return self._result_of(event, submission, watch)

    def _result_of(
        self, event: InvocationEvent, submission: Submission, watch: _Watch
    ) -> GenerationResult:
        if event.status is InvocationStatus.EXPIRED:
            raise InferenceExpiredError(event.inference_id, event.failure_reason)
        if event.status is InvocationStatus.FAILED:
            location = S3Location.parse(
                event.failure_location or submission.failure_location, field="failure location"
            )
            body = self._read(location)
            message = (
                failure_text(body) if body is not None else (event.failure_reason or "unknown")
            )
            raise InferenceFailedError(event.inference_id, message, failure_location=location.uri)
        location = S3Location.parse(
            event.output_location or submission.output_location, field="output location"
        )
        watch.report(Phase.DOWNLOADING)
        result = self._check(event.inference_id, location, None)
        if result is None:
            raise ResultNotReadyError(event.inference_id, location.uri, submission.failure_location)
        return result

    def _check_submission(self, submission: Submission, watch: _Watch) -> GenerationResult | None:
        output = S3Location.parse(submission.output_location, field="output location")
        failure = S3Location.parse(submission.failure_location, field="failure location")
        return self._check(submission.inference_id, output, failure, watch)

    def _check(
        self,
        inference_id: str,
        output: S3Location,
        failure: S3Location | None,
        watch: _Watch | None = None,
    ) -> GenerationResult | None:
        """The parsed result, an InferenceFailedError, or None while there is neither."""
        found = self._get(output)
        if found is not None:
            if watch is not None:
                watch.report(Phase.DOWNLOADING)
            body, content_type = found
            return parse_output(body, inference_id=inference_id, content_type=content_type)
        if failure is not None:
            error_body = self._read(failure)
            if error_body is not None:
                raise InferenceFailedError(
                    inference_id, failure_text(error_body), failure_location=failure.uri
                )
        return None

    def _exists(self, location: S3Location) -> bool:
        try:
            self._s3.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                return False
            if code in ("AccessDenied", "403"):
                raise ConfigurationError(
                    f"access denied reading {location.uri}; without s3:ListBucket a missing "
                    "object also reads as access denied"
                ) from error
            raise
        return True

    def _read(self, location: S3Location) -> bytes | None:
        found = self._get(location)
        return found[0] if found is not None else None

    def _get(self, location: S3Location) -> tuple[bytes, str | None] | None:
        try:
            response = self._s3.get_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return None
            if code in ("AccessDenied", "403"):
                raise ConfigurationError(
                    f"access denied reading {location.uri}; without s3:ListBucket a missing "
                    "object also reads as access denied"
                ) from error
            raise
        with response["Body"] as stream:
            return stream.read(), response.get("ContentType")

    def _notification_queue(self) -> NotificationQueue:
        if not self.settings.topic_arns:
            raise ConfigurationError(
                "notify: sqs needs the success and error topic ARNs (stack outputs SuccessTopicArn "
                "and ErrorTopicArn); use notify=poll instead"
            )
        return NotificationQueue(
            sqs=self._session.client("sqs"),
            sns=self._session.client("sns"),
            topic_arns=self.settings.topic_arns,
        )

    def endpoint_capacity(self) -> int | None:
        """Instances the endpoint runs now, or None when that cannot be read."""
        if not self._capacity_probe_works:
            return None
        try:
            response = self._sagemaker.describe_endpoint(EndpointName=self.settings.endpoint_name)
        except (BotoCoreError, ClientError):
            # Usually a missing sagemaker:DescribeEndpoint permission; progress is only a hint.
            self._capacity_probe_works = False
            return None
        return sum(
            int(variant.get("CurrentInstanceCount", 0))
            for variant in response.get("ProductionVariants", [])
        )


def failure_text(body: bytes) -> str:
    """The human message in a failure object: the model server's JSON `message`, else the text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(document, dict):
        for key in ("message", "errorMessage", "error"):
            message = document.get(key)
            if isinstance(message, str):
                return message
    return text


class _Watch:
    """Deadline, expiry and progress reporting shared by both ways of waiting."""

    def __init__(
        self,
        client: MusicGenClient,
        submission: Submission,
        timeout: float | None,
        on_progress: ProgressCallback | None,
    ):
        self._client = client
        self._submission = submission
        self._timeout = timeout
        self._started = time.monotonic()
        self._on_progress = on_progress
        self._phase = Phase.QUEUED
        self._last_capacity_check = float("-inf")

    def remaining(self, cap: float) -> float:
        if self._timeout is None:
            return cap
        return max(0.0, min(cap, self._timeout - (time.monotonic() - self._started)))

    def tick(self) -> None:
        """Raise when the wait is over; otherwise refresh the phase and tell the caller."""
        if self._timeout is not None and time.monotonic() - self._started >= self._timeout:
            raise WaitTimeoutError(self._submission.inference_id, self._timeout)
        if time.time() > self._submission.expires_at:
            raise InferenceExpiredError(self._submission.inference_id, EXPIRY_REASON)
        if self._on_progress is None:
            return
        now = time.monotonic()
        if now - self._last_capacity_check >= CAPACITY_CHECK_SECONDS:
            self._last_capacity_check = now
            capacity = self._client.endpoint_capacity()
            if capacity == 0:
                self._phase = Phase.COLD_START_LIKELY
            elif capacity is not None:
                self._phase = Phase.GENERATING
        self.report(self._phase)

    def report(self, phase: Phase) -> None:
        self._phase = phase
        if self._on_progress is not None:
            elapsed = time.time() - self._submission.submitted_at
            self._on_progress(Progress(self._submission.inference_id, phase, elapsed))

    def sleep(self, delay: float) -> None:
        time.sleep(self.remaining(delay))
