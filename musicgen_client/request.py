"""Request payloads checked with the handler's own schema, once, before they are uploaded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference_code.request_schema import GenerationRequest, parse_request

# Without a stack's MaxDurationSeconds the client cannot know the endpoint's limit; the endpoint
# enforces its own. One hour is the longest InvocationTimeoutSeconds, so nothing longer can finish.
UNKNOWN_MAX_DURATION_SECONDS = 3600.0


@dataclass(frozen=True)
class CheckedRequest:
    """A request body and what the handler's schema made of it; `submit` uploads it unchecked."""

    payload: Mapping[str, Any]
    parsed: GenerationRequest


def check_request(
    payload: Mapping[str, Any], *, max_duration_seconds: float | None
) -> CheckedRequest:
    """Check `payload` with the handler's schema; RequestValidationError names field and rule."""
    limit = max_duration_seconds if max_duration_seconds else UNKNOWN_MAX_DURATION_SECONDS
    return CheckedRequest(dict(payload), parse_request(payload, max_duration_seconds=limit))
