"""Autoscaling of an async endpoint between zero and N instances (the AWS-documented recipe)."""

from __future__ import annotations

import math

from aws_cdk import Aws, Duration
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.async_endpoint import AsyncEndpoint

# Application Auto Scaling's own role for SageMaker variants, created by the service on first use
# (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html):
# naming it keeps CDK from creating a role of its own, which would hold no policy at all.
SERVICE_LINKED_ROLE = (
    "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
# No SageMaker page bounds how long an instance takes to be provisioned before its model download
# starts; this allowance is an assumption (GPU capacity normally arrives within a few minutes).
PROVISIONING_ALLOWANCE = Duration.minutes(10)
# HasBacklogWithoutCapacity is read per minute, and the alarm sees a new instance only in the
# datapoint after the one it came into service in.
WAKE_UP_PERIOD = Duration.minutes(1)
ALARM_LAG_PERIODS = 2


def wake_up_cooldown(instance_startup_limit: Duration) -> Duration:
    """The longest a cold start can keep `HasBacklogWithoutCapacity` in ALARM.

    Provisioning, then the model download and the container's health check (SageMaker fails the
    instance when either timeout runs out, so `instance_startup_limit` bounds both), then the
    alarm's lag.
    """
    return Duration.seconds(
        PROVISIONING_ALLOWANCE.to_seconds()
        + instance_startup_limit.to_seconds()
        + ALARM_LAG_PERIODS * WAKE_UP_PERIOD.to_seconds()
    )


class ScaleToZero(Construct):
    """Target tracking on the backlog per instance, plus a wake-up step for a cold endpoint.

    Target tracking cannot leave zero instances (a per-instance metric is undefined there), so a
    `HasBacklogWithoutCapacity` alarm drives a +1 step policy: the first queued request starts
    an instance, and target tracking takes over from one. Async endpoints do not publish
    `InvocationsPerInstance`, so it is never used.

    The wake-up adds one instance per cold start, never more: CloudWatch repeats an Auto Scaling
    action every period the alarm stays in ALARM
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html), and the
    alarm stays there until the new instance is in service. After a step scaling policy scales
    out, it "won't increase the desired capacity again unless either a larger scale out is
    triggered or the cooldown period ends"
    (https://docs.aws.amazon.com/autoscaling/application/userguide/step-scaling-policy-overview.html#step-scaling-cooldown);
    with one +1 step nothing larger exists, and the cooldown outlasts the longest cold start the
    endpoint allows (`wake_up_cooldown`). `ChangeInCapacity` only ever adds, so a scale-out that
    target tracking made meanwhile is kept (an `ExactCapacity` of 1 repeated each minute would
    set it back to one). `MinAdjustmentMagnitude` applies to `PercentChangeInCapacity` only
    (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_StepScalingPolicyConfiguration.html)
    and stays unset. The cost: within that cooldown the wake-up cannot start a second instance,
    so a request that arrives after the endpoint has already scaled back to zero waits for the
    cooldown to end (README "Cost and cold starts").

    Props: `endpoint` (the AsyncEndpoint), `min_instances`/`max_instances`, the backlog per
    instance target tracking aims at, and target tracking's scale-in / scale-out cooldowns.
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
            role=iam.Role.from_role_arn(
                self,
                "ServiceLinkedRole",
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:{SERVICE_LINKED_ROLE}",
                mutable=False,
            ),
        )
        self.backlog_metric = endpoint.metric("ApproximateBacklogSizePerInstance")
        self.target.scale_to_track_metric(
            "BacklogTracking",
            target_value=backlog_per_instance_target,
            custom_metric=self.backlog_metric,
            scale_in_cooldown=Duration.seconds(scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(scale_out_cooldown_seconds),
        )
        self.wake_up_cooldown = wake_up_cooldown(endpoint.instance_startup_limit)
        self.wake_up = autoscaling.StepScalingAction(
            self,
            "WakeUp",
            scaling_target=self.target,
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=self.wake_up_cooldown,
        )
        self.wake_up.add_adjustment(adjustment=1, lower_bound=0)
        # One breaching minute is enough: the cooldown, not the datapoints, bounds what the
        # wake-up adds. No datapoint (nothing published) means no request is waiting.
        self.backlog_without_capacity_alarm = cloudwatch.Alarm(
            self,
            "BacklogWithoutCapacity",
            alarm_description=(
                "Requests are queued and no instance is running: add one instance, at most one "
                f"per {math.ceil(self.wake_up_cooldown.to_seconds() / 60)} minutes (the longest "
                "cold start)"
            ),
            metric=endpoint.metric("HasBacklogWithoutCapacity", period=WAKE_UP_PERIOD),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.backlog_without_capacity_alarm.add_alarm_action(
            actions.ApplicationScalingAction(self.wake_up)
        )
