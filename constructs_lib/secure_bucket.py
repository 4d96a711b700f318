"""An S3 bucket with the settings every bucket of this app needs."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

ABORT_INCOMPLETE_UPLOADS_AFTER = Duration.days(7)


class SecureBucket(Construct):
    """SSE, no public access, TLS-only policy, access logs, and lifecycle expiry of given prefixes.

    `expiring_prefixes` are removed `retention_days` after creation; incomplete multipart uploads
    are always aborted after a week, because a failed staging or client upload would otherwise
    be billed forever.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs_bucket: s3.IBucket,
        access_logs_prefix: str,
        destroy_on_delete: bool = False,
        expiring_prefixes: Sequence[str] = (),
        retention_days: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if expiring_prefixes and retention_days is None:
            raise ValueError("retention_days is required with expiring_prefixes")
        rules = [
            s3.LifecycleRule(abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER)
        ]
        rules += [
            s3.LifecycleRule(prefix=prefix, expiration=Duration.days(retention_days or 0))
            for prefix in expiring_prefixes
        ]
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=access_logs_prefix,
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy_on_delete,
        )
