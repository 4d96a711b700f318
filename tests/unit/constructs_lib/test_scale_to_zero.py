"""ScaleToZero on an AsyncEndpoint in a bare stack: the AWS-documented scale-from-zero recipe.

The wake-up must add one instance per cold start and never take one away: its shape (adjustment
type, step, cooldown against the endpoint's own start-up timeouts, alarm evaluation) is what
makes that hold, so each part of it is pinned here.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.scale_to_zero import ScaleToZero, wake_up_cooldown
from tests.unit.constructs_lib.conftest import EndpointFactory

SERVICE_LINKED_ROLE_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":iam::",
            {"Ref": "AWS::AccountId"},
            ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        ],
    ]
}


def _scaling(stack: Stack, endpoint_factory: EndpointFactory, **endpoint: Any) -> ScaleToZero:
    return ScaleToZero(
        stack,
        "Scaling",
        endpoint=endpoint_factory(stack, **endpoint),
        min_instances=0,
        max_instances=3,
        backlog_per_instance_target=2.5,
        scale_in_cooldown_seconds=900,
        scale_out_cooldown_seconds=60,
    )


def _scaled(endpoint_factory: EndpointFactory, **endpoint: Any) -> tuple[Stack, Template]:
    stack = Stack()
    _scaling(stack, endpoint_factory, **endpoint)
    return stack, Template.from_stack(stack)


def _wake_up(template: Template) -> tuple[str, dict[str, Any]]:
    steps = template.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "StepScaling"}}
    )
    assert len(steps) == 1, steps
    logical_id, policy = next(iter(steps.items()))
    return logical_id, policy["Properties"]["StepScalingPolicyConfiguration"]


def _startup_timeouts(template: Template) -> int:
    """Download plus health-check timeout of the one variant, as the EndpointConfig holds them."""
    (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    return int(
        variant["ModelDataDownloadTimeoutInSeconds"]
        + variant["ContainerStartupHealthCheckTimeoutInSeconds"]
    )


def test_scalable_target_is_the_endpoint_variant_from_zero(
    endpoint_factory: EndpointFactory,
) -> None:
    _, template = _scaled(endpoint_factory)
    endpoint_id = Capture()
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 0,
            "MaxCapacity": 3,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ServiceNamespace": "sagemaker",
            "ResourceId": {
                "Fn::Join": [
                    "",
                    [
                        "endpoint/",
                        {"Fn::GetAtt": [endpoint_id, "EndpointName"]},
                        "/variant/AllTraffic",
                    ],
                ]
            },
        },
    )
    assert endpoint_id.as_string() in template.find_resources("AWS::SageMaker::Endpoint")


def test_scalable_target_uses_the_service_linked_role_and_no_role_is_created(
    endpoint_factory: EndpointFactory,
) -> None:
    _, template = _scaled(endpoint_factory)
    (target,) = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["RoleARN"] == SERVICE_LINKED_ROLE_ARN
    trusted = {
        json.dumps(statement["Principal"])
        for role in template.find_resources("AWS::IAM::Role").values()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    }
    # Only the endpoint's execution role: nothing for Application Auto Scaling.
    assert trusted == {json.dumps({"Service": "sagemaker.amazonaws.com"})}


def test_no_grant_can_attach_a_policy_to_the_service_linked_role(
    endpoint_factory: EndpointFactory,
) -> None:
    """IAM refuses policies on service-linked roles: such a policy would fail the deploy."""
    stack = Stack()
    scaling = _scaling(stack, endpoint_factory)
    scaling.target.add_to_role_policy(
        iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=["*"])
    )
    attached = {
        json.dumps(role)
        for policy in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
        for role in policy["Properties"]["Roles"]
    }
    assert "AWSServiceRoleForApplicationAutoScaling" not in "".join(attached)
    assert all("EndpointExecutionRole" in role for role in attached), attached


def test_target_tracking_on_backlog_per_instance(endpoint_factory: EndpointFactory) -> None:
    _, template = _scaled(endpoint_factory)
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 2.5,
                "ScaleInCooldown": 900,
                "ScaleOutCooldown": 60,
                "CustomizedMetricSpecification": {
                    "MetricName": "ApproximateBacklogSizePerInstance",
                    "Namespace": "AWS/SageMaker",
                    "Statistic": "Average",
                    "Dimensions": [{"Name": "EndpointName", "Value": Match.any_value()}],
                },
            },
        },
    )


def test_wake_up_only_adds_one_instance(endpoint_factory: EndpointFactory) -> None:
    """ChangeInCapacity never lowers what target tracking set; one +1 step, nothing larger."""
    _, template = _scaled(endpoint_factory)
    _, config = _wake_up(template)
    assert config["AdjustmentType"] == "ChangeInCapacity"
    assert config["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    assert "MinAdjustmentMagnitude" not in config


def test_wake_up_cooldown_outlasts_the_endpoints_longest_cold_start(
    endpoint_factory: EndpointFactory,
) -> None:
    """Provisioning (10 min) + download and health-check timeouts + two alarm periods."""
    for download, startup in ((900, 600), (3600, 1200)):
        _, template = _scaled(
            endpoint_factory, download_timeout_seconds=download, startup_timeout_seconds=startup
        )
        _, config = _wake_up(template)
        assert _startup_timeouts(template) == download + startup
        assert config["Cooldown"] == 600 + download + startup + 2 * 60


def test_wake_up_cooldown_counts_provisioning_startup_and_alarm_lag() -> None:
    assert wake_up_cooldown(Duration.seconds(1500)).to_seconds() == 600 + 1500 + 120
    assert wake_up_cooldown(Duration.minutes(80)).to_seconds() == 600 + 4800 + 120


def test_backlog_without_capacity_alarm_fires_the_wake_up_each_breaching_minute(
    endpoint_factory: EndpointFactory,
) -> None:
    _, template = _scaled(endpoint_factory)
    step_id, _ = _wake_up(template)
    alarms = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "HasBacklogWithoutCapacity"}}
    )
    assert len(alarms) == 1, alarms
    (alarm,) = alarms.values()
    properties = alarm["Properties"]
    assert {key: value for key, value in properties.items() if key != "Dimensions"} == {
        "AlarmActions": [{"Ref": step_id}],
        "AlarmDescription": "Requests are queued and no instance is running: add one instance, "
        "at most one per 37 minutes (the longest cold start)",
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "DatapointsToAlarm": 1,
        "EvaluationPeriods": 1,
        "MetricName": "HasBacklogWithoutCapacity",
        "Namespace": "AWS/SageMaker",
        "Period": 60,
        "Statistic": "Average",
        "Threshold": 1,
        "TreatMissingData": "notBreaching",
    }
    (dimension,) = properties["Dimensions"]
    assert dimension["Name"] == "EndpointName"


def test_alarm_description_rounds_the_cooldown_up_to_whole_minutes(
    endpoint_factory: EndpointFactory,
) -> None:
    _, template = _scaled(endpoint_factory, download_timeout_seconds=901)
    (alarm,) = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "HasBacklogWithoutCapacity"}}
    ).values()
    assert "at most one per 38 minutes" in alarm["Properties"]["AlarmDescription"]


def test_scaling_resources_keep_their_logical_ids(endpoint_factory: EndpointFactory) -> None:
    """Construct ids name the logical ids: a renamed construct replaces its resource on deploy."""
    _, template = _scaled(endpoint_factory)
    logical_ids = {
        logical_id.rstrip("0123456789ABCDEF")
        for logical_id, resource in template.to_json()["Resources"].items()
        if resource["Type"].startswith(("AWS::ApplicationAutoScaling", "AWS::CloudWatch::Alarm"))
    }
    assert logical_ids == {
        "ScalingTarget",
        "ScalingTargetBacklogTracking",
        "ScalingWakeUp",
        "ScalingBacklogWithoutCapacity",
    }


def test_never_scales_on_invocations_per_instance(endpoint_factory: EndpointFactory) -> None:
    """Async endpoints do not publish it: a policy on it would never scale."""
    _, template = _scaled(endpoint_factory)
    text = json.dumps(template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy"))
    assert "InvocationsPerInstance" not in text
