"""The success and error SNS topics SageMaker publishes async results to."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from constructs_lib.rotating_key import rotating_key

CLOUDWATCH = "cloudwatch.amazonaws.com"
_THIS_ACCOUNTS_ALARMS = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}


class NotificationTopics(Construct):
    """Two KMS-encrypted, TLS-only topics; the e-mail addresses subscribe to the error topic.

    CloudWatch alarms publish to the error topic. `enforce_ssl` gives each topic a policy that
    replaces SNS's default one, so the CloudWatch service may publish only because the error
    topic's policy allows it; and only a key policy we own (a customer-managed key, not
    `alias/aws/sns`) can let it use the key. Both allow it only for this account's alarms
    (`aws:SourceAccount`).

    Props:
        notification_emails: addresses subscribed to the error topic (failures and alarms).

    Grants:
        grant_publish(grantee): `sns:Publish` on both topics plus the two key actions a
            publisher needs (not the `kms:GenerateDataKey*` family `Topic.grant_publish` adds).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        notification_emails: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = rotating_key(
            self, "TopicKey", description="Encrypts the MusicGen async result topics"
        )
        # A service that publishes to an encrypted topic needs the key policy's permission:
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
        # the two actions CloudWatch alarms call:
        # https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns
        # Conditioned on the account only: a SourceArn condition on the key is not documented
        # for CloudWatch's KMS calls (an unmet condition would silently drop every alarm).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions=_THIS_ACCOUNTS_ALARMS,
            )
        )
        self.success_topic = self._topic("SuccessTopic", "MusicGen async inference succeeded")
        self.error_topic = self._topic("ErrorTopic", "MusicGen async inference failed")
        # The topic policy must allow the alarms' publish itself: with `enforce_ssl` it no
        # longer holds SNS's default statements.
        # https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        # `aws:SourceAccount` keeps another account's alarms out (the confused deputy):
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html
        self.error_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.error_topic.topic_arn],
                conditions=_THIS_ACCOUNTS_ALARMS,
            )
        )
        # Only failures and alarms reach people: one mail per generated clip would be noise.
        for email in notification_emails:
            self.error_topic.add_subscription(subscriptions.EmailSubscription(email))

    def _topic(self, construct_id: str, display_name: str) -> sns.Topic:
        return sns.Topic(
            self,
            construct_id,
            display_name=display_name,
            master_key=self.key,
            enforce_ssl=True,
        )

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishResults",
                actions=["sns:Publish"],
                resources=[topic.topic_arn for topic in self.topics],
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
            )
        )

    @property
    def topics(self) -> tuple[sns.Topic, sns.Topic]:
        return self.success_topic, self.error_topic
