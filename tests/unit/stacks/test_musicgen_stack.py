"""How MusicGenStack wires its constructs together, checked on the synthesized CloudFormation.

What each construct declares on its own is tested beside it (tests/unit/constructs_lib/); here
only the connections: config -> props, bucket -> grants, endpoint -> scaling, topic -> alarms,
outputs, and the logical ids deployed stacks already hold.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.container_environment import model_server_environment
from inference_code import contract
from tests.unit.stacks.conftest import Synth

STAGED_PACKAGE_URL = {"Fn::GetAtt": ["ModelStagingPackageC9DC452B", "ModelDataUrl"]}


def _only(template: Template, resource_type: str, props: Any = None) -> tuple[str, dict]:
    found = template.find_resources(resource_type, props)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.items()))


def _id(template: Template, resource_type: str, prefix: str) -> str:
    found = [k for k in template.find_resources(resource_type) if k.startswith(prefix)]
    assert len(found) == 1, f"expected one {resource_type} named {prefix}*, found {found}"
    return found[0]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- deployed resources keep their logical ids (a new one would replace them) -------------------


def test_endpoint_role_and_policy_keep_their_deployed_logical_ids(dev: Template) -> None:
    assert set(dev.find_resources("AWS::IAM::Role")) >= {"EndpointExecutionRole1819D26F"}
    policy = dev.find_resources("AWS::IAM::Policy")["EndpointExecutionPolicyDEC6B388"]
    assert policy["Properties"]["PolicyName"] == "EndpointExecutionPolicyDEC6B388"
    assert policy["Properties"]["Roles"] == [{"Ref": "EndpointExecutionRole1819D26F"}]
    _, model = _only(dev, "AWS::SageMaker::Model")
    assert "EndpointExecutionPolicyDEC6B388" in _as_list(model["DependsOn"])
    assert set(dev.find_resources("AWS::S3::Bucket")) == {
        "AccessLogs8B620ECA",
        "ModelArtifactsBucket2C3831B7",
        "AsyncIOBucketBD45A603",
    }


def test_volume_key_keeps_its_deployed_logical_id(synth: Synth) -> None:
    template = synth(
        {"cpu": {"model_id": "facebook/musicgen-medium", "instance_type": "ml.m5.2xlarge"}}
    )["MusicGen-cpu"]
    _, config = _only(template, "AWS::SageMaker::EndpointConfig")
    assert config["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["EndpointVolumeKeyEF424478", "Arn"]}
    assert config["Properties"]["ProductionVariants"][0]["VolumeSizeInGB"] == 60
    assert "-cpu-py312" in json.dumps(template.to_json()["Mappings"])


# --- storage ------------------------------------------------------------------------------------


def test_model_and_async_buckets_log_to_the_access_log_bucket(dev: Template) -> None:
    for bucket_prefix, log_prefix in (("ModelArtifacts", "models/"), ("AsyncIO", "async/")):
        dev.has_resource(
            "AWS::S3::Bucket",
            {
                "Properties": Match.object_like(
                    {
                        "LoggingConfiguration": {
                            "DestinationBucketName": {"Ref": "AccessLogs8B620ECA"},
                            "LogFilePrefix": log_prefix,
                        }
                    }
                )
            },
        )
        assert _id(dev, "AWS::S3::Bucket", bucket_prefix)


def test_async_prefixes_expire_after_the_environments_retention(
    dev: Template, prod: Template
) -> None:
    for template, days in ((dev, 7), (prod, 30)):
        bucket = template.find_resources("AWS::S3::Bucket")["AsyncIOBucketBD45A603"]
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        expiring = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules if "Prefix" in rule}
        assert expiring == {
            contract.ASYNC_INPUT_PREFIX: days,
            contract.ASYNC_OUTPUT_PREFIX: days,
            contract.ASYNC_FAILURE_PREFIX: days,
        }


def test_async_data_is_destroyable_only_where_the_environment_says_so(
    dev: Template, prod: Template
) -> None:
    for template, policy in ((dev, "Delete"), (prod, "Retain")):
        buckets = template.find_resources("AWS::S3::Bucket")
        assert buckets["AsyncIOBucketBD45A603"]["DeletionPolicy"] == policy
        assert buckets["ModelArtifactsBucket2C3831B7"]["DeletionPolicy"] == "Retain"
    dev.resource_count_is("Custom::S3AutoDeleteObjects", 1)
    prod.resource_count_is("Custom::S3AutoDeleteObjects", 0)


# --- notifications ------------------------------------------------------------------------------


def test_email_subscriptions_come_from_the_environment(synth: Synth, dev: Template) -> None:
    template = synth(
        {"dev": {"model_id": "facebook/musicgen-small", "notification_emails": ["ops@example.com"]}}
    )["MusicGen-dev"]
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "TopicArn": {"Ref": _id(template, "AWS::SNS::Topic", "NotificationsErrorTopic")},
        },
    )
    dev.resource_count_is("AWS::SNS::Subscription", 0)


# --- endpoint -----------------------------------------------------------------------------------


def test_model_runs_the_staged_package_with_the_environment_table_settings(
    dev: Template, prod: Template
) -> None:
    for template, model_id, max_duration in (
        (dev, "facebook/musicgen-small", 30),
        (prod, "facebook/musicgen-large", 120),
    ):
        template.has_resource_properties(
            "AWS::SageMaker::Model",
            {
                "PrimaryContainer": Match.object_like(
                    {
                        "Environment": model_server_environment(
                            model_id=model_id, max_duration_seconds=max_duration
                        ),
                        "ModelDataSource": {
                            "S3DataSource": Match.object_like(
                                {
                                    "S3Uri": {
                                        "Fn::GetAtt": [
                                            "ModelStagingPackageC9DC452B",
                                            "ModelDataUrl",
                                        ]
                                    }
                                }
                            )
                        },
                    }
                )
            },
        )


def test_model_uses_the_offline_resolved_image_of_the_environment(
    dev: Template, prod: Template
) -> None:
    _, model = _only(prod, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["Image"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
    )
    _, model = _only(dev, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["Image"] == {
        "Fn::FindInMap": ["InferenceImageByRegion", {"Ref": "AWS::Region"}, "uri"]
    }


def test_endpoint_writes_to_the_async_bucket_and_notifies_the_topics(
    dev: Template, prod: Template
) -> None:
    for template, download_timeout in ((dev, 900), (prod, 3600)):
        output = Capture()
        template.has_resource_properties(
            "AWS::SageMaker::EndpointConfig",
            {
                "ProductionVariants": [
                    Match.object_like(
                        {
                            "InitialInstanceCount": 1,
                            "ModelDataDownloadTimeoutInSeconds": download_timeout,
                        }
                    )
                ],
                "AsyncInferenceConfig": Match.object_like({"OutputConfig": output}),
            },
        )
        text = json.dumps(output.as_object())
        assert f"/{contract.ASYNC_OUTPUT_PREFIX}" in text
        assert f"/{contract.ASYNC_FAILURE_PREFIX}" in text
        assert "AsyncIOBucketBD45A603" in text
        notify = output.as_object()["NotificationConfig"]
        assert notify == {
            "SuccessTopic": {"Ref": _id(template, "AWS::SNS::Topic", "NotificationsSuccessTopic")},
            "ErrorTopic": {"Ref": _id(template, "AWS::SNS::Topic", "NotificationsErrorTopic")},
        }


def test_changing_instance_type_replaces_endpoint_and_scalable_target(synth: Synth) -> None:
    def logical_ids(instance_type: str) -> tuple[str, str]:
        template = synth(
            {"dev": {"model_id": "facebook/musicgen-small", "instance_type": instance_type}}
        )["MusicGen-dev"]
        endpoint_id, _ = _only(template, "AWS::SageMaker::Endpoint")
        _, target = _only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
        assert {"Fn::GetAtt": [endpoint_id, "EndpointName"]} in target["Properties"]["ResourceId"][
            "Fn::Join"
        ][1]
        return endpoint_id, json.dumps(target["Properties"]["ResourceId"])

    small_endpoint, small_target = logical_ids("ml.g5.xlarge")
    big_endpoint, big_target = logical_ids("ml.g5.2xlarge")
    assert small_endpoint != big_endpoint
    assert small_target != big_target


# --- what the endpoint may do: grants wired from each construct ---------------------------------


def _endpoint_statements(template: Template) -> dict[str, dict]:
    policy = template.find_resources("AWS::IAM::Policy")["EndpointExecutionPolicyDEC6B388"]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_endpoint_is_granted_exactly_its_prefixes_topics_and_image(dev: Template) -> None:
    statements = _endpoint_statements(dev)
    assert list(statements) == [
        "WriteLogs",
        "PublishMetrics",
        "ReadModel",
        "ListModel",
        "ReadRequests",
        "WriteResults",
        "PublishResults",
        "EncryptNotifications",
        "PullImage",
        "AuthenticateToRegistry",
    ]

    def objects(sid: str) -> list[tuple[str, str]]:
        return [
            (r["Fn::Join"][1][0]["Fn::GetAtt"][0], r["Fn::Join"][1][1])
            for r in _as_list(statements[sid]["Resource"])
        ]

    assert objects("ReadModel") == [
        ("ModelArtifactsBucket2C3831B7", "/packages/facebook/musicgen-small/*")
    ]
    assert statements["ListModel"]["Condition"] == {
        "StringLike": {"s3:prefix": ["packages/facebook/musicgen-small/*"]}
    }
    assert objects("ReadRequests") == [("AsyncIOBucketBD45A603", "/async-input/*")]
    assert sorted(objects("WriteResults")) == [
        ("AsyncIOBucketBD45A603", "/async-failure/*"),
        ("AsyncIOBucketBD45A603", "/async-output/*"),
    ]
    topics = {t["Ref"] for t in statements["PublishResults"]["Resource"]}
    assert topics == set(dev.find_resources("AWS::SNS::Topic"))
    assert statements["EncryptNotifications"]["Resource"] == {
        "Fn::GetAtt": [_id(dev, "AWS::KMS::Key", "NotificationsTopicKey"), "Arn"]
    }
    assert "huggingface-pytorch-inference" in json.dumps(statements["PullImage"]["Resource"])
    resource_star = {sid for sid, s in statements.items() if "*" in _as_list(s["Resource"])}
    assert resource_star == {"AuthenticateToRegistry", "PublishMetrics"}


def test_extra_input_locations_are_read_only_grants_to_the_endpoint(synth: Synth) -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    seed = {
        "model_id": "facebook/musicgen-small",
        "extra_input_locations": [
            "s3://sagemaker-eu-west-1-123456789012/musicgen_large/input_payload/",
            {"uri": "s3://team-uploads/musicgen/", "kms_key_arn": key},
        ],
    }
    statements = _endpoint_statements(synth({"seed": seed})["MusicGen-seed"])

    added = {sid: s for sid, s in statements.items() if "ExtraInput" in sid}
    assert {sid: s["Action"] for sid, s in added.items()} == {
        "ReadExtraInput0": "s3:GetObject",
        "ReadExtraInput1": "s3:GetObject",
        "ReadExtraInput1Key": "kms:Decrypt",
    }
    assert added["ReadExtraInput0"]["Resource"]["Fn::Join"][1][2] == (
        ":s3:::sagemaker-eu-west-1-123456789012/musicgen_large/input_payload/*"
    )
    assert added["ReadExtraInput1Key"]["Resource"] == key


def test_no_policy_in_the_stack_grants_a_wildcard_action(dev: Template, prod: Template) -> None:
    for template in (dev, prod):
        for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                for action in _as_list(statement["Action"]):
                    assert "*" not in action, f"{logical_id}: {action}"


# --- scaling and monitoring watch this endpoint -------------------------------------------------


def test_scaling_targets_the_endpoint_with_the_environments_bounds(
    dev: Template, prod: Template
) -> None:
    for template, maximum, scale_in in ((dev, 1, 600), (prod, 4, 900)):
        endpoint_id, _ = _only(template, "AWS::SageMaker::Endpoint")
        endpoint_name = {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
        template.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {
                "MinCapacity": 0,
                "MaxCapacity": maximum,
                "ResourceId": {
                    "Fn::Join": ["", ["endpoint/", endpoint_name, "/variant/AllTraffic"]]
                },
            },
        )
        template.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                    {
                        "ScaleInCooldown": scale_in,
                        "CustomizedMetricSpecification": Match.object_like(
                            {"Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}]}
                        ),
                    }
                )
            },
        )


def test_each_environment_deploys_with_the_capacity_it_chose(dev: Template, prod: Template) -> None:
    """dev ("initial") health-checks one instance per deploy; prod ("keep") keeps its count."""
    _, dev_endpoint = _only(dev, "AWS::SageMaker::Endpoint")
    _, prod_endpoint = _only(prod, "AWS::SageMaker::Endpoint")
    assert "RetainAllVariantProperties" not in dev_endpoint["Properties"]
    assert prod_endpoint["Properties"]["RetainAllVariantProperties"] is True


def test_wake_up_cooldown_follows_the_models_start_up_timeouts(
    dev: Template, prod: Template
) -> None:
    """small: 10 + 15 + 10 min (+2) = 37 min; large: 10 + 60 + 20 min (+2) = 92 min."""
    for template, cooldown in ((dev, 2220), (prod, 5520)):
        _, policy = _only(
            template,
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {"Properties": {"PolicyType": "StepScaling"}},
        )
        assert policy["Properties"]["StepScalingPolicyConfiguration"]["Cooldown"] == cooldown


@pytest.mark.parametrize(
    ("metric", "threshold"),
    [("InvocationFailures", 1), ("ApproximateAgeOfOldestRequest", 1800)],
)
def test_alarms_notify_the_error_topic(dev: Template, metric: str, threshold: int) -> None:
    error_topic = _id(dev, "AWS::SNS::Topic", "NotificationsErrorTopic")
    dev.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": metric, "Threshold": threshold, "AlarmActions": [{"Ref": error_topic}]},
    )


def test_wake_up_alarm_and_dashboard_read_the_backlog_flag_alike(dev: Template) -> None:
    _, alarm = _only(
        dev, "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "HasBacklogWithoutCapacity"}}
    )
    assert alarm["Properties"]["Statistic"] == "Average"
    _, dashboard = _only(dev, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    flag = body[body.index('\\"HasBacklogWithoutCapacity\\"') :].split("]", 1)[0]
    assert "Maximum" not in flag and '\\"stat\\"' not in flag  # the default stat: Average


# --- outputs ------------------------------------------------------------------------------------


def test_outputs_give_a_client_everything_it_needs(dev: Template) -> None:
    outputs = dev.to_json()["Outputs"]
    assert set(outputs) == {
        *contract.REQUIRED_OUTPUTS,
        contract.OUTPUT_SUCCESS_TOPIC_ARN,
        contract.OUTPUT_ERROR_TOPIC_ARN,
        contract.OUTPUT_MODEL_COMMIT,
        contract.OUTPUT_MAX_DURATION_SECONDS,
    }
    endpoint_id, _ = _only(dev, "AWS::SageMaker::Endpoint")
    assert outputs[contract.OUTPUT_ENDPOINT_NAME]["Value"] == {
        "Fn::GetAtt": [endpoint_id, "EndpointName"]
    }
    assert contract.ASYNC_INPUT_PREFIX in json.dumps(outputs[contract.OUTPUT_INPUT_S3_URI]["Value"])
    assert outputs[contract.OUTPUT_MAX_DURATION_SECONDS]["Value"] == "30"
    assert outputs[contract.OUTPUT_MODEL_COMMIT]["Value"] == {
        "Fn::GetAtt": ["ModelStagingPackageC9DC452B", "Commit"]
    }
