"""Callback tasks (issue 23, rules in `domain.callbacks`; item layout in `data.call_effects`) in DynamoDB.

The project's open tasks are one Query (`OPEN#`): the queue is small by nature (tasks close as clients are reached).
A call opens, extends or closes its client's task in its own transaction (`call_effects.recorded_call_writes`); here
are the reads, the close by hand and the missed-call text.
"""

from __future__ import annotations

from iptelefon.data.call_effects import callbacks_pk, counter_writes, open_sk, task_writes
from iptelefon.data.gateway import ConditionFailed, Storage
from iptelefon.domain.call_stats import callback_increments
from iptelefon.domain.callbacks import (
    CallbackChanged,
    CallbackTask,
    ClosedTask,
    CloseTask,
)

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

    def close(self, project_id: str, change: CloseTask) -> None:
        """Close a task (by hand) with its counters; CallbackChanged when it was closed or changed meanwhile."""
        counters = counter_writes(project_id, callback_increments(change))
        try:
            self.storage.transact([*task_writes(project_id, change), *counters])
        except ConditionFailed:
            raise CallbackChanged() from None
