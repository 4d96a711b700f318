"""Model artifacts: the ModelStaging construct and its staging runtime.

`ModelStaging` is imported lazily so that the operator CLI
(`python -m constructs_lib.model_staging`) runs with boto3 alone, without loading aws-cdk-lib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .construct import ModelStaging

__all__ = ["ModelStaging"]


def __getattr__(name: str) -> Any:
    if name == "ModelStaging":
        from .construct import ModelStaging

        return ModelStaging
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
