"""What the MusicGen stack declares, checked on the synthesized CloudFormation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from constructs_lib.container_environment import model_server_environment
from tests.unit.stacks.conftest import Synth


def _only(template: Template, resource_type: str, props: Any = None) -> tuple[str, dict]:
    found = template.find_resources(resource_type, props)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.items()))


def _by_logical_prefix(template: Template, resource_type: str, prefix: str) -> tuple[str, dict]:
    found = {
        k: v for k, v in template.find_resources(resource_type).items() if k.startswith(prefix)
    }
    assert len(found) == 1, f"expected one {resource_type} named {prefix}*, found {list(found)}"
    return next(iter(found.items()))


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- storage -------------------------------------------------------------------------------------


def test_every_bucket_is_encrypted_private_and_tls_only(dev: Template) -> None:
    buckets = dev.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # access logs, model artifacts, async I/O
    policies = dev.find_resources("AWS::S3::BucketPolicy")
    tls_protected = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                tls_protected.add(policy["Properties"]["Bucket"]["Ref"])
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert logical_id in tls_protected


def test_model_and_async_buckets_write_access_logs(dev: Template) -> None:
    for prefix, log_prefix in (("ModelArtifacts", "models/"), ("AsyncIO", "async/")):
        _, bucket = _by_logical_prefix(dev, "AWS::S3::Bucket", prefix)
        logging = bucket["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {
            "Ref": _by_logical_prefix(dev, "AWS::S3::Bucket", "AccessLogs")[0]
        }
        assert logging["LogFilePrefix"] == log_prefix


def test_async_objects_expire_after_retention_and_uploads_are_aborted(
    dev: Template, prod: Template
) -> None:
    for template, days in ((dev, 7), (prod, 30)):
        _, bucket = _by_logical_prefix(template, "AWS::S3::Bucket", "AsyncIO")
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        expiring = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules if "Prefix" in rule}
        assert expiring == {"async-input/": days, "async-output/": days, "async-failure/": days}
        assert any(
            r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 7} for r in rules
        )
    _, model_bucket = _by_logical_prefix(dev, "AWS::S3::Bucket", "ModelArtifacts")
    model_rules = model_bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert model_rules == [
        {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}, "Status": "Enabled"}
    ]


def test_model_bucket_is_retained_and_async_bucket_destroyable_only_in_dev(
    dev: Template, prod: Template
) -> None:
    for template in (dev, prod):
        _, model_bucket = _by_logical_prefix(template, "AWS::S3::Bucket", "ModelArtifacts")
        assert model_bucket["DeletionPolicy"] == "Retain"
    assert _by_logical_prefix(dev, "AWS::S3::Bucket", "AsyncIO")[1]["DeletionPolicy"] == "Delete"
    dev.resource_count_is("Custom::S3AutoDeleteObjects", 1)
    assert _by_logical_prefix(prod, "AWS::S3::Bucket", "AsyncIO")[1]["DeletionPolicy"] == "Retain"
    prod.resource_count_is("Custom::S3AutoDeleteObjects", 0)


# --- notifications -------------------------------------------------------------------------------


def test_topics_are_encrypted_with_a_rotated_key_and_tls_only(dev: Template) -> None:
    topics = dev.find_resources("AWS::SNS::Topic")
    assert len(topics) == 2
    key_id, key = _only(
        dev, "AWS::KMS::Key", {"Properties": {"Description": Match.string_like_regexp("topics")}}
    )
    assert key["Properties"]["EnableKeyRotation"] is True
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    tls_topics = set()
    for policy in dev.find_resources("AWS::SNS::TopicPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                tls_topics.update(t["Ref"] for t in policy["Properties"]["Topics"])
    assert tls_topics == set(topics)
    cloudwatch_can_use_key = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch_can_use_key, "alarms could not publish to the encrypted error topic"


def test_email_subscriptions_come_from_config_and_go_to_the_error_topic(synth: Synth) -> None:
    templates = synth(
        {"dev": {"model_id": "facebook/musicgen-small", "notification_emails": ["ops@example.com"]}}
    )
    template = templates["MusicGen-dev"]
    error_topic, _ = _by_logical_prefix(template, "AWS::SNS::Topic", "NotificationsErrorTopic")
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": error_topic}},
    )
    template.resource_count_is("AWS::SNS::Subscription", 1)


def test_no_subscriptions_without_emails(dev: Template) -> None:
    dev.resource_count_is("AWS::SNS::Subscription", 0)


# --- endpoint ------------------------------------------------------------------------------------


def test_model_uses_the_offline_resolved_image_in_a_concrete_region(prod: Template) -> None:
    _, model = _only(prod, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["Image"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
    )


def test_region_agnostic_stack_maps_the_image_per_region(dev: Template) -> None:
    _, model = _only(dev, "AWS::SageMaker::Model")
    image = model["Properties"]["PrimaryContainer"]["Image"]
    assert image == {"Fn::FindInMap": ["InferenceImageByRegion", {"Ref": "AWS::Region"}, "uri"]}
    mapping = dev.to_json()["Mappings"]["InferenceImageByRegion"]
    assert mapping["eu-west-1"]["uri"].startswith(
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:2.6.0-"
        "transformers4.51.3-gpu"
    )
    assert mapping["cn-north-1"]["account"] == "727897471807"


def test_model_container_environment_and_uncompressed_prefix(dev: Template, prod: Template) -> None:
    for template, model_id, max_duration in (
        (dev, "facebook/musicgen-small", 30),
        (prod, "facebook/musicgen-large", 120),
    ):
        _, model = _only(template, "AWS::SageMaker::Model")
        container = model["Properties"]["PrimaryContainer"]
        environment = container["Environment"]
        assert environment == model_server_environment(
            model_id=model_id, max_duration_seconds=max_duration
        )
        assert environment["MUSICGEN_MODEL_ID"] == model_id
        assert environment["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == "3600"
        assert environment["HF_HUB_OFFLINE"] == "1"
        assert "HF_MODEL_ID" not in environment
        assert int(environment["MMS_MAX_RESPONSE_SIZE"]) > 6_553_500
        source = container["ModelDataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["CompressionType"] == "None"
        assert "Fn::GetAtt" in json.dumps(source["S3Uri"]), "the prefix comes from model staging"


def test_model_waits_for_the_role_policy(dev: Template) -> None:
    _, model = _only(dev, "AWS::SageMaker::Model")
    policy_id, _ = _by_logical_prefix(dev, "AWS::IAM::Policy", "EndpointExecutionPolicy")
    assert policy_id in _as_list(model.get("DependsOn", []))


def test_async_endpoint_config(dev: Template, prod: Template) -> None:
    for template, download_timeout in ((dev, 900), (prod, 3600)):
        _, config = _only(template, "AWS::SageMaker::EndpointConfig")
        props = config["Properties"]
        (variant,) = props["ProductionVariants"]
        assert variant["ModelDataDownloadTimeoutInSeconds"] == download_timeout
        assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] >= 600
        assert variant["InitialInstanceCount"] == 1
        # g5 has local NVMe: SageMaker rejects both settings there.
        assert "VolumeSizeInGB" not in variant
        assert "KmsKeyId" not in props
        async_config = props["AsyncInferenceConfig"]
        assert async_config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 1}
        output = async_config["OutputConfig"]
        assert "async-output/" in json.dumps(output["S3OutputPath"])
        assert "async-failure/" in json.dumps(output["S3FailurePath"])
        topics = {t["Ref"] for t in output["NotificationConfig"].values()}
        assert topics == set(template.find_resources("AWS::SNS::Topic"))
    _only(dev, "AWS::SageMaker::Endpoint")


def test_instance_without_nvme_gets_an_encrypted_volume(synth: Synth) -> None:
    template = synth(
        {"cpu": {"model_id": "facebook/musicgen-medium", "instance_type": "ml.m5.2xlarge"}}
    )["MusicGen-cpu"]
    _, config = _only(template, "AWS::SageMaker::EndpointConfig")
    assert config["Properties"]["ProductionVariants"][0]["VolumeSizeInGB"] == 60
    key_id, _ = _by_logical_prefix(template, "AWS::KMS::Key", "EndpointVolumeKey")
    assert config["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert "-cpu-py312" in json.dumps(template.to_json()["Mappings"])


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


# --- scale to zero -------------------------------------------------------------------------------


def test_scalable_target_goes_to_zero(dev: Template, prod: Template) -> None:
    for template, maximum in ((dev, 1), (prod, 4)):
        _, target = _only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
        props = target["Properties"]
        assert (props["MinCapacity"], props["MaxCapacity"]) == (0, maximum)
        assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        assert props["ServiceNamespace"] == "sagemaker"
        assert props["ResourceId"]["Fn::Join"][1][-1] == "/variant/AllTraffic"


def test_target_tracking_on_backlog_per_instance_by_endpoint_name(prod: Template) -> None:
    endpoint_id, _ = _only(prod, "AWS::SageMaker::Endpoint")
    _, policy = _only(
        prod,
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"Properties": {"PolicyType": "TargetTrackingScaling"}},
    )
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metric = config["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Namespace"] == "AWS/SageMaker"
    assert metric["Dimensions"] == [
        {"Name": "EndpointName", "Value": {"Fn::GetAtt": [endpoint_id, "EndpointName"]}}
    ]
    assert config["TargetValue"] == 2
    assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (900, 60)


def test_backlog_without_capacity_alarm_drives_a_plus_one_step(dev: Template) -> None:
    step_id, step = _only(
        dev,
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"Properties": {"PolicyType": "StepScaling"}},
    )
    step_config = step["Properties"]["StepScalingPolicyConfiguration"]
    assert step_config["AdjustmentType"] == "ChangeInCapacity"
    assert step_config["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    _, alarm = _only(
        dev, "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "HasBacklogWithoutCapacity"}}
    )
    props = alarm["Properties"]
    assert props["Namespace"] == "AWS/SageMaker"
    assert [d["Name"] for d in props["Dimensions"]] == ["EndpointName"]
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["AlarmActions"] == [{"Ref": step_id}]


def test_never_scales_on_invocations_per_instance(dev: Template, prod: Template) -> None:
    """Async endpoints do not publish it: a policy on it would never scale."""
    for template in (dev, prod):
        for policy in template.find_resources(
            "AWS::ApplicationAutoScaling::ScalingPolicy"
        ).values():
            text = json.dumps(policy)
            assert '"InvocationsPerInstance"' not in text
            assert "SageMakerVariantInvocationsPerInstance" not in text


# --- monitoring ----------------------------------------------------------------------------------


def test_dashboard_shows_the_queue_and_the_fleet(dev: Template) -> None:
    _, dashboard = _only(dev, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "ApproximateBacklogSize",
        "ApproximateAgeOfOldestRequest",
        "TotalProcessingTime",
        "InvocationFailures",
        "CPUUtilization",
        "HasBacklogWithoutCapacity",
    ):
        assert metric in body, metric


@pytest.mark.parametrize(
    ("metric", "threshold"),
    [("InvocationFailures", 1), ("ApproximateAgeOfOldestRequest", 1800)],
)
def test_alarms_notify_the_error_topic(dev: Template, metric: str, threshold: int) -> None:
    error_topic, _ = _by_logical_prefix(dev, "AWS::SNS::Topic", "NotificationsErrorTopic")
    _, alarm = _only(dev, "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": metric}})
    assert alarm["Properties"]["Threshold"] == threshold
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": error_topic}]


# --- IAM -----------------------------------------------------------------------------------------


def _statements(template: Template, policy_prefix: str) -> list[dict]:
    _, policy = _by_logical_prefix(template, "AWS::IAM::Policy", policy_prefix)
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_execution_role_is_assumed_by_sagemaker_without_managed_policies(dev: Template) -> None:
    _, role = _by_logical_prefix(dev, "AWS::IAM::Role", "EndpointExecutionRole")
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]


def test_execution_policy_is_least_privilege(dev: Template) -> None:
    statements = {s["Sid"]: s for s in _statements(dev, "EndpointExecutionPolicy")}
    for statement in statements.values():
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action}"
    resource_star = {sid for sid, s in statements.items() if "*" in _as_list(s["Resource"])}
    assert resource_star == {"AuthenticateToRegistry", "PublishMetrics"}
    assert _as_list(statements["AuthenticateToRegistry"]["Action"]) == ["ecr:GetAuthorizationToken"]
    assert statements["PublishMetrics"]["Condition"]

    def object_suffixes(sid: str) -> list[str]:
        return [
            json.dumps(r).split("/", 1)[1].rstrip('"]}')
            for r in _as_list(statements[sid]["Resource"])
        ]

    assert object_suffixes("ReadModel") == ["packages/facebook/musicgen-small/*"]
    assert object_suffixes("ReadRequests") == ["async-input/*"]
    assert sorted(object_suffixes("WriteResults")) == ["async-failure/*", "async-output/*"]
    assert _as_list(statements["ReadRequests"]["Action"]) == ["s3:GetObject"]
    assert sorted(_as_list(statements["WriteResults"]["Action"])) == [
        "s3:AbortMultipartUpload",
        "s3:PutObject",
    ]
    topics = {t["Ref"] for t in _as_list(statements["PublishResults"]["Resource"])}
    assert topics == set(dev.find_resources("AWS::SNS::Topic"))
    assert "huggingface-pytorch-inference" in json.dumps(statements["PullImage"]["Resource"])


def test_no_policy_in_the_stack_grants_a_wildcard_action(dev: Template, prod: Template) -> None:
    for template in (dev, prod):
        for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                for action in _as_list(statement["Action"]):
                    assert "*" not in action, f"{logical_id}: {action}"


# --- outputs -------------------------------------------------------------------------------------


def test_outputs_give_a_client_everything_it_needs(dev: Template) -> None:
    outputs = dev.to_json()["Outputs"]
    assert set(outputs) == {
        "EndpointName",
        "InputS3Uri",
        "OutputS3Uri",
        "FailureS3Uri",
        "SuccessTopicArn",
        "ErrorTopicArn",
        "ModelCommit",
        "MaxDurationSeconds",
    }
    endpoint_id, _ = _only(dev, "AWS::SageMaker::Endpoint")
    assert outputs["EndpointName"]["Value"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert "async-input/" in json.dumps(outputs["InputS3Uri"]["Value"])
    assert outputs["MaxDurationSeconds"]["Value"] == "30"
    assert "Fn::GetAtt" in outputs["ModelCommit"]["Value"]
