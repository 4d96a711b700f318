"""The CI roles stack: trust scoped to one repository, read-only diff role, cdk-nag clean."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aws, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from constructs_lib.nag_acknowledgements import nag_packs
from stacks.ci_roles_stack import (
    SHARED_ACCOUNT_FLAG,
    VERIFIED_CDK_CLI_VERSION,
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
# The `sub` of a pull-request job's OIDC token (GitHub's default format, no environment named).
PULL_REQUEST_SUBJECT = f"repo:{REPOSITORY}:pull_request"


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
        # Two environments in one account need the opt-in; the refusal has its own tests.
        "allow_shared_account": True,
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


def test_cdk_cli_is_pinned_to_the_version_whose_lookup_fallback_was_verified() -> None:
    # The diff role relies on the CLI falling back to the caller's credentials when the lookup
    # role refuses it: a different CLI may not, so it must be checked before the pin moves.
    package = json.loads((REPO_ROOT / "package.json").read_text())
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert package["devDependencies"]["aws-cdk"] == VERIFIED_CDK_CLI_VERSION
    assert lock["packages"][""]["devDependencies"]["aws-cdk"] == VERIFIED_CDK_CLI_VERSION
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == VERIFIED_CDK_CLI_VERSION


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


def test_diff_role_only_reads_the_app_stacks(template: dict[str, Any]) -> None:
    statements = _statements_of(template, _role_id(template, "cdk diff"))
    actions = {action for statement in statements for action in _as_list(statement["Action"])}
    assert all(statement["Effect"] == "Allow" for statement in statements)
    # What `cdk diff --method template` reads with the caller's own credentials.
    assert actions == {
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplate",
        "cloudformation:GetTemplateSummary",
    }
    for action in actions:
        assert action.split(":")[1].startswith(READ_ONLY_VERBS), action
    for statement in statements:
        for resource in _as_list(statement["Resource"]):
            assert _flatten(resource).endswith(":stack/MusicGen-*/*"), resource


def _admits(trust_statement: dict[str, Any], subject: str) -> bool:
    """Whether a role trust statement lets a GitHub OIDC token with this `sub` in."""
    if trust_statement["Effect"] != "Allow":
        return False
    if "sts:AssumeRoleWithWebIdentity" not in _as_list(trust_statement["Action"]):
        # Any other principal (an account, a service) is not a pull request's token; a trust
        # this test cannot judge counts as reachable.
        return "Federated" not in trust_statement.get("Principal", {})
    conditions = trust_statement.get("Condition", {})
    key = f"{OIDC}:sub"
    exact = conditions.get("StringEquals", {}).get(key)
    patterns = conditions.get("StringLike", {}).get(key)
    if exact is None and patterns is None:
        return True
    if exact is not None and subject not in _as_list(exact):
        return False
    return patterns is None or any(fnmatch.fnmatchcase(subject, p) for p in _as_list(patterns))


def _permission_statements(template: dict[str, Any], role_id: str) -> Iterator[dict[str, Any]]:
    role = template["Resources"][role_id]["Properties"]
    for policy in role.get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]
    for resource in template["Resources"].values():
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} and {
            "Ref": role_id
        } in resource["Properties"].get("Roles", []):
            yield from resource["Properties"]["PolicyDocument"]["Statement"]


def _local_role(resource: Any) -> str | None:
    """The logical id of a role of this template that an ARN refers to, else None."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return resource["Fn::GetAtt"][0]
    return None


def _findings_for(
    template: dict[str, Any], role_id: str, roles: set[str]
) -> tuple[list[str], list[str]]:
    """What lets one role read S3 objects, and the roles of this template it may assume."""
    findings: list[str] = []
    assumable: list[str] = []
    if template["Resources"][role_id]["Properties"].get("ManagedPolicyArns"):
        findings.append(f"{role_id}: managed policies")
    for statement in _permission_statements(template, role_id):
        if statement["Effect"] != "Allow":
            continue
        if "NotAction" in statement:
            findings.append(f"{role_id}: NotAction {statement['NotAction']}")
            continue
        actions = [action.lower() for action in _as_list(statement["Action"])]
        if any(fnmatch.fnmatchcase("s3:getobject", action) for action in actions):
            findings.append(f"{role_id}: {statement['Action']}")
        if any(fnmatch.fnmatchcase("sts:assumerole", action) for action in actions):
            for resource in _as_list(statement["Resource"]):
                target = _local_role(resource)
                if target in roles:
                    assumable.append(target)
                else:
                    findings.append(f"{role_id}: may assume {_flatten(resource)}")
    return findings, assumable


def _s3_object_readers_reachable_by(template: dict[str, Any], subject: str) -> list[str]:
    """Why each role a token with `subject` reaches (trust, then sts:AssumeRole, transitively)
    can read S3 objects. A role outside this template (a bootstrap role: the lookup role holds
    ReadOnlyAccess) and any managed policy count as able to."""
    roles = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }
    pending = [
        logical_id
        for logical_id, role in roles.items()
        if any(
            _admits(statement, subject)
            for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        )
    ]
    assert pending, f"no role admits {subject}: the model of the trust policies is off"
    reached: set[str] = set()
    findings: list[str] = []
    while pending:
        role_id = pending.pop()
        if role_id in reached:
            continue
        reached.add(role_id)
        role_findings, assumable = _findings_for(template, role_id, set(roles))
        findings.extend(role_findings)
        pending.extend(assumable)
    return findings


def test_no_role_reachable_from_a_pull_request_can_read_s3_objects(
    template: dict[str, Any],
) -> None:
    assert _s3_object_readers_reachable_by(template, PULL_REQUEST_SUBJECT) == []


def test_no_role_reachable_from_a_pull_request_reads_s3_in_any_bootstrap_region() -> None:
    template = _synth(bootstrap_regions=["eu-west-1", "us-east-1"], create_oidc_provider=False)
    assert _s3_object_readers_reachable_by(template, PULL_REQUEST_SUBJECT) == []


def test_reachability_check_flags_every_path_to_s3_objects() -> None:
    # Guards the tests above: the shape this stack used to have (the diff role may assume the
    # lookup role), a direct grant, and a grant one assumed role away must all be caught, while
    # the deploy roles (not reachable from a pull request) are not reported.
    app = App(context=FEATURE_FLAGS)
    stack = CiRolesStack(
        app, "MusicGen-ci", github_repository=REPOSITORY, deploy_environments=["dev"]
    )
    reader = iam.Role(stack, "Reader", assumed_by=iam.ArnPrincipal(stack.diff_role.role_arn))
    reader.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    stack.diff_role.add_to_policy(
        iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            resources=[
                f"arn:aws:iam::{Aws.ACCOUNT_ID}:role/cdk-hnb659fds-lookup-role",
                reader.role_arn,
            ],
        )
    )
    stack.diff_role.add_to_policy(iam.PolicyStatement(actions=["s3:Get*"], resources=["*"]))

    findings = _s3_object_readers_reachable_by(
        Template.from_stack(stack).to_json(), PULL_REQUEST_SUBJECT
    )

    assert len(findings) == 3, findings
    assert any("may assume" in f and "lookup-role" in f for f in findings), findings
    assert any(f.startswith("DiffRole") and "s3:Get*" in f for f in findings), findings
    assert any(f.startswith("Reader") and "s3:GetObject" in f for f in findings), findings


def test_bootstrap_regions_scope_the_assumable_roles() -> None:
    template = _synth(bootstrap_regions=["eu-west-1", "us-east-1"], bootstrap_qualifier="abc123")
    statements = _statements_of(template, _role_id(template, "cdk deploy of MusicGen-dev "))
    resources = {_flatten(r) for s in statements for r in _as_list(s["Resource"])}
    assert {r.rsplit("/", 1)[-1] for r in resources if "-lookup-role-" in r} == {
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
def test_cdk_nag_aws_solutions_and_nist_are_clean(regions: tuple[str, ...]) -> None:
    app = App(context=FEATURE_FLAGS)
    Validations.of(app).add_plugins(*nag_packs(app))
    CiRolesStack(
        app,
        "MusicGen-ci",
        github_repository=REPOSITORY,
        deploy_environments=["dev", "prod"],
        bootstrap_regions=regions,
        allow_shared_account=True,
    )
    app.synth()


def test_cdk_nag_check_is_live_for_an_unacknowledged_wildcard() -> None:
    # Guards the test above: the same set-up must reject a wildcard nobody acknowledged.
    app = App(context=FEATURE_FLAGS)
    Validations.of(app).add_plugins(*nag_packs(app))
    stack = Stack(app, "Control")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5|Validation failed"):
        app.synth()


def test_cdk_nag_check_is_live_for_an_unacknowledged_nist_finding() -> None:
    # A role scoped to one object breaks no AwsSolutions rule, but its inline policy is a NIST
    # 800-53 rev 5 finding: the clean test above runs that pack too.
    app = App(context=FEATURE_FLAGS)
    Validations.of(app).add_plugins(*nag_packs(app))
    stack = Stack(app, "Control")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::bucket/key"])
    )
    with pytest.raises(RuntimeError, match=r"NIST\.800\.53\.R5-IAMNoInlinePolicy"):
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


def test_deploy_roles_for_environments_sharing_an_account_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^deploy_environments: dev, prod would get") as raised:
        _synth(allow_shared_account=False)
    assert f"-c {SHARED_ACCOUNT_FLAG}=true" in str(raised.value)
    assert "-c ci_account=ID" in str(raised.value)


def test_one_environment_per_account_needs_no_opt_in() -> None:
    template = _synth(deploy_environments=["prod"], allow_shared_account=False)
    _role_id(template, "cdk deploy of MusicGen-prod ")


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
        _table(dev=None, prod=None),
        github_repository=REPOSITORY,
        ci_create_oidc_provider="false",
        **{SHARED_ACCOUNT_FLAG: "true"},
    )
    assert stack is not None and stack.stack_name == "MusicGen-ci"
    assert sorted(stack.deploy_roles) == ["dev", "prod"]
    template = Template.from_stack(stack).to_json()
    assert "AWS::IAM::OIDCProvider" not in {r["Type"] for r in template["Resources"].values()}
    statements = _statements_of(template, _role_id(template, "cdk deploy of MusicGen-dev "))
    regions = {match["region"] for match in _assumable_roles(statements)}
    assert regions == {"${AWS::Region}", "eu-west-1"}
    assert _s3_object_readers_reachable_by(template, PULL_REQUEST_SUBJECT) == []


def test_context_refuses_the_shipped_table_sharing_one_account_naming_the_flag() -> None:
    # The shipped table names no accounts: dev and prod would land in one account.
    shipped = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]
    with pytest.raises(ValueError, match=rf"-c {SHARED_ACCOUNT_FLAG}=true"):
        _from_context(load_environments(shipped), github_repository=REPOSITORY)


def test_context_with_environments_in_one_declared_account_is_refused() -> None:
    table = _table(dev="111111111111", prod="111111111111")
    with pytest.raises(ValueError, match=r"^deploy_environments: dev, prod would get"):
        _from_context(table, github_repository=REPOSITORY, ci_account="111111111111")
    stack = _from_context(
        table,
        github_repository=REPOSITORY,
        ci_account="111111111111",
        **{SHARED_ACCOUNT_FLAG: "true"},
    )
    assert stack is not None and sorted(stack.deploy_roles) == ["dev", "prod"]


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
    with pytest.raises(ValueError, match=rf"^{SHARED_ACCOUNT_FLAG}: must be true or false"):
        _from_context(table, github_repository=REPOSITORY, **{SHARED_ACCOUNT_FLAG: "yes"})
