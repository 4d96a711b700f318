"""S3 prefixes outside the stack that an environment lets its endpoint read requests from.

For clients that keep their own upload path (the seed sample uploads to the SageMaker default
bucket): SageMaker reads an async request's `InputLocation` with the endpoint's execution role.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from constructs_lib.nag_acknowledgements import acknowledge_on_grantee

_REASON = (
    "Read-only, one prefix the environment table names for requests its clients upload "
    "outside the stack; clients choose the keys below it."
)


@dataclass(frozen=True)
class ExternalInputLocation:
    """`s3://<bucket>/<prefix>`, and the KMS key its objects are encrypted with, if any."""

    bucket: str
    prefix: str
    kms_key_arn: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def grant_read(self, grantee: iam.IGrantable, *, sid: str) -> None:
        """`s3:GetObject` below the prefix only; `kms:Decrypt` on its key only if one is named.

        The key may be used only through S3 in the stack's region (`kms:ViaService`,
        https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
        No `s3:ListBucket`: SageMaker reads the one object a request names.
        """
        objects = f"arn:{Aws.PARTITION}:s3:::{self.bucket}/{self.prefix}*"
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(sid=sid, actions=["s3:GetObject"], resources=[objects])
        )
        if self.kms_key_arn is not None:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"{sid}Key",
                    actions=["kms:Decrypt"],
                    resources=[self.kms_key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}
                    },
                )
            )
        finding = (
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{self.bucket}/{self.prefix}*]"
        )
        acknowledge_on_grantee(grantee, {finding: _REASON})
