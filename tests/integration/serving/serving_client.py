"""Constants and small HTTP helpers the serving tests share."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import requests
import soundfile

SAMPLE_RATE = 32_000
# The stack's limit; the serving test starts the server with exactly its environment.
MAX_DURATION_SECONDS = 30
# multi-model-server's built-in cap on a response (and request) body, in bytes.
DEFAULT_MMS_MAX_BODY_BYTES = 6_553_500
REQUEST_TIMEOUT_SECONDS = 300


def invoke(
    url: str, payload: dict[str, Any] | str, *, accept: str = "application/json"
) -> requests.Response:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return requests.post(
        f"{url}/invocations",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


def decode_clip(clip: dict[str, Any]) -> tuple[np.ndarray, int]:
    """A JSON clip's audio as (frames, channels) float samples and its sample rate."""
    samples, rate = soundfile.read(
        io.BytesIO(base64.b64decode(clip["audio"], validate=True)), always_2d=True
    )
    return samples, rate
