"""The item layouts of call statistics and callback tasks (issue 23), and what a NEW call adds to the transaction
that stores it besides the call and its notification: its recording item, its events (the outbox), its counters
and its client's callback task change.
`call_records.add_new` calls `recorded_call_writes` once: anything else a recorded call should write atomically
belongs there. The repositories reading these items: `data.call_stats`, `data.callbacks`.

  STATS#<pid> / <yyyy-mm-dd>#<row>           one local day's counters of an extension (`-`: none) or `*` (all);
                                             only ever added to (`ADD`), in the transaction of the call (or of the
                                             task's close) they count: a replayed webhook counts nothing. A
                                             partition of their own: a period is one Query over these rows only
  CALLBACKS#<pid> / OPEN#<client id>         the client's open task (`CallbackTask`; at most one per client); until
                                             its `callback.overdue` event is made also gsi1: CALLBACKS#DUE /
                                             <due>#<pid>#<client id> (sparse: the overdue sweep's query)
  CALLBACKS#<pid> / CLOSED#<task id>         a closed task (`ClosedTask`), kept CLOSED_KEEP
  CALLBACKS#<pid> / TEXTED#<client id>       when the client was last sent the missed-call text (`data.callbacks`)

A task's writes are conditional on the task being as it was read (`CALLBACK_CHANGED`): a call changes it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from iptelefon.data.client_items import dialog_pk, dialog_sk
from iptelefon.data.event_items import outbox_write
from iptelefon.data.gateway import Write, condition_check, delete, put, update
from iptelefon.data.recording_items import recording_writes
from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.call_stats import Increments, call_increments, callback_increments, merged
from iptelefon.domain.callbacks import (
    AddMissed,
    CallbackChange,
    CallbackTask,
    ClosedTask,
    CloseTask,
    NoOpenTask,
    OpenTask,
)
from iptelefon.domain.models import Project, utc_stamp

if TYPE_CHECKING:
    from iptelefon.domain.call_events import CallEvent


def stats_pk(project_id: str) -> str:
    return f"STATS#{project_id}"


def stats_sk(day: str, row: str) -> str:
    return f"{day}#{row}"


def counter_writes(project_id: str, increments: Increments) -> list[Write]:
    """One ADD per row (a transaction may touch an item once)."""
    writes = []
    for (day, row), counts in sorted(increments.items()):
        names = {f"#f{i}": name for i, name in enumerate(sorted(counts))}
        values: dict[str, Any] = {f":v{i}": counts[name] for i, name in enumerate(sorted(counts))}
        adds = ", ".join(f"#f{i} :v{i}" for i in range(len(counts)))
        writes.append(
            update(
                stats_pk(project_id),
                stats_sk(day, row),
                f"ADD {adds}",  # the day and row are the sort key's: not repeated (a period reads hundreds of rows)
                names=names,
                values=values,
            )
        )
    return writes


CALLBACK_CHANGED = "callback task changed meanwhile"
OVERDUE_INDEX_PK = "CALLBACKS#DUE"
ALREADY_TEXTED = "client texted within a day"
TEXT_INTERVAL = timedelta(hours=24)
CLOSED_KEEP = timedelta(days=400)


def callbacks_pk(project_id: str) -> str:
    return f"CALLBACKS#{project_id}"


def open_sk(client_id: str) -> str:
    return f"OPEN#{client_id}"


def _task_item(project_id: str, task: CallbackTask) -> dict[str, Any]:
    return {
        "pk": callbacks_pk(project_id),
        "sk": open_sk(task.client_id),
        **task.model_dump(mode="json"),
        # on the sparse index of tasks whose SLA nobody announced yet (`data.callbacks.CallbackStore.overdue`)
        "gsi1pk": OVERDUE_INDEX_PK,
        "gsi1sk": f"{utc_stamp(task.due_at)}#{project_id}#{task.client_id}",
    }


def text_writes(project_id: str, opened: OpenTask) -> list[Write]:
    """The missed-call text a task opens with (`task.message`): into the client's dialog (the bot platform sends it),
    at most once per client per TEXT_INTERVAL (a conditional write on the client's TEXTED item: ALREADY_TEXTED)."""
    task, at = opened.task, opened.texted_at
    if not task.message or at is None:
        return []
    guard = put(
        {
            "pk": callbacks_pk(project_id),
            "sk": f"TEXTED#{task.client_id}",
            "sent_at": utc_stamp(at),
            "expires_at": int((at + TEXT_INTERVAL).timestamp()) + 3600,
        },
        only_if="attribute_not_exists(pk) OR sent_at < :cutoff",
        values={":cutoff": utc_stamp(at - TEXT_INTERVAL)},  # fixed width: compares as time
        label=ALREADY_TEXTED,
    )
    note = {
        "pk": dialog_pk(project_id, task.client_id),
        "sk": dialog_sk(at, f"text-{task.task_id}"),
        "type": "notification",
        "kind": "missed_call_text",
        "text": task.message,
        "task_id": task.task_id,
        "created_at": at.isoformat(),
    }
    return [guard, put(note)]


def task_writes(project_id: str, change: CallbackChange) -> list[Write]:
    """The task's part of a transaction (its counters: `domain.call_stats.callback_increments`)."""
    if isinstance(change, NoOpenTask):
        return [
            condition_check(
                callbacks_pk(project_id), open_sk(change.client_id), "attribute_not_exists(pk)", label=CALLBACK_CHANGED
            )
        ]
    task = change.task
    if isinstance(change, OpenTask):
        opened = put(_task_item(project_id, task), only_if="attribute_not_exists(pk)", label=CALLBACK_CHANGED)
        return [opened, *text_writes(project_id, change)]
    same_task = "task_id = :task"
    if isinstance(change, AddMissed):
        return [
            update(
                callbacks_pk(project_id),
                open_sk(task.client_id),
                "SET last_call_key = :call, last_missed_at = :at ADD missed_calls :one",
                only_if=same_task,
                values={":task": task.task_id, ":call": change.call_key, ":at": change.at.isoformat(), ":one": 1},
                label=CALLBACK_CHANGED,
            )
        ]
    assert isinstance(change, CloseTask)
    return [
        delete(
            callbacks_pk(project_id),
            open_sk(task.client_id),
            only_if=same_task,
            values={":task": task.task_id},
            label=CALLBACK_CHANGED,
        ),
        put(_closed_item(project_id, change.closed)),
    ]


def _closed_item(project_id: str, closed: ClosedTask) -> dict[str, Any]:
    return {
        "pk": callbacks_pk(project_id),
        "sk": f"CLOSED#{closed.task_id}",
        **closed.model_dump(mode="json"),
        "expires_at": int((closed.closed_at + CLOSED_KEEP).timestamp()),
    }


def recorded_call_writes(
    project: Project, call: CallRecord, callback: CallbackChange | None, events: Sequence[CallEvent] = ()
) -> list[Write]:
    """The call's recording item, its events (the outbox), its client's callback task change and its statistics
    counters."""
    increments = merged(call_increments(call, project.working_hours), callback_increments(callback))
    return [
        *recording_writes(project.id, call),
        *(outbox_write(event) for event in events),
        *(task_writes(project.id, callback) if callback else []),
        *counter_writes(project.id, increments),
    ]
