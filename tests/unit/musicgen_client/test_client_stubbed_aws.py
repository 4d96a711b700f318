"""MusicGenClient against botocore's Stubber: the exact AWS calls it makes, and its reactions.

Each test queues the responses AWS would give; the Stubber fails on any call that is not the
next one expected, with exactly these parameters, and `assert_no_pending_responses` proves every
expected call was made.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

import musicgen_client.request
from inference_code import contract
from inference_code.request_schema import GenerationOptions, RequestValidationError, parse_request
from musicgen_client.backoff import Backoff
from musicgen_client.client import MusicGenClient
from musicgen_client.errors import ConfigurationError, InferenceFailedError, ResultNotReadyError
from tests.unit.musicgen_client.conftest import AudioFactory

REGION = "eu-west-1"
ENDPOINT = "musicgen-dev"
BUCKET = "musicgen-io"
INFERENCE_ID = "request-1"


class StubbedSession(boto3.Session):
    """A session whose clients are created once, each with a Stubber in front of it."""

    def __init__(self) -> None:
        super().__init__(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        self.stubbers: dict[str, Stubber] = {}
        self._clients: dict[str, Any] = {}

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name not in self._clients:
            created = super().client(service_name, *args, **kwargs)
            self._clients[service_name] = created
            self.stubbers[service_name] = Stubber(created)
            self.stubbers[service_name].activate()
        return self._clients[service_name]

    def stub(self, service_name: str) -> Stubber:
        self.client(service_name)
        return self.stubbers[service_name]


@pytest.fixture
def session() -> Iterator[StubbedSession]:
    stubbed = StubbedSession()
    yield stubbed
    for stubber in stubbed.stubbers.values():
        stubber.assert_no_pending_responses()


def _client(session: StubbedSession, **options: Any) -> MusicGenClient:
    return MusicGenClient(
        endpoint_name=ENDPOINT,
        input_s3_uri=f"s3://{BUCKET}/{contract.ASYNC_INPUT_PREFIX}",
        output_s3_uri=f"s3://{BUCKET}/{contract.ASYNC_OUTPUT_PREFIX}",
        failure_s3_uri=f"s3://{BUCKET}/{contract.ASYNC_FAILURE_PREFIX}",
        max_duration_seconds=30,
        session=session,
        **options,
    )


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def _missing(stubber: Stubber, key: str) -> None:
    stubber.add_client_error(
        "get_object",
        service_error_code="NoSuchKey",
        http_status_code=404,
        expected_params={"Bucket": BUCKET, "Key": key},
    )


def _found(stubber: Stubber, key: str, data: bytes, content_type: str) -> None:
    stubber.add_response(
        "get_object",
        {"Body": _body(data), "ContentType": content_type},
        {"Bucket": BUCKET, "Key": key},
    )


def _json_result(wav: bytes) -> bytes:
    clip = {"index": 0, "prompt": "lofi", "seed": 7, "audio": base64.b64encode(wav).decode()}
    return json.dumps({"model_id": "facebook/musicgen-small", "clips": [clip]}).encode()


OUTPUT_KEY = f"{contract.ASYNC_OUTPUT_PREFIX}{INFERENCE_ID}.out"
FAILURE_KEY = f"{contract.ASYNC_FAILURE_PREFIX}{INFERENCE_ID}-error.out"


def _id_unused(stubber: Stubber) -> None:
    """A caller-chosen inference id is checked unused (no result, no failure) before the upload."""
    for key in (OUTPUT_KEY, FAILURE_KEY):
        stubber.add_client_error(
            "head_object",
            service_error_code="404",
            http_status_code=404,
            expected_params={"Bucket": BUCKET, "Key": key},
        )


def _queued(
    session: StubbedSession, body: dict[str, Any], key: Any, invocation: dict[str, Any] | None
) -> None:
    """The upload of exactly `body` under `key`, then an invocation SageMaker queues."""
    session.stub("s3").add_response(
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": key,
            "Body": json.dumps(body).encode(),
            "ContentType": "application/json",
        },
    )
    session.stub("sagemaker-runtime").add_response(
        "invoke_endpoint_async",
        {
            "InferenceId": INFERENCE_ID,
            "OutputLocation": f"s3://{BUCKET}/{OUTPUT_KEY}",
            "FailureLocation": f"s3://{BUCKET}/{FAILURE_KEY}",
        },
        invocation,
    )


def test_submit_uploads_the_request_then_queues_it(session: StubbedSession) -> None:
    request = {"prompt": "lofi beat", "duration": 5}
    key = f"{contract.ASYNC_INPUT_PREFIX}{INFERENCE_ID}.json"
    _id_unused(session.stub("s3"))
    _queued(
        session,
        request,
        key,
        {
            "EndpointName": ENDPOINT,
            "InputLocation": f"s3://{BUCKET}/{key}",
            "ContentType": "application/json",
            "Accept": "audio/wav",
            "InferenceId": INFERENCE_ID,
            "InvocationTimeoutSeconds": 1200,
            "RequestTTLSeconds": 600,
        },
    )
    client = _client(session, invocation_timeout_seconds=1200, request_ttl_seconds=600)
    submission = client.submit(request, accept="audio/wav", inference_id=INFERENCE_ID)
    assert submission.inference_id == INFERENCE_ID
    assert submission.output_location == f"s3://{BUCKET}/{OUTPUT_KEY}"
    assert submission.failure_location == f"s3://{BUCKET}/{FAILURE_KEY}"


def test_a_refused_invocation_removes_the_uploaded_request(session: StubbedSession) -> None:
    key = f"{contract.ASYNC_INPUT_PREFIX}{INFERENCE_ID}.json"
    s3 = session.stub("s3")
    _id_unused(s3)
    s3.add_response("put_object", {})
    session.stub("sagemaker-runtime").add_client_error(
        "invoke_endpoint_async", service_error_code="ValidationError", http_status_code=400
    )
    s3.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": key})
    with pytest.raises(Exception, match="ValidationError"):
        _client(session).submit({"prompt": "lofi"}, inference_id=INFERENCE_ID)


def test_an_invalid_request_makes_no_call(session: StubbedSession) -> None:
    session.stub("s3")
    with pytest.raises(RequestValidationError, match="duration"):
        _client(session).submit({"prompt": "lofi", "duration": 45}, inference_id=INFERENCE_ID)


def test_fetch_reads_the_output_object(session: StubbedSession, make_wav: AudioFactory) -> None:
    _found(session.stub("s3"), OUTPUT_KEY, _json_result(make_wav(seconds=1)), "application/json")
    result = _client(session).fetch(INFERENCE_ID)
    assert result.model_id == "facebook/musicgen-small"
    (clip,) = result.clips
    assert (clip.prompt, clip.seed, clip.duration) == ("lofi", 7, 1.0)


def test_fetch_reports_the_failure_objects_message(session: StubbedSession) -> None:
    s3 = session.stub("s3")
    _missing(s3, OUTPUT_KEY)
    error = {"code": 400, "message": "duration: must be > 0 and <= 30 (got 45)"}
    _found(s3, FAILURE_KEY, json.dumps(error).encode(), "application/json")
    with pytest.raises(InferenceFailedError, match=r"duration: must be > 0 and <= 30 \(got 45\)"):
        _client(session).fetch(INFERENCE_ID)


def test_fetch_before_any_result_is_not_ready(session: StubbedSession) -> None:
    s3 = session.stub("s3")
    _missing(s3, OUTPUT_KEY)
    _missing(s3, FAILURE_KEY)
    with pytest.raises(ResultNotReadyError):
        _client(session).fetch(INFERENCE_ID)


def test_access_denied_is_a_configuration_error_naming_list_bucket(
    session: StubbedSession,
) -> None:
    session.stub("s3").add_client_error(
        "get_object", service_error_code="AccessDenied", http_status_code=403
    )
    with pytest.raises(ConfigurationError, match="s3:ListBucket"):
        _client(session).fetch(INFERENCE_ID)


def test_wait_polls_until_the_output_appears(
    session: StubbedSession, make_wav: AudioFactory
) -> None:
    s3 = session.stub("s3")
    _id_unused(s3)
    s3.add_response("put_object", {})
    session.stub("sagemaker-runtime").add_response(
        "invoke_endpoint_async", {"InferenceId": INFERENCE_ID}
    )
    _missing(s3, OUTPUT_KEY)
    _missing(s3, FAILURE_KEY)
    _found(s3, OUTPUT_KEY, make_wav(seconds=0.5), "audio/wav")
    client = _client(session)
    submission = client.submit({"prompt": "lofi"}, inference_id=INFERENCE_ID)
    result = client.wait(submission, backoff=Backoff(initial=0.01, maximum=0.01))
    assert [clip.format for clip in result.clips] == ["wav"]


def test_from_stack_reads_the_contracts_outputs(session: StubbedSession) -> None:
    outputs = {
        contract.OUTPUT_ENDPOINT_NAME: ENDPOINT,
        contract.OUTPUT_INPUT_S3_URI: f"s3://{BUCKET}/{contract.ASYNC_INPUT_PREFIX}",
        contract.OUTPUT_OUTPUT_S3_URI: f"s3://{BUCKET}/{contract.ASYNC_OUTPUT_PREFIX}",
        contract.OUTPUT_FAILURE_S3_URI: f"s3://{BUCKET}/{contract.ASYNC_FAILURE_PREFIX}",
        contract.OUTPUT_MAX_DURATION_SECONDS: "120",
    }
    stack_name = contract.stack_name_for("dev")
    session.stub("cloudformation").add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": stack_name,
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": stack_name},
    )
    client = MusicGenClient.from_stack(stack_name, session=session)
    assert client.settings.endpoint_name == ENDPOINT
    assert client.settings.max_duration_seconds == 120.0
    assert client.settings.failure_prefix.key == contract.ASYNC_FAILURE_PREFIX


def test_endpoint_capacity_sums_the_variants_and_stops_asking_once_denied(
    session: StubbedSession,
) -> None:
    sagemaker = session.stub("sagemaker")
    described = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": "config",
        "EndpointStatus": "InService",
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "CurrentInstanceCount": 2},
            {"VariantName": "Other", "CurrentInstanceCount": 1},
        ],
    }
    sagemaker.add_response("describe_endpoint", described, {"EndpointName": ENDPOINT})
    sagemaker.add_client_error("describe_endpoint", service_error_code="AccessDeniedException")
    client = _client(session)
    assert client.endpoint_capacity() == 3
    assert client.endpoint_capacity() is None
    assert client.endpoint_capacity() is None  # no third call: the Stubber would refuse it


def test_generate_checks_the_request_once_and_uploads_the_options_payload(
    session: StubbedSession, make_wav: AudioFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[object] = []

    def counting_parse(payload: Any, **limits: Any) -> Any:
        checks.append(payload)
        return parse_request(payload, **limits)

    monkeypatch.setattr(musicgen_client.request, "parse_request", counting_parse)
    melody = make_wav(seconds=0.5)
    payload = GenerationOptions(duration=5, seed=7, melody=melody).to_payload("lofi")
    _queued(session, payload, ANY, None)
    _found(session.stub("s3"), OUTPUT_KEY, make_wav(seconds=0.5), "audio/wav")

    result = _client(session).generate("lofi", duration=5, seed=7, melody=melody)

    assert [clip.format for clip in result.clips] == ["wav"]
    assert checks == [payload]
