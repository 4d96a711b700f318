"""The client's exception types: each failure mode is its own class so callers can branch on it."""

from __future__ import annotations


class MusicGenClientError(Exception):
    """Base class of every error the client raises on its own behalf."""


class ConfigurationError(MusicGenClientError):
    """The endpoint cannot be located or addressed: a missing stack output, a bad URI or option."""


class InferenceIdInUseError(ConfigurationError):
    """A caller-chosen inference id already has an output or failure object."""

    def __init__(self, inference_id: str, existing: list[str]):
        self.inference_id = inference_id
        self.existing = existing
        super().__init__(
            f"inference_id: {inference_id} was used before ({' and '.join(existing)} "
            f"{'exist' if len(existing) > 1 else 'exists'}); waiting would return that old "
            "result. Choose another id, leave the id out for a unique one, or overwrite the "
            "old result (CLI --overwrite, library overwrite=True)"
        )


class InferenceFailedError(MusicGenClientError):
    """The endpoint reported a failure; `message` is the text the endpoint wrote."""

    def __init__(self, inference_id: str, message: str, *, failure_location: str | None = None):
        self.inference_id = inference_id
        self.message = message
        self.failure_location = failure_location
        super().__init__(f"inference {inference_id} failed: {message}")


class InferenceExpiredError(MusicGenClientError):
    """SageMaker dropped the request: it waited in the queue longer than its RequestTTLSeconds."""

    def __init__(self, inference_id: str, reason: str | None = None):
        self.inference_id = inference_id
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"inference {inference_id} expired before it was processed "
            f"(it outlived RequestTTLSeconds in the queue){detail}"
        )


class ResultNotReadyError(MusicGenClientError):
    """Neither the output nor the failure object exists yet."""

    def __init__(self, inference_id: str, output_location: str, failure_location: str):
        self.inference_id = inference_id
        self.output_location = output_location
        self.failure_location = failure_location
        super().__init__(
            f"inference {inference_id} has no result yet "
            f"(looked for {output_location} and {failure_location})"
        )


class WaitTimeoutError(MusicGenClientError):
    """The caller's wait budget ran out; the request may still complete later (use fetch)."""

    def __init__(self, inference_id: str, timeout_seconds: float):
        self.inference_id = inference_id
        self.timeout_seconds = timeout_seconds
        super().__init__(
            f"no result for inference {inference_id} after {timeout_seconds:g} s; "
            f"it may still finish: collect it later with `musicgen fetch {inference_id}`"
        )


class OutputFormatError(MusicGenClientError):
    """The output object exists but is neither the JSON response nor a WAV/FLAC file."""
