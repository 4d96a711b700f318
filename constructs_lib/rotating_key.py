"""The customer-managed KMS keys of this app: rotated yearly, deletable after a week."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from constructs import Construct

# The shortest window KMS allows: a key removed with its stack is gone a week later.
DELETION_WINDOW = Duration.days(7)


def rotating_key(scope: Construct, construct_id: str, *, description: str) -> kms.Key:
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        pending_window=DELETION_WINDOW,
    )
