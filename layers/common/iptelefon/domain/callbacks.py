"""Callback tasks for missed calls (issue 23). No I/O: what a recorded call does to a client's callback task.

- A missed incoming call (not answered: no answer, busy, failed) OPENS a task for its client unless one is open; a
  missed call while one is open is ADDED to it (`missed_calls`). Only explicit incoming calls count (a PBX that did not
  say the direction is not guessed at).
- The task is assigned to the client's responsible employee (the client variable `responsible_employee`: an
  extension, 2–8 digits), else the extension that rang (the call's `employee`), else the project's
  `callback_default_employee`; else nobody (every admin sees it).
- It is due `callback_sla_minutes` of working time after the first missed call (`working_hours`).
- A later ANSWERED call with the client, in either direction, CLOSES it: who talked (`closed_by`: the extension), when,
  the time to callback (from the first missed call to the answered call's start) and whether that was within the SLA.
  An employee may close it by hand with a reason (`closed_by_hand`): not a callback, so no time to callback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.working_hours import WorkingHours

RESPONSIBLE_VARIABLE = "responsible_employee"
EXTENSION = re.compile(r"^[0-9]{2,8}$")
MAX_REASON_CHARS = 500


class CallbackChanged(Exception):
    """The client's open task changed between reading it and writing the call (a concurrent webhook): read again."""


class TextedRecently(Exception):
    """The client was sent the missed-call text within the last day: store the call again without it."""


class CallbackTask(BaseModel):
    """A client's open callback task, as stored (one per client at most)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_id: str
    client_id: str
    client_phone: str
    assignee: str | None = None  # an extension
    opened_at: datetime  # the first missed call's start
    opened_day: str  # its local date (the project's time zone): the statistics day the task belongs to
    due_at: datetime
    missed_calls: int = 1
    first_call_key: str
    last_call_key: str
    last_missed_at: datetime
    message: str | None = None  # the text suggested to (or sent to) the client after the missed call

    def overdue(self, now: datetime) -> bool:
        return now > self.due_at


class ClosedTask(CallbackTask):
    closed_at: datetime
    closed_by: str | None = None  # the extension that talked, or the employee who closed it by hand
    closed_by_hand: bool = False
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    closing_call_key: str | None = None
    seconds_to_callback: int | None = None  # a callback's only
    within_sla: bool = False


@dataclass(frozen=True)
class OpenTask:
    task: CallbackTask  # with `message` when the missed-call text goes to the client with it
    texted_at: datetime | None = None  # when that text was put into the dialog (the once-a-day rule counts from it)


@dataclass(frozen=True)
class AddMissed:
    task: CallbackTask  # as it was read: the write is conditional on it being still open
    call_key: str
    at: datetime


@dataclass(frozen=True)
class CloseTask:
    task: CallbackTask  # as it was read
    closed: ClosedTask


@dataclass(frozen=True)
class NoOpenTask:
    """An answered call, written on the guess that its client has no open task (the common case, no read): the
    transaction checks the guess, and a wrong one is read and written again."""

    client_id: str


CallbackChange = OpenTask | AddMissed | CloseTask | NoOpenTask


def call_time(call: CallRecord) -> datetime:
    moment = call.started_at or call.received_at
    assert moment is not None  # a recorded call always has `received_at`
    return moment


def is_missed_incoming(call: CallRecord) -> bool:
    return call.direction == "in" and call.status != "answered"


def is_internal_number(phone: str) -> bool:
    """An extension, not a client's line (a canonical phone has at least 11 digits): never texted."""
    return len(phone) < 11


def assignee_for(call: CallRecord, responsible: str | None, default_employee: str | None) -> str | None:
    """The responsible employee (when the variable holds an extension), else who rang, else the project's default."""
    if responsible and EXTENSION.fullmatch(responsible.strip()):
        return responsible.strip()
    return call.employee or default_employee


def change_for(
    call: CallRecord,
    open_task: CallbackTask | None,
    *,
    read: bool = True,
    hours: WorkingHours,
    sla_minutes: int,
    assignee: str | None,
    task_id: str,
) -> CallbackChange | None:
    """What `call` does to its client's task (`open_task`: the one open now, or None; `read` False: not read, guessed
    None, which the write checks)."""
    at = call_time(call)
    if is_missed_incoming(call):
        if open_task is not None:
            return AddMissed(open_task, call.call_key, at)
        task = CallbackTask(
            task_id=task_id,
            client_id=call.client_id,
            client_phone=call.client_phone,
            assignee=assignee,
            opened_at=at,
            opened_day=hours.local(at).date().isoformat(),
            due_at=hours.add_working_minutes(at, sla_minutes),
            first_call_key=call.call_key,
            last_call_key=call.call_key,
            last_missed_at=at,
        )
        return OpenTask(task)
    if call.status == "answered" and not read:
        return NoOpenTask(call.client_id)
    if call.status == "answered" and open_task is not None and at >= open_task.opened_at:
        return CloseTask(open_task, closed_by_call(open_task, call))
    return None


def closed_by_call(task: CallbackTask, call: CallRecord) -> ClosedTask:
    at = call_time(call)
    return ClosedTask(
        **task.model_dump(),
        closed_at=at,
        closed_by=call.employee,
        closing_call_key=call.call_key,
        seconds_to_callback=int((at - task.opened_at).total_seconds()),
        within_sla=at <= task.due_at,
    )


def closed_by_hand(task: CallbackTask, *, by: str, reason: str, now: datetime) -> ClosedTask:
    return ClosedTask(**task.model_dump(), closed_at=now, closed_by=by, closed_by_hand=True, reason=reason)
