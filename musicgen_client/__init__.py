"""Python client and `musicgen` CLI for the MusicGen SageMaker asynchronous endpoint.

from musicgen_client import MusicGenClient

client = MusicGenClient.from_stack("MusicGen-dev")
result = client.generate("lofi hip hop beat with warm piano", duration=12, seed=7)
for clip in result.clips:
    open(f"beat-{clip.index}.{clip.format}", "wb").write(clip.audio)
"""

from inference_code.request_schema import RequestValidationError
from musicgen_client.backoff import Backoff
from musicgen_client.client import MusicGenClient, Submission
from musicgen_client.errors import (
    ConfigurationError,
    InferenceExpiredError,
    InferenceFailedError,
    InferenceIdInUseError,
    MusicGenClientError,
    OutputFormatError,
    ResultNotReadyError,
    WaitTimeoutError,
)
from musicgen_client.progress import Phase, Progress
from musicgen_client.results import Clip, GenerationResult

__all__ = [
    "Backoff",
    "Clip",
    "ConfigurationError",
    "GenerationResult",
    "InferenceExpiredError",
    "InferenceFailedError",
    "InferenceIdInUseError",
    "MusicGenClient",
    "MusicGenClientError",
    "OutputFormatError",
    "Phase",
    "Progress",
    "RequestValidationError",
    "ResultNotReadyError",
    "Submission",
    "WaitTimeoutError",
]
