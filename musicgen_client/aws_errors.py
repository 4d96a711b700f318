"""One actionable line for each way a call to AWS can fail before the endpoint sees the request.

The line names what was being read (the stack, or the endpoint given by name), the region and
the profile in use, and how to choose others, so a user never has to read a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from botocore.parsers import ResponseParserError

# Error codes AWS services return for missing, wrong or stale credentials, all protocols.
# https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "InvalidToken",
        "MissingAuthenticationToken",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
CHOOSE_REGION = "--region or AWS_REGION"
CHOOSE_PROFILE = "--profile or AWS_PROFILE"
MAX_DETAIL_CHARS = 200
# Errors of the SDK itself rather than of a service: what `explain` turns into one line.
AWS_ERRORS = (BotoCoreError, ClientError, ResponseParserError)


@dataclass(frozen=True)
class AwsContext:
    """What the command was talking to: `target` reads like "stack MusicGen-dev"."""

    target: str
    region: str | None
    profile: str | None

    @classmethod
    def resolve(cls, target: str, *, region: str | None, profile: str | None) -> AwsContext:
        """The region and profile boto3 would use for these flags and the environment."""
        try:
            session = boto3.Session(region_name=region, profile_name=profile)
        except BotoCoreError:
            return cls(target, region, profile)
        return cls(target, session.region_name, profile or session.profile_name)

    @property
    def where(self) -> str:
        region = self.region or "none set"
        return f"{self.target} (region {region}, profile {self.profile or 'default'})"


def explain(error: BaseException, context: AwsContext) -> str:
    """One line saying what went wrong with AWS and what to change."""
    if isinstance(error, NoRegionError):
        return (
            f"no AWS region is set for {context.target}: pass {CHOOSE_REGION} "
            f"(or set one in profile {context.profile or 'default'})"
        )
    if isinstance(error, ProfileNotFound):
        return (
            f"AWS profile {context.profile!r} does not exist (reading {context.target}): choose "
            f"one listed by `aws configure list-profiles` with {CHOOSE_PROFILE}"
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            f"no AWS credentials found for {context.where}: choose a profile with "
            f"{CHOOSE_PROFILE}, or sign in (`aws configure`, `aws sso login`)"
        )
    if isinstance(
        error,
        TokenRetrievalError
        | SSOTokenLoadError
        | UnauthorizedSSOTokenError
        | CredentialRetrievalError,
    ):
        return (
            f"the AWS credentials for {context.where} could not be loaded "
            f"({_detail(error)}): sign in again (`aws sso login`) or choose another profile "
            f"with {CHOOSE_PROFILE}"
        )
    if isinstance(error, ResponseParserError):
        return _foreign_answer(context, status=None)
    if isinstance(error, EndpointConnectionError):
        return f"cannot connect to AWS for {context.where} ({_detail(error)}): {_endpoint_advice()}"
    if isinstance(error, ClientError):
        return _explain_client_error(error, context)
    return f"AWS call failed for {context.where}: {_detail(error)}"


def _explain_client_error(error: ClientError, context: AwsContext) -> str:
    details = error.response.get("Error", {})
    code = str(details.get("Code") or "")
    message = _detail(details.get("Message") or error)
    operation = error.operation_name
    if code in CREDENTIAL_ERROR_CODES:
        return (
            f"AWS rejected the credentials for {context.where} ({code}: {message}): refresh them "
            f"(`aws sso login`) or choose others with {CHOOSE_PROFILE}; the region with "
            f"{CHOOSE_REGION}"
        )
    if _is_foreign(code, str(details.get("Message") or ""), operation):
        return _foreign_answer(
            context, status=error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        )
    if code in ("AccessDenied", "AccessDeniedException", "403"):
        return (
            f"AWS denied {operation} for {context.where} ({message}); the README lists the "
            f"permissions a caller needs, or choose another profile with {CHOOSE_PROFILE}"
        )
    return f"AWS refused {operation} for {context.where} ({code}: {message})"


def _is_foreign(code: str, message: str, operation: str) -> bool:
    """An error botocore built from a response no AWS service sends (an HTML page, no body).

    AWS names its error codes; only HEAD requests, which have no body, carry a bare status.
    """
    if code in ("", "Unknown") or message.lstrip().startswith("<"):
        return True
    return code.isdigit() and not operation.startswith("Head")


def _foreign_answer(context: AwsContext, *, status: int | None) -> str:
    answered = f"answered HTTP {status}" if status else "answered"
    return (
        f"the server answering for {context.where} {answered} with something that is not an "
        f"AWS response (an HTML page or an empty body): {_endpoint_advice()}"
    )


def _endpoint_advice() -> str:
    overrides = sorted(name for name in os.environ if name.startswith("AWS_ENDPOINT_URL"))
    if overrides:
        shown = ", ".join(f"{name}={os.environ[name]}" for name in overrides)
        return f"check {shown}, and the region ({CHOOSE_REGION})"
    return f"check the region ({CHOOSE_REGION}) and any proxy between you and AWS"


def _detail(error: object) -> str:
    """The error's text on one line, cut short: service messages can quote whole HTML pages."""
    text = re.sub(r"\s+", " ", str(error)).strip()
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"
