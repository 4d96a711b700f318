"""ScaleToZero on an AsyncEndpoint in a bare stack: the AWS-documented scale-from-zero recipe."""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.scale_to_zero import ScaleToZero
from tests.unit.constructs_lib.conftest import EndpointFactory


def _scaled(endpoint_factory: EndpointFactory) -> tuple[Stack, Template]:
    stack = Stack()
    ScaleToZero(
        stack,
        "Scaling",
        endpoint=endpoint_factory(stack),
        min_instances=0,
        max_instances=3,
        backlog_per_instance_target=2.5,
        scale_in_cooldown_seconds=900,
        scale_out_cooldown_seconds=60,
    )
    return stack, Template.from_stack(stack)


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


def test_backlog_without_capacity_alarm_drives_a_plus_one_step(
    endpoint_factory: EndpointFactory,
) -> None:
    _, template = _scaled(endpoint_factory)
    step = Capture()
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "HasBacklogWithoutCapacity",
            "Namespace": "AWS/SageMaker",
            "Statistic": "Average",
            "Period": 60,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": step}],
        },
    )
    steps = template.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "StepScaling"}}
    )
    assert list(steps) == [step.as_string()]
    config = steps[step.as_string()]["Properties"]["StepScalingPolicyConfiguration"]
    assert config["AdjustmentType"] == "ChangeInCapacity"
    assert config["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]


def test_never_scales_on_invocations_per_instance(endpoint_factory: EndpointFactory) -> None:
    """Async endpoints do not publish it: a policy on it would never scale."""
    _, template = _scaled(endpoint_factory)
    text = json.dumps(template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy"))
    assert "InvocationsPerInstance" not in text
