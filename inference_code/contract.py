"""The names the stack, the container and the client must agree on, in one place.

Standard library only: this file ships in the model's `code/` next to the handler, and the
handler, the CDK app and the client all import it as `inference_code.contract`.
Renaming anything here changes both sides at once; a literal copy elsewhere would drift silently.
"""

from __future__ import annotations

import re
from typing import Final

# --- stacks ---------------------------------------------------------------------------------------
STACK_NAME_PREFIX: Final = "MusicGen-"


def stack_name_for(environment: str) -> str:
    """The CloudFormation stack name the app gives an environment of the table."""
    return f"{STACK_NAME_PREFIX}{environment}"


# --- stack outputs (what a client reads from DescribeStacks) -------------------------------------
OUTPUT_ENDPOINT_NAME: Final = "EndpointName"
OUTPUT_INPUT_S3_URI: Final = "InputS3Uri"
OUTPUT_OUTPUT_S3_URI: Final = "OutputS3Uri"
OUTPUT_FAILURE_S3_URI: Final = "FailureS3Uri"
OUTPUT_SUCCESS_TOPIC_ARN: Final = "SuccessTopicArn"
OUTPUT_ERROR_TOPIC_ARN: Final = "ErrorTopicArn"
OUTPUT_MODEL_COMMIT: Final = "ModelCommit"
OUTPUT_MAX_DURATION_SECONDS: Final = "MaxDurationSeconds"
# Without these a client cannot place a request or find its result.
REQUIRED_OUTPUTS: Final = (
    OUTPUT_ENDPOINT_NAME,
    OUTPUT_INPUT_S3_URI,
    OUTPUT_OUTPUT_S3_URI,
    OUTPUT_FAILURE_S3_URI,
)

# --- async I/O prefixes of the async bucket ------------------------------------------------------
ASYNC_INPUT_PREFIX: Final = "async-input/"
ASYNC_OUTPUT_PREFIX: Final = "async-output/"
ASYNC_FAILURE_PREFIX: Final = "async-failure/"

# --- container environment (set by the stack, read by the handler) ------------------------------
MAX_DURATION_ENV: Final = "MUSICGEN_MAX_DURATION"
MODEL_ID_ENV: Final = "MUSICGEN_MODEL_ID"
# Seconds each window of a long clip moves on (audiocraft's extend_stride).
EXTEND_STRIDE_ENV: Final = "MUSICGEN_EXTEND_STRIDE"
# audiocraft's default: each window moves on 18 s and re-reads the last 12 s of its own codes.
DEFAULT_EXTEND_STRIDE_SECONDS: Final = 18.0
DEFAULT_MAX_DURATION_SECONDS: Final = 30.0
# Which decode loop makes the tokens: the handler's own static-cache loop (the default) or
# transformers' `generate` (the fallback, token-identical on the tests' models).
DECODER_ENV: Final = "MUSICGEN_DECODER"
STATIC_CACHE_DECODER: Final = "static-cache"
TRANSFORMERS_DECODER: Final = "transformers"
DECODERS: Final = (STATIC_CACHE_DECODER, TRANSFORMERS_DECODER)
# A melody or audio prompt may always fill one 30 s MusicGen window, even on an endpoint whose
# clips are shorter: the handler accepts inputs up to max(max duration, this), and the stack sizes
# the model server's request limit for it.
AUDIO_INPUT_FLOOR_SECONDS: Final = 30.0

# --- model ids ------------------------------------------------------------------------------------
# A Hugging Face repository id: owner/name of ASCII letters, digits, '.', '_' and '-'.
MODEL_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
MODEL_ID_RULE: Final = "must be a Hugging Face model id 'owner/name'"


def is_model_id(value: object) -> bool:
    """Whether `value` is an owner/name model id; `..` is refused because ids become S3 keys."""
    return isinstance(value, str) and bool(MODEL_ID_PATTERN.match(value)) and ".." not in value


# --- model staging custom resources --------------------------------------------------------------
SNAPSHOT_RESOURCE_TYPE: Final = "Custom::ModelSnapshot"
PACKAGE_RESOURCE_TYPE: Final = "Custom::ModelPackage"
