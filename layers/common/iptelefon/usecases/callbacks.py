"""Callback tasks for missed calls (issue 23; the rules: `domain.callbacks`): what a recorded call does to its client's
task (the webhook), the queue (`GET /v1/callbacks`) and closing by hand (`POST /v1/callbacks/{task_id}/close`).

Who sees what: an admin sees and closes every task; an operator the tasks assigned to their extension (their
employee's `short_number`). Another's task is a 404, like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from iptelefon.domain.answers import CallbackTaskAnswer, CallbackTasksAnswer
from iptelefon.domain.call_events import overdue_event
from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.callbacks import (
    RESPONSIBLE_VARIABLE,
    CallbackChange,
    CallbackChanged,
    CallbackTask,
    CloseTask,
    OpenTask,
    assignee_for,
    change_for,
    closed_by_hand,
    is_internal_number,
    is_missed_incoming,
)
from iptelefon.domain.errors import Conflict, InvalidInput, NotFound
from iptelefon.domain.models import Client, Project, time_ordered_id
from iptelefon.platform.observability import logger, metrics
from iptelefon.usecases.auth import Caller
from iptelefon.usecases.ports import CallbackTasks, Clock, EmployeeLookup


@dataclass(frozen=True)
class CallbackDeps:
    tasks: CallbackTasks
    employees: EmployeeLookup
    clock: Clock


# -- the webhook's part ---------------------------------------------------------------------------------------------
def change_for_call(
    tasks: CallbackTasks, client: Client | None, project: Project, call: CallRecord, now: float, *, read: bool
) -> CallbackChange | None:
    """What the new `call` does to its `client`'s task. First without reading the task (`read` False): most clients
    have none, and the call's transaction checks that; when the check fails, the webhook asks again with `read`. A
    task that opens goes to the client's responsible employee when it has one."""
    if not (is_missed_incoming(call) or call.status == "answered"):
        return None
    open_task = tasks.open_of_client(project.id, call.client_id) if read else None
    if read and open_task is None and not is_missed_incoming(call):
        return None  # an answered call, and no task to close
    assignee = None
    if open_task is None and is_missed_incoming(call):  # a task may open: whose it is
        responsible = client.variables.get(RESPONSIBLE_VARIABLE) if client else None
        assignee = assignee_for(call, responsible, project.callback_default_employee)
    return change_for(
        call,
        open_task,
        read=read,
        hours=project.working_hours,
        sla_minutes=project.callback_sla_minutes,
        assignee=assignee,
        task_id=time_ordered_id(now),
    )


def with_missed_call_text(client: Client | None, project: Project, opened: OpenTask, now: float) -> OpenTask:
    """The task that opens, carrying the project's missed-call text (working-hours or after-hours variant) for the
    `client`, when one goes: never to an internal number or a client that cannot be messaged (a telephony-only client).
    The call's transaction puts it into the dialog, once per client a day (`data.call_effects.text_writes`), and the
    call's `call.missed` event suggests it to the bot platform."""
    task = opened.task
    in_hours = project.working_hours.is_working_time(task.opened_at)
    text = (project.missed_call_text if in_hours else project.missed_call_text_after_hours).strip()
    if not text or is_internal_number(task.client_phone):
        return opened
    if client is None or not client.can_message:
        return opened
    return OpenTask(task.model_copy(update={"message": text}), texted_at=datetime.fromtimestamp(now, UTC))


# -- the queue ------------------------------------------------------------------------------------------------------
def _own_extension(deps: CallbackDeps, caller: Caller) -> str | None:
    """An operator's extension (None: they have none, so no task is theirs)."""
    if caller.employee_id is None:
        return None
    employee = deps.employees.get_employee(caller.project.id, caller.employee_id)
    return employee.short_number if employee else None


def _visible(deps: CallbackDeps, caller: Caller) -> list[CallbackTask]:
    tasks = deps.tasks.open_tasks(caller.project.id)
    if caller.role == "operator":
        own = _own_extension(deps, caller)
        tasks = [task for task in tasks if own is not None and task.assignee == own]
    return sorted(tasks, key=lambda task: (task.opened_at, task.task_id))


def open_tasks(deps: CallbackDeps, caller: Caller, state: str) -> CallbackTasksAnswer:
    """The open tasks the caller may see, oldest first, each with its due time and whether it is overdue."""
    if state != "open":
        raise InvalidInput.for_field("state", "only state=open is listed")
    now = datetime.fromtimestamp(deps.clock(), UTC)
    return CallbackTasksAnswer(tasks=[CallbackTaskAnswer.of(task, now) for task in _visible(deps, caller)])


def close_by_hand(deps: CallbackDeps, caller: Caller, task_id: str, reason: str) -> CallbackTaskAnswer:
    """Close a task the caller may see, with a reason: 404 when there is none, 409 when it closed already."""
    project = caller.project
    task = next((t for t in _visible(deps, caller) if t.task_id == task_id), None)
    if task is None:
        if deps.tasks.closed(project.id, task_id) is not None and caller.role == "admin":
            raise Conflict(f"callback task {task_id} is closed already")
        raise NotFound(f"callback task {task_id} not found")
    now = datetime.fromtimestamp(deps.clock(), UTC)
    by = caller.employee_id or f"admin:{caller.token_id}"
    closed = closed_by_hand(task, by=by, reason=reason, now=now)
    try:
        deps.tasks.close(project.id, CloseTask(task, closed))
    except CallbackChanged:
        raise Conflict(f"callback task {task_id} changed meanwhile (a call closed it?): reload the list") from None
    return CallbackTaskAnswer.of(closed, now)


# -- the SLA -----------------------------------------------------------------------------------------------------------
def announce_overdue(deps: CallbackDeps) -> int:
    """Each open task past its due time gets its `callback.overdue` event, once (run every minute by the events
    function's schedule); how many were announced."""
    now = datetime.fromtimestamp(deps.clock(), UTC)
    announced = 0
    for project_id, task in deps.tasks.overdue(now):
        if deps.tasks.announce_overdue(project_id, task, overdue_event(project_id, task, now)):
            announced += 1
            logger.info("callback overdue", extra={"project_id": project_id, "task_id": task.task_id})
    if announced:
        metrics.add_metric(name="CallbackOverdue", unit="Count", value=announced)
    return announced
