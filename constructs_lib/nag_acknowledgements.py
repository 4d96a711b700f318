"""Acknowledging cdk-nag findings, each with the reason it is acceptable."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge each finding id (e.g. `AwsSolutions-IAM5[Resource::*]`) with its reason."""
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=finding, reason=reason) for finding, reason in findings.items())
    )
