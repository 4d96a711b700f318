"""Autoscaling of an async endpoint between zero and N instances (the AWS-documented recipe)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from constructs import Construct

from constructs_lib.async_endpoint import AsyncEndpoint


class ScaleToZero(Construct):
    """Target tracking on the backlog per instance, plus a wake-up step for a cold endpoint.

    Target tracking cannot leave zero instances (a per-instance metric is undefined there), so a
    `HasBacklogWithoutCapacity` alarm drives a +1 step policy: the first queued request starts
    an instance, and target tracking takes over from one. Async endpoints do not publish
    `InvocationsPerInstance`, so it is never used.

    Props: `endpoint` (the AsyncEndpoint), `min_instances`/`max_instances`, the backlog per
    instance target tracking aims at, and the scale-in / scale-out cooldowns.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: AsyncEndpoint,
        min_instances: int,
        max_instances: int,
        backlog_per_instance_target: float,
        scale_in_cooldown_seconds: int,
        scale_out_cooldown_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = autoscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint.endpoint_name}/variant/{endpoint.variant_name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_instances,
            max_capacity=max_instances,
        )
        self.backlog_metric = endpoint.metric("ApproximateBacklogSizePerInstance")
        self.target.scale_to_track_metric(
            "BacklogTracking",
            target_value=backlog_per_instance_target,
            custom_metric=self.backlog_metric,
            scale_in_cooldown=Duration.seconds(scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(scale_out_cooldown_seconds),
        )
        self.wake_up = autoscaling.StepScalingAction(
            self,
            "WakeUp",
            scaling_target=self.target,
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(scale_out_cooldown_seconds),
        )
        self.wake_up.add_adjustment(adjustment=1, lower_bound=0)
        self.backlog_without_capacity_alarm = cloudwatch.Alarm(
            self,
            "BacklogWithoutCapacity",
            alarm_description="Requests are queued and no instance is running: start one",
            metric=endpoint.metric("HasBacklogWithoutCapacity"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.backlog_without_capacity_alarm.add_alarm_action(
            actions.ApplicationScalingAction(self.wake_up)
        )
