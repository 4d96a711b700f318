"""Dashboard and alarms for the async endpoint."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

SAGEMAKER = "AWS/SageMaker"
ENDPOINT_INSTANCES = "/aws/sagemaker/Endpoints"
PERIOD = Duration.minutes(1)
ALARM_PERIOD = Duration.minutes(5)


class EndpointMonitoring(Construct):
    """A dashboard of the queue and the fleet, and alarms that notify the error topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        error_topic: sns.ITopic,
        oldest_request_alarm_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)

        def endpoint_metric(
            name: str, statistic: str, label: str | None = None, period: Duration = PERIOD
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=SAGEMAKER,
                metric_name=name,
                dimensions_map={"EndpointName": endpoint_name},
                statistic=statistic,
                period=period,
                label=label,
            )

        backlog = endpoint_metric("ApproximateBacklogSize", "Average", "Queued requests")
        backlog_per_instance = endpoint_metric(
            "ApproximateBacklogSizePerInstance", "Average", "Queued per instance"
        )
        oldest = endpoint_metric(
            "ApproximateAgeOfOldestRequest", "Maximum", "Age of oldest request (s)"
        )
        without_capacity = endpoint_metric(
            "HasBacklogWithoutCapacity", "Maximum", "Backlog without capacity"
        )
        failures = endpoint_metric("InvocationFailures", "Sum", "Failed invocations")
        processed = endpoint_metric("InvocationsProcessed", "Sum", "Processed invocations")
        processing_time = endpoint_metric(
            "TotalProcessingTime", "Average", "Total processing time (ms)"
        )
        time_in_backlog = endpoint_metric("TimeInBacklog", "Average", "Time in backlog (ms)")
        # No instance-count metric exists for endpoints; every running instance reports its
        # CPU utilisation once a minute, so the sample count is the number of instances.
        instances = cloudwatch.Metric(
            namespace=ENDPOINT_INSTANCES,
            metric_name="CPUUtilization",
            dimensions_map={"EndpointName": endpoint_name, "VariantName": variant_name},
            statistic="SampleCount",
            period=PERIOD,
            label="Instances reporting",
        )

        self.failures_alarm = cloudwatch.Alarm(
            self,
            "InvocationFailures",
            alarm_description="MusicGen requests failed (see the async-failure/ prefix)",
            metric=endpoint_metric("InvocationFailures", "Sum", period=ALARM_PERIOD),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.oldest_request_alarm = cloudwatch.Alarm(
            self,
            "OldestRequestAge",
            alarm_description=(
                f"A request has waited more than {oldest_request_alarm_seconds} s: the endpoint "
                "is not keeping up or cannot start an instance"
            ),
            metric=endpoint_metric("ApproximateAgeOfOldestRequest", "Maximum", period=ALARM_PERIOD),
            threshold=oldest_request_alarm_seconds,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.failures_alarm, self.oldest_request_alarm):
            alarm.add_alarm_action(actions.SnsAction(error_topic))

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.hours(3),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Backlog", left=[backlog, backlog_per_instance], width=8
                    ),
                    cloudwatch.GraphWidget(title="Age of oldest request", left=[oldest], width=8),
                    cloudwatch.GraphWidget(
                        title="Instances", left=[instances], right=[without_capacity], width=8
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Processing time", left=[processing_time, time_in_backlog], width=8
                    ),
                    cloudwatch.GraphWidget(
                        title="Invocations", left=[processed], right=[failures], width=8
                    ),
                    cloudwatch.AlarmStatusWidget(
                        title="Alarms",
                        alarms=[self.failures_alarm, self.oldest_request_alarm],
                        width=8,
                    ),
                ],
            ],
        )
