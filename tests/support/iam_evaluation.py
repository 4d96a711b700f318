"""Decides one request against the policies of a synthesized template, the way AWS does within
one account: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html

- An explicit Deny in any policy that applies wins.
- SNS: the topic policy may allow the principal, or (for a role of this account) its identity
  policies may.
- KMS: the key policy must allow, either the principal itself or, for a role of this account, the
  account (`kms:*` to the account root), which lets the role's identity policies decide:
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html

Values are CloudFormation expressions (`{"Ref": ...}`, `{"Fn::GetAtt": ...}`, `Fn::Join`s of
them), compared after rendering pseudo parameters alike (a stack with a concrete region writes
`arn:aws:` where an environment-agnostic one joins in `AWS::Partition`). A condition operator
this module does not know fails the test instead of being skipped.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Statement = Mapping[str, Any]
ACCOUNT_ROOT = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
    ]
}


@dataclass(frozen=True)
class Request:
    """`principal`: `{"Service": name}` or `{"AWS": role ARN expression}`."""

    principal: Mapping[str, Any]
    action: str
    resource: Any
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def role_arn(self) -> Any:
        return self.principal.get("AWS")


def _rendered(value: Any) -> Any:
    """A comparable form of an expression: joins flattened, pseudo parameters as `${...}`."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        rendered = (_rendered(part) for part in parts)
        return separator.join(
            part if isinstance(part, str) else json.dumps(part, sort_keys=True) for part in rendered
        )
    if isinstance(value, dict) and str(value.get("Ref", "")).startswith("AWS::"):
        # One partition for both spellings: the literal `aws` or the pseudo parameter.
        return "aws" if value["Ref"] == "AWS::Partition" else "${" + value["Ref"] + "}"
    return value


def _same(a: Any, b: Any) -> bool:
    return bool(_rendered(a) == _rendered(b))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_matches(statement: Statement, action: str) -> bool:
    if "NotAction" in statement:
        raise AssertionError(f"NotAction is not evaluated here: {statement}")
    return any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower())
        for pattern in _listed(statement["Action"])
    )


def _resource_matches(statement: Statement, resource: Any) -> bool:
    if "NotResource" in statement:
        raise AssertionError(f"NotResource is not evaluated here: {statement}")
    return any(r == "*" or _same(r, resource) for r in _listed(statement["Resource"]))


def _principal_matches(statement: Statement, principal: Mapping[str, Any]) -> bool:
    stated = statement["Principal"]
    if stated == "*" or stated == {"AWS": "*"}:
        return True
    return any(
        _same(value, listed)
        for kind, value in principal.items()
        for listed in _listed(stated.get(kind, []))
    )


def _conditions_hold(statement: Statement, context: Mapping[str, Any]) -> bool:
    for operator, tests in statement.get("Condition", {}).items():
        for key, allowed in tests.items():
            if key not in context:
                return False
            value = context[key]
            if operator == "StringEquals":
                if not any(_same(value, a) for a in _listed(allowed)):
                    return False
            elif operator == "Bool":
                if str(value).lower() not in [str(a).lower() for a in _listed(allowed)]:
                    return False
            else:
                raise AssertionError(f"condition operator {operator} is not evaluated here")
    return True


def _applies(statement: Statement, request: Request, *, resource_policy: bool) -> bool:
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and (not resource_policy or _principal_matches(statement, request.principal))
        and _conditions_hold(statement, request.context)
    )


def _effects(
    statements: Iterable[Statement], request: Request, *, resource_policy: bool
) -> set[str]:
    return {
        statement["Effect"]
        for statement in statements
        if _applies(statement, request, resource_policy=resource_policy)
    }


def identity_statements(template: Mapping[str, Any], role_arn: Any) -> list[Statement]:
    """The statements of every AWS::IAM::Policy attached to the role with this ARN expression."""
    if role_arn is None:
        return []
    (role_id, attribute) = role_arn["Fn::GetAtt"]
    assert attribute == "Arn", role_arn
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_id} in resource["Properties"].get("Roles", [])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def topic_policy_statements(template: Mapping[str, Any], topic_id: str) -> list[Statement]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::TopicPolicy"
        and {"Ref": topic_id} in resource["Properties"]["Topics"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def sns_allows(template: Mapping[str, Any], topic_id: str, request: Request) -> bool:
    resource_effects = _effects(
        topic_policy_statements(template, topic_id), request, resource_policy=True
    )
    identity_effects = _effects(
        identity_statements(template, request.role_arn), request, resource_policy=False
    )
    if "Deny" in resource_effects | identity_effects:
        return False
    return "Allow" in resource_effects | identity_effects


def kms_allows(template: Mapping[str, Any], key_id: str, request: Request) -> bool:
    key_statements = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    direct = _effects(key_statements, request, resource_policy=True)
    identity_effects = _effects(
        identity_statements(template, request.role_arn), request, resource_policy=False
    )
    if "Deny" in direct | identity_effects:
        return False
    if "Allow" in direct:
        return True
    if request.role_arn is None:
        return False
    account = Request({"AWS": ACCOUNT_ROOT}, request.action, request.resource, request.context)
    delegated = "Allow" in _effects(key_statements, account, resource_policy=True)
    return delegated and "Allow" in identity_effects


CLOUDWATCH_ALARMS = {"Service": "cloudwatch.amazonaws.com"}
# What CloudWatch's publish carries for an alarm of the stack's own account, over TLS.
THIS_ACCOUNTS_ALARM = {
    "aws:SourceAccount": {"Ref": "AWS::AccountId"},
    "aws:SecureTransport": "true",
}
ANOTHER_ACCOUNTS_ALARM = {"aws:SourceAccount": "111122223333", "aws:SecureTransport": "true"}
# A KMS call is made by SNS for the publisher; only what the publisher's request carries is set.
OVER_TLS = {"aws:SecureTransport": "true"}


@dataclass(frozen=True)
class Publisher:
    """Who publishes to which topic, and the request context its publish carries."""

    who: str
    principal: Mapping[str, Any]
    topic_id: str
    context: Mapping[str, Any]


def alarm_publishers(template: Mapping[str, Any]) -> list[Publisher]:
    """CloudWatch, once per alarm action that names a topic of the template."""
    resources = template["Resources"]
    return [
        Publisher(f"alarm {alarm_id}", CLOUDWATCH_ALARMS, action["Ref"], THIS_ACCOUNTS_ALARM)
        for alarm_id, alarm in resources.items()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
        for action in alarm["Properties"].get(key, [])
        if isinstance(action, dict)
        and resources.get(action.get("Ref"), {}).get("Type") == "AWS::SNS::Topic"
    ]


def endpoint_publishers(template: Mapping[str, Any]) -> list[Publisher]:
    """The execution role of each async endpoint config's models, once per notified topic."""
    resources = template["Resources"]
    found = []
    for config_id, config in resources.items():
        if config["Type"] != "AWS::SageMaker::EndpointConfig":
            continue
        output = config["Properties"].get("AsyncInferenceConfig", {}).get("OutputConfig", {})
        topics = [
            ref["Ref"] for ref in output.get("NotificationConfig", {}).values() if "Ref" in ref
        ]
        for variant in config["Properties"]["ProductionVariants"]:
            (model_id, _) = variant["ModelName"]["Fn::GetAtt"]
            role_arn = resources[model_id]["Properties"]["ExecutionRoleArn"]
            found.extend(
                Publisher(f"endpoint {config_id}", {"AWS": role_arn}, topic, OVER_TLS)
                for topic in topics
            )
    return found


def publish_refusals(template: Mapping[str, Any], publisher: Publisher) -> list[str]:
    """Why the publisher's publish would be refused: by the topic policy or by the key policy."""
    topic_arn = {"Ref": publisher.topic_id}
    refusals = []
    publish = Request(publisher.principal, "sns:Publish", topic_arn, publisher.context)
    if not sns_allows(template, publisher.topic_id, publish):
        refusals.append(f"{publisher.who}: sns:Publish on {publisher.topic_id} refused")
    key_arn = template["Resources"][publisher.topic_id]["Properties"].get("KmsMasterKeyId")
    if key_arn is None:
        return refusals
    if not (isinstance(key_arn, dict) and "Fn::GetAtt" in key_arn):
        return [*refusals, f"{publisher.topic_id}: key {key_arn} has no key policy of ours"]
    (key_id, _) = key_arn["Fn::GetAtt"]
    # What a publisher needs on the topic's key:
    # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#send-to-encrypted-topic
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        use = Request(publisher.principal, action, key_arn, publisher.context)
        if not kms_allows(template, key_id, use):
            refusals.append(f"{publisher.who}: {action} on {key_id} refused")
    return refusals
