"""`cdk diff --method template` works with the diff role although it may assume no role.

The real CDK CLI that package.json pins runs against moto's server in IAM-enforcing mode (STS,
IAM, CloudFormation on loopback), with the credentials of a role that holds exactly the diff
role's actions. STS refuses it the bootstrap lookup role (which exists and trusts the account),
and the CLI must fall back to the role's own credentials, say so, and print the diff.

moto matches IAM actions but not resource ARNs (it checks every request against `*`), so the
role's statements keep their actions and get `*` as resource here; the resource scoping itself
is pinned by the unit tests of the stack.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from botocore.exceptions import ClientError

from musicgen_local.moto_server import running_s3_server
from stacks.ci_roles_stack import CiRolesStack

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"
ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
STACK_NAME = "MusicGen-dev"
LOOKUP_ROLE = f"cdk-hnb659fds-lookup-role-{ACCOUNT}-{REGION}"
SETUP_CREDENTIALS = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
# The requests moto serves before it starts enforcing IAM: exactly the set-up calls below.
SETUP_REQUESTS = 5
CLI_TIMEOUT_SECONDS = 300


def iam_enforcing_moto() -> AbstractContextManager[str]:
    return running_s3_server({"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)})


def _diff_role_actions() -> list[str]:
    """The actions of every statement the CI stack gives its diff role."""
    stack = CiRolesStack(
        App(), "MusicGen-ci", github_repository="acme/music", deploy_environments=["dev"]
    )
    template = Template.from_stack(stack).to_json()
    [diff_role] = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and logical_id.startswith("DiffRole")
    ]
    actions: list[str] = []
    for resource in template["Resources"].values():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": diff_role} in resource["Properties"]["Roles"]
        ):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                value = statement["Action"]
                actions.extend(value if isinstance(value, list) else [value])
    return actions


def _synth_app_stack(outdir: Path) -> None:
    """A stack of the app's name, synthesized with the default (bootstrap-role) synthesizer."""
    app = App(outdir=str(outdir))
    stack = Stack(app, STACK_NAME)
    sns.Topic(stack, "Topic")
    sqs.Queue(stack, "Queue")
    app.synth()


def _trust_the_account() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _diff_role_credentials(endpoint: str, actions: list[str]) -> dict[str, str]:
    """Set up the account (the only unauthenticated requests) and return the diff role's keys."""
    clients: dict[str, Any] = {
        name: boto3.client(name, endpoint_url=endpoint, region_name=REGION, **SETUP_CREDENTIALS)
        for name in ("iam", "sts", "cloudformation")
    }
    clients["iam"].create_role(RoleName="diff", AssumeRolePolicyDocument=_trust_the_account())
    clients["iam"].put_role_policy(
        RoleName="diff",
        PolicyName="diff",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
        ),
    )
    clients["iam"].create_role(RoleName=LOOKUP_ROLE, AssumeRolePolicyDocument=_trust_the_account())
    clients["cloudformation"].create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
    )
    credentials = clients["sts"].assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/diff", RoleSessionName="cdk-diff"
    )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def _cli_environment(endpoint: str, credentials: dict[str, str], home: Path) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {
        **inherited,
        **credentials,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        # The CLI caches the account id under ~/.cdk: keep it out of the real home.
        "HOME": str(home),
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "FORCE_COLOR": "0",
        "NO_COLOR": "1",
    }


@pytest.fixture(scope="module")
def cdk_cli() -> Path:
    if not CDK_CLI.exists():
        pytest.skip(f"NOT PROVEN: the CDK CLI is not installed ({CDK_CLI}); run `npm ci` first")
    return CDK_CLI


def test_template_diff_falls_back_to_the_diff_roles_own_credentials(
    cdk_cli: Path, tmp_path: Path
) -> None:
    assembly = tmp_path / "cdk.out"
    _synth_app_stack(assembly)
    with iam_enforcing_moto() as endpoint:
        credentials = _diff_role_credentials(endpoint, _diff_role_actions())
        # The premise: STS refuses the diff role the lookup role.
        with pytest.raises(ClientError, match="AccessDenied"):
            boto3.client(
                "sts",
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=credentials["AWS_SESSION_TOKEN"],
            ).assume_role(
                RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{LOOKUP_ROLE}", RoleSessionName="probe"
            )

        result = subprocess.run(
            [
                str(cdk_cli),
                "diff",
                "--app",
                str(assembly),
                STACK_NAME,
                "--method",
                "template",
                "--no-notices",
            ],
            cwd=tmp_path,
            env=_cli_environment(endpoint, credentials, tmp_path),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
        )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Lookup role arn:aws:iam::{ACCOUNT}:role/{LOOKUP_ROLE} was not assumed" in output
    assert "Proceeding with default credentials." in output
    # The deployed template was read: the deployed topic goes, the new resources come.
    assert "[-] AWS::SNS::Topic Topic destroy" in output, output
    assert "[+] AWS::SQS::Queue Queue" in output, output
    assert "Number of stacks with differences: 1" in output, output
