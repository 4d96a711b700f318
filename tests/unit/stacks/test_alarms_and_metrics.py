"""The shipped stacks in a real account: every metric they read is one SageMaker publishes, and
every principal that publishes to a topic is allowed by its topic policy and its key policy."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.support.iam_evaluation import alarm_publishers, endpoint_publishers, publish_refusals
from tests.support.template_metrics import (
    alarm_metrics,
    dashboard_metrics,
    every_metric,
    scaling_metrics,
    table_mismatches,
)

SHIPPED = ["dev", "prod"]


def _template(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    template: Template = request.getfixturevalue(name)
    return template.to_json()


def _only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in template["Resources"].items() if v["Type"] == kind]
    return found


@pytest.mark.parametrize("environment", SHIPPED)
def test_every_metric_has_the_dimensions_sagemaker_publishes(
    request: pytest.FixtureRequest, environment: str
) -> None:
    template = _template(request, environment)
    endpoint_id, _ = _only(template, "AWS::SageMaker::Endpoint")
    _, config = _only(template, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["Properties"]["ProductionVariants"]
    # Each source is read: two monitoring alarms and the wake-up alarm, nine graphed metrics,
    # and the backlog target tracking.
    assert len(alarm_metrics(template)) >= 3
    assert len(dashboard_metrics(template)) == 9
    assert len(scaling_metrics(template)) >= 1
    problems = [
        problem
        for metric in every_metric(template)
        for problem in table_mismatches(
            metric,
            endpoint_name={"Fn::GetAtt": [endpoint_id, "EndpointName"]},
            variant_name=variant["VariantName"],
        )
    ]
    assert problems == []


@pytest.mark.parametrize("environment", SHIPPED)
def test_every_publisher_is_allowed_by_topic_policy_and_key_policy(
    request: pytest.FixtureRequest, environment: str
) -> None:
    """CloudWatch for each alarm that notifies a topic, the endpoint's role for its results."""
    template = _template(request, environment)
    alarms = alarm_publishers(template)
    endpoint = endpoint_publishers(template)
    assert len(alarms) >= 2
    assert len(endpoint) == 2
    refusals = [refusal for p in alarms + endpoint for refusal in publish_refusals(template, p)]
    assert refusals == []
