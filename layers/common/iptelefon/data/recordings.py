"""Recordings in DynamoDB (issue 25, `domain.recordings`; the item's layout: `data.recording_items`), and the copy
queue (SQS RecordingQueue).

The item is written in the transaction that stores the call or its later link (`recording_items.recording_writes`,
one line in `data.call_records`); the copier moves it on, and the call item's `recording_state` with it, in one
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.data.event_items import outbox_write
from iptelefon.data.gateway import ConditionFailed, Storage, Write, project_pk, update
from iptelefon.data.inbox import sqs_client
from iptelefon.data.recording_items import PENDING_PK, RECORDING_SK, recording_pk
from iptelefon.domain.models import utc_stamp
from iptelefon.domain.recordings import Recording, is_recording_id
from iptelefon.platform.observability import logger
from iptelefon.platform.settings import get_settings

if TYPE_CHECKING:
    from iptelefon.domain.call_events import CallEvent

STILL_PENDING = "recording is pending"


class RecordingStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, recording_id: str) -> Recording | None:
        if not is_recording_id(recording_id):
            return None
        item = self.storage.get(recording_pk(recording_id), RECORDING_SK)
        return Recording.model_validate(item) if item else None

    def pending_before(self, moment: datetime, *, limit: int = 100) -> list[Recording]:
        """Pending recordings created before `moment`, oldest first (the sparse index: pending ones only)."""
        items = self.storage.query(PENDING_PK, limit=limit, index="gsi1", sk_before=utc_stamp(moment))
        return [Recording.model_validate(i) for i in items]

    def mark_archived(self, archived: Recording, *, events: Sequence[CallEvent] = ()) -> bool:
        """Archived (`archived`: its key, type and size), off the pending index, and the call says so, with its
        `recording.ready` event in the same transaction: it fires once, when the copy is archived. False when it was
        no longer pending (another copy ended it, and made the event)."""
        writes = self._ended(
            archived,
            "archived",
            "SET archive_key = :key, content_type = :type, size_bytes = :size",
            {":key": archived.archive_key, ":type": archived.content_type, ":size": archived.size_bytes},
        )
        return self._transact([*writes, *(outbox_write(event) for event in events)])

    def mark_failed(self, recording: Recording, reason: str) -> bool:
        return self._transact(self._ended(recording, "failed", "SET reason = :reason", {":reason": reason[:200]}))

    def _ended(self, recording: Recording, state: str, expression: str, values: dict[str, object]) -> list[Write]:
        return [
            update(
                recording_pk(recording.recording_id),
                RECORDING_SK,
                f"{expression}, #state = :state REMOVE gsi1pk, gsi1sk",
                only_if="#state = :pending",
                names={"#state": "state"},
                values={**values, ":state": state, ":pending": "pending"},
                label=STILL_PENDING,
            ),
            update(
                project_pk(recording.project_id),
                f"CALL#{recording.call_key}",
                "SET recording_state = :state, recording_reason = :reason",
                only_if="recording_id = :id",
                values={":state": state, ":reason": values.get(":reason"), ":id": recording.recording_id},
            ),
        ]

    def _transact(self, writes: list[Write]) -> bool:
        try:
            self.storage.transact(writes)
        except ConditionFailed as failed:
            if STILL_PENDING in failed.failed:
                return False  # another copy (a redelivered message) ended it first
            raise
        return True


class SqsRecordingQueue:
    """The copy queue (SQS RecordingQueue; `usecases.ports.RecordingQueue`): one message per recording to copy."""

    def __init__(self, queue_url: str | None = None) -> None:
        self.queue_url = queue_url or get_settings().recording_queue_url

    def send(self, recording_id: str) -> bool:
        """False when the queue could not take it: the recording stays pending and the sweep sends it again."""
        if not self.queue_url:
            return False
        try:
            sqs_client().send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"recording_id": recording_id}))
        except (BotoCoreError, ClientError) as error:
            logger.warning("recording copy not queued; the sweep sends it", extra={"error": type(error).__name__})
            return False
        return True
