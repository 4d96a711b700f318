"""NotificationTopics in a bare stack: encrypted TLS-only topics, e-mails, and grant_publish."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk.assertions import Capture, Match, Template

from constructs_lib.notification_topics import NotificationTopics
from tests.unit.constructs_lib.conftest import grantee_role, statements_of


def test_topics_use_the_rotated_key_that_cloudwatch_may_use() -> None:
    stack = Stack()
    NotificationTopics(stack, "Topics")
    template = Template.from_stack(stack)
    key_id = Capture()
    template.resource_count_is("AWS::SNS::Topic", 2)
    template.all_resources_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                            }
                        )
                    ]
                )
            },
        },
    )
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
