"""Callback tasks and statistics counters through the webhook use case on in-memory fakes (`domain.callbacks`,
`domain.call_stats`, `usecases.callbacks`, `usecases.stats`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from fakes.webhook import WebhookWorld

from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.call_stats import (
    ALL,
    bucket_field,
    call_increments,
    closed_increments,
    heatmap,
    median_minutes,
    merged,
    previous_period,
    summary,
)
from iptelefon.domain.callbacks import assignee_for, change_for, closed_by_call
from iptelefon.domain.errors import InvalidInput
from iptelefon.domain.models import Client, Project
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.domain.working_hours import WorkingHours
from iptelefon.usecases.stats import as_csv, parse_period
from iptelefon.usecases.webhook import receive_webhook

SECRET = "s3cret-of-the-pbx-17"
PHONE = "79004443322"


def world(**project: object) -> WebhookWorld:
    return WebhookWorld(project=Project(id="p1", name="P", messengers=["whatsapp"], **project), secret=SECRET)


def post(w: WebhookWorld, call_id: str, *, direction: str = "IN", status: str, at: str, ext: str = "346") -> dict:
    body = (
        f"id={call_id}&calltype={direction}&client={PHONE}&exten={ext}&calldate={at}"
        f"&disposition={status}&talktime={'60' if status == 'ANSWERED' else '0'}"
    ).encode()
    request = WebhookRequest(method="POST", body=body, content_type="application/x-www-form-urlencoded", query={})
    return receive_webhook(w.deps, SECRET, request)


def call(**fields: object) -> CallRecord:
    base: dict[str, object] = {
        "call_key": "c1",
        "client_id": "cl1",
        "client_phone": PHONE,
        "direction": "in",
        "status": "missed",
        "employee": "346",
        "started_at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        "received_at": datetime(2026, 12, 1, 9, 1, tzinfo=UTC),
    }
    return CallRecord.model_validate({**base, **fields})


# -- the webhook's tasks ---------------------------------------------------------------------------------------------
def test_a_missed_call_opens_one_task_and_a_later_answered_call_closes_it() -> None:
    w = world()
    post(w, "m1", status="NO ANSWER", at="2026-12-01+12:00:00")
    post(w, "m2", status="BUSY", at="2026-12-01+12:03:00")  # still open: added to it
    (task,) = w.callbacks.open.values()
    assert (task.missed_calls, task.assignee, task.first_call_key) == (2, "346", "m1")
    assert task.due_at == datetime(2026, 12, 1, 9, 15, tzinfo=UTC)  # 12:00 Moscow + 15 working minutes

    post(w, "cb1", direction="OUT", status="ANSWERED", at="2026-12-01+12:10:00", ext="347")
    assert w.callbacks.open == {}
    (closed,) = w.callbacks.done.values()
    assert (closed.closed_by, closed.seconds_to_callback, closed.within_sla) == ("347", 600, True)


def test_a_replayed_missed_call_changes_no_task() -> None:
    w = world()
    post(w, "m1", status="NO ANSWER", at="2026-12-01+12:00:00")
    post(w, "m1", status="NO ANSWER", at="2026-12-01+12:00:00")
    (task,) = w.callbacks.open.values()
    assert task.missed_calls == 1


def test_an_answered_call_without_a_task_and_a_missed_outgoing_call_open_nothing() -> None:
    w = world()
    post(w, "a1", status="ANSWERED", at="2026-12-01+12:00:00")
    post(w, "o1", direction="OUT", status="NO ANSWER", at="2026-12-01+12:01:00")
    assert w.callbacks.open == {} and w.callbacks.done == {}


def test_the_responsible_employee_of_the_client_gets_the_task() -> None:
    w = world(callback_default_employee="300")
    w.clients.add("p1", Client(id="c1", channel="whatsapp", phone=PHONE, variables={"responsible_employee": "355"}))
    post(w, "m1", status="NO ANSWER", at="2026-12-01+12:00:00")
    assert [t.assignee for t in w.callbacks.open.values()] == ["355"]


def test_assignment_order() -> None:
    assert assignee_for(call(), "355", "300") == "355"
    assert assignee_for(call(), "Ольга", "300") == "346"  # not an extension: ignored
    assert assignee_for(call(employee=None), None, "300") == "300"
    assert assignee_for(call(employee=None), None, None) is None


def test_a_callback_after_the_due_time_is_not_within_sla() -> None:
    hours = WorkingHours()
    opened = change_for(call(), None, hours=hours, sla_minutes=15, assignee="346", task_id="t1")
    assert opened is not None
    late = call(call_key="c2", status="answered", started_at=datetime(2026, 12, 1, 9, 20, tzinfo=UTC))
    closed = closed_by_call(opened.task, late)
    assert (closed.seconds_to_callback, closed.within_sla) == (1200, False)


def test_an_answered_call_older_than_the_task_does_not_close_it() -> None:
    hours = WorkingHours()
    opened = change_for(call(), None, hours=hours, sla_minutes=15, assignee="346", task_id="t1")
    assert opened is not None
    older = call(call_key="c0", status="answered", started_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert change_for(older, opened.task, hours=hours, sla_minutes=15, assignee=None, task_id="t2") is None


# -- the client's text -------------------------------------------------------------------------------------------------
def test_the_missed_call_text_is_sent_once_a_day_in_the_right_variant() -> None:
    w = world(missed_call_text="Перезвоним в течение 15 минут", missed_call_text_after_hours="Перезвоним утром")
    post(w, "m1", status="NO ANSWER", at="2026-12-01+12:00:00")  # working hours
    post(w, "a1", status="ANSWERED", at="2026-12-01+12:05:00")  # closes the task
    post(w, "m2", status="NO ANSWER", at="2026-12-01+21:00:00")  # a new task, but texted within 24 h already
    assert [text for _, text in w.callbacks.texts] == ["Перезвоним в течение 15 минут"]
    w.clock.now += 25 * 3600
    post(w, "a2", status="ANSWERED", at="2026-12-02+21:05:00")
    post(w, "m3", status="NO ANSWER", at="2026-12-02+22:00:00")  # after hours, a day later
    assert [text for _, text in w.callbacks.texts][-1] == "Перезвоним утром"


def test_a_telephony_only_client_is_never_texted() -> None:
    w = WebhookWorld(project=Project(id="p1", name="P", missed_call_text="Перезвоним"), secret=SECRET)
    post(w, "m1", status="NO ANSWER", at="2026-12-01+12:00:00")
    assert w.callbacks.texts == [] and len(w.callbacks.open) == 1


# -- counters ----------------------------------------------------------------------------------------------------------
def test_call_counters_by_local_day_extension_and_hour() -> None:
    hours = WorkingHours(time_zone="Asia/Vladivostok")  # UTC+10: 2026-12-01 22:30 UTC is 2026-12-02 08:30
    late = call(started_at=datetime(2026, 12, 1, 22, 30, tzinfo=UTC), status="busy")
    inc = call_increments(late, hours)
    assert inc[("2026-12-02", "346")] == Counter(calls_in=1, missed=1)
    assert inc[("2026-12-02", ALL)] == Counter(calls_in=1, missed=1, in_h08=1)
    out = call_increments(call(direction="out", status="answered", talk_seconds=90), hours)
    assert out[("2026-12-01", ALL)] == Counter(calls_out=1, answered_out=1, talk_seconds=90)


def test_one_row_per_item_when_a_call_closes_a_task_on_its_own_row() -> None:
    hours = WorkingHours()
    opened = change_for(call(), None, hours=hours, sla_minutes=15, assignee="346", task_id="t1")
    assert opened is not None
    answered = call(call_key="c2", status="answered", started_at=datetime(2026, 12, 1, 9, 5, tzinfo=UTC))
    total = merged(call_increments(answered, hours), closed_increments(closed_by_call(opened.task, answered)))
    assert total[("2026-12-01", "346")] == Counter(
        calls_in=1, answered_in=1, cb_closed=1, cb_called_back=1, cb_within_sla=1, cb_seconds=300, cb_b03=1
    )


def test_median_from_buckets() -> None:
    assert bucket_field(60) == "cb_b00" and bucket_field(61) == "cb_b01" and bucket_field(10**7) == "cb_b21"
    assert median_minutes({"cb_b00": 1, "cb_b03": 1, "cb_b10": 1}) == 5
    assert median_minutes({}) is None


def test_summary_definitions() -> None:
    rows = [
        {"day": "2026-12-01", "row": "346", "answered_in": 3, "missed": 1, "cb_opened": 2, "cb_within_sla": 1},
        {"day": "2026-12-02", "row": "346", "answered_in": 1, "calls_out": 4},
    ]
    numbers = summary(rows, still_open=1)
    assert numbers["service_level"] == 0.8
    assert numbers["called_back_within_sla_share"] == 0.5
    assert (numbers["calls_out"], numbers["still_open"]) == (4, 1)
    assert summary([], 0)["service_level"] is None


def test_heatmap_by_weekday_and_hour() -> None:
    grid = heatmap([{"day": "2026-12-07", "in_h09": 2}, {"day": "2026-12-14", "in_h09": 1}])  # two Mondays
    assert grid[0][9] == 3 and sum(map(sum, grid)) == 3


def test_period_rules() -> None:
    assert previous_period(date(2026, 12, 1), date(2026, 12, 30)) == (date(2026, 11, 1), date(2026, 11, 30))
    for first, last, field in [
        ("2026-12-01", None, "to"),
        ("2026-13-01", "2026-12-02", "from"),
        ("2026-12-02", "2026-12-01", "to"),
        ("2025-01-01", "2026-12-01", "to"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            parse_period(first, last)
        assert refused.value.details[0]["field"] == field


def test_csv_keeps_a_formula_as_text() -> None:
    numbers = summary([], 0)
    period = {"from": "2026-12-01", "to": "2026-12-01", "employees": [{"employee": "346", "name": "=cmd", **numbers}]}
    text = as_csv({**period, "previous": {**period, "employees": []}})
    assert text.splitlines()[1].startswith("current,2026-12-01,2026-12-01,346,'=cmd,0,")
