"""Broken endpoints, missing credentials or region: one actionable line, never a traceback."""

from __future__ import annotations

import pytest

from musicgen_client.cli import EXIT_FAILED, main
from tests.unit.musicgen_client.stub_http_server import CannedResponse, serving

GENERATE = ["generate", "calm piano", "--duration", "1", "--env", "qa"]
EXPLICIT = [
    "--endpoint-name",
    "musicgen-qa",
    "--input-s3-uri",
    "s3://musicgen-bucket/async-input/",
    "--output-s3-uri",
    "s3://musicgen-bucket/async-output/",
    "--failure-s3-uri",
    "s3://musicgen-bucket/async-failure/",
]
EXPIRED_TOKEN = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
    b"<Message>The security token included in the request is expired</Message></Error>"
    b"<RequestId>1</RequestId></ErrorResponse>"
)


@pytest.fixture
def no_aws_configuration(monkeypatch, tmp_path):
    """A shell with no AWS configuration at all, and no instance metadata to fall back on."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _assert_one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and " object at 0x" not in err
    return err


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, b"<html><body><h1>Not Found</h1></body></html>"), (404, b"")],
    ids=["html-404", "empty-404"],
)
def test_a_foreign_endpoint_gives_one_line_naming_stack_and_endpoint(
    capsys, monkeypatch, aws_credentials, status, body
):
    canned = CannedResponse(status, body)
    with serving(canned) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        code, err = _run(capsys, GENERATE)
    assert canned.requests, "the stack read must have reached the stub"
    assert code == EXIT_FAILED
    _assert_one_line(err)
    assert "stack MusicGen-qa (region us-east-1" in err
    assert "not an AWS response" in err
    assert f"AWS_ENDPOINT_URL={url}" in err


def test_expired_credentials_say_how_to_choose_profile_and_region(
    capsys, monkeypatch, aws_credentials
):
    canned = CannedResponse(403, EXPIRED_TOKEN, content_type="text/xml")
    with serving(canned) as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        code, err = _run(capsys, GENERATE)
    assert code == EXIT_FAILED
    _assert_one_line(err)
    assert "AWS rejected the credentials for stack MusicGen-qa" in err
    assert "ExpiredToken" in err
    assert "--profile or AWS_PROFILE" in err and "--region or AWS_REGION" in err


def test_no_credentials(capsys, no_aws_configuration):
    code, err = _run(capsys, [*GENERATE, "--region", "eu-west-1"])
    assert code == EXIT_FAILED
    _assert_one_line(err)
    assert "no AWS credentials found for stack MusicGen-qa (region eu-west-1" in err
    assert "--profile or AWS_PROFILE" in err


def test_no_region(capsys, no_aws_configuration):
    code, err = _run(capsys, GENERATE)
    assert code == EXIT_FAILED
    _assert_one_line(err)
    assert "no AWS region is set for stack MusicGen-qa" in err
    assert "--region or AWS_REGION" in err


def test_unknown_profile(capsys, no_aws_configuration):
    code, err = _run(capsys, [*GENERATE, "--profile", "nobody"])
    assert code == EXIT_FAILED
    _assert_one_line(err)
    assert "AWS profile 'nobody' does not exist (reading stack MusicGen-qa)" in err


def test_an_explicit_endpoint_is_named_instead_of_a_stack(capsys, no_aws_configuration):
    code, err = _run(capsys, ["generate", "calm piano", "--duration", "1", *EXPLICIT])
    assert code == EXIT_FAILED
    _assert_one_line(err)
    assert "endpoint musicgen-qa" in err and "--region or AWS_REGION" in err
