"""NotificationTopics in a bare stack: encrypted TLS-only topics, e-mails, and grant_publish."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.notification_topics import NotificationTopics
from tests.support.iam_evaluation import (
    ANOTHER_ACCOUNTS_ALARM,
    CLOUDWATCH_ALARMS,
    OVER_TLS,
    THIS_ACCOUNTS_ALARM,
    Publisher,
    alarm_publishers,
    publish_refusals,
)
from tests.unit.constructs_lib.conftest import grantee_role, statements_of


def test_topics_use_the_rotated_key_and_allow_only_tls() -> None:
    stack = Stack()
    NotificationTopics(stack, "Topics")
    template = Template.from_stack(stack)
    key_id = Capture()
    template.resource_count_is("AWS::SNS::Topic", 2)
    template.all_resources_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    assert key_id.as_string() in template.find_resources("AWS::KMS::Key")
    template.all_resources_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def _published() -> tuple[dict[str, Any], list[Publisher]]:
    """The topics with an alarm on the error topic and a role granted `grant_publish`."""
    stack = Stack()
    topics = NotificationTopics(stack, "Topics")
    role = grantee_role(stack)
    topics.grant_publish(role)
    alarm = cloudwatch.Alarm(
        stack,
        "Alarm",
        metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="InvocationFailures"),
        threshold=1,
        evaluation_periods=1,
    )
    alarm.add_alarm_action(actions.SnsAction(topics.error_topic))
    role_arn = {"Fn::GetAtt": [stack.get_logical_id(role.node.default_child), "Arn"]}
    template = Template.from_stack(stack).to_json()
    granted = [
        Publisher(
            "grantee", {"AWS": role_arn}, stack.get_logical_id(topic.node.default_child), OVER_TLS
        )
        for topic in topics.topics
    ]
    return template, [*alarm_publishers(template), *granted]


def test_every_publisher_is_allowed_by_the_topic_policy_and_the_key_policy() -> None:
    """CloudWatch alarms (topic and key policy) and the granted role (its own policy)."""
    template, publishers = _published()
    assert [p.who for p in publishers] == [
        next(p.who for p in publishers if p.who.startswith("alarm Alarm")),
        "grantee",
        "grantee",
    ]
    assert [refusal for p in publishers for refusal in publish_refusals(template, p)] == []


def test_another_accounts_alarms_and_plain_http_are_refused() -> None:
    template, publishers = _published()
    (alarm,) = [p for p in publishers if p.principal == CLOUDWATCH_ALARMS]
    key_id = template["Resources"][alarm.topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert publish_refusals(template, replace(alarm, context=ANOTHER_ACCOUNTS_ALARM)) == [
        f"{alarm.who}: sns:Publish on {alarm.topic_id} refused",
        f"{alarm.who}: kms:GenerateDataKey on {key_id} refused",
        f"{alarm.who}: kms:Decrypt on {key_id} refused",
    ]
    plain_http = {**THIS_ACCOUNTS_ALARM, "aws:SecureTransport": "false"}
    assert publish_refusals(template, replace(alarm, context=plain_http)) == [
        f"{alarm.who}: sns:Publish on {alarm.topic_id} refused"
    ]
    (role_on_error_topic,) = [
        p for p in publishers if p.who == "grantee" and p.topic_id == alarm.topic_id
    ]
    assert publish_refusals(
        template, replace(role_on_error_topic, context={"aws:SecureTransport": "false"})
    ) == [f"grantee: sns:Publish on {alarm.topic_id} refused"]


def test_cloudwatch_may_not_publish_to_the_success_topic() -> None:
    """Only the error topic carries alarms: nothing else lets CloudWatch speak to clients."""
    template, publishers = _published()
    (alarm,) = [p for p in publishers if p.principal == CLOUDWATCH_ALARMS]
    (success_id,) = {p.topic_id for p in publishers} - {alarm.topic_id}
    assert publish_refusals(template, replace(alarm, topic_id=success_id)) == [
        f"{alarm.who}: sns:Publish on {success_id} refused"
    ]


def test_emails_subscribe_to_the_error_topic_only() -> None:
    stack = Stack()
    topics = NotificationTopics(stack, "Topics", notification_emails=["ops@example.com"])
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Subscription", 1)
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "TopicArn": {"Ref": stack.get_logical_id(topics.error_topic.node.default_child)},
        },
    )


def test_grant_publish_names_both_topics_and_only_two_key_actions() -> None:
    """Not `Topic.grant_publish`, which adds the whole `kms:GenerateDataKey*` family."""
    stack = Stack()
    topics = NotificationTopics(stack, "Topics")
    topics.grant_publish(grantee_role(stack))
    template = Template.from_stack(stack)
    key_id = stack.get_logical_id(topics.key.node.default_child)
    assert statements_of(template) == [
        {
            "Sid": "PublishResults",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": [
                {"Ref": stack.get_logical_id(topic.node.default_child)} for topic in topics.topics
            ],
        },
        {
            "Sid": "EncryptNotifications",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    ]


def test_key_and_topics_keep_their_logical_ids() -> None:
    """A new id replaces the resource: a new topic ARN drops every subscriber of the old one,
    and a new key schedules the old one for deletion."""
    stack = Stack()
    NotificationTopics(stack, "Topics")
    template = Template.from_stack(stack).to_json()
    ids = {
        logical_id.rstrip("0123456789ABCDEF"): resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::KMS::Key", "AWS::SNS::Topic")
    }
    assert ids == {
        "TopicsTopicKey": "AWS::KMS::Key",
        "TopicsSuccessTopic": "AWS::SNS::Topic",
        "TopicsErrorTopic": "AWS::SNS::Topic",
    }


def test_topics_and_key_say_what_they_are() -> None:
    """The display name is the sender's name on every e-mail the error topic sends."""
    stack = Stack()
    topics = NotificationTopics(stack, "Topics")
    template = Template.from_stack(stack).to_json()
    resources = template["Resources"]
    names = {
        topic: resources[stack.get_logical_id(topic.node.default_child)]["Properties"].get(
            "DisplayName"
        )
        for topic in topics.topics
    }
    assert names == {
        topics.success_topic: "MusicGen async inference succeeded",
        topics.error_topic: "MusicGen async inference failed",
    }
    key = resources[stack.get_logical_id(topics.key.node.default_child)]["Properties"]
    assert key["Description"] == "Encrypts the MusicGen async result topics"
