"""The delivery queue (EventDeliveries in template.yaml): one message per (event, endpoint) attempt, so an endpoint
that fails or is slow never holds up another one's events.

A message: {"project_id", "endpoint_id", "event_id", "attempt", "due"} (`due`: epoch seconds). SQS delays a message
15 minutes at most: a later attempt hops, each hop at most 15 minutes, carrying its due time.
"""

from __future__ import annotations

import json
import math
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.data.inbox import sqs_client
from iptelefon.domain.errors import StorageUnavailable

MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds
BATCH = 10


class SqsDeliveryQueue:
    """`usecases.ports.DeliveryQueue`."""

    def __init__(self, queue_url: str | None, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, messages: list[dict[str, Any]], now: float) -> None:
        if not self.queue_url:
            raise StorageUnavailable("no delivery queue is configured")
        client = self._client or sqs_client()
        for start in range(0, len(messages), BATCH):
            entries: Any = [
                {
                    "Id": str(n),
                    "MessageBody": json.dumps(message),
                    "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, math.ceil(float(message["due"]) - now))),
                }
                for n, message in enumerate(messages[start : start + BATCH])
            ]
            try:
                reply = client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                raise StorageUnavailable("the delivery queue is unavailable, retry") from error
            if reply.get("Failed"):
                raise StorageUnavailable("the delivery queue refused a message, retry")
