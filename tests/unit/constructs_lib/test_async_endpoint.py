"""AsyncEndpoint in a bare stack: model, async config, its role, the NVMe rule and metrics."""

from __future__ import annotations

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.async_endpoint import AsyncEndpoint, DeployCapacity
from constructs_lib.endpoint_metrics import METRICS
from tests.unit.constructs_lib.conftest import EndpointFactory, acknowledged, statements_of

NAMESPACES = ["/aws/sagemaker/*", "AWS/SageMaker"]


def _sids(template: Template) -> list[str]:
    return [s["Sid"] for s in statements_of(template, role_prefix="EndpointExecutionRole")]


def test_model_serves_the_uncompressed_prefix_with_the_given_environment(
    endpoint_factory: EndpointFactory,
) -> None:
    stack = Stack()
    endpoint_factory(stack)
    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/image:1",
                "Environment": {"MUSICGEN_MODEL_ID": "owner/name"},
                "ModelDataSource": {
                    "S3DataSource": {
                        "S3Uri": "s3://models/packages/owner/name/abc/",
                        "S3DataType": "S3Prefix",
                        "CompressionType": "None",
                    }
                },
            }
        },
    )


def test_async_config_names_the_paths_and_the_topics(endpoint_factory: EndpointFactory) -> None:
    stack = Stack()
    endpoint_factory(stack, max_concurrent=3)
    success, error = Capture(), Capture()
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": {
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 3},
                "OutputConfig": {
                    "S3OutputPath": "s3://io/async-output/",
                    "S3FailurePath": "s3://io/async-failure/",
                    "NotificationConfig": {
                        "SuccessTopic": {"Ref": success},
                        "ErrorTopic": {"Ref": error},
                    },
                },
            }
        },
    )
    assert success.as_string().startswith("Success")
    assert error.as_string().startswith("Error")


def test_role_is_assumed_by_sagemaker_and_the_model_waits_for_its_policy(
    endpoint_factory: EndpointFactory,
) -> None:
    stack = Stack()
    endpoint = endpoint_factory(stack)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like({"Principal": {"Service": "sagemaker.amazonaws.com"}})
                ]
            },
            "ManagedPolicyArns": Match.absent(),
        },
    )
    (policy_id,) = template.find_resources("AWS::IAM::Policy")
    template.has_resource("AWS::SageMaker::Model", {"DependsOn": Match.array_with([policy_id])})
    assert endpoint.grant_principal is endpoint.role


def test_own_statements_are_logs_and_metrics_on_nvme(endpoint_factory: EndpointFactory) -> None:
    stack = Stack()
    endpoint_factory(stack, instance_type="ml.g5.xlarge")
    template = Template.from_stack(stack)
    assert _sids(template) == ["WriteLogs", "PublishMetrics"]
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "PublishMetrics",
                                "Resource": "*",
                                "Condition": {
                                    "StringLike": {
                                        "cloudwatch:namespace": [
                                            "/aws/sagemaker/*",
                                            "AWS/SageMaker",
                                        ]
                                    }
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_nvme_instances_get_neither_volume_size_nor_volume_key(
    endpoint_factory: EndpointFactory,
) -> None:
    stack = Stack()
    endpoint = endpoint_factory(stack, instance_type="ml.g5.2xlarge")
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": Match.absent(),
            "ProductionVariants": [Match.object_like({"VolumeSizeInGB": Match.absent()})],
        },
    )
    template.resource_count_is("AWS::KMS::Key", 0)
    assert endpoint.volume_key is None


def test_ebs_instances_get_a_sized_volume_encrypted_with_their_own_key(
    endpoint_factory: EndpointFactory,
) -> None:
    stack = Stack()
    endpoint_factory(stack, instance_type="ml.m5.2xlarge")
    template = Template.from_stack(stack)
    key = Capture()
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": {"Fn::GetAtt": [key, "Arn"]},
            "ProductionVariants": [Match.object_like({"VolumeSizeInGB": 30})],
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    assert key.as_string().startswith("EndpointVolumeKey")
    assert _sids(template) == ["WriteLogs", "PublishMetrics", "EncryptVolume"]


def test_grants_to_the_endpoint_land_in_its_role_policy(endpoint_factory: EndpointFactory) -> None:
    stack = Stack()
    endpoint = endpoint_factory(stack)
    endpoint.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(sid="Granted", actions=["s3:GetObject"], resources=["arn:x"])
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::IAM::Policy", 1)
    assert _sids(template)[-1] == "Granted"


def test_own_wildcards_are_acknowledged_on_the_role(endpoint_factory: EndpointFactory) -> None:
    endpoint = endpoint_factory(Stack())
    findings = acknowledged(endpoint.role)
    assert "AwsSolutions-IAM5[Resource::*]" in findings
    assert any("/aws/sagemaker/Endpoints/*" in finding for finding in findings)


def test_endpoint_logical_id_carries_the_instance_type(endpoint_factory: EndpointFactory) -> None:
    stack = Stack()
    endpoint_factory(stack, instance_type="ml.g5.2xlarge")
    (endpoint_id,) = Template.from_stack(stack).find_resources("AWS::SageMaker::Endpoint")
    assert endpoint_id.startswith("EndpointEndpointMlG52xlarge")


def test_a_deploy_keeps_the_instance_count_only_when_asked(
    endpoint_factory: EndpointFactory,
) -> None:
    """KEEP retains the variant's count; INITIAL leaves the property out (SageMaker: false)."""
    counts = {}
    for on_deploy in DeployCapacity:
        stack = Stack()
        endpoint_factory(stack, on_deploy=on_deploy, initial_instance_count=2)
        template = Template.from_stack(stack)
        (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
        (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
        assert config["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] == 2
        counts[on_deploy] = endpoint["Properties"].get("RetainAllVariantProperties")
    assert counts == {DeployCapacity.INITIAL: None, DeployCapacity.KEEP: True}


def test_instance_startup_limit_is_the_download_and_health_check_timeouts(
    endpoint_factory: EndpointFactory,
) -> None:
    endpoint = endpoint_factory(Stack(), download_timeout_seconds=1800, startup_timeout_seconds=900)
    assert endpoint.instance_startup_limit.to_seconds() == 2700


@pytest.mark.parametrize("metric_name", sorted(METRICS))
def test_metrics_have_the_dimensions_sagemaker_publishes_and_one_statistic(
    endpoint_factory: EndpointFactory, metric_name: str
) -> None:
    stack = Stack()
    endpoint: AsyncEndpoint = endpoint_factory(stack)
    metric = endpoint.metric(metric_name, label="shown")
    spec = METRICS[metric_name]
    assert (metric.namespace, metric.metric_name) == (spec.namespace, metric_name)
    assert metric.statistic == spec.statistic
    assert metric.label == "shown"
    published = {"EndpointName": stack.resolve(endpoint.endpoint_name), "VariantName": "AllTraffic"}
    assert stack.resolve(metric.dimensions) == {name: published[name] for name in spec.dimensions}
    assert metric.period.to_seconds() == 60
    assert endpoint.metric(metric_name, period=Duration.minutes(5)).period.to_seconds() == 300


@pytest.mark.parametrize(
    ("metric_name", "dimensions"),
    [
        ("ApproximateBacklogSize", ["EndpointName"]),
        ("ApproximateBacklogSizePerInstance", ["EndpointName"]),
        ("ApproximateAgeOfOldestRequest", ["EndpointName"]),
        ("HasBacklogWithoutCapacity", ["EndpointName"]),
        ("InvocationFailures", ["EndpointName", "VariantName"]),
        ("InvocationsProcessed", ["EndpointName", "VariantName"]),
        ("TimeInBacklog", ["EndpointName", "VariantName"]),
        ("TotalProcessingTime", ["EndpointName", "VariantName"]),
    ],
)
def test_the_table_has_the_dimensions_of_the_async_monitoring_page(
    metric_name: str, dimensions: list[str]
) -> None:
    """https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html"""
    assert (METRICS[metric_name].namespace, list(METRICS[metric_name].dimensions)) == (
        "AWS/SageMaker",
        dimensions,
    )


def test_unknown_metric_is_refused_naming_the_known_ones(endpoint_factory: EndpointFactory) -> None:
    """`InvocationsPerInstance` is not published for async endpoints."""
    with pytest.raises(ValueError) as refused:
        endpoint_factory(Stack()).metric("InvocationsPerInstance")
    assert str(refused.value) == (
        "metric_name: one of ApproximateBacklogSize, ApproximateBacklogSizePerInstance, "
        "ApproximateAgeOfOldestRequest, HasBacklogWithoutCapacity, InvocationFailures, "
        "InvocationsProcessed, TimeInBacklog, TotalProcessingTime, CPUUtilization "
        "(got 'InvocationsPerInstance')"
    )


def test_instances_reporting_counts_cpu_samples_of_the_variant(
    endpoint_factory: EndpointFactory,
) -> None:
    stack = Stack()
    endpoint = endpoint_factory(stack)
    metric = endpoint.metric_instances_reporting()
    assert (metric.namespace, metric.metric_name, metric.statistic) == (
        "/aws/sagemaker/Endpoints",
        "CPUUtilization",
        "SampleCount",
    )
    assert stack.resolve(metric.dimensions)["VariantName"] == "AllTraffic"
