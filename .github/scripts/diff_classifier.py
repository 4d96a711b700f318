"""What a resource change means for the MusicGen stack: is it security-relevant, is it
destructive, and what does a reviewer need to know about it in one line.

Security relevance is decided by what changed, not by words in a name: a resource type that is
itself a permission (a role, a policy, a bucket or topic policy, a KMS key, a security group)
when it is added or removed; otherwise only the listed properties of each type (a policy
document, a trust policy, a key policy, an encryption setting, public access, network access),
and encryption keys changed anywhere inside another property. A scaling policy's
`TargetTrackingScalingPolicyConfiguration` or a role's `Description` is not a permission.
Standard library only.
"""

from __future__ import annotations

from cdk_diff_parser import ResourceChange

IAM_POLICY = "IAM policy"
PRINCIPAL = "principal"
RESOURCE_POLICY = "resource policy"
KEY_POLICY = "key policy"
ENCRYPTION = "encryption"
PUBLIC_ACCESS = "public access"
NETWORK = "network"
SECRET = "secret"

# Adding or removing one of these grants or takes away access by itself.
_SECURITY_RESOURCE_TYPES = {
    "AWS::IAM::Role": PRINCIPAL,
    "AWS::IAM::User": PRINCIPAL,
    "AWS::IAM::Group": PRINCIPAL,
    "AWS::IAM::InstanceProfile": PRINCIPAL,
    "AWS::IAM::Policy": IAM_POLICY,
    "AWS::IAM::ManagedPolicy": IAM_POLICY,
    "AWS::S3::BucketPolicy": RESOURCE_POLICY,
    "AWS::SNS::TopicPolicy": RESOURCE_POLICY,
    "AWS::SQS::QueuePolicy": RESOURCE_POLICY,
    "AWS::Lambda::Permission": RESOURCE_POLICY,
    "AWS::SecretsManager::ResourcePolicy": RESOURCE_POLICY,
    "AWS::KMS::Key": KEY_POLICY,
    "AWS::KMS::Grant": KEY_POLICY,
    "AWS::Lambda::Url": PUBLIC_ACCESS,
    "AWS::EC2::SecurityGroup": NETWORK,
    "AWS::EC2::SecurityGroupIngress": NETWORK,
    "AWS::EC2::SecurityGroupEgress": NETWORK,
    "AWS::SecretsManager::Secret": SECRET,
}
# Every modification of these is about access.
_WHOLLY_SECURITY_TYPES = frozenset(
    {
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::KMS::Grant",
        "AWS::SecretsManager::Secret",
    }
)
_POLICY_ATTACHMENT = {"Roles": PRINCIPAL, "Users": PRINCIPAL, "Groups": PRINCIPAL}
# The properties of other types whose change is security-relevant, and in which respect.
_SECURITY_PROPERTIES: dict[str, dict[str, str]] = {
    "AWS::IAM::Role": {
        "AssumeRolePolicyDocument": PRINCIPAL,
        "Policies": IAM_POLICY,
        "ManagedPolicyArns": IAM_POLICY,
        "PermissionsBoundary": IAM_POLICY,
    },
    "AWS::IAM::User": {
        "Policies": IAM_POLICY,
        "ManagedPolicyArns": IAM_POLICY,
        "PermissionsBoundary": IAM_POLICY,
        "Groups": PRINCIPAL,
    },
    "AWS::IAM::Group": {"Policies": IAM_POLICY, "ManagedPolicyArns": IAM_POLICY},
    "AWS::IAM::InstanceProfile": {"Roles": PRINCIPAL},
    "AWS::IAM::Policy": {"PolicyDocument": IAM_POLICY, **_POLICY_ATTACHMENT},
    "AWS::IAM::ManagedPolicy": {"PolicyDocument": IAM_POLICY, **_POLICY_ATTACHMENT},
    "AWS::S3::BucketPolicy": {"PolicyDocument": RESOURCE_POLICY, "Bucket": RESOURCE_POLICY},
    "AWS::SNS::TopicPolicy": {"PolicyDocument": RESOURCE_POLICY, "Topics": RESOURCE_POLICY},
    "AWS::SQS::QueuePolicy": {"PolicyDocument": RESOURCE_POLICY, "Queues": RESOURCE_POLICY},
    "AWS::SecretsManager::ResourcePolicy": {"ResourcePolicy": RESOURCE_POLICY},
    "AWS::Lambda::Permission": {
        "Action": RESOURCE_POLICY,
        "FunctionName": RESOURCE_POLICY,
        "Principal": PRINCIPAL,
        "PrincipalOrgID": PRINCIPAL,
        "SourceAccount": PRINCIPAL,
        "SourceArn": PRINCIPAL,
        "FunctionUrlAuthType": PUBLIC_ACCESS,
    },
    "AWS::Lambda::Url": {"AuthType": PUBLIC_ACCESS, "Cors": PUBLIC_ACCESS},
    "AWS::KMS::Key": {
        "KeyPolicy": KEY_POLICY,
        "Enabled": ENCRYPTION,
        "EnableKeyRotation": ENCRYPTION,
        "KeySpec": ENCRYPTION,
        "KeyUsage": ENCRYPTION,
    },
    "AWS::S3::Bucket": {
        "BucketEncryption": ENCRYPTION,
        "PublicAccessBlockConfiguration": PUBLIC_ACCESS,
        "AccessControl": PUBLIC_ACCESS,
        "OwnershipControls": PUBLIC_ACCESS,
        "WebsiteConfiguration": PUBLIC_ACCESS,
        "CorsConfiguration": PUBLIC_ACCESS,
    },
    "AWS::SNS::Topic": {"KmsMasterKeyId": ENCRYPTION},
    "AWS::SQS::Queue": {"KmsMasterKeyId": ENCRYPTION, "SqsManagedSseEnabled": ENCRYPTION},
    "AWS::Logs::LogGroup": {"KmsKeyId": ENCRYPTION},
    "AWS::SageMaker::EndpointConfig": {"KmsKeyId": ENCRYPTION},
    "AWS::SageMaker::Model": {
        "ExecutionRoleArn": PRINCIPAL,
        "VpcConfig": NETWORK,
        "EnableNetworkIsolation": NETWORK,
    },
    "AWS::Lambda::Function": {"Role": PRINCIPAL, "VpcConfig": NETWORK, "KmsKeyArn": ENCRYPTION},
    "AWS::StepFunctions::StateMachine": {
        "RoleArn": PRINCIPAL,
        "EncryptionConfiguration": ENCRYPTION,
    },
    "AWS::ApplicationAutoScaling::ScalableTarget": {"RoleARN": PRINCIPAL},
}
# Keys that choose an encryption key wherever they sit, e.g. the async output's KmsKeyId
# inside an EndpointConfig's AsyncInferenceConfig.
_NESTED_ENCRYPTION_KEYS = frozenset(
    {"KmsKeyId", "KmsKeyArn", "KMSMasterKeyID", "KmsMasterKeyId", "SSEAlgorithm"}
)

# Destroying or replacing these loses data or access to data: the PR check fails on them.
STATEFUL_TYPES = frozenset({"AWS::S3::Bucket", "AWS::KMS::Key"})


def security_reasons(change: ResourceChange) -> tuple[tuple[str, str], ...]:
    """(category, what changed) pairs, empty when the change does not touch security."""
    if change.is_noise:
        return ()
    whole_type = _SECURITY_RESOURCE_TYPES.get(change.resource_type)
    if change.change != "~" or change.resource_type in _WHOLLY_SECURITY_TYPES:
        return ((whole_type, change.resource_type),) if whole_type else ()
    by_property = _SECURITY_PROPERTIES.get(change.resource_type, {})
    reasons: list[tuple[str, str]] = []
    for prop in change.meaningful_properties:
        if prop.name in by_property:
            reasons.append((by_property[prop.name], prop.name))
        reasons += [
            (ENCRYPTION, f"{prop.name}.{key}")
            for key in sorted(prop.changed_keys & _NESTED_ENCRYPTION_KEYS)
            if prop.name not in by_property
        ]
    return tuple(dict.fromkeys(reasons))


def security_categories(change: ResourceChange) -> tuple[str, ...]:
    return tuple(dict.fromkeys(category for category, _ in security_reasons(change)))


def is_stateful(change: ResourceChange) -> bool:
    return change.resource_type in STATEFUL_TYPES


def blocks_merge(change: ResourceChange) -> bool:
    """A bucket or KMS key destroyed, orphaned or (possibly) replaced."""
    return change.is_destructive and is_stateful(change)


_BUCKET_REPLACED = {
    "ModelArtifacts": (
        "a new, empty model bucket: the staged weights and code packages are not carried "
        "over, and the next deploy stages the model again"
    ),
    "AsyncIO": (
        "a new, empty async bucket: queued requests, results and failures are not carried "
        "over, and clients must use the new InputS3Uri / OutputS3Uri outputs"
    ),
    "AccessLogs": "a new, empty access-log bucket: earlier access logs stay behind",
}
_ENDPOINT_GONE = (
    "the endpoint is re-created under a new generated name: clients must re-read the "
    "EndpointName output, and requests still queued on the old endpoint are lost"
)
_MEANINGS: dict[tuple[str, str], str] = {
    ("AWS::S3::Bucket", "orphan"): (
        "a retained bucket is orphaned, not deleted: it keeps its objects (and their cost) "
        "outside the stack, and nothing uses it any more"
    ),
    ("AWS::S3::Bucket", "destroy"): "the bucket and every object in it are deleted",
    ("AWS::KMS::Key", "orphan"): "the key is kept outside the stack; nothing uses it any more",
    ("AWS::KMS::Key", "destroy"): (
        "the key is scheduled for deletion: whatever it encrypted becomes unreadable when the "
        "pending window ends"
    ),
    ("AWS::KMS::Key", "replace"): (
        "a new key; the old one is scheduled for deletion, and whatever it encrypted becomes "
        "unreadable when the pending window ends"
    ),
    ("AWS::S3::BucketPolicy", "replace"): "the bucket policy is re-created on the bucket it names",
    ("AWS::SageMaker::Endpoint", "destroy"): _ENDPOINT_GONE,
    ("AWS::SageMaker::Endpoint", "replace"): _ENDPOINT_GONE,
    ("AWS::SageMaker::EndpointConfig", "replace"): (
        "a new endpoint configuration: the endpoint moves to it in place (same name, new instances)"
    ),
    ("AWS::SageMaker::EndpointConfig", "destroy"): "the old endpoint configuration is deleted",
    ("AWS::SageMaker::Model", "replace"): (
        "a new SageMaker Model: the endpoint serves it once it has moved to the new configuration"
    ),
    ("AWS::SageMaker::Model", "destroy"): "the old SageMaker Model is deleted",
    ("AWS::ApplicationAutoScaling::ScalableTarget", "replace"): (
        "autoscaling is registered anew for the endpoint"
    ),
    ("AWS::ApplicationAutoScaling::ScalableTarget", "destroy"): (
        "the endpoint's autoscaling registration is removed"
    ),
    ("AWS::ApplicationAutoScaling::ScalingPolicy", "replace"): "the scaling policy is re-created",
    ("AWS::ApplicationAutoScaling::ScalingPolicy", "destroy"): "the scaling policy is removed",
    ("AWS::CloudWatch::Alarm", "replace"): "the alarm is re-created: its state starts over",
    ("AWS::CloudWatch::Alarm", "destroy"): "the alarm is deleted: nobody is told any more",
    ("AWS::SNS::Topic", "replace"): (
        "a new topic ARN: subscribers (and every e-mail confirmation) must subscribe again"
    ),
    ("AWS::SNS::Topic", "destroy"): "the topic and its subscriptions are deleted",
    ("AWS::SNS::Subscription", "replace"): "the subscription is re-created: e-mail recipients "
    "must confirm again",
    ("AWS::Logs::LogGroup", "destroy"): "the log group and its logs are deleted",
    ("AWS::Logs::LogGroup", "replace"): "a new log group: earlier logs stay in the old one",
    ("AWS::IAM::Role", "replace"): "the role is re-created with a new ARN",
    ("Custom::ModelSnapshot", "replace"): "the model is staged again from the Hugging Face Hub",
    ("Custom::ModelPackage", "replace"): "a new deployable model package is built",
}
GENERIC_MEANINGS = {
    "replace": "deleted and created again: its physical name and ARN change",
    "destroy": "deleted",
    "orphan": "removed from the stack but kept in the account",
}


def meaning(change: ResourceChange) -> str:
    """One line on what a destructive change does to this stack (if it happens, for `may be
    replaced`)."""
    impact = "replace" if change.impact == "may be replaced" else change.impact
    if change.resource_type == "AWS::S3::Bucket" and impact == "replace":
        owner = change.name.split("/", 1)[0]
        return _BUCKET_REPLACED.get(owner, "a new, empty bucket: objects are not carried over")
    return _MEANINGS.get((change.resource_type, impact), GENERIC_MEANINGS.get(impact, ""))
