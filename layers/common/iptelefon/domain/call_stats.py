"""Call statistics (issue 23): the counters a recorded call and a closed callback task add, and the report built from
the per-day counter rows. No I/O; never computed by scanning calls.

A counter row is one (local day, row): the row is the call's extension (`-` when the PBX named none) or `*` (the
whole project). Fields, each a count added as calls are stored:

  calls_in, calls_out        calls by direction (a call whose direction the PBX did not say counts in neither)
  answered_in, answered_out  of those, answered
  missed                     incoming not answered (no answer, busy, failed)
  talk_seconds               talk time of every call
  in_h00 … in_h23            `*` row only: incoming calls by local hour (the weekday is the row's date's)
  cb_opened                  callback tasks opened (on the day and assignee row of their first missed call)
  cb_closed                  tasks closed (by a call or by hand), counted on the day/assignee they were opened
  cb_by_hand                 of those, closed by hand
  cb_called_back             closed by an answered call
  cb_within_sla              of those, within the SLA
  cb_seconds                 sum of the times to callback
  cb_b00 … cb_bNN            times to callback by bucket (`CALLBACK_BUCKETS`): the median without the durations
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.callbacks import CallbackChange, CallbackTask, ClosedTask, CloseTask, OpenTask, call_time
from iptelefon.domain.working_hours import WorkingHours

ALL = "*"
NO_EMPLOYEE = "-"
# Upper bounds (minutes) of the time-to-callback buckets; the last bucket is everything longer.
CALLBACK_BUCKETS = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320, 10080)
CALL_FIELDS = ("calls_in", "calls_out", "answered_in", "answered_out", "missed", "talk_seconds")
CALLBACK_FIELDS = ("cb_opened", "cb_closed", "cb_by_hand", "cb_called_back", "cb_within_sla", "cb_seconds")
MAX_PERIOD_DAYS = 366

RowKey = tuple[str, str]  # (local day yyyy-mm-dd, row)
Increments = dict[RowKey, Counter[str]]


def bucket_field(seconds: int) -> str:
    minutes = seconds / 60
    index = next((i for i, bound in enumerate(CALLBACK_BUCKETS) if minutes <= bound), len(CALLBACK_BUCKETS))
    return f"cb_b{index:02d}"


def call_increments(call: CallRecord, hours: WorkingHours) -> Increments:
    """What one recorded call adds: its extension's row and the project's row of its local day."""
    local = hours.local(call_time(call))
    counts: Counter[str] = Counter()
    if call.direction == "in":
        counts["calls_in"] += 1
        counts["answered_in" if call.status == "answered" else "missed"] += 1
    elif call.direction == "out":
        counts["calls_out"] += 1
        if call.status == "answered":
            counts["answered_out"] += 1
    if call.talk_seconds:
        counts["talk_seconds"] += call.talk_seconds
    day = local.date().isoformat()
    increments: Increments = {(day, call.employee or NO_EMPLOYEE): counts, (day, ALL): Counter(counts)}
    if call.direction == "in":
        increments[(day, ALL)][f"in_h{local.hour:02d}"] += 1
    return _nonzero(increments)


def opened_increments(task: CallbackTask) -> Increments:
    return {(task.opened_day, row): Counter(cb_opened=1) for row in _rows(task)}


def closed_increments(closed: ClosedTask) -> Increments:
    counts = Counter(cb_closed=1)
    if closed.closed_by_hand:
        counts["cb_by_hand"] += 1
    elif closed.seconds_to_callback is not None:
        counts.update(cb_called_back=1, cb_within_sla=int(closed.within_sla), cb_seconds=closed.seconds_to_callback)
        counts[bucket_field(closed.seconds_to_callback)] += 1
    return _nonzero({(closed.opened_day, row): Counter(counts) for row in _rows(closed)})


def callback_increments(change: CallbackChange | None) -> Increments:
    """What a change of a callback task adds: an opened task, or a closed one (adding a missed call adds nothing)."""
    if isinstance(change, OpenTask):
        return opened_increments(change.task)
    if isinstance(change, CloseTask):
        return closed_increments(change.closed)
    return {}


def _rows(task: CallbackTask) -> tuple[str, str]:
    return (task.assignee or NO_EMPLOYEE, ALL)


def merged(*parts: Increments) -> Increments:
    """One set of increments per row (a transaction may touch an item once)."""
    total: Increments = {}
    for part in parts:
        for row, counts in part.items():
            total.setdefault(row, Counter()).update(counts)
    return _nonzero(total)


def recount(calls: Iterable[CallRecord], hours: WorkingHours) -> Increments:
    """The call counters recounted from the calls themselves: what the stored rows must equal (tests, the bench)."""
    return merged(*(call_increments(call, hours) for call in calls))


def _nonzero(increments: Increments) -> Increments:
    return {row: Counter({k: v for k, v in c.items() if v}) for row, c in increments.items() if any(c.values())}


# -- the report ----------------------------------------------------------------------------------------------------
def period_days(first: date, last: date) -> int:
    return (last - first).days + 1


def previous_period(first: date, last: date) -> tuple[date, date]:
    """The period of equal length just before."""
    length = period_days(first, last)
    return first - timedelta(days=length), first - timedelta(days=1)


def median_minutes(buckets: Mapping[str, int]) -> int | None:
    """The upper bound (minutes) of the bucket holding the median time to callback; None without callbacks.
    Over the last bound: the last bound (a lower bound, then)."""
    total = sum(buckets.get(f"cb_b{i:02d}", 0) for i in range(len(CALLBACK_BUCKETS) + 1))
    if total == 0:
        return None
    seen, middle = 0, (total + 1) // 2
    for i in range(len(CALLBACK_BUCKETS) + 1):
        seen += buckets.get(f"cb_b{i:02d}", 0)
        if seen >= middle:
            return CALLBACK_BUCKETS[min(i, len(CALLBACK_BUCKETS) - 1)]
    raise AssertionError("the median is in some bucket")


def summary(rows: Iterable[Mapping[str, Any]], still_open: int) -> dict[str, Any]:
    """The metrics of the summed counter rows (one employee's, or the project's `*` rows)."""
    total: Counter[str] = Counter()
    for row in rows:
        total.update({k: int(v) for k, v in row.items() if isinstance(v, int) and not isinstance(v, bool)})
    answered, missed = total["answered_in"], total["missed"]
    opened = total["cb_opened"]
    return {
        "calls_in": total["calls_in"],
        "calls_out": total["calls_out"],
        "answered": answered,
        "answered_out": total["answered_out"],
        "missed": missed,
        "talk_seconds": total["talk_seconds"],
        "service_level": round(answered / (answered + missed), 4) if answered + missed else None,
        "callbacks_opened": opened,
        "called_back": total["cb_called_back"],
        "closed_by_hand": total["cb_by_hand"],
        "median_callback_minutes": median_minutes(total),
        "called_back_within_sla_share": round(total["cb_within_sla"] / opened, 4) if opened else None,
        "still_open": still_open,
    }


def heatmap(all_rows: Iterable[Mapping[str, Any]]) -> list[list[int]]:
    """Incoming calls by weekday (0 = Monday) × local hour, from the `*` rows' `in_hNN` and their dates."""
    grid = [[0] * 24 for _ in range(7)]
    for row in all_rows:
        weekday = date.fromisoformat(str(row["day"])).weekday()
        for hour in range(24):
            grid[weekday][hour] += int(row.get(f"in_h{hour:02d}", 0))
    return grid
