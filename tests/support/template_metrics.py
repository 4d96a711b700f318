"""Every CloudWatch metric a synthesized template reads: alarms, dashboards, scaling policies.

Each is returned as it stands in the template (namespace, name, dimension name -> value
expression, statistic), so a test can hold it against `constructs_lib.endpoint_metrics.METRICS`.
A metric form this module does not know fails the test rather than being skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from constructs_lib.endpoint_metrics import METRICS


@dataclass(frozen=True)
class UsedMetric:
    where: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, Any]
    statistic: str


def _of_type(template: Mapping[str, Any], kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (logical_id, resource["Properties"])
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    ]


def _dimensions(listed: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in listed}


def _single(where: str, spec: Mapping[str, Any], statistic: str) -> UsedMetric:
    """A metric written inline: `Namespace`, `MetricName`, `Dimensions`."""
    dimensions = _dimensions(spec.get("Dimensions", []))
    return UsedMetric(where, spec["Namespace"], spec["MetricName"], dimensions, statistic)


def _metric_stats(where: str, queries: list[Mapping[str, Any]]) -> list[UsedMetric]:
    """The `MetricStat` queries of a metric-math alarm or scaling policy; expressions only
    combine them."""
    found = []
    for query in queries:
        if "MetricStat" not in query:
            assert "Expression" in query, f"{where}: unknown metric query {query}"
            continue
        stat = query["MetricStat"]
        metric = stat["Metric"]
        found.append(
            UsedMetric(
                where,
                metric["Namespace"],
                metric["MetricName"],
                _dimensions(metric.get("Dimensions", [])),
                stat["Stat"],
            )
        )
    return found


def alarm_metrics(template: Mapping[str, Any]) -> list[UsedMetric]:
    found = []
    for alarm_id, alarm in _of_type(template, "AWS::CloudWatch::Alarm"):
        where = f"alarm {alarm_id}"
        if "Metrics" in alarm:
            found.extend(_metric_stats(where, alarm["Metrics"]))
            continue
        found.append(_single(where, alarm, alarm.get("Statistic", alarm.get("ExtendedStatistic"))))
    return found


def scaling_metrics(template: Mapping[str, Any]) -> list[UsedMetric]:
    found = []
    for policy_id, policy in _of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy"):
        where = f"scaling policy {policy_id}"
        tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
        if tracking is None:
            continue
        assert "PredefinedMetricSpecification" not in tracking, (
            f"{where}: a predefined metric ({tracking['PredefinedMetricSpecification']}) "
            "is per-invocation, never published for async endpoints"
        )
        spec = tracking["CustomizedMetricSpecification"]
        if "Metrics" in spec:
            found.extend(_metric_stats(where, spec["Metrics"]))
            continue
        found.append(_single(where, spec, spec["Statistic"]))
    return found


def dashboard_body(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parsed body of a dashboard, with each token it joins in as a placeholder string,
    and the placeholders' expressions."""
    if isinstance(body, str):
        return json.loads(body), {}
    parts = body["Fn::Join"][1]
    tokens = {f"@@token{index}@@": part for index, part in enumerate(parts)}
    text = "".join(
        part if isinstance(part, str) else f"@@token{index}@@" for index, part in enumerate(parts)
    )
    return json.loads(text), tokens


def dashboard_metrics(template: Mapping[str, Any]) -> list[UsedMetric]:
    found = []
    for dashboard_id, dashboard in _of_type(template, "AWS::CloudWatch::Dashboard"):
        body, tokens = dashboard_body(dashboard["DashboardBody"])
        for widget in body["widgets"]:
            properties = widget["properties"]
            where = f"dashboard {dashboard_id} widget {properties.get('title')!r}"
            for line in properties.get("metrics", []):
                *names, options = line if isinstance(line[-1], dict) else [*line, {}]
                assert "expression" not in options and len(names) % 2 == 0, f"{where}: {line}"
                namespace, metric_name, *pairs = names
                dimensions = {
                    pairs[i]: tokens.get(pairs[i + 1], pairs[i + 1])
                    for i in range(0, len(pairs), 2)
                }
                # CloudWatch's default statistic for a graph is Average.
                statistic = options.get("stat", properties.get("stat", "Average"))
                found.append(UsedMetric(where, namespace, metric_name, dimensions, statistic))
    return found


def every_metric(template: Mapping[str, Any]) -> list[UsedMetric]:
    return [*alarm_metrics(template), *dashboard_metrics(template), *scaling_metrics(template)]


def table_mismatches(metric: UsedMetric, *, endpoint_name: Any, variant_name: Any) -> list[str]:
    """How `metric` differs from its row of METRICS, and from the endpoint it should watch."""
    spec = METRICS.get(metric.metric_name)
    label = f"{metric.where}: {metric.metric_name}"
    if spec is None:
        return [f"{label} is not in endpoint_metrics.METRICS"]
    problems = []
    if metric.namespace != spec.namespace:
        problems.append(f"{label} namespace {metric.namespace}, published in {spec.namespace}")
    if sorted(metric.dimensions) != sorted(spec.dimensions):
        problems.append(
            f"{label} dimensions {sorted(metric.dimensions)}, published with "
            f"{sorted(spec.dimensions)}"
        )
    if metric.statistic != spec.statistic:
        problems.append(f"{label} statistic {metric.statistic}, the table says {spec.statistic}")
    expected = {"EndpointName": endpoint_name, "VariantName": variant_name}
    for name, value in metric.dimensions.items():
        if name in expected and value != expected[name]:
            problems.append(f"{label} {name}={value}, the endpoint's is {expected[name]}")
    return problems
