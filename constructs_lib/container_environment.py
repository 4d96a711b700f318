"""The SageMaker container environment of the MusicGen model, sized from the environment table.

The serving test starts the real model server with exactly this environment, so the limits the
stack deploys are the limits the tests exercise.
"""

from __future__ import annotations

import math

from inference_code.contract import (
    AUDIO_INPUT_FLOOR_SECONDS,
    DEFAULT_EXTEND_STRIDE_SECONDS,
    EXTEND_STRIDE_ENV,
    MAX_DURATION_ENV,
    MODEL_ID_ENV,
)
from inference_code.request_schema import MAX_PROMPTS as MAX_PROMPTS_PER_REQUEST

SAMPLE_RATE_HZ = 32_000
MAX_CHANNELS = 2
BYTES_PER_SAMPLE = 2  # 16-bit PCM
# Melody / audio-prompt inputs may arrive as 48 kHz stereo float WAV.
MAX_INPUT_SAMPLE_RATE_HZ = 48_000
MAX_INPUT_BYTES_PER_SAMPLE = 4
AUDIO_INPUTS_PER_REQUEST = 2
# JSON framing, prompts, warnings and WAV headers.
ENVELOPE_BYTES = 1 << 20
# Long generations must not be killed by the model server's 60 s default.
MODEL_SERVER_TIMEOUT_SECONDS = 3600


def _base64_size(raw_bytes: int) -> int:
    return 4 * math.ceil(raw_bytes / 3)


def max_response_bytes(max_duration_seconds: float) -> int:
    """Largest JSON response: every prompt's clip, stereo, base64-encoded."""
    clip = math.ceil(max_duration_seconds * SAMPLE_RATE_HZ) * MAX_CHANNELS * BYTES_PER_SAMPLE
    return MAX_PROMPTS_PER_REQUEST * _base64_size(clip) + ENVELOPE_BYTES


def max_request_bytes(max_duration_seconds: float) -> int:
    """Largest request: a melody and an audio prompt, each as long as the handler accepts."""
    longest_input = max(max_duration_seconds, AUDIO_INPUT_FLOOR_SECONDS)
    audio = (
        math.ceil(longest_input * MAX_INPUT_SAMPLE_RATE_HZ)
        * MAX_CHANNELS
        * MAX_INPUT_BYTES_PER_SAMPLE
    )
    return AUDIO_INPUTS_PER_REQUEST * _base64_size(audio) + ENVELOPE_BYTES


def model_server_environment(
    *,
    model_id: str,
    max_duration_seconds: float,
    extend_stride_seconds: float = DEFAULT_EXTEND_STRIDE_SECONDS,
) -> dict[str, str]:
    """Variables the HF inference container's model server and our handler read at start-up.

    `MUSICGEN_MODEL_ID` only labels responses: the weights come from /opt/ml/model, and
    `HF_MODEL_ID` is deliberately absent so the toolkit never reaches for the Hub.
    """
    return {
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(MODEL_SERVER_TIMEOUT_SECONDS),
        # One worker: a second copy of the model on the same GPU would only compete for it.
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "MMS_MAX_RESPONSE_SIZE": str(max_response_bytes(max_duration_seconds)),
        "MMS_MAX_REQUEST_SIZE": str(max_request_bytes(max_duration_seconds)),
        "MMS_DEFAULT_RESPONSE_TIMEOUT": str(MODEL_SERVER_TIMEOUT_SECONDS),
        MAX_DURATION_ENV: f"{max_duration_seconds:g}",
        EXTEND_STRIDE_ENV: f"{extend_stride_seconds:g}",
        MODEL_ID_ENV: model_id,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
