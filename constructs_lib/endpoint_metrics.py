"""The one place that builds CloudWatch metrics of a SageMaker async endpoint.

Each metric is read with one statistic everywhere (scaling, alarms, dashboard), the one the AWS
scale-from-zero recipe uses where it names one:
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

ASYNC_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
PERIOD = Duration.minutes(1)
STATISTICS = {
    "ApproximateBacklogSize": "Average",
    "ApproximateBacklogSizePerInstance": "Average",
    "ApproximateAgeOfOldestRequest": "Maximum",
    "HasBacklogWithoutCapacity": "Average",
    "InvocationFailures": "Sum",
    "InvocationsProcessed": "Sum",
    "TimeInBacklog": "Average",
    "TotalProcessingTime": "Average",
}


def async_metric(
    endpoint_name: str,
    metric_name: str,
    *,
    label: str | None = None,
    period: Duration | None = None,
) -> cloudwatch.Metric:
    if metric_name not in STATISTICS:
        raise ValueError(f"metric_name: one of {', '.join(STATISTICS)} (got {metric_name!r})")
    return cloudwatch.Metric(
        namespace=ASYNC_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name},
        statistic=STATISTICS[metric_name],
        period=period or PERIOD,
        label=label,
    )


def instances_reporting_metric(
    endpoint_name: str, variant_name: str, *, label: str | None = None
) -> cloudwatch.Metric:
    """The number of running instances: each reports its CPU utilisation once a minute.

    No instance-count metric exists for endpoints, so the sample count stands in for it.
    """
    return cloudwatch.Metric(
        namespace=INSTANCE_NAMESPACE,
        metric_name="CPUUtilization",
        dimensions_map={"EndpointName": endpoint_name, "VariantName": variant_name},
        statistic="SampleCount",
        period=PERIOD,
        label=label,
    )
