"""Callback tasks (issue 23, rules in `domain.callbacks`; item layout in `data.call_effects`) in DynamoDB.

The project's open tasks are one Query (`OPEN#`): the queue is small by nature (tasks close as clients are reached).
A call opens, extends or closes its client's task in its own transaction (`call_effects.recorded_call_writes`); here
are the reads, the close by hand and the announcement of a task past its SLA (`callback.overdue`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from iptelefon.data.call_effects import OVERDUE_INDEX_PK, callbacks_pk, counter_writes, open_sk, task_writes
from iptelefon.data.event_items import outbox_write
from iptelefon.data.gateway import ConditionFailed, Storage, update
from iptelefon.domain.call_stats import callback_increments
from iptelefon.domain.callbacks import (
    CallbackChanged,
    CallbackTask,
    ClosedTask,
    CloseTask,
)
from iptelefon.domain.models import utc_stamp

if TYPE_CHECKING:
    from iptelefon.domain.call_events import CallEvent

MAX_OPEN_LISTED = 2000


class CallbackStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def open_of_client(self, project_id: str, client_id: str) -> CallbackTask | None:
        item = self.storage.get(callbacks_pk(project_id), open_sk(client_id))
        return CallbackTask.model_validate(item) if item else None

    def open_tasks(self, project_id: str) -> list[CallbackTask]:
        items = self.storage.query(callbacks_pk(project_id), "OPEN#", limit=MAX_OPEN_LISTED)
        return [CallbackTask.model_validate(item) for item in items]

    def closed(self, project_id: str, task_id: str) -> ClosedTask | None:
        item = self.storage.get(callbacks_pk(project_id), f"CLOSED#{task_id}")
        return ClosedTask.model_validate(item) if item else None

    def overdue(self, now: datetime, *, limit: int = 100) -> list[tuple[str, CallbackTask]]:
        """(project id, task) of the open tasks past their due time not announced yet, oldest due first."""
        items = self.storage.query(OVERDUE_INDEX_PK, limit=limit, index="gsi1", sk_before=utc_stamp(now))
        return [(str(item["pk"]).removeprefix("CALLBACKS#"), CallbackTask.model_validate(item)) for item in items]

    def announce_overdue(self, project_id: str, task: CallbackTask, event: CallEvent) -> bool:
        """The task off the overdue index and its `callback.overdue` event in the outbox, at once; False when the
        task closed (or was announced) meanwhile."""
        off_index = update(
            callbacks_pk(project_id),
            open_sk(task.client_id),
            "REMOVE gsi1pk, gsi1sk",
            only_if="task_id = :task AND attribute_exists(gsi1pk)",
            values={":task": task.task_id},
        )
        try:
            self.storage.transact([off_index, outbox_write(event)])
        except ConditionFailed:
            return False
        return True

    def close(self, project_id: str, change: CloseTask) -> None:
        """Close a task (by hand) with its counters; CallbackChanged when it was closed or changed meanwhile."""
        counters = counter_writes(project_id, callback_increments(change))
        try:
            self.storage.transact([*task_writes(project_id, change), *counters])
        except ConditionFailed:
            raise CallbackChanged() from None
