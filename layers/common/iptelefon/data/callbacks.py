"""Callback tasks (issue 23, rules in `domain.callbacks`; item layout in `data.call_effects`) in DynamoDB.

The project's open tasks are one Query (`OPEN#`): the queue is small by nature (tasks close as clients are reached).
A call opens, extends or closes its client's task in its own transaction (`call_effects.recorded_call_writes`); here
are the reads, the close by hand and the missed-call text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from iptelefon.data.call_effects import CALLBACK_CHANGED, callbacks_pk, counter_writes, open_sk, task_writes
from iptelefon.data.client_items import dialog_pk, dialog_sk
from iptelefon.data.gateway import ConditionFailed, Storage, put, update
from iptelefon.domain.call_stats import callback_increments
from iptelefon.domain.callbacks import (
    CallbackChanged,
    CallbackTask,
    ClosedTask,
    CloseTask,
)
from iptelefon.domain.models import utc_stamp

ALREADY_TEXTED = "client texted within a day"
TEXT_INTERVAL = timedelta(hours=24)
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

    def text_client(self, project_id: str, task: CallbackTask, text: str, *, now: datetime) -> bool:
        """Put the missed-call `text` into the client's dialog (the bot platform sends it) and onto the open task, at
        most once per client per TEXT_INTERVAL (a conditional write on the client's TEXTED item). False (nothing
        written) when the client was sent one within that time, or the task closed meanwhile."""
        guard = put(
            {
                "pk": callbacks_pk(project_id),
                "sk": f"TEXTED#{task.client_id}",
                "sent_at": utc_stamp(now),
                "expires_at": int((now + TEXT_INTERVAL).timestamp()) + 3600,
            },
            only_if="attribute_not_exists(pk) OR sent_at < :cutoff",
            values={":cutoff": utc_stamp(now - TEXT_INTERVAL)},  # fixed width: compares as time
            label=ALREADY_TEXTED,
        )
        note = {
            "pk": dialog_pk(project_id, task.client_id),
            "sk": dialog_sk(now, f"text-{task.task_id}"),
            "type": "notification",
            "kind": "missed_call_text",
            "text": text,
            "task_id": task.task_id,
            "created_at": now.isoformat(),
        }
        on_task = update(
            callbacks_pk(project_id),
            open_sk(task.client_id),
            "SET message = :text",
            only_if="task_id = :task",
            values={":text": text, ":task": task.task_id},
            label=CALLBACK_CHANGED,
        )
        try:
            self.storage.transact([guard, put(note), on_task])
        except ConditionFailed:
            return False
        return True
