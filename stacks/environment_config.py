"""The environment table (`cdk.json` context `environments`), validated into frozen configs.

Every rule lives in the field table below, so a bad value stops synth with one line that names
the environment, the field and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from constructs_lib.endpoint_log_retention import DEFAULT_LOG_RETENTION_DAYS, LOG_RETENTION_DAYS
from constructs_lib.external_input import ExternalInputLocation
from constructs_lib.instance_types import INSTANCE_TYPE_PATTERN, instance_family
from inference_code.contract import (
    DEFAULT_EXTEND_STRIDE_SECONDS,
    DEFAULT_MAX_DURATION_SECONDS,
    MODEL_ID_RULE,
    is_model_id,
    stack_name_for,
)


class ConfigError(ValueError):
    """A value in the environment table breaks a rule."""

    def __init__(self, environment: str, field_name: str, rule: str, got: Any = None) -> None:
        detail = f" (got {got!r})" if got is not None else ""
        super().__init__(f"environments.{environment}.{field_name}: {rule}{detail}")
        self.environment = environment
        self.field_name = field_name


_REVISION = re.compile(r"^[\w./-]{1,128}$")
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ENVIRONMENT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_S3_PREFIX_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(\S+/)?$")
# A prefix (not a whole bucket) ending in '/', without IAM wildcards: it becomes `<prefix>*`.
_EXTRA_INPUT_URI = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>[^\s*?]+/)$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]{1,64}$")
MAX_EXTRA_INPUT_LOCATIONS = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_VERSION = re.compile(r"^\d+(\.\d+){1,2}$")

# Families the Hugging Face PyTorch inference image runs on (GPU and CPU builds).
GPU_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p3", "p4d", "p4de", "p5", "p5e", "p5en"})
CPU_FAMILIES = frozenset(
    {
        "m5",
        "m5d",
        "m6i",
        "m6id",
        "m7i",
        "c5",
        "c5d",
        "c6i",
        "c6id",
        "c7i",
        "r5",
        "r5d",
        "r6i",
        "r7i",
    }
)

MAX_DURATION_LIMIT_SECONDS = 300
# MusicGen's window: a stride must leave some of it as context for the next window.
WINDOW_SECONDS = 30
MAX_INSTANCES_LIMIT = 100


def is_gpu(instance_type: str) -> bool:
    return instance_family(instance_type) in GPU_FAMILIES


@dataclass(frozen=True)
class ContainerVersions:
    """Versions of the Hugging Face PyTorch inference container (DLC)."""

    transformers: str = "4.51.3"
    pytorch: str = "2.6.0"


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    model_id: str
    account: str | None = None
    region: str | None = None
    model_revision: str = "main"
    model_s3_uri: str | None = None
    hub_token_secret_name: str | None = None
    instance_type: str = "ml.g5.xlarge"
    min_instances: int = 0
    max_instances: int = 1
    max_concurrent_invocations_per_instance: int = 1
    scale_in_cooldown: int = 600
    scale_out_cooldown: int = 60
    backlog_per_instance_target: float = 2.0
    max_duration_seconds: float = DEFAULT_MAX_DURATION_SECONDS
    extend_stride_seconds: float = DEFAULT_EXTEND_STRIDE_SECONDS
    output_retention_days: int = 7
    notification_emails: tuple[str, ...] = ()
    oldest_request_alarm_seconds: int = 1800
    destroy_async_data_on_delete: bool = False
    extra_input_locations: tuple[ExternalInputLocation, ...] = ()
    deploy_capacity: str = "initial"
    network_isolation: bool = False
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    dlc: ContainerVersions = field(default_factory=ContainerVersions)

    @property
    def stack_name(self) -> str:
        return stack_name_for(self.name)

    @property
    def is_commit_pinned(self) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{40}", self.model_revision))


# --- the field table: how each raw value becomes a typed one, and the rule it must satisfy ---

Check = Callable[[Any], Any]


class _Rule(ValueError):
    """Raised by a check; the loader adds the environment and field."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def _string(pattern: re.Pattern[str], rule: str) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise _Rule(rule)
        return value

    return check


def _model_id(value: Any) -> str:
    if not is_model_id(value):
        raise _Rule(MODEL_ID_RULE)
    return str(value)


def _integer(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Rule(f"must be an integer from {low} to {high}")
        return value

    return check


def _positive_number(high: float) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
            raise _Rule(f"must be a number > 0 and <= {high:g}")
        return float(value)

    return check


def _number_below(high: float) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < high:
            raise _Rule(f"must be a number > 0 and < {high:g}")
        return float(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Rule("must be true or false")
    return value


def _one_of(choices: Mapping[str, str]) -> Check:
    """One of `choices` (value -> what it means); the rule lists them all."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            options = " or ".join(f'"{name}" ({meaning})' for name, meaning in choices.items())
            raise _Rule(f"must be {options}")
        return value

    return check


def _instance_type(value: Any) -> str:
    if not isinstance(value, str) or not INSTANCE_TYPE_PATTERN.match(value):
        raise _Rule("must look like ml.<family>.<size>, e.g. ml.g5.xlarge")
    family = instance_family(value)
    if family not in GPU_FAMILIES | CPU_FAMILIES:
        known = ", ".join(sorted(GPU_FAMILIES | CPU_FAMILIES))
        raise _Rule(f"unknown instance family '{family}'; known families: {known}")
    return value


def _emails(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and _EMAIL.match(item) for item in value
    ):
        raise _Rule("must be a list of e-mail addresses")
    return tuple(value)


def _extra_input_locations(value: Any) -> tuple[ExternalInputLocation, ...]:
    shape = (
        "must be a list of s3://bucket/prefix/ URIs, or of objects "
        '{"uri": "s3://bucket/prefix/", "kms_key_arn": "arn:aws:kms:..."}'
    )
    if not isinstance(value, list) or len(value) > MAX_EXTRA_INPUT_LOCATIONS:
        raise _Rule(f"{shape}, at most {MAX_EXTRA_INPUT_LOCATIONS}")
    return tuple(_extra_input_location(index, item, shape) for index, item in enumerate(value))


def _extra_input_location(index: int, item: Any, shape: str) -> ExternalInputLocation:
    entry = {"uri": item} if isinstance(item, str) else item
    if not isinstance(entry, Mapping) or "uri" not in entry or set(entry) - {"uri", "kms_key_arn"}:
        raise _Rule(f"[{index}] {shape}")
    uri = entry["uri"]
    match = _EXTRA_INPUT_URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise _Rule(
            f"[{index}] must be an s3://bucket/prefix/ URI: a prefix, not a whole bucket, ending "
            "in '/' and without '*' or '?' (the endpoint may read only below it)"
        )
    key = entry.get("kms_key_arn")
    if key is not None and not (isinstance(key, str) and _KMS_KEY_ARN.match(key)):
        raise _Rule(
            f"[{index}].kms_key_arn must be a KMS key ARN arn:aws:kms:<region>:<account>:key/<id>"
            " (an alias cannot be granted)"
        )
    return ExternalInputLocation(match["bucket"], match["prefix"], kms_key_arn=key)


def _log_retention_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in LOG_RETENTION_DAYS:
        raise _Rule(
            "must be a retention CloudWatch Logs accepts: "
            + ", ".join(str(days) for days in LOG_RETENTION_DAYS)
        )
    return int(value)


def _container_versions(value: Any) -> ContainerVersions:
    if not isinstance(value, Mapping) or set(value) - {"transformers", "pytorch"}:
        raise _Rule('must be an object with "transformers" and "pytorch" versions')
    for key in value:
        if not isinstance(value[key], str) or not _VERSION.match(value[key]):
            raise _Rule(f'"{key}" must be a version like 4.51.3')
    return ContainerVersions(**value)


_FIELDS: dict[str, Check] = {
    "account": _string(ACCOUNT_PATTERN, "must be a 12-digit AWS account id"),
    "region": _string(REGION_PATTERN, "must be an AWS region name such as us-east-1"),
    "model_id": _model_id,
    "model_revision": _string(_REVISION, "must be a branch, tag or 40-hex commit"),
    "model_s3_uri": _string(_S3_PREFIX_URI, "must be an s3://bucket/prefix/ URI ending in '/'"),
    "hub_token_secret_name": _string(
        re.compile(r"^[\w/+=.@-]{1,512}$"), "must be a Secrets Manager secret name"
    ),
    "instance_type": _instance_type,
    "min_instances": _integer(0, MAX_INSTANCES_LIMIT),
    "max_instances": _integer(1, MAX_INSTANCES_LIMIT),
    "max_concurrent_invocations_per_instance": _integer(1, 1000),
    "scale_in_cooldown": _integer(0, 86_400),
    "scale_out_cooldown": _integer(0, 86_400),
    "backlog_per_instance_target": _positive_number(1000),
    "max_duration_seconds": _positive_number(MAX_DURATION_LIMIT_SECONDS),
    "extend_stride_seconds": _number_below(WINDOW_SECONDS),
    "output_retention_days": _integer(1, 3650),
    "notification_emails": _emails,
    "oldest_request_alarm_seconds": _integer(60, 86_400),
    "destroy_async_data_on_delete": _boolean,
    "extra_input_locations": _extra_input_locations,
    "deploy_capacity": _one_of(
        {
            "initial": "a deploy starts the initial instances and health-checks them",
            "keep": "a deploy keeps the running instance count",
        }
    ),
    "network_isolation": _boolean,
    "log_retention_days": _log_retention_days,
    "dlc": _container_versions,
}
assert set(_FIELDS) == {f.name for f in fields(EnvironmentConfig)} - {"name"}


def _cross_field_rules(config: EnvironmentConfig) -> None:
    if config.max_instances < config.min_instances:
        raise ConfigError(
            config.name,
            "max_instances",
            f"must be >= min_instances ({config.min_instances})",
            config.max_instances,
        )


def load_environment(name: str, raw: Any) -> EnvironmentConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(name, "*", "must be an object of settings")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ConfigError(
            name, unknown[0], f"unknown field; accepted fields: {', '.join(sorted(_FIELDS))}"
        )
    if "model_id" not in raw:
        raise ConfigError(name, "model_id", "is required")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            values[key] = _FIELDS[key](value)
        except _Rule as error:
            raise ConfigError(name, key, error.rule, value) from None
    config = EnvironmentConfig(name=name, **values)
    _cross_field_rules(config)
    return config


def load_environments(table: Any) -> dict[str, EnvironmentConfig]:
    """Validate the whole `environments` context value."""
    if not isinstance(table, Mapping) or not table:
        raise ConfigError("*", "*", "cdk.json context 'environments' must be a non-empty object")
    for name in table:
        if not ENVIRONMENT_NAME_PATTERN.match(name):
            raise ConfigError(
                name, "*", f"environment names must match {ENVIRONMENT_NAME_PATTERN.pattern}"
            )
    return {name: load_environment(name, raw) for name, raw in table.items()}


def select_environments(
    environments: Mapping[str, EnvironmentConfig], selected: str | None
) -> list[EnvironmentConfig]:
    """All environments, or the one named by `-c env=NAME`."""
    if selected is None:
        return list(environments.values())
    if selected not in environments:
        known = ", ".join(environments)
        raise ConfigError(selected, "*", f"unknown environment; known environments: {known}")
    return [environments[selected]]
