"""The incoming-call card (issue 22) on in-memory fakes: the client snapshot the first live event keeps (name, phone,
new or not, the last three dialog lines) and who sees which call now (an operator: its extension; admin, bot: all).
Through the real handlers and moto, with the ETag: tests/integration/test_live_card_api.py."""

from __future__ import annotations

import json
from typing import Any

from fakes.webhook import WebhookWorld

from iptelefon.domain.live_calls import CARD_LINE_CHARS, snapshot_of
from iptelefon.domain.models import Client, Employee, Project
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.usecases import reads
from iptelefon.usecases.auth import Caller
from iptelefon.usecases.webhook import receive_webhook

SECRET = "pbx-secret-card"
PHONE = "79004443322"


def world() -> WebhookWorld:
    return WebhookWorld(project=Project(id="wh", name="Webhook"), secret=SECRET)


def event(status: str, *, callid: str, phone: str = PHONE, exten: str = "346", cmd: str = "event") -> WebhookRequest:
    body = {"cmd": cmd, "callid": callid, "call-type": "IN", "phone": phone, "exten": exten, "call-status": status}
    return WebhookRequest(body=json.dumps(body).encode(), content_type="application/json")


def send(w: WebhookWorld, *requests: WebhookRequest) -> list[dict[str, Any]]:
    return [receive_webhook(w.deps, SECRET, request) for request in requests]


def card(w: WebhookWorld, callid: str) -> dict[str, Any]:
    [shown] = [
        c for c in reads.live_calls(w.reads, w.project).model_dump(mode="json")["calls"] if c["call_key"] == callid
    ]
    return dict(shown["client"])


def earlier_calls(w: WebhookWorld, count: int, phone: str = PHONE) -> None:
    for n in range(count):
        send(w, event("ANSWERED", callid=f"old-{n}", phone=phone, cmd="history"))
        w.clock.now += 60


# -- the snapshot ------------------------------------------------------------------------------------------------------
def test_an_unknown_number_rings_as_a_new_client_without_a_name() -> None:
    w = world()
    send(w, event("RINGING", callid="c-1"))
    assert card(w, "c-1") == {
        "display_name": None, "phone": PHONE, "phone_e164": "+" + PHONE, "is_new": True, "dialog": []}  # fmt: skip


def test_a_known_client_rings_with_its_name_and_last_three_dialog_lines_newest_first() -> None:
    # Given a client named by ФИО, with four calls behind it
    w = world()
    w.clients.add("wh", Client(id="known", channel="telephony", phone=PHONE, variables={"ФИО": "Иванова Анна"}))
    earlier_calls(w, 4)
    notes = w.calls.dialog("wh", "known")
    # When it calls again
    send(w, event("RINGING", callid="c-2"))
    # Then the card names it, not new, with the three newest lines of its dialog
    shown = card(w, "c-2")
    assert (shown["display_name"], shown["phone"], shown["is_new"]) == ("Иванова Анна", PHONE, False)
    assert [line["text"] for line in shown["dialog"]] == [note["text"] for note in notes[:3]]
    assert len(notes) == 4


def test_a_known_client_without_an_earlier_call_is_new() -> None:
    w = world()
    w.clients.add("wh", Client(id="imported", channel="telephony", phone=PHONE, variables={"name": "Пётр"}))
    send(w, event("RINGING", callid="c-3"))
    assert (card(w, "c-3")["display_name"], card(w, "c-3")["is_new"]) == ("Пётр", True)


def test_the_snapshot_is_taken_once_and_kept_when_the_call_is_answered() -> None:
    w = world()
    w.clients.add("wh", Client(id="known", channel="telephony", phone=PHONE, variables={"name": "Анна"}))
    send(w, event("RINGING", callid="c-4"))
    w.clients.add("wh", Client(id="known", channel="telephony", phone=PHONE, variables={"name": "Другая"}))
    send(w, event("ACCEPTED", callid="c-4"))
    shown = reads.live_calls(w.reads, w.project).calls[0]
    assert shown.state == "answered" and shown.client is not None and shown.client.display_name == "Анна"


def test_a_dialog_line_is_cut_short_and_text_stays_text() -> None:
    hostile = "<img src=x onerror=alert(1)>" + "я" * 500
    client = Client(id="c", channel="telephony", phone=PHONE)
    snapshot = snapshot_of(client, [{"text": hostile, "created_at": "2024-03-01T11:00:00"}] * 5, phone=PHONE,
                           created=False, name_variables=["name"])  # fmt: skip
    assert len(snapshot.dialog) == 3 and not snapshot.is_new
    assert len(snapshot.dialog[0].text) == CARD_LINE_CHARS and snapshot.dialog[0].text.startswith("<img src=x")


# -- who sees which call -----------------------------------------------------------------------------------------------
def seen_by(w: WebhookWorld, role: str, employee_id: str | None = None) -> list[str]:
    caller = Caller(w.project, role, "t-1", employee_id)  # type: ignore[arg-type]
    return [c.call_key for c in reads.live_calls_seen_by(w.reads, caller).calls]


def test_an_operator_sees_the_calls_at_its_extension_admin_and_bot_see_all() -> None:
    # Given calls ringing at 346 and at 347, and operators of 346, 347, an app employee without a number
    w = world()
    for employee in (
        Employee(id="olga", name="Ольга", call_method="api", short_number="346"),
        Employee(id="ivan", name="Иван", call_method="app", short_number="347"),
        Employee(id="zoiper", name="Без номера", call_method="app"),
    ):
        w.employees.put_employee("wh", employee)
    send(w, event("RINGING", callid="at-346"), event("RINGING", callid="at-347", phone="79005556677", exten="347"))
    # Then each operator sees its own extension's call only; admin and bot see both
    assert seen_by(w, "operator", "olga") == ["at-346"]
    assert seen_by(w, "operator", "ivan") == ["at-347"]
    assert seen_by(w, "operator", "zoiper") == []
    assert seen_by(w, "operator", "deleted-employee") == []
    assert sorted(seen_by(w, "admin")) == sorted(seen_by(w, "bot")) == ["at-346", "at-347"]
    # And a call rung on to 347 leaves 346's list
    send(w, event("RINGING", callid="at-346", exten="347"))
    assert seen_by(w, "operator", "olga") == []
