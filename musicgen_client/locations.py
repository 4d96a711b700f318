"""S3 URIs and the object names the async contract uses (request, `<id>.out`, `<id>-error.out`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from musicgen_client.errors import ConfigurationError

MAX_INFERENCE_ID_LENGTH = 64
# Stricter than SageMaker's "printable" rule because the id also names S3 objects and files.
_INFERENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>.*))?")
OUTPUT_SUFFIX = ".out"
FAILURE_SUFFIX = "-error.out"
REQUEST_SUFFIX = ".json"


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or a key prefix ending in `/`)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, *, field: str) -> S3Location:
        """Parse `s3://bucket/key`; `field` names the setting in the error message."""
        match = _S3_URI.fullmatch(uri.strip())
        if match is None:
            raise ConfigurationError(
                f"{field}: must be an S3 URI like s3://bucket/prefix/, got {uri!r}"
            )
        return cls(bucket=match["bucket"], key=match["key"] or "")

    @classmethod
    def parse_prefix(cls, uri: str, *, field: str) -> S3Location:
        """Parse an S3 URI naming a folder; a missing trailing `/` is added."""
        location = cls.parse(uri, field=field)
        if location.key and not location.key.endswith("/"):
            return cls(location.bucket, location.key + "/")
        return location

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        """The object `name` inside this prefix."""
        return S3Location(self.bucket, self.key + name)

    def __str__(self) -> str:
        return self.uri


def new_inference_id(now: datetime | None = None) -> str:
    """A unique id sorting by submission time: `musicgen-20250101T120000Z-<32 hex>` (58 chars)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"musicgen-{stamp}-{uuid.uuid4().hex}"


def check_inference_id(inference_id: str) -> str:
    """Return `inference_id` unchanged, or raise naming the rule it breaks."""
    if not 1 <= len(inference_id) <= MAX_INFERENCE_ID_LENGTH:
        raise ConfigurationError(
            f"inference_id: must be 1-{MAX_INFERENCE_ID_LENGTH} characters, got {len(inference_id)}"
        )
    if _INFERENCE_ID.fullmatch(inference_id) is None:
        raise ConfigurationError(
            "inference_id: must start with a letter or digit and contain only letters, digits, "
            f"'.', '_' and '-', got {inference_id!r}"
        )
    return inference_id


def request_location(input_prefix: S3Location, inference_id: str) -> S3Location:
    """Where the request JSON of `inference_id` is uploaded."""
    return input_prefix.child(inference_id + REQUEST_SUFFIX)


def output_location(output_prefix: S3Location, inference_id: str) -> S3Location:
    """Where SageMaker writes the response body of `inference_id`."""
    return output_prefix.child(inference_id + OUTPUT_SUFFIX)


def failure_location(failure_prefix: S3Location, inference_id: str) -> S3Location:
    """Where SageMaker writes the error of `inference_id`."""
    return failure_prefix.child(inference_id + FAILURE_SUFFIX)


def inference_id_from_location(uri: str) -> str:
    """The inference id an output or failure object is named after."""
    name = S3Location.parse(uri, field="location").key.rsplit("/", 1)[-1]
    for suffix in (FAILURE_SUFFIX, OUTPUT_SUFFIX):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    raise ConfigurationError(
        f"location: must name an object ending in {OUTPUT_SUFFIX!r} or {FAILURE_SUFFIX!r}, "
        f"got {uri!r}"
    )
