"""Every rule of the environment table, with the exact message a user sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.external_input import ExternalInputLocation
from constructs_lib.instance_types import has_local_nvme
from stacks.environment_config import (
    ConfigError,
    EnvironmentConfig,
    load_environment,
    load_environments,
    select_environments,
)

REPO = Path(__file__).resolve().parents[3]
MINIMAL = {"model_id": "facebook/musicgen-small"}


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment("dev", raw)
    return str(caught.value)


def test_defaults_for_a_minimal_entry() -> None:
    config = load_environment("dev", MINIMAL)
    assert config == EnvironmentConfig(name="dev", model_id="facebook/musicgen-small")
    assert (config.min_instances, config.max_instances) == (0, 1)
    assert config.max_concurrent_invocations_per_instance == 1
    assert (config.dlc.transformers, config.dlc.pytorch) == ("4.51.3", "2.6.0")
    assert config.stack_name == "MusicGen-dev"
    assert config.extend_stride_seconds == 18.0
    assert (config.network_isolation, config.log_retention_days) == (False, 30)
    assert (
        load_environment("dev", {**MINIMAL, "extend_stride_seconds": 29.5}).extend_stride_seconds
        == 29.5
    )


def test_extra_input_locations_become_bucket_prefix_and_key() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    raw = {
        **MINIMAL,
        "extra_input_locations": [
            "s3://seed-bucket/musicgen_large/input_payload/",
            {"uri": "s3://team-uploads/musicgen/", "kms_key_arn": key},
        ],
    }
    assert load_environment("dev", raw).extra_input_locations == (
        ExternalInputLocation("seed-bucket", "musicgen_large/input_payload/"),
        ExternalInputLocation("team-uploads", "musicgen/", kms_key_arn=key),
    )
    assert load_environment("dev", MINIMAL).extra_input_locations == ()


def test_config_is_frozen() -> None:
    config = load_environment("dev", MINIMAL)
    with pytest.raises(AttributeError):
        config.max_instances = 3  # type: ignore[misc]


def test_shipped_table_has_dev_and_prod_as_the_issue_asks() -> None:
    table = json.loads((REPO / "cdk.json").read_text())["context"]["environments"]
    environments = load_environments(table)
    dev, prod = environments["dev"], environments["prod"]
    assert (dev.model_id, dev.instance_type, dev.min_instances, dev.max_instances) == (
        "facebook/musicgen-small",
        "ml.g5.xlarge",
        0,
        1,
    )
    assert (prod.model_id, prod.instance_type, prod.min_instances, prod.max_instances) == (
        "facebook/musicgen-large",
        "ml.g5.2xlarge",
        0,
        4,
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {**MINIMAL, "min_instances": 2, "max_instances": 1},
            "environments.dev.max_instances: must be >= min_instances (2) (got 1)",
        ),
        (
            {**MINIMAL, "instance_type": "ml.x9.xlarge"},
            "environments.dev.instance_type: unknown instance family 'x9'; known families: ",
        ),
        (
            {**MINIMAL, "instance_type": "g5.xlarge"},
            "environments.dev.instance_type: must look like ml.<family>.<size>, e.g. ml.g5.xlarge"
            " (got 'g5.xlarge')",
        ),
        (
            {**MINIMAL, "max_duration_seconds": 0},
            "environments.dev.max_duration_seconds: must be a number > 0 and <= 300 (got 0)",
        ),
        (
            {**MINIMAL, "max_duration_seconds": -5},
            "environments.dev.max_duration_seconds: must be a number > 0 and <= 300 (got -5)",
        ),
        (
            {**MINIMAL, "max_duration_seconds": True},
            "environments.dev.max_duration_seconds: must be a number > 0 and <= 300 (got True)",
        ),
        (
            {**MINIMAL, "extend_stride_seconds": 30},
            "environments.dev.extend_stride_seconds: must be a number > 0 and < 30 (got 30)",
        ),
        (
            {**MINIMAL, "extend_stride_seconds": 0},
            "environments.dev.extend_stride_seconds: must be a number > 0 and < 30 (got 0)",
        ),
        (
            {**MINIMAL, "extend_stride_seconds": "18"},
            "environments.dev.extend_stride_seconds: must be a number > 0 and < 30 (got '18')",
        ),
        (
            {"model_id": "musicgen-small"},
            "environments.dev.model_id: must be a Hugging Face model id 'owner/name'"
            " (got 'musicgen-small')",
        ),
        ({}, "environments.dev.model_id: is required"),
        (
            {**MINIMAL, "model_revision": "main branch"},
            "environments.dev.model_revision: must be a branch, tag or 40-hex commit"
            " (got 'main branch')",
        ),
        (
            {**MINIMAL, "account": "12345"},
            "environments.dev.account: must be a 12-digit AWS account id (got '12345')",
        ),
        (
            {**MINIMAL, "region": "mars"},
            "environments.dev.region: must be an AWS region name such as us-east-1 (got 'mars')",
        ),
        (
            {**MINIMAL, "min_instances": -1},
            "environments.dev.min_instances: must be an integer from 0 to 100 (got -1)",
        ),
        (
            {**MINIMAL, "max_instances": 0},
            "environments.dev.max_instances: must be an integer from 1 to 100 (got 0)",
        ),
        (
            {**MINIMAL, "max_concurrent_invocations_per_instance": 1.5},
            "environments.dev.max_concurrent_invocations_per_instance: must be an integer from 1"
            " to 1000 (got 1.5)",
        ),
        (
            {**MINIMAL, "scale_in_cooldown": -1},
            "environments.dev.scale_in_cooldown: must be an integer from 0 to 86400 (got -1)",
        ),
        (
            {**MINIMAL, "backlog_per_instance_target": 0},
            "environments.dev.backlog_per_instance_target: must be a number > 0 and <= 1000"
            " (got 0)",
        ),
        (
            {**MINIMAL, "output_retention_days": 0},
            "environments.dev.output_retention_days: must be an integer from 1 to 3650 (got 0)",
        ),
        (
            {**MINIMAL, "notification_emails": ["ops-at-example.com"]},
            "environments.dev.notification_emails: must be a list of e-mail addresses"
            " (got ['ops-at-example.com'])",
        ),
        (
            {**MINIMAL, "model_s3_uri": "s3://bucket/weights"},
            "environments.dev.model_s3_uri: must be an s3://bucket/prefix/ URI ending in '/'"
            " (got 's3://bucket/weights')",
        ),
        (
            {**MINIMAL, "dlc": {"transformers": "latest"}},
            'environments.dev.dlc: "transformers" must be a version like 4.51.3'
            " (got {'transformers': 'latest'})",
        ),
        (
            {**MINIMAL, "destroy_async_data_on_delete": "yes"},
            "environments.dev.destroy_async_data_on_delete: must be true or false (got 'yes')",
        ),
        (
            {**MINIMAL, "extra_input_locations": ["s3://seed-bucket/"]},
            "environments.dev.extra_input_locations: [0] must be an s3://bucket/prefix/ URI: a "
            "prefix, not a whole bucket, ending in '/' and without '*' or '?' (the endpoint may "
            "read only below it) (got ['s3://seed-bucket/'])",
        ),
        (
            {**MINIMAL, "extra_input_locations": ["s3://seed-bucket/input/", "s3://b/in*/"]},
            "environments.dev.extra_input_locations: [1] must be an s3://bucket/prefix/ URI",
        ),
        (
            {**MINIMAL, "extra_input_locations": "s3://seed-bucket/input/"},
            "environments.dev.extra_input_locations: must be a list of s3://bucket/prefix/ URIs, "
            'or of objects {"uri": "s3://bucket/prefix/", "kms_key_arn": "arn:aws:kms:..."}, '
            "at most 10",
        ),
        (
            {
                **MINIMAL,
                "extra_input_locations": [
                    {"uri": "s3://seed-bucket/input/", "kms_key_arn": "alias/seed"}
                ],
            },
            "environments.dev.extra_input_locations: [0].kms_key_arn must be a KMS key ARN "
            "arn:aws:kms:<region>:<account>:key/<id> (an alias cannot be granted)",
        ),
        (
            {**MINIMAL, "deploy_capacity": "retain"},
            'environments.dev.deploy_capacity: must be "initial" (a deploy starts the initial '
            'instances and health-checks them) or "keep" (a deploy keeps the running instance '
            "count) (got 'retain')",
        ),
        (
            {**MINIMAL, "deploy_capacity": True},
            'environments.dev.deploy_capacity: must be "initial" (a deploy starts',
        ),
        (
            {**MINIMAL, "network_isolation": "yes"},
            "environments.dev.network_isolation: must be true or false (got 'yes')",
        ),
        (
            {**MINIMAL, "log_retention_days": 10},
            "environments.dev.log_retention_days: must be a retention CloudWatch Logs accepts: "
            "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, "
            "2557, 2922, 3288, 3653 (got 10)",
        ),
        (
            {**MINIMAL, "log_retention_days": True},
            "environments.dev.log_retention_days: must be a retention CloudWatch Logs accepts: ",
        ),
        (
            {**MINIMAL, "instance_count": 2},
            "environments.dev.instance_count: unknown field; accepted fields: account, ",
        ),
    ],
)
def test_each_rule_names_environment_field_and_rule(raw: dict[str, Any], message: str) -> None:
    assert _error(raw).startswith(message)


def test_deploy_capacity_defaults_to_initial_and_the_shipped_table_chooses_each() -> None:
    assert load_environment("dev", MINIMAL).deploy_capacity == "initial"
    assert load_environment("dev", {**MINIMAL, "deploy_capacity": "keep"}).deploy_capacity == "keep"
    table = json.loads((REPO / "cdk.json").read_text())["context"]["environments"]
    environments = load_environments(table)
    assert (environments["dev"].deploy_capacity, environments["prod"].deploy_capacity) == (
        "initial",
        "keep",
    )


def test_unknown_environment_lists_the_known_ones() -> None:
    environments = load_environments({"dev": MINIMAL, "prod": MINIMAL})
    with pytest.raises(ConfigError) as caught:
        select_environments(environments, "staging")
    assert str(caught.value) == (
        "environments.staging.*: unknown environment; known environments: dev, prod"
    )


def test_no_selection_means_every_environment() -> None:
    environments = load_environments({"dev": MINIMAL, "prod": MINIMAL})
    assert [c.name for c in select_environments(environments, None)] == ["dev", "prod"]
    assert [c.name for c in select_environments(environments, "prod")] == ["prod"]


def test_empty_table_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'environments' must be a non-empty object"):
        load_environments({})


@pytest.mark.parametrize(
    ("instance_type", "nvme"),
    [
        ("ml.g5.xlarge", True),
        ("ml.g6e.2xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.m5d.large", True),
        ("ml.p3.2xlarge", False),
        ("ml.m5.xlarge", False),
        ("ml.c6i.4xlarge", False),
    ],
)
def test_local_nvme_families(instance_type: str, nvme: bool) -> None:
    assert has_local_nvme(instance_type) is nvme
