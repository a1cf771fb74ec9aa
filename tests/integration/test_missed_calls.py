"""Missed calls and statistics through the real handlers (moto in-process): callback tasks opened by the webhook and
closed by a later answered call or by hand, the counters kept in the call's transaction, GET /v1/stats and its CSV,
and who sees what."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from admin_api.handler import lambda_handler as admin_handler
from iptelefon.data.call_effects import stats_pk, stats_sk
from iptelefon.data.call_events import CallEventStore
from iptelefon.data.call_records import CallRecordStore
from iptelefon.data.call_stats import StatsStore
from iptelefon.data.gateway import get_storage
from iptelefon.data.projects import project_store
from iptelefon.data.tokens import TokenStore
from iptelefon.domain.call_stats import recount
from iptelefon.usecases.auth import issue_token
from webhook.handler import lambda_handler as webhook_handler

PHONE = "79004443322"


@pytest.fixture
def tokens(project: Any) -> dict[str, str]:
    store = TokenStore(get_storage())
    return {
        "admin": issue_token(store, "proj-a", role="admin")[1],
        "operator": issue_token(store, "proj-a", role="operator", employee_id="346")[1],  # extension 346
        "soft": issue_token(store, "proj-a", role="operator", employee_id="soft")[1],  # no extension
        "bot": project.token,
    }


def webhook(context: Any, call_id: str, *, status: str, at: str, direction: str = "IN", **extra: str) -> Any:
    form = {
        "id": call_id,
        "calltype": direction,
        "client": extra.pop("phone", PHONE),
        "exten": extra.pop("ext", "346"),
        "calldate": at,
        "disposition": status,
        "talktime": extra.pop("talk", "0"),
        **extra,
    }
    answer = webhook_handler(webhook_event(PBX_SECRET, form), context)
    assert answer["statusCode"] == 200, answer["body"]
    return answer_json(answer)


def api(context: Any, method: str, resource: str, token: str, path: str | None = None, **kwargs: Any) -> Any:
    return admin_handler(api_event(method, resource, path or resource, token=token, **kwargs), context)


def open_tasks(context: Any, token: str) -> list[dict[str, Any]]:
    answer = api(context, "GET", "/v1/callbacks", token, query={"state": "open"})
    assert answer["statusCode"] == 200, answer["body"]
    return answer_json(answer)["tasks"]  # type: ignore[no-any-return]


def stats(context: Any, token: str, first: str, last: str, **query: str) -> Any:
    return api(context, "GET", "/v1/stats", token, query={"from": first, "to": last, **query})


def test_a_task_opens_on_a_missed_call_and_a_later_answered_call_closes_it(
    tokens: dict[str, str], lambda_context: Any
) -> None:
    # Given a missed call and a busy one from the same client (Tuesday 12:00 Moscow)
    webhook(lambda_context, "m1", status="NO ANSWER", at="2026-12-01 12:00:00")
    webhook(lambda_context, "m2", status="BUSY", at="2026-12-01 12:02:00")
    # Then one task, for extension 346, due 15 working minutes after the first
    (task,) = open_tasks(lambda_context, tokens["operator"])
    assert (task["assignee"], task["missed_calls"], task["due_at"]) == ("346", 2, "2026-12-01T09:15:00Z")
    assert task["overdue"] is (datetime.now(UTC) > datetime(2026, 12, 1, 9, 15, tzinfo=UTC))
    assert open_tasks(lambda_context, tokens["soft"]) == []  # another operator's queue is their own
    # When 347 calls the client back 20 minutes later and they talk
    webhook(lambda_context, "cb1", status="ANSWERED", at="2026-12-01 12:20:00", direction="OUT", ext="347", talk="95")
    # Then the task is closed: no open tasks, and the counters say late by SLA, 20 minutes
    assert open_tasks(lambda_context, tokens["admin"]) == []
    report = answer_json(stats(lambda_context, tokens["admin"], "2026-12-01", "2026-12-01"))
    total = report["total"]
    assert (total["calls_in"], total["missed"], total["calls_out"], total["talk_seconds"]) == (2, 2, 1, 95)
    assert (total["callbacks_opened"], total["called_back"], total["called_back_within_sla_share"]) == (1, 1, 0.0)
    assert total["median_callback_minutes"] == 20
    assert report["heatmap"][1][12] == 2  # Tuesday, 12:00 local


def test_a_replayed_webhook_counts_once(tokens: dict[str, str], lambda_context: Any) -> None:
    for _ in range(3):
        webhook(lambda_context, "a1", status="ANSWERED", at="2026-12-01 10:00:00", talk="60")
    rows, _ = StatsStore(get_storage()).rows("proj-a", date(2026, 12, 1), date(2026, 12, 1))
    assert {(r["row"], r["calls_in"], r["answered_in"], r["talk_seconds"]) for r in rows} == {
        ("346", 1, 1, 60),
        ("*", 1, 1, 60),
    }


def test_counters_equal_a_recount_from_the_calls(tokens: dict[str, str], lambda_context: Any) -> None:
    # Given 120 webhooks of 60 calls (each sent once or twice, in shuffled order) over 3 days and 3 extensions
    rng = random.Random(23)
    calls = []
    for i in range(60):
        status = rng.choice(["ANSWERED", "NO ANSWER", "BUSY"])
        calls.append(
            {
                "call_id": f"r{i}",
                "status": status,
                "at": f"2026-12-0{1 + i % 3} {8 + i % 12:02d}:{i % 60:02d}:00",
                "direction": rng.choice(["IN", "IN", "OUT"]),
                "ext": rng.choice(["346", "347", "348"]),
                "phone": f"7900444{3300 + i % 7}",
                "talk": str(rng.randint(1, 300)) if status == "ANSWERED" else "0",
            }
        )
    sent = calls + rng.sample(calls, 60)
    rng.shuffle(sent)
    for one in sent:
        webhook(lambda_context, **one)
    # Then every stored counter row equals the recount from the stored calls
    project = project_store(get_storage()).get_project("proj-a")
    assert project is not None
    stored_calls = CallRecordStore(get_storage()).of_project("proj-a", limit=1000)
    assert len(stored_calls) == 60
    expected = recount(stored_calls, project.working_hours)
    call_fields = ("calls_in", "calls_out", "answered_in", "answered_out", "missed", "talk_seconds")
    for (day, row), counts in expected.items():
        item = get_storage().get(stats_pk("proj-a"), stats_sk(day, row))
        assert item is not None, (day, row)
        kept = {k: v for k, v in item.items() if k in call_fields or k.startswith("in_h")}
        assert kept == dict(counts), (day, row)


def test_close_by_hand_with_a_reason(tokens: dict[str, str], lambda_context: Any) -> None:
    webhook(lambda_context, "m1", status="NO ANSWER", at="2026-12-01 12:00:00")
    (task,) = open_tasks(lambda_context, tokens["admin"])
    path = f"/v1/callbacks/{task['task_id']}/close"
    resource = "/v1/callbacks/{task_id}/close"
    params = {"task_id": task["task_id"]}
    # an operator whose task it is not: 404; no reason: 400
    refused = api(lambda_context, "POST", resource, tokens["soft"], path, path_params=params, body={"reason": "x"})
    assert refused["statusCode"] == 404
    empty = api(lambda_context, "POST", resource, tokens["operator"], path, path_params=params, body={"reason": ""})
    assert empty["statusCode"] == 400
    closed = api(
        lambda_context, "POST", resource, tokens["operator"], path, path_params=params, body={"reason": "написал"}
    )
    assert closed["statusCode"] == 200, closed["body"]
    assert answer_json(closed).items() >= {"state": "closed", "closed_by": "346", "reason": "написал"}.items()
    again = api(lambda_context, "POST", resource, tokens["admin"], path, path_params=params, body={"reason": "y"})
    assert again["statusCode"] == 409
    total = answer_json(stats(lambda_context, tokens["admin"], "2026-12-01", "2026-12-01"))["total"]
    assert (total["callbacks_opened"], total["closed_by_hand"], total["called_back"]) == (1, 1, 0)


def test_stats_roles_csv_and_bad_periods(tokens: dict[str, str], lambda_context: Any) -> None:
    webhook(lambda_context, "a1", status="ANSWERED", at="2026-12-01 10:00:00", talk="60")
    webhook(lambda_context, "a2", status="ANSWERED", at="2026-12-01 10:05:00", talk="30", ext="347")
    webhook(lambda_context, "p1", status="NO ANSWER", at="2026-11-30 10:05:00", ext="347")  # the previous period
    admin_view = stats(lambda_context, tokens["admin"], "2026-12-01", "2026-12-01")
    assert int(admin_view["multiValueHeaders"]["X-Storage-Reads"][0]) <= 4
    report = answer_json(admin_view)
    assert [e["employee"] for e in report["employees"]] == ["346", "347"]
    assert report["employees"][0]["name"] == "Operator"
    assert report["previous"]["from"] == "2026-11-30" and report["previous"]["total"]["missed"] == 1
    # the operator sees their own row only
    own = answer_json(stats(lambda_context, tokens["operator"], "2026-12-01", "2026-12-01"))
    assert [e["employee"] for e in own["employees"]] == ["346"] and "total" not in own and "heatmap" not in own
    assert answer_json(stats(lambda_context, tokens["soft"], "2026-12-01", "2026-12-01"))["employees"] == []
    assert stats(lambda_context, tokens["bot"], "2026-12-01", "2026-12-01")["statusCode"] == 403
    # CSV
    exported = stats(lambda_context, tokens["admin"], "2026-12-01", "2026-12-01", format="csv")
    assert exported["multiValueHeaders"]["Content-Type"][0].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported["body"])))
    assert [(r["period"], r["employee"], r["calls_in"]) for r in lines][:3] == [
        ("current", "346", "1"),
        ("current", "347", "1"),
        ("current", "total", "2"),
    ]
    for query, field in [({"from": "2026-12-01"}, "to"), ({"from": "x", "to": "2026-12-01"}, "from")]:
        bad = api(lambda_context, "GET", "/v1/stats", tokens["admin"], query=query)
        assert bad["statusCode"] == 400 and answer_json(bad)["details"][0]["field"] == field
    too_long = stats(lambda_context, tokens["admin"], "2025-01-01", "2026-12-01")
    assert too_long["statusCode"] == 400


def test_working_hours_in_another_time_zone(tokens: dict[str, str], lambda_context: Any) -> None:
    # Given a project in Vladivostok (UTC+10) working 10:00-19:00, Monday to Saturday, SLA 30 minutes
    settings = {
        "working_hours": {
            "time_zone": "Asia/Vladivostok",
            "days": [1, 2, 3, 4, 5, 6],
            "start": "10:00",
            "end": "19:00",
        },
        "callback_sla_minutes": 30,
    }
    put = api(lambda_context, "PUT", "/v1/settings", tokens["admin"], body=settings)
    assert put["statusCode"] == 200, put["body"]
    assert answer_json(put)["working_hours"]["time_zone"] == "Asia/Vladivostok"
    # When a client misses at Saturday 18:50 Vladivostok (the webhook's calldate is Moscow time: 11:50)
    webhook(lambda_context, "m1", status="NO ANSWER", at="2026-12-05 11:50:00")
    # Then it is due Monday 10:20 Vladivostok (00:20 UTC), counted on Saturday there
    (task,) = open_tasks(lambda_context, tokens["admin"])
    assert task["due_at"] == "2026-12-07T00:20:00Z"
    report = answer_json(stats(lambda_context, tokens["admin"], "2026-12-05", "2026-12-05"))
    assert report["time_zone"] == "Asia/Vladivostok" and report["heatmap"][5][18] == 1
    bad = api(lambda_context, "PUT", "/v1/settings", tokens["admin"], body={"working_hours": {"time_zone": "Mars/X"}})
    assert bad["statusCode"] == 400


def test_the_missed_call_text_goes_with_the_task_and_its_event_once_a_day(
    tokens: dict[str, str], lambda_context: Any
) -> None:
    # Given a project with a messenger and a missed-call text (the same in and out of working hours)
    settings = {
        "messengers": ["whatsapp"],
        "missed_call_text": "Перезвоним",
        "missed_call_text_after_hours": "Перезвоним",
    }
    changed = api(lambda_context, "PUT", "/v1/settings", tokens["admin"], body=settings)
    assert changed["statusCode"] == 200, changed["body"]
    outbox = CallEventStore(get_storage())
    # When the client's call is missed, called back, and missed again within the day
    client_id = webhook(lambda_context, "m1", status="NO ANSWER", at="2026-12-01 12:00:00")["client_id"]
    (first,) = open_tasks(lambda_context, tokens["admin"])
    webhook(lambda_context, "a1", status="ANSWERED", at="2026-12-01 12:05:00", talk="30")
    webhook(lambda_context, "m2", status="NO ANSWER", at="2026-12-01 13:00:00")
    (second,) = open_tasks(lambda_context, tokens["admin"])
    # Then the first task carries the text, its dialog holds it once, and call.missed suggests it; the second none
    assert (first["message"], second["message"]) == ("Перезвоним", None)
    dialog = CallRecordStore(get_storage()).dialog("proj-a", client_id)
    assert [note["text"] for note in dialog if note["kind"] == "missed_call_text"] == ["Перезвоним"]
    made = outbox.unrelayed(datetime.now(UTC) + timedelta(seconds=5))
    missed = {e.order_key: e for e in made if e.type == "call.missed"}
    assert (missed["m1"].data["suggested_message"], missed["m2"].data["suggested_message"]) == ("Перезвоним", None)


def test_a_missed_call_of_a_known_client_reads_the_client_once(tokens: dict[str, str], lambda_context: Any) -> None:
    # Given a known client with a responsible employee, in a project that texts after a missed call
    settings = {"messengers": ["whatsapp"], "missed_call_text": "Перезвоним", "missed_call_text_after_hours": "Ок"}
    assert api(lambda_context, "PUT", "/v1/settings", tokens["admin"], body=settings)["statusCode"] == 200
    client_id = webhook(lambda_context, "a0", status="ANSWERED", at="2026-12-01 11:00:00", talk="9")["client_id"]
    client_sk = f"CLIENT#{client_id}"
    reads: list[str] = []
    original = BaseClient._make_api_call

    def counted(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetItem" and params["Key"]["sk"].get("S") == client_sk:
            reads.append(operation)
        return original(self, operation, params)

    # When their call is missed: the task opens with the text, and call.missed names the client
    with mock.patch.object(BaseClient, "_make_api_call", counted):
        webhook(lambda_context, "m1", status="NO ANSWER", at="2026-12-01 12:00:00")
    (task,) = open_tasks(lambda_context, tokens["admin"])
    assert task["message"] == "Перезвоним"
    # Then the client was read once: for the events, the task's assignee and the text alike
    assert len(reads) == 1


def test_a_task_past_its_sla_is_announced_once_and_a_closed_or_fresh_one_never(
    tokens: dict[str, str], lambda_context: Any
) -> None:
    from events_out.handler import lambda_handler as events_handler

    # Given a missed call a month ago nobody called back, one called back at once, and one not due yet
    webhook(lambda_context, "old", status="NO ANSWER", at="2026-11-02 12:00:00")
    webhook(lambda_context, "gone", status="NO ANSWER", at="2026-11-02 12:00:00", phone="79004443300")
    webhook(lambda_context, "back", status="ANSWERED", at="2026-11-02 12:03:00", phone="79004443300", talk="40")
    soon = datetime.now(UTC) + timedelta(days=1)  # (the PBX's local time: a day ahead stays ahead in any zone)
    webhook(lambda_context, "fresh", status="NO ANSWER", at=soon.strftime("%Y-%m-%d %H:%M:%S"), phone="79004443311")
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event"}
    # When the events function's schedule runs, twice
    first = events_handler(scheduled, lambda_context)
    second = events_handler(scheduled, lambda_context)
    # Then the old task is announced once, as callback.overdue naming its client and the extension that rang
    assert (first["overdue"], second["overdue"]) == (1, 0)
    made = CallEventStore(get_storage()).unrelayed(datetime.now(UTC) + timedelta(seconds=5))
    (overdue,) = [e for e in made if e.type == "callback.overdue"]
    (task,) = [t for t in open_tasks(lambda_context, tokens["admin"]) if t["client_phone"] == PHONE]
    assert overdue.order_key == task["task_id"] and overdue.data["task_id"] == task["task_id"]
    assert overdue.data["client"] == {"id": task["client_id"], "phone": PHONE}
    assert (overdue.data["employee"], overdue.data["first_call_key"]) == ("346", "old")
    assert task["overdue"] is True
