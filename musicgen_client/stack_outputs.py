"""Turn the CloudFormation outputs of a `MusicGen-<env>` stack into endpoint settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from inference_code.contract import (
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_ERROR_TOPIC_ARN,
    OUTPUT_FAILURE_S3_URI,
    OUTPUT_INPUT_S3_URI,
    OUTPUT_MAX_DURATION_SECONDS,
    OUTPUT_MODEL_COMMIT,
    OUTPUT_OUTPUT_S3_URI,
    OUTPUT_SUCCESS_TOPIC_ARN,
    REQUIRED_OUTPUTS,
)
from inference_code.contract import stack_name_for as stack_name_for
from musicgen_client.errors import ConfigurationError
from musicgen_client.locations import S3Location


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
    max_duration = outputs.get(OUTPUT_MAX_DURATION_SECONDS)
    try:
        max_duration_seconds = float(max_duration) if max_duration else None
    except ValueError:
        raise ConfigurationError(
            f"stack {stack_name}: output {OUTPUT_MAX_DURATION_SECONDS} must be a number, "
            f"got {max_duration!r}"
        ) from None
    return EndpointSettings(
        endpoint_name=outputs[OUTPUT_ENDPOINT_NAME],
        input_prefix=_prefix(outputs, OUTPUT_INPUT_S3_URI, stack_name),
        output_prefix=_prefix(outputs, OUTPUT_OUTPUT_S3_URI, stack_name),
        failure_prefix=_prefix(outputs, OUTPUT_FAILURE_S3_URI, stack_name),
        success_topic_arn=outputs.get(OUTPUT_SUCCESS_TOPIC_ARN) or None,
        error_topic_arn=outputs.get(OUTPUT_ERROR_TOPIC_ARN) or None,
        max_duration_seconds=max_duration_seconds,
        model_commit=outputs.get(OUTPUT_MODEL_COMMIT) or None,
    )


def _prefix(outputs: Mapping[str, str], key: str, stack_name: str) -> S3Location:
    return S3Location.parse_prefix(outputs[key], field=f"{stack_name} {key}")


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
