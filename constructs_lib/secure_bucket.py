"""An S3 bucket with the settings every bucket of this app needs, and grants on key prefixes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib.nag_acknowledgements import acknowledge, acknowledge_on_grantee, arn_in_finding

ABORT_INCOMPLETE_UPLOADS_AFTER = Duration.days(7)
_LOG_TARGET_REASON = "This is the server-access-log target; logging it would recurse."
_NIST_BUCKET_FINDINGS = {
    "NIST.800.53.R5-S3BucketReplicationEnabled": (
        "Objects here expire (requests and results after output_retention_days, access logs "
        "after a year) or are re-staged from their pinned Hub commit; a replica would copy "
        "prompts and audio to a second region outside these expiry rules."
    ),
    "NIST.800.53.R5-S3BucketVersioningEnabled": (
        "Versioning would keep deleted prompts and audio as noncurrent versions past the "
        "expiry this bucket enforces; model prefixes are written once per commit and code hash, "
        "never overwritten, and a manifest written last marks them complete."
    ),
    "NIST.800.53.R5-S3DefaultEncryptionKMS": (
        "Encrypted at rest with SSE-S3 (AES-256), TLS-only by policy; a customer key would have "
        "to be granted to every SDK client that uploads requests or reads results, and to "
        "SageMaker and log delivery, for no stronger boundary than the bucket policy."
    ),
}


@dataclass(frozen=True)
class ServerAccessLogs:
    """Where a bucket's S3 server access logs go."""

    bucket: s3.IBucket
    prefix: str


class SecureBucket(Construct):
    """SSE, no public access, TLS-only policy, access logs, and lifecycle expiry of given prefixes.

    Props:
        access_logs: where this bucket's server access logs go; `None` makes this bucket the
            access-log target itself (its own access is not logged, which would recurse, and
            everything in it expires after `retention_days`).
        destroy_on_delete: delete the bucket and its objects with the stack (else retained).
        expiring_prefixes: key prefixes whose objects expire `retention_days` after creation.
        retention_days: see `expiring_prefixes` and `access_logs`.

    Incomplete multipart uploads are always aborted after a week, because a failed staging or
    client upload would otherwise be billed forever (log delivery does not upload in parts).

    Grants (each statement names exactly the given key pattern; no `s3:List*`/`s3:GetBucket*`):
        grant_read_objects, grant_list_objects, grant_write_objects.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs: ServerAccessLogs | None,
        destroy_on_delete: bool = False,
        expiring_prefixes: Sequence[str] = (),
        retention_days: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if (expiring_prefixes or access_logs is None) and retention_days is None:
            raise ValueError("retention_days is required with expiring_prefixes or as log target")
        expire = Duration.days(retention_days or 0)
        if access_logs is None:
            rules = [s3.LifecycleRule(expiration=expire)]
        else:
            rules = [
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER
                ),
                *(
                    s3.LifecycleRule(prefix=prefix, expiration=expire)
                    for prefix in expiring_prefixes
                ),
            ]
        self.bucket = s3.Bucket(
            self,
            # `Default` makes the log target's bucket this construct's default child: it keeps the
            # logical id (of bucket and policy) that a bucket at the construct's own path has.
            "Default" if access_logs is None else "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=(
                s3.ObjectOwnership.BUCKET_OWNER_PREFERRED
                if access_logs is None
                else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED
            ),
            server_access_logs_bucket=access_logs.bucket if access_logs else None,
            server_access_logs_prefix=access_logs.prefix if access_logs else None,
            lifecycle_rules=rules,
            removal_policy=RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy_on_delete,
        )
        acknowledge(self, _NIST_BUCKET_FINDINGS)
        if access_logs is None:
            acknowledge(self, {"AwsSolutions-S1": _LOG_TARGET_REASON})

    def s3_url(self, prefix: str) -> str:
        """`s3://<bucket>/<prefix>`."""
        return self.bucket.s3_url_for_object(prefix)

    def grant_read_objects(
        self, grantee: iam.IGrantable, key_pattern: str, *, sid: str, reason: str
    ) -> None:
        """`s3:GetObject` on the keys matching `key_pattern`; `reason` says why its `*` is fine."""
        self._grant_objects(grantee, ["s3:GetObject"], [key_pattern], sid=sid, reason=reason)

    def grant_write_objects(
        self, grantee: iam.IGrantable, *key_patterns: str, sid: str, reason: str
    ) -> None:
        """`s3:PutObject` (and aborting its own multipart uploads) under each key pattern."""
        self._grant_objects(
            grantee,
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            key_patterns,
            sid=sid,
            reason=reason,
        )

    def grant_list_objects(self, grantee: iam.IGrantable, key_pattern: str, *, sid: str) -> None:
        """`s3:ListBucket`, limited by condition to keys matching `key_pattern`."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [key_pattern]}},
            )
        )

    def _grant_objects(
        self,
        grantee: iam.IGrantable,
        actions: list[str],
        key_patterns: Sequence[str],
        *,
        sid: str,
        reason: str,
    ) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=actions,
                resources=[self.bucket.arn_for_objects(pattern) for pattern in key_patterns],
            )
        )
        # cdk-nag flags each object wildcard by the bucket's ARN as it prints it.
        arn = arn_in_finding(self.bucket)
        acknowledge_on_grantee(
            grantee,
            {
                f"AwsSolutions-IAM5[Resource::{arn}/{pattern}]": reason
                for pattern in key_patterns
                if "*" in pattern
            },
        )
