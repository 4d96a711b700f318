"""What a waiting client can tell about a request's progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    # SageMaker does not report a request's position; phases are inferred from the endpoint's
    # instance count (0 instances: the first request has to wait for a cold start).
    QUEUED = "queued"
    COLD_START_LIKELY = "cold start likely"
    GENERATING = "generating"
    DOWNLOADING = "downloading"


@dataclass(frozen=True)
class Progress:
    inference_id: str
    phase: Phase
    elapsed_seconds: float


ProgressCallback = Callable[[Progress], None]
