"""Turn the CloudFormation outputs of a `MusicGen-<env>` stack into endpoint settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from musicgen_client.errors import ConfigurationError
from musicgen_client.locations import S3Location

REQUIRED_OUTPUTS = ("EndpointName", "InputS3Uri", "OutputS3Uri", "FailureS3Uri")


def stack_name_for(env: str) -> str:
    """The stack name the CDK app gives an environment."""
    return f"MusicGen-{env}"


@dataclass(frozen=True)
class EndpointSettings:
    """Where one endpoint reads requests and writes results, and what it accepts."""

    endpoint_name: str
    input_prefix: S3Location
    output_prefix: S3Location
    failure_prefix: S3Location
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    max_duration_seconds: float | None = None
    model_commit: str | None = None

    @property
    def topic_arns(self) -> tuple[str, ...]:
        return tuple(arn for arn in (self.success_topic_arn, self.error_topic_arn) if arn)


def settings_from_outputs(outputs: Mapping[str, str], *, stack_name: str) -> EndpointSettings:
    """Validate and convert the outputs; a missing or malformed one is named in the error."""
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise ConfigurationError(
            f"stack {stack_name}: missing output(s) {', '.join(missing)}; "
            f"is it a MusicGen stack that finished deploying?"
        )
    max_duration = outputs.get("MaxDurationSeconds")
    try:
        max_duration_seconds = float(max_duration) if max_duration else None
    except ValueError:
        raise ConfigurationError(
            f"stack {stack_name}: output MaxDurationSeconds must be a number, got {max_duration!r}"
        ) from None
    return EndpointSettings(
        endpoint_name=outputs["EndpointName"],
        input_prefix=S3Location.parse_prefix(
            outputs["InputS3Uri"], field=f"{stack_name} InputS3Uri"
        ),
        output_prefix=S3Location.parse_prefix(
            outputs["OutputS3Uri"], field=f"{stack_name} OutputS3Uri"
        ),
        failure_prefix=S3Location.parse_prefix(
            outputs["FailureS3Uri"], field=f"{stack_name} FailureS3Uri"
        ),
        success_topic_arn=outputs.get("SuccessTopicArn") or None,
        error_topic_arn=outputs.get("ErrorTopicArn") or None,
        max_duration_seconds=max_duration_seconds,
        model_commit=outputs.get("ModelCommit") or None,
    )


def read_stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """`{OutputKey: OutputValue}` of a deployed stack, via DescribeStacks."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        # Credential and permission errors are not about the stack: the caller explains those.
        if error.response.get("Error", {}).get("Code") != "ValidationError":
            raise
        raise ConfigurationError(
            f"stack {stack_name}: cannot be read "
            f"({error.response['Error'].get('Message', error)}) in region "
            f"{cloudformation.meta.region_name}; deploy it first, choose its region with "
            "--region or AWS_REGION, or pass --endpoint-name and the S3 URIs explicitly"
        ) from error
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
