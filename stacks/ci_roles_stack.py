"""The optional `MusicGen-ci` stack: GitHub's OIDC provider and least-privilege pipeline roles.

The deploy roles only hold `sts:AssumeRole` on the CDK bootstrap roles: those carry the real
permissions, so what a deploy may do is exactly what `cdk bootstrap` granted, and nothing here
needs editing when the app grows. The diff role is reachable from every pull request, so it
assumes no role at all: the bootstrap lookup role holds `ReadOnlyAccess`, which reads every
SSE-S3 object of the account (prompts, audio, weights). It reads the app's stacks with its own
credentials instead, which the CDK CLI falls back to (see `DIFF_ROLE_ACTIONS`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App, Aws, CfnOutput, Duration, Environment, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from constructs_lib.nag_acknowledgements import INLINE_POLICY_REASON, acknowledge
from inference_code.contract import STACK_NAME_PREFIX, stack_name_for
from stacks.environment_config import (
    ACCOUNT_PATTERN,
    ENVIRONMENT_NAME_PATTERN,
    REGION_PATTERN,
    EnvironmentConfig,
)

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"

# GitHub's own rules: owner 1-39 alphanumerics or single inner hyphens; repository name
# 1-100 of [A-Za-z0-9._-], never "." or "..".
_OWNER = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")
_REPOSITORY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_QUALIFIER = re.compile(r"^[a-z0-9]{1,10}$")
_BRANCH = re.compile(r"^(?!refs/)[A-Za-z0-9._/-]{1,255}$")

BOOTSTRAP_ROLE_KINDS_FOR_DEPLOY = ("deploy", "file-publishing", "image-publishing", "lookup")

# The CDK CLI whose fallback below was read in its source and bundle; package.json pins exactly
# this version, and a test fails when the two part, so a new CLI is checked again before use.
VERIFIED_CDK_CLI_VERSION = "2.1148.1"

# Everything `cdk diff --method template` calls with the diff role's own credentials. The CLI
# first tries the stack's lookup role; when STS refuses and the caller's credentials are for the
# stack's account it warns "Lookup role ... was not assumed. Proceeding with default
# credentials." and reads the deployed template with them (`accessStackForLookup` and
# `SdkProvider.forEnvironment`; `--method template` creates no change set, so the deploy role is
# never needed either).
DIFF_ROLE_ACTIONS = (
    "cloudformation:DescribeStacks",
    "cloudformation:GetTemplate",
    "cloudformation:GetTemplateSummary",
)

# The context flag that lets several environments' deploy roles live in one account.
SHARED_ACCOUNT_FLAG = "ci_allow_shared_account"

# Long enough for a deploy that stages musicgen-large: the CDK CLI re-assumes the bootstrap roles
# with these credentials while it waits on CloudFormation, so they must outlive the deploy.
DEPLOY_SESSION = Duration.hours(2)


def validate_github_repository(value: str) -> str:
    """Return `owner/name` unchanged, or raise naming the field and the rule."""
    owner, slash, name = value.partition("/") if isinstance(value, str) else ("", "", "")
    valid_name = bool(_REPOSITORY_NAME.match(name)) and name not in {".", ".."}
    if not slash or not _OWNER.match(owner) or not valid_name:
        raise ValueError(
            "github_repository: must be 'owner/name' as GitHub spells it (owner: 1-39 letters, "
            "digits or inner hyphens; name: 1-100 of letters, digits, '.', '_', '-'), "
            f"got {value!r}"
        )
    return value


def _validate_environments(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise ValueError("deploy_environments: must be a list of environment names, not a string")
    for name in names:
        if not isinstance(name, str) or not ENVIRONMENT_NAME_PATTERN.match(name):
            raise ValueError(
                f"deploy_environments: each name must match [a-z][a-z0-9-]{{0,30}}, got {name!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"deploy_environments: names must be unique, got {list(names)!r}")
    return tuple(names)


def _validate(field: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"{field}: {rule}, got {value!r}")
    return value


def role_variable_name(prefix: str, environment: str) -> str:
    """The GitHub variable that holds an environment's role ARN, e.g. DEPLOY_ROLE_ARN_DEV."""
    return f"{prefix}_ROLE_ARN_{environment.upper().replace('-', '_')}"


class CiRolesStack(Stack):
    """GitHub Actions OIDC trust plus a read-only diff role and one deploy role per environment.

    The bootstrap roles of one account can deploy every stack in it, so deploy roles for more
    than one environment (all of them in this stack's account) are refused unless
    `allow_shared_account` says the user accepts that they are no boundary.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        github_repository: str,
        deploy_environments: Sequence[str],
        create_oidc_provider: bool = True,
        default_branch: str = "main",
        bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER,
        bootstrap_regions: Sequence[str] = (),
        allow_shared_account: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        repository = validate_github_repository(github_repository)
        environments = _validate_environments(deploy_environments)
        if len(environments) > 1 and not allow_shared_account:
            raise ValueError(_shared_account_refusal(environments))
        branch = _validate(
            "default_branch", default_branch, _BRANCH, "must be a branch name without 'refs/heads/'"
        )
        qualifier = _validate(
            "bootstrap_qualifier", bootstrap_qualifier, _QUALIFIER, "must be 1-10 of [a-z0-9]"
        )
        for region in bootstrap_regions:
            if not Token.is_unresolved(region):
                _validate(
                    "bootstrap_regions",
                    region,
                    REGION_PATTERN,
                    "each must be a region like eu-west-1",
                )
        # Bootstrap roles are per account and region; without a list, this stack's own region.
        regions = tuple(dict.fromkeys(bootstrap_regions)) or (Aws.REGION,)

        provider_arn = self._oidc_provider_arn(create_oidc_provider)

        self.diff_role = iam.Role(
            self,
            "DiffRole",
            description=f"cdk diff from pull requests of {repository} (read-only)",
            assumed_by=_github_principal(
                provider_arn,
                [f"repo:{repository}:pull_request", f"repo:{repository}:ref:refs/heads/{branch}"],
            ),
            max_session_duration=Duration.hours(1),
        )
        self.diff_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadAppStacks",
                actions=list(DIFF_ROLE_ACTIONS),
                resources=[_app_stack_arn(region) for region in regions],
            )
        )
        acknowledge(
            self.diff_role,
            {
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:"
                f"{_nag_region(region)}:<AWS::AccountId>:stack/{STACK_NAME_PREFIX}*/*]": (
                    "Read-only CloudFormation access to this app's stacks: a stack ARN ends in a "
                    "generated id, and the MusicGen- name prefix confines it to the app."
                )
                for region in regions
            }
            | {"NIST.800.53.R5-IAMNoInlinePolicy": INLINE_POLICY_REASON},
        )
        CfnOutput(
            self,
            "DiffRoleArn",
            value=self.diff_role.role_arn,
            description="Set as the repository variables DIFF_ROLE_ARN_<ENV> (read-only cdk diff)",
        )

        self.deploy_roles: dict[str, iam.Role] = {}
        for environment in environments:
            role = iam.Role(
                self,
                f"DeployRole-{environment}",
                description=f"cdk deploy of {stack_name_for(environment)} from {repository}",
                assumed_by=_github_principal(
                    provider_arn, [f"repo:{repository}:environment:{environment}"]
                ),
                max_session_duration=DEPLOY_SESSION,
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AssumeCdkBootstrapRoles",
                    actions=["sts:AssumeRole"],
                    resources=[
                        _bootstrap_role_arn(qualifier, kind, region)
                        for region in regions
                        for kind in BOOTSTRAP_ROLE_KINDS_FOR_DEPLOY
                    ],
                )
            )
            acknowledge(role, {"NIST.800.53.R5-IAMNoInlinePolicy": INLINE_POLICY_REASON})
            self.deploy_roles[environment] = role
            CfnOutput(
                self,
                f"DeployRoleArn{_output_suffix(environment)}",
                value=role.role_arn,
                description=f"Set as {role_variable_name('DEPLOY', environment)} (cdk deploy)",
            )

    def _oidc_provider_arn(self, create: bool) -> str:
        if create:
            provider = iam.OidcProviderNative(
                self,
                "GitHubOidcProvider",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_ids=[GITHUB_OIDC_AUDIENCE],
                # One provider per URL per account: other repositories' roles may come to trust
                # it, so deleting this stack must not take it away from them.
                removal_policy=RemovalPolicy.RETAIN,
            )
            arn = provider.oidc_provider_arn
        else:
            arn = Stack.of(self).format_arn(
                service="iam",
                region="",
                resource="oidc-provider",
                resource_name=GITHUB_OIDC_HOST,
            )
        CfnOutput(self, "GitHubOidcProviderArn", value=arn)
        return arn


def _github_principal(provider_arn: str, subjects: list[str]) -> iam.WebIdentityPrincipal:
    # StringEquals, not StringLike: each subject is exact, so no other repository, branch or
    # environment can match through a wildcard.
    return iam.WebIdentityPrincipal(
        provider_arn,
        conditions={
            "StringEquals": {
                f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                f"{GITHUB_OIDC_HOST}:sub": subjects,
            }
        },
    )


def _shared_account_refusal(environments: Sequence[str]) -> str:
    names = ", ".join(environments)
    return (
        f"deploy_environments: {names} would get deploy roles in one account, and a deploy role "
        "reaches the bootstrap's CloudFormation execution role, which can deploy every stack of "
        "the account: the deploy role of one environment could deploy the others. Give each "
        "environment its own `account` in cdk.json and deploy MusicGen-ci once per account with "
        f"-c ci_account=ID, or accept the shared account with -c {SHARED_ACCOUNT_FLAG}=true"
    )


def _bootstrap_role_arn(qualifier: str, kind: str, region: str) -> str:
    return (
        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/"
        f"cdk-{qualifier}-{kind}-role-{Aws.ACCOUNT_ID}-{region}"
    )


def _app_stack_arn(region: str) -> str:
    return (
        f"arn:{Aws.PARTITION}:cloudformation:{region}:{Aws.ACCOUNT_ID}:stack/{STACK_NAME_PREFIX}*/*"
    )


def _nag_region(region: str) -> str:
    # cdk-nag names the pseudo parameter the way it appears in the resolved template.
    return "<AWS::Region>" if region == Aws.REGION else region


def _output_suffix(environment: str) -> str:
    return "".join(part.capitalize() for part in environment.split("-"))


def ci_roles_stack_from_context(
    app: App, environments: Mapping[str, EnvironmentConfig]
) -> CiRolesStack | None:
    """Add `MusicGen-ci` when `-c github_repository=owner/name` is given, else nothing.

    Optional context: `ci_account` (the account it goes to; required once the table names
    accounts, so a role can only reach environments of its own account), `ci_default_branch`
    (default main), `ci_create_oidc_provider=false` (the account already has GitHub's provider),
    `ci_allow_shared_account=true` (deploy roles for several environments of one account).
    """
    repository = app.node.try_get_context("github_repository")
    if repository is None:
        return None
    account = app.node.try_get_context("ci_account")
    if account is not None:
        _validate("ci_account", str(account), ACCOUNT_PATTERN, "must be a 12-digit AWS account id")
        account = str(account)
    declared = sorted({c.account for c in environments.values() if c.account is not None})
    if declared and account is None:
        raise ValueError(
            "ci_account: required because the environment table names accounts "
            f"({', '.join(declared)}); deploy MusicGen-ci once per account with -c ci_account=ID"
        )
    # A deploy role reaches the bootstrap roles of its own account only: an environment that
    # lives in another account gets its role from that account's MusicGen-ci.
    selected = [c for c in environments.values() if c.account in (None, account)]
    regions = dict.fromkeys(c.region or Aws.REGION for c in selected)
    return CiRolesStack(
        app,
        stack_name_for("ci"),
        github_repository=repository,
        deploy_environments=[c.name for c in selected],
        create_oidc_provider=_context_flag(app, "ci_create_oidc_provider", default=True),
        default_branch=app.node.try_get_context("ci_default_branch") or "main",
        bootstrap_regions=list(regions),
        allow_shared_account=_context_flag(app, SHARED_ACCOUNT_FLAG, default=False),
        env=Environment(account=account),
        description=f"GitHub OIDC provider and pipeline roles for {repository}",
    )


def _context_flag(app: App, key: str, *, default: bool) -> bool:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"{key}: must be true or false, got {value!r}")
