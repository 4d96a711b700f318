"""ScaleToZero and EndpointMonitoring, each in a bare stack built per test.

Each test builds its own stack (no shared synth), so `make mutation` can tell which tests
exercise these constructs. The values pinned are the DESIGN contract ("Scale to zero", the
async metric dimensions), not a snapshot.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from constructs_lib.endpoint_monitoring import EndpointMonitoring
from constructs_lib.scale_to_zero import ScaleToZero

ENDPOINT = "musicgen-test"
VARIANT = "AllTraffic"
ENDPOINT_ONLY = [{"Name": "EndpointName", "Value": ENDPOINT}]


def scaling_template(**overrides: Any) -> Template:
    stack = cdk.Stack(cdk.App(), "Scaling")
    props: dict[str, Any] = {
        "endpoint_name": ENDPOINT,
        "variant_name": VARIANT,
        "min_instances": 0,
        "max_instances": 3,
        "backlog_per_instance_target": 2.5,
        "scale_in_cooldown_seconds": 600,
        "scale_out_cooldown_seconds": 120,
        **overrides,
    }
    ScaleToZero(stack, "Scaling", **props)
    return Template.from_stack(stack)


def monitoring_template(oldest_request_alarm_seconds: int = 900) -> Template:
    stack = cdk.Stack(cdk.App(), "Monitoring")
    topic = sns.Topic(stack, "Errors")
    EndpointMonitoring(
        stack,
        "Monitoring",
        endpoint_name=ENDPOINT,
        variant_name=VARIANT,
        error_topic=topic,
        oldest_request_alarm_seconds=oldest_request_alarm_seconds,
    )
    return Template.from_stack(stack)


def only(template: Template, kind: str, properties: dict[str, Any] | None = None) -> Any:
    found = template.find_resources(kind, {"Properties": properties} if properties else None)
    assert len(found) == 1, f"expected one {kind} matching {properties}, found {len(found)}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource.get("Properties", {})


def test_the_scalable_target_is_the_variant_between_min_and_max() -> None:
    _, target = only(
        scaling_template(min_instances=1, max_instances=5),
        "AWS::ApplicationAutoScaling::ScalableTarget",
    )
    assert target["ServiceNamespace"] == "sagemaker"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/{VARIANT}"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 5)


def test_target_tracking_follows_the_backlog_per_instance() -> None:
    _, policy = only(
        scaling_template(),
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"PolicyType": "TargetTrackingScaling"},
    )
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 2.5
    assert tracking["ScaleInCooldown"] == 600
    assert tracking["ScaleOutCooldown"] == 120
    assert tracking["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": ENDPOINT_ONLY,
        "Statistic": "Average",
    }


def test_a_backlog_without_capacity_alarm_wakes_the_endpoint() -> None:
    template = scaling_template()
    wake_up_id, wake_up = only(
        template, "AWS::ApplicationAutoScaling::ScalingPolicy", {"PolicyType": "StepScaling"}
    )
    steps = wake_up["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert all(step["ScalingAdjustment"] >= 1 for step in steps)
    _, alarm = only(template, "AWS::CloudWatch::Alarm")
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == ENDPOINT_ONLY
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": wake_up_id}]


def test_scaling_never_uses_invocations_per_instance() -> None:
    rendered = str(scaling_template().to_json())
    assert "InvocationsPerInstance" not in rendered


def test_the_oldest_request_alarm_notifies_the_error_topic() -> None:
    template = monitoring_template(oldest_request_alarm_seconds=1234)
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, alarm = only(
        template, "AWS::CloudWatch::Alarm", {"MetricName": "ApproximateAgeOfOldestRequest"}
    )
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == ENDPOINT_ONLY
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 1234
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert "1234 s" in alarm["AlarmDescription"]
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_failure_alarm_fires_on_one_failed_invocation() -> None:
    template = monitoring_template()
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, alarm = only(template, "AWS::CloudWatch::Alarm", {"MetricName": "InvocationFailures"})
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_dashboard_graphs_the_async_metrics() -> None:
    template = monitoring_template()
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    body = str(dashboard["DashboardBody"])
    for metric in (
        "ApproximateBacklogSize",
        "ApproximateBacklogSizePerInstance",
        "ApproximateAgeOfOldestRequest",
        "HasBacklogWithoutCapacity",
        "InvocationFailures",
        "InvocationsProcessed",
        "TotalProcessingTime",
        "TimeInBacklog",
    ):
        assert f'"{metric}"' in body, f"{metric} is not on the dashboard"
