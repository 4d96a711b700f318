"""The one table of the CloudWatch metrics this app reads from a SageMaker async endpoint.

Every metric of the dashboard, the alarms and the scaling policies is built from `METRICS`:
its namespace, the dimensions SageMaker publishes it with, and the one statistic it is read by
everywhere. A metric asked for with any other dimension set is never published, and an alarm on
it stays OK forever.

Dimensions: SageMaker's async monitoring page publishes the backlog metrics with `EndpointName`
only, and the per-request metrics with `EndpointName` and `VariantName`:
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html
Statistics: the ones the AWS scale-from-zero recipe uses where it names one:
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html
Instances: no instance-count metric exists for endpoints; each instance reports its CPU
utilisation once a minute, so the sample count stands in for it:
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-troubleshooting.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

ASYNC_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
PERIOD = Duration.minutes(1)
BY_ENDPOINT = ("EndpointName",)
BY_VARIANT = ("EndpointName", "VariantName")


@dataclass(frozen=True)
class MetricSpec:
    namespace: str
    dimensions: tuple[str, ...]
    statistic: str


METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        "ApproximateBacklogSize": MetricSpec(ASYNC_NAMESPACE, BY_ENDPOINT, "Average"),
        "ApproximateBacklogSizePerInstance": MetricSpec(ASYNC_NAMESPACE, BY_ENDPOINT, "Average"),
        "ApproximateAgeOfOldestRequest": MetricSpec(ASYNC_NAMESPACE, BY_ENDPOINT, "Maximum"),
        "HasBacklogWithoutCapacity": MetricSpec(ASYNC_NAMESPACE, BY_ENDPOINT, "Average"),
        "InvocationFailures": MetricSpec(ASYNC_NAMESPACE, BY_VARIANT, "Sum"),
        "InvocationsProcessed": MetricSpec(ASYNC_NAMESPACE, BY_VARIANT, "Sum"),
        "TimeInBacklog": MetricSpec(ASYNC_NAMESPACE, BY_VARIANT, "Average"),
        "TotalProcessingTime": MetricSpec(ASYNC_NAMESPACE, BY_VARIANT, "Average"),
        "CPUUtilization": MetricSpec(INSTANCE_NAMESPACE, BY_VARIANT, "SampleCount"),
    }
)


def endpoint_metric(
    metric_name: str,
    *,
    endpoint_name: str,
    variant_name: str,
    label: str | None = None,
    period: Duration | None = None,
) -> cloudwatch.Metric:
    """`metric_name` of one endpoint variant, with the dimensions and statistic of the table."""
    spec = METRICS.get(metric_name)
    if spec is None:
        raise ValueError(f"metric_name: one of {', '.join(METRICS)} (got {metric_name!r})")
    values = {"EndpointName": endpoint_name, "VariantName": variant_name}
    return cloudwatch.Metric(
        namespace=spec.namespace,
        metric_name=metric_name,
        dimensions_map={name: values[name] for name in spec.dimensions},
        statistic=spec.statistic,
        period=period or PERIOD,
        label=label,
    )
