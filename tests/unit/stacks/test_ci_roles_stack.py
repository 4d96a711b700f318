"""The CI roles stack: trust scoped to one repository, read-only diff role, cdk-nag clean."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aws, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.ci_roles_stack import (
    CiRolesStack,
    ci_roles_stack_from_context,
    role_variable_name,
    validate_github_repository,
)
from stacks.environment_config import load_environments

REPO_ROOT = Path(__file__).resolve().parents[3]
# The app's feature flags (e.g. minimizePolicies) change how policies render: test under them.
FEATURE_FLAGS = {
    key: value
    for key, value in json.loads((REPO_ROOT / "cdk.json").read_text())["context"].items()
    if key.startswith("@aws-cdk/")
}
REPOSITORY = "acme-labs/music.gen"
OIDC = "token.actions.githubusercontent.com"
BOOTSTRAP_ROLE = re.compile(
    r"^arn:\$\{AWS::Partition\}:iam::\$\{AWS::AccountId\}:role/"
    r"cdk-hnb659fds-(?P<kind>[a-z-]+)-role-\$\{AWS::AccountId\}-(?P<region>.+)$"
)
# Verbs that only read: anything else on the diff role would let a pull request change the account.
READ_ONLY_VERBS = ("Describe", "Get", "List")


def _flatten(value: Any) -> str:
    """Render a template value as one string, `${Ref}` for references, to match ARNs on."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flatten(part) for part in parts)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    raise AssertionError(f"unexpected template value {value!r}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _synth(**overrides: Any) -> dict[str, Any]:
    app = App(context=FEATURE_FLAGS)
    props: dict[str, Any] = {
        "github_repository": REPOSITORY,
        "deploy_environments": ["dev", "prod"],
    }
    props.update(overrides)
    stack = CiRolesStack(app, "MusicGen-ci", **props)
    return Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _synth()


def _role_id(template: dict[str, Any], description_start: str) -> str:
    matches = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        and resource["Properties"]["Description"].startswith(description_start)
    ]
    assert len(matches) == 1, matches
    return matches[0]


def _statements_of(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": role_id} in resource["Properties"]["Roles"]
        ):
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    role = template["Resources"][role_id]["Properties"]
    assert "Policies" not in role and "ManagedPolicyArns" not in role
    return statements


def _trust(template: dict[str, Any], role_id: str) -> dict[str, Any]:
    (statement,) = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    return statement


def _assumable_roles(statements: list[dict[str, Any]]) -> list[re.Match[str]]:
    resources = [
        _flatten(resource)
        for statement in statements
        if "sts:AssumeRole" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]
    matches = [BOOTSTRAP_ROLE.match(resource) for resource in resources]
    assert all(matches), resources
    return [match for match in matches if match]


def test_oidc_provider_is_githubs_with_the_sts_audience(template: dict[str, Any]) -> None:
    (provider,) = [
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::OIDCProvider"
    ]
    assert provider["Properties"]["Url"] == f"https://{OIDC}"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert provider["DeletionPolicy"] == "Retain"


def test_diff_role_trusts_only_this_repositorys_pull_requests_and_default_branch(
    template: dict[str, Any],
) -> None:
    trust = _trust(template, _role_id(template, "cdk diff"))
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(trust["Condition"]) == {"StringEquals"}
    assert trust["Condition"]["StringEquals"] == {
        f"{OIDC}:aud": "sts.amazonaws.com",
        f"{OIDC}:sub": [
            f"repo:{REPOSITORY}:pull_request",
            f"repo:{REPOSITORY}:ref:refs/heads/main",
        ],
    }


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_deploy_role_trusts_only_its_github_environment(
    template: dict[str, Any], environment: str
) -> None:
    trust = _trust(template, _role_id(template, f"cdk deploy of MusicGen-{environment} "))
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(trust["Condition"]) == {"StringEquals"}
    assert trust["Condition"]["StringEquals"] == {
        f"{OIDC}:aud": "sts.amazonaws.com",
        f"{OIDC}:sub": [f"repo:{REPOSITORY}:environment:{environment}"],
    }


def test_diff_role_is_read_only(template: dict[str, Any]) -> None:
    statements = _statements_of(template, _role_id(template, "cdk diff"))
    actions = {action for statement in statements for action in _as_list(statement["Action"])}
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert actions - {"sts:AssumeRole"}, "expected CloudFormation read actions"
    for action in actions - {"sts:AssumeRole"}:
        service, verb = action.split(":")
        assert service == "cloudformation", action
        assert verb.startswith(READ_ONLY_VERBS) and "*" not in verb, action
    for statement in statements:
        if statement["Action"] != "sts:AssumeRole":
            for resource in _as_list(statement["Resource"]):
                assert _flatten(resource).endswith(":stack/MusicGen-*/*"), resource


def test_diff_role_assumes_the_cdk_lookup_role_only(template: dict[str, Any]) -> None:
    statements = _statements_of(template, _role_id(template, "cdk diff"))
    roles = _assumable_roles(statements)
    assert [(match["kind"], match["region"]) for match in roles] == [("lookup", "${AWS::Region}")]


def test_deploy_role_assumes_only_the_cdk_bootstrap_roles(template: dict[str, Any]) -> None:
    statements = _statements_of(template, _role_id(template, "cdk deploy of MusicGen-prod "))
    assert {action for s in statements for action in _as_list(s["Action"])} == {"sts:AssumeRole"}
    kinds = sorted(match["kind"] for match in _assumable_roles(statements))
    assert kinds == ["deploy", "file-publishing", "image-publishing", "lookup"]


def test_bootstrap_regions_scope_the_assumable_roles() -> None:
    template = _synth(bootstrap_regions=["eu-west-1", "us-east-1"], bootstrap_qualifier="abc123")
    statements = _statements_of(template, _role_id(template, "cdk diff"))
    resources = {_flatten(r) for s in statements for r in _as_list(s["Resource"])}
    assert {r.rsplit("/", 1)[-1] for r in resources if ":role/" in r} == {
        "cdk-abc123-lookup-role-${AWS::AccountId}-eu-west-1",
        "cdk-abc123-lookup-role-${AWS::AccountId}-us-east-1",
    }


def test_outputs_name_every_role_arn(template: dict[str, Any]) -> None:
    assert {"DiffRoleArn", "DeployRoleArnDev", "DeployRoleArnProd", "GitHubOidcProviderArn"} <= set(
        template["Outputs"]
    )
    assert "DEPLOY_ROLE_ARN_PROD" in template["Outputs"]["DeployRoleArnProd"]["Description"]


def test_existing_oidc_provider_is_imported_not_created() -> None:
    template = _synth(create_oidc_provider=False, deploy_environments=["dev"])
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS::IAM::OIDCProvider" not in types
    trust = _trust(template, _role_id(template, "cdk deploy of MusicGen-dev "))
    assert _flatten(trust["Principal"]["Federated"]) == (
        f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:oidc-provider/{OIDC}"
    )


@pytest.mark.parametrize("regions", [(), ("eu-west-1", Aws.REGION)])
def test_cdk_nag_aws_solutions_is_clean(regions: tuple[str, ...]) -> None:
    app = App(context=FEATURE_FLAGS)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    CiRolesStack(
        app,
        "MusicGen-ci",
        github_repository=REPOSITORY,
        deploy_environments=["dev", "prod"],
        bootstrap_regions=regions,
    )
    app.synth()


def test_cdk_nag_check_is_live_for_an_unacknowledged_wildcard() -> None:
    # Guards the test above: the same set-up must reject a wildcard nobody acknowledged.
    app = App(context=FEATURE_FLAGS)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = Stack(app, "Control")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5|Validation failed"):
        app.synth()


@pytest.mark.parametrize(
    "value",
    ["acme", "acme/", "/repo", "acme/repo/extra", "-acme/repo", "acme/..", "ac me/repo", ""],
)
def test_repository_must_be_owner_slash_name(value: str) -> None:
    with pytest.raises(ValueError, match=r"^github_repository: must be 'owner/name'"):
        validate_github_repository(value)


def test_bad_props_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^deploy_environments: each name"):
        _synth(deploy_environments=["Prod"])
    with pytest.raises(ValueError, match=r"^deploy_environments: names must be unique"):
        _synth(deploy_environments=["dev", "dev"])
    with pytest.raises(ValueError, match=r"^deploy_environments: must be a list"):
        _synth(deploy_environments="dev")
    with pytest.raises(ValueError, match=r"^default_branch:"):
        _synth(default_branch="refs/heads/main")
    with pytest.raises(ValueError, match=r"^bootstrap_regions:"):
        _synth(bootstrap_regions=["mars"])


def test_role_variable_names_are_what_the_workflows_read() -> None:
    assert role_variable_name("DEPLOY", "prod") == "DEPLOY_ROLE_ARN_PROD"
    assert role_variable_name("DIFF", "eu-staging") == "DIFF_ROLE_ARN_EU_STAGING"


def _table(**accounts: str | None) -> dict[str, Any]:
    raw = {
        name: {"model_id": "facebook/musicgen-small", **({"account": a} if a else {})}
        for name, a in accounts.items()
    }
    raw["prod"] = {
        **raw.get("prod", {"model_id": "facebook/musicgen-small"}),
        "region": "eu-west-1",
    }
    return load_environments(raw)


def _from_context(environments: Any, **context: str) -> CiRolesStack | None:
    return ci_roles_stack_from_context(App(context={**FEATURE_FLAGS, **context}), environments)


def test_without_a_repository_in_context_there_is_no_ci_stack() -> None:
    assert _from_context(_table(dev=None, prod=None)) is None


def test_context_builds_a_role_per_environment_for_each_bootstrap_region() -> None:
    stack = _from_context(
        _table(dev=None, prod=None), github_repository=REPOSITORY, ci_create_oidc_provider="false"
    )
    assert stack is not None and stack.stack_name == "MusicGen-ci"
    assert sorted(stack.deploy_roles) == ["dev", "prod"]
    template = Template.from_stack(stack).to_json()
    assert "AWS::IAM::OIDCProvider" not in {r["Type"] for r in template["Resources"].values()}
    statements = _statements_of(template, _role_id(template, "cdk diff"))
    regions = {match["region"] for match in _assumable_roles(statements)}
    assert regions == {"${AWS::Region}", "eu-west-1"}


def test_context_with_accounts_needs_ci_account_and_keeps_roles_in_their_account() -> None:
    table = _table(dev="111111111111", prod="222222222222")
    with pytest.raises(ValueError, match=r"^ci_account: required"):
        _from_context(table, github_repository=REPOSITORY)
    stack = _from_context(table, github_repository=REPOSITORY, ci_account="222222222222")
    assert stack is not None and sorted(stack.deploy_roles) == ["prod"]
    assert stack.account == "222222222222"


def test_bad_context_values_name_the_key() -> None:
    table = _table(dev=None, prod=None)
    with pytest.raises(ValueError, match=r"^ci_create_oidc_provider: must be true or false"):
        _from_context(table, github_repository=REPOSITORY, ci_create_oidc_provider="maybe")
    with pytest.raises(ValueError, match=r"^ci_account: must be a 12-digit"):
        _from_context(table, github_repository=REPOSITORY, ci_account="12")
    with pytest.raises(ValueError, match=r"^github_repository:"):
        _from_context(table, github_repository="not-a-repo")
