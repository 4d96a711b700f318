"""EndpointMonitoring on an AsyncEndpoint in a bare stack: alarms and the dashboard."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from constructs_lib.endpoint_metrics import METRICS
from constructs_lib.endpoint_monitoring import EndpointMonitoring
from tests.support.template_metrics import dashboard_body, every_metric, table_mismatches
from tests.unit.constructs_lib.conftest import EndpointFactory


def _monitored(endpoint_factory: EndpointFactory, oldest_seconds: int = 1800) -> dict[str, Any]:
    stack = Stack()
    EndpointMonitoring(
        stack,
        "Monitoring",
        endpoint=endpoint_factory(stack),
        error_topic=sns.Topic(stack, "Alarms"),
        oldest_request_alarm_seconds=oldest_seconds,
    )
    return Template.from_stack(stack).to_json()


def _ids(template: dict[str, Any], kind: str) -> list[str]:
    return sorted(k for k, v in template["Resources"].items() if v["Type"] == kind)


def _endpoint_name(template: dict[str, Any]) -> dict[str, Any]:
    (endpoint_id,) = _ids(template, "AWS::SageMaker::Endpoint")
    return {"Fn::GetAtt": [endpoint_id, "EndpointName"]}


def _alarm(template: dict[str, Any], metric_name: str) -> dict[str, Any]:
    (alarm,) = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"]["MetricName"] == metric_name
    ]
    return alarm


@pytest.mark.parametrize("oldest_seconds", [1800, 600])
def test_alarms_notify_the_error_topic_with_their_exact_settings(
    endpoint_factory: EndpointFactory, oldest_seconds: int
) -> None:
    """Five-minute periods, one breaching period, no data is not a breach (an idle endpoint
    publishes nothing), and only the error topic is told."""
    template = _monitored(endpoint_factory, oldest_seconds)
    endpoint = _endpoint_name(template)
    alarm_topic = {
        "Ref": next(i for i in _ids(template, "AWS::SNS::Topic") if i.startswith("Alarms"))
    }
    common = {
        "Namespace": "AWS/SageMaker",
        "Period": 300,
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [alarm_topic],
    }
    failures = _alarm(template, "InvocationFailures")
    assert failures.pop("AlarmDescription") == (
        "MusicGen requests failed (see the async-failure/ prefix)"
    )
    assert failures == {
        **common,
        "MetricName": "InvocationFailures",
        "Dimensions": [
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        "Statistic": "Sum",
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    oldest = _alarm(template, "ApproximateAgeOfOldestRequest")
    assert oldest.pop("AlarmDescription") == (
        f"A request has waited more than {oldest_seconds} s: the endpoint is not keeping up or "
        "cannot start an instance"
    )
    assert oldest == {
        **common,
        "MetricName": "ApproximateAgeOfOldestRequest",
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
        "Statistic": "Maximum",
        "Threshold": oldest_seconds,
        "ComparisonOperator": "GreaterThanThreshold",
    }


def test_alarms_and_dashboard_keep_their_logical_ids(endpoint_factory: EndpointFactory) -> None:
    """The ids name the alarms (and so the subject of every alarm e-mail)."""
    template = _monitored(endpoint_factory)
    alarms = _ids(template, "AWS::CloudWatch::Alarm")
    assert [alarm.rstrip("0123456789ABCDEF") for alarm in alarms] == [
        "MonitoringInvocationFailures",
        "MonitoringOldestRequestAge",
    ]
    (dashboard,) = _ids(template, "AWS::CloudWatch::Dashboard")
    assert dashboard.startswith("MonitoringDashboard")


def test_every_metric_has_the_dimensions_and_statistic_of_the_table(
    endpoint_factory: EndpointFactory,
) -> None:
    template = _monitored(endpoint_factory)
    metrics = every_metric(template)
    assert len(metrics) == 11  # two alarms, nine graphed metrics
    problems = [
        problem
        for metric in metrics
        for problem in table_mismatches(
            metric, endpoint_name=_endpoint_name(template), variant_name="AllTraffic"
        )
    ]
    assert problems == []


def _layout(template: dict[str, Any]) -> tuple[str, list[tuple[Any, ...]]]:
    """The dashboard's time range, and per widget its place, title and lines."""
    (dashboard_id,) = _ids(template, "AWS::CloudWatch::Dashboard")
    body, tokens = dashboard_body(
        template["Resources"][dashboard_id]["Properties"]["DashboardBody"]
    )
    widgets = []
    for widget in body["widgets"]:
        properties = widget["properties"]
        lines = [
            (line[1], line[-1].get("label"), line[-1].get("yAxis", "left"), line[-1]["period"])
            for line in properties.get("metrics", [])
        ]
        alarms = [tokens[alarm]["Fn::GetAtt"][0] for alarm in properties.get("alarms", [])]
        widgets.append(
            (
                widget["type"],
                (widget["x"], widget["y"], widget["width"], widget["height"]),
                properties["title"],
                lines or alarms,
            )
        )
    return body["start"], widgets


def test_dashboard_shows_the_queue_the_fleet_and_the_alarms(
    endpoint_factory: EndpointFactory,
) -> None:
    """Two rows of three equal widgets over the 24-column grid, the last three hours."""
    template = _monitored(endpoint_factory)
    start, widgets = _layout(template)
    assert start == "-PT3H"
    failures_alarm, oldest_alarm = _ids(template, "AWS::CloudWatch::Alarm")
    assert widgets == [
        (
            "metric",
            (0, 0, 8, 6),
            "Backlog",
            [
                ("ApproximateBacklogSize", "Queued requests", "left", 60),
                ("ApproximateBacklogSizePerInstance", "Queued per instance", "left", 60),
            ],
        ),
        (
            "metric",
            (8, 0, 8, 6),
            "Age of oldest request",
            [("ApproximateAgeOfOldestRequest", "Age of oldest request (s)", "left", 60)],
        ),
        (
            "metric",
            (16, 0, 8, 6),
            "Instances",
            [
                ("CPUUtilization", "Instances reporting", "left", 60),
                ("HasBacklogWithoutCapacity", "Backlog without capacity", "right", 60),
            ],
        ),
        (
            "metric",
            (0, 6, 8, 6),
            "Processing time",
            [
                ("TotalProcessingTime", "Total processing time (ms)", "left", 60),
                ("TimeInBacklog", "Time in backlog (ms)", "left", 60),
            ],
        ),
        (
            "metric",
            (8, 6, 8, 6),
            "Invocations",
            [
                ("InvocationsProcessed", "Processed invocations", "left", 60),
                ("InvocationFailures", "Failed invocations", "right", 60),
            ],
        ),
        ("alarm", (16, 6, 8, 3), "Alarms", [failures_alarm, oldest_alarm]),
    ]


def test_dashboard_graphs_every_metric_of_the_table(endpoint_factory: EndpointFactory) -> None:
    _, widgets = _layout(_monitored(endpoint_factory))
    graphed = [line[0] for kind, _, _, lines in widgets if kind == "metric" for line in lines]
    assert sorted(graphed) == sorted(METRICS)
