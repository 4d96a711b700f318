"""Acknowledging cdk-nag findings, each with the reason it is acceptable."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, NagPack, NIST80053R5Checks
from constructs import Construct, IConstruct

# Why a role's policy is inline (NIST.800.53.R5-IAMNoInlinePolicy), for every role of this app.
INLINE_POLICY_REASON = (
    "This policy is written for this one role by the constructs that own its resources (their "
    "grant methods); a managed policy could be attached to other principals, an inline one cannot."
)


def nag_packs(scope: IConstruct) -> list[NagPack]:
    """The cdk-nag rule packs every stack of this app is checked against."""
    return [AwsSolutionsChecks(scope), NIST80053R5Checks(scope)]


def acknowledge(scope: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledge each finding id (e.g. `AwsSolutions-IAM5[Resource::*]`) with its reason.

    The acknowledgement holds for every resource at or below `scope`'s construct path.
    """
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=finding, reason=reason) for finding, reason in findings.items())
    )


def acknowledge_on_grantee(grantee: iam.IGrantable, findings: dict[str, str]) -> None:
    """Acknowledge findings of a grant on the principal's construct (a role and its policies).

    A principal that is no construct of this app (an imported role) has no policy here to flag.
    """
    principal = grantee.grant_principal
    if isinstance(principal, Construct):
        acknowledge(principal, findings)


def arn_in_finding(resource: IConstruct) -> str:
    """How cdk-nag writes `resource`'s ARN (a `Fn::GetAtt`) in a finding id: `<LogicalId.Arn>`."""
    element = resource.node.default_child
    if not isinstance(element, CfnElement):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource of its own")
    return f"<{Stack.of(resource).get_logical_id(element)}.Arn>"
