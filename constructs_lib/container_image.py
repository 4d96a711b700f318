"""The Hugging Face PyTorch inference image URI, resolved offline from the SageMaker SDK's table.

For a stack with a concrete region the URI is a plain string. For an environment-agnostic stack
it is looked up at deploy time in a region -> URI `CfnMapping` built from the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_cdk import Aws, CfnMapping, Stack, Token
from aws_cdk import aws_iam as iam
from sagemaker.core import image_uris

from constructs_lib.nag_acknowledgements import acknowledge_on_grantee

_FRAMEWORK = "huggingface"
# The SDK's image table lists these regions, but CloudFormation has no AWS::SageMaker::Model,
# EndpointConfig or Endpoint there (its per-region resource provider schemas, which cfn-lint
# checks as E3006: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-type-schemas.html),
# so the stack cannot deploy there. The cfn-lint test lints every region the mapping keeps.
_REGIONS_WITHOUT_SAGEMAKER_RESOURCES = frozenset({"me-central-1", "us-gov-east-1"})


class UnsupportedContainerVersions(ValueError):
    """The SDK's image table has no inference image for these versions."""


def _framework_entry(transformers: str, pytorch: str) -> dict[str, Any]:
    versions: dict[str, Any] = image_uris.config_for_framework(_FRAMEWORK)["inference"]["versions"]
    if transformers not in versions:
        known = ", ".join(sorted(versions))
        raise UnsupportedContainerVersions(
            f"no Hugging Face inference image for transformers {transformers}; known: {known}"
        )
    by_framework = versions[transformers]
    key = f"pytorch{pytorch}"
    if key not in by_framework:
        known = ", ".join(
            k.removeprefix("pytorch") for k in by_framework if k.startswith("pytorch")
        )
        raise UnsupportedContainerVersions(
            f"transformers {transformers} ships with pytorch {known}, not {pytorch}"
        )
    entry: dict[str, Any] = by_framework[key]
    return entry


@cache
def image_uri_for_region(
    *, region: str, transformers: str, pytorch: str, instance_type: str
) -> str:
    entry = _framework_entry(transformers, pytorch)
    uri: str = image_uris.retrieve(
        _FRAMEWORK,
        region=region,
        version=transformers,
        base_framework_version=f"pytorch{pytorch}",
        py_version=entry["py_versions"][-1],
        image_scope="inference",
        instance_type=instance_type,
    )
    return uri


@cache
def image_uris_by_region(*, transformers: str, pytorch: str, instance_type: str) -> dict[str, str]:
    entry = _framework_entry(transformers, pytorch)
    return {
        region: image_uri_for_region(
            region=region, transformers=transformers, pytorch=pytorch, instance_type=instance_type
        )
        for region in sorted(entry["registries"])
        if region not in _REGIONS_WITHOUT_SAGEMAKER_RESOURCES
    }


@dataclass(frozen=True)
class InferenceImage:
    """The image URI a SageMaker Model runs, and the ECR repository it is pulled from."""

    uri: str
    repository_arn: str

    def grant_pull(self, grantee: iam.IGrantable) -> None:
        """Pull this repository's images, and authenticate to the registry (account-wide)."""
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PullImage",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[self.repository_arn],
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AuthenticateToRegistry",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            )
        )
        acknowledge_on_grantee(
            grantee,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken supports no resource scoping; the pull itself is "
                    "limited to one repository."
                )
            },
        )


def _registry_account(uri: str) -> str:
    return uri.split(".", 1)[0]


def inference_image(
    stack: Stack, *, transformers: str, pytorch: str, instance_type: str
) -> InferenceImage:
    """The image for `stack`'s region: literals, or mapping lookups when region-agnostic."""
    if not Token.is_unresolved(stack.region):
        uri = image_uri_for_region(
            region=stack.region,
            transformers=transformers,
            pytorch=pytorch,
            instance_type=instance_type,
        )
        account = _registry_account(uri)
    else:
        table = image_uris_by_region(
            transformers=transformers, pytorch=pytorch, instance_type=instance_type
        )
        mapping = CfnMapping(
            stack,
            "InferenceImageByRegion",
            mapping={
                region: {"uri": uri, "account": _registry_account(uri)}
                for region, uri in table.items()
            },
        )
        uri = mapping.find_in_map(Aws.REGION, "uri")
        account = mapping.find_in_map(Aws.REGION, "account")
    arn = stack.format_arn(
        service="ecr",
        account=account,
        resource="repository",
        resource_name=_framework_entry(transformers, pytorch)["repository"],
    )
    return InferenceImage(uri=uri, repository_arn=arn)
