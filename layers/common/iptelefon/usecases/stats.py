"""`GET /v1/stats` (issue 23): a period's metrics per extension and in total, the hour × weekday heatmap of incoming
calls, and the previous period of equal length beside it; or the same as CSV.

Cost, whatever the number of calls: one Query of the period's counter rows, one of the previous period's (each a page
per MB of rows), one of the open callback tasks (for "still open"), one of the employees (their names). Never a call
item. An admin sees every extension and the totals; an operator only their own extension's row (no totals, no
heatmap: those are the team's).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from iptelefon.domain.call_stats import (
    ALL,
    MAX_PERIOD_DAYS,
    NO_EMPLOYEE,
    heatmap,
    period_days,
    previous_period,
    summary,
)
from iptelefon.domain.callbacks import CallbackTask
from iptelefon.domain.errors import InvalidInput
from iptelefon.usecases.auth import Caller
from iptelefon.usecases.ports import CallbackTasks, Employees, StatsRows

CSV_COLUMNS = (
    "calls_in",
    "calls_out",
    "answered",
    "answered_out",
    "missed",
    "talk_seconds",
    "service_level",
    "callbacks_opened",
    "called_back",
    "closed_by_hand",
    "median_callback_minutes",
    "called_back_within_sla_share",
    "still_open",
)


@dataclass(frozen=True)
class StatsDeps:
    rows: StatsRows
    tasks: CallbackTasks
    employees: Employees


def parse_period(first: str | None, last: str | None) -> tuple[date, date]:
    """`from` and `to` (yyyy-mm-dd, both included, the project's local days); 400 naming the field otherwise."""
    days = []
    for field, value in (("from", first), ("to", last)):
        if not value:
            raise InvalidInput.for_field(field, "give a date, e.g. 2026-12-01")
        try:
            days.append(date.fromisoformat(value))
        except ValueError:
            raise InvalidInput.for_field(field, "must be a date yyyy-mm-dd, e.g. 2026-12-01") from None
    if days[1] < days[0]:
        raise InvalidInput.for_field("to", "must not be before from")
    if period_days(days[0], days[1]) > MAX_PERIOD_DAYS:
        raise InvalidInput.for_field("to", f"a period is at most {MAX_PERIOD_DAYS} days")
    return days[0], days[1]


def report(deps: StatsDeps, caller: Caller, first: date, last: date) -> tuple[dict[str, Any], int]:
    """The report and the DynamoDB reads it took."""
    project = caller.project
    employees = deps.employees.list_employees(project.id)
    names = {e.short_number: e.name for e in employees if e.short_number}
    own: str | None = None
    if caller.role == "operator":
        employee = next((e for e in employees if e.id == caller.employee_id), None)
        own = employee.short_number if employee and employee.short_number else "?"  # "?": no extension, no row
    open_tasks = deps.tasks.open_tasks(project.id)
    reads = 2  # the employees, the open tasks (a page each: both are small)
    periods = {}
    for name, (start, end) in (("current", (first, last)), ("previous", previous_period(first, last))):
        rows, used = deps.rows.rows(project.id, start, end)
        reads += used
        periods[name] = _period(rows, open_tasks, start, end, names, own)
    answer = {
        "time_zone": project.working_hours.time_zone,
        **periods["current"],
        "previous": periods["previous"],
    }
    return answer, reads


def _period(
    rows: list[dict[str, Any]],
    open_tasks: list[CallbackTask],
    first: date,
    last: date,
    names: dict[str, str],
    own: str | None,
) -> dict[str, Any]:
    by_row: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_row[str(row["row"])].append(row)
    still_open: dict[str, int] = defaultdict(int)
    for task in open_tasks:
        if first.isoformat() <= task.opened_day <= last.isoformat():
            still_open[task.assignee or NO_EMPLOYEE] += 1
            still_open[ALL] += 1
    extensions = sorted(key for key in {*by_row, *still_open} if key != ALL and (own is None or key == own))
    employees = [
        {"employee": ext, "name": names.get(ext), **summary(by_row.get(ext, []), still_open.get(ext, 0))}
        for ext in extensions
    ]
    period: dict[str, Any] = {"from": first.isoformat(), "to": last.isoformat(), "employees": employees}
    if own is None:
        period["total"] = summary(by_row.get(ALL, []), still_open.get(ALL, 0))
        period["heatmap"] = heatmap(by_row.get(ALL, []))
    return period


def as_csv(answer: dict[str, Any]) -> str:
    """One line per period and extension (and the total): the report's numbers, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "from", "to", "employee", "name", *CSV_COLUMNS])
    for name, period in (("current", answer), ("previous", answer["previous"])):
        lines = [(e["employee"], e["name"] or "", e) for e in period["employees"]]
        if "total" in period:
            lines.append(("total", "", period["total"]))
        for employee, employee_name, numbers in lines:
            values = ["" if numbers[c] is None else numbers[c] for c in CSV_COLUMNS]
            writer.writerow([name, period["from"], period["to"], employee, _cell(employee_name), *values])
    return out.getvalue()


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: a name is shown as text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
