"""EndpointMonitoring on an AsyncEndpoint in a bare stack: alarms and the dashboard."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from constructs_lib.endpoint_metrics import STATISTICS
from constructs_lib.endpoint_monitoring import EndpointMonitoring
from tests.unit.constructs_lib.conftest import EndpointFactory


def _monitored(endpoint_factory: EndpointFactory) -> Template:
    stack = Stack()
    EndpointMonitoring(
        stack,
        "Monitoring",
        endpoint=endpoint_factory(stack),
        error_topic=sns.Topic(stack, "Alarms"),
        oldest_request_alarm_seconds=1800,
    )
    return Template.from_stack(stack)


@pytest.mark.parametrize(
    ("metric", "statistic", "threshold", "operator"),
    [
        ("InvocationFailures", "Sum", 1, "GreaterThanOrEqualToThreshold"),
        ("ApproximateAgeOfOldestRequest", "Maximum", 1800, "GreaterThanThreshold"),
    ],
)
def test_alarms_notify_the_error_topic(
    endpoint_factory: EndpointFactory, metric: str, statistic: str, threshold: int, operator: str
) -> None:
    template = _monitored(endpoint_factory)
    (topic_id,) = [t for t in template.find_resources("AWS::SNS::Topic") if t.startswith("Alarms")]
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": metric,
            "Namespace": "AWS/SageMaker",
            "Statistic": statistic,
            "Period": 300,
            "Threshold": threshold,
            "ComparisonOperator": operator,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": topic_id}],
        },
    )


def _dashboard_metrics(template: Template) -> dict[str, dict[str, object]]:
    """Metric name -> its rendering options, read from the dashboard body."""
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "token" for p in parts))
    found = {}
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            found[line[1]] = line[-1]
    return found


def test_dashboard_shows_the_queue_and_the_fleet(endpoint_factory: EndpointFactory) -> None:
    template = _monitored(endpoint_factory)
    assert set(_dashboard_metrics(template)) == {*STATISTICS, "CPUUtilization"}


def test_dashboard_reads_each_metric_with_the_statistic_scaling_uses(
    endpoint_factory: EndpointFactory,
) -> None:
    """One statistic per metric: the wake-up alarm reads HasBacklogWithoutCapacity as Average."""
    template = _monitored(endpoint_factory)
    for name, options in _dashboard_metrics(template).items():
        expected = STATISTICS.get(name, "SampleCount")
        # The dashboard omits the statistic where it is CloudWatch's default, Average.
        assert options.get("stat", "Average") == expected, name
