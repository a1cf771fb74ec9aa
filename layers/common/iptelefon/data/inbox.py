"""The webhook's durable inbox: an SQS queue (WebhookInbox in template.yaml) where a call waits while storage is away.

The webhook puts a request here when DynamoDB or SSM stays unavailable after the retries, or when the invocation is
about to run out of time; the PBX hears `200 {"result": 1, "queued": true}`. InboxFunction applies it later through the
same code as the webhook: a call's effects are keyed by the call, so applying a message twice changes nothing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.domain.errors import StorageUnavailable
from iptelefon.platform.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SQS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=0.5, read_timeout=1.0)
# The longest a send can take, botocore's retries included: what the webhook keeps free for it (see `budget`).
SEND_WORST_SECONDS = 2 * (0.5 + 1.0) + 1


@lru_cache(maxsize=1)
def sqs_client() -> SQSClient:
    return boto3.client("sqs", config=SQS_CONFIG)


class SqsInbox:
    """The inbox as the webhook receives it (`usecases.ports.Inbox`)."""

    def send(self, message: str) -> None:
        """Queue one message; StorageUnavailable (the PBX gets a 503 and sends again) when SQS cannot take it either."""
        queue_url = get_settings().inbox_queue_url
        if not queue_url:
            raise StorageUnavailable()
        try:
            sqs_client().send_message(QueueUrl=queue_url, MessageBody=message)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable() from error
