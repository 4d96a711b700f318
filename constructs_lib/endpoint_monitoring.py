"""Dashboard and alarms for the async endpoint."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from constructs_lib.async_endpoint import AsyncEndpoint

ALARM_PERIOD = Duration.minutes(5)


class EndpointMonitoring(Construct):
    """A dashboard of the queue and the fleet, and alarms that notify the error topic.

    Props: `endpoint` (the AsyncEndpoint), `error_topic` (alarm actions), and
    `oldest_request_alarm_seconds` (how long a request may wait before the age alarm fires).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: AsyncEndpoint,
        error_topic: sns.ITopic,
        oldest_request_alarm_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        metric = endpoint.metric
        backlog = metric("ApproximateBacklogSize", label="Queued requests")
        backlog_per_instance = metric(
            "ApproximateBacklogSizePerInstance", label="Queued per instance"
        )
        oldest = metric("ApproximateAgeOfOldestRequest", label="Age of oldest request (s)")
        without_capacity = metric("HasBacklogWithoutCapacity", label="Backlog without capacity")
        failures = metric("InvocationFailures", label="Failed invocations")
        processed = metric("InvocationsProcessed", label="Processed invocations")
        processing_time = metric("TotalProcessingTime", label="Total processing time (ms)")
        time_in_backlog = metric("TimeInBacklog", label="Time in backlog (ms)")
        instances = endpoint.metric_instances_reporting(label="Instances reporting")

        self.failures_alarm = cloudwatch.Alarm(
            self,
            "InvocationFailures",
            alarm_description="MusicGen requests failed (see the async-failure/ prefix)",
            metric=metric("InvocationFailures", period=ALARM_PERIOD),
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
            metric=metric("ApproximateAgeOfOldestRequest", period=ALARM_PERIOD),
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
