"""The webhook's rules on in-memory fakes (`tests/fakes/webhook.py`): match or create, a replay, a later recording,
the bot's attempt, storage away. The same rules against moto (DynamoDB's conditions, the phone index) are in
tests/integration/test_webhook.py."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from fakes.webhook import WebhookWorld

from iptelefon.domain.errors import InvalidPhone, NotFound
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import CallAttempt, Client, Project
from iptelefon.domain.webhook_body import InvalidJson, WebhookRequest
from iptelefon.usecases import reads
from iptelefon.usecases.webhook import apply_queued, receive_webhook

SECRET = "pbx-secret-unit"
PHONE = "79004443322"
LINK = "https://pbx.test/rec/1.mp3"


def world(**project: Any) -> WebhookWorld:
    return WebhookWorld(project=Project(id="wh", name="Webhook", **project), secret=SECRET)


def form(**fields: str) -> WebhookRequest:
    values = {"id": "c-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "00:02:35", **fields}
    return WebhookRequest(
        body=urllib.parse.urlencode(values).encode(), content_type="application/x-www-form-urlencoded"
    )


def test_a_new_phone_of_a_project_without_messengers_creates_a_telephony_client() -> None:
    w = world()
    answer = receive_webhook(w.deps, SECRET, form())
    client = w.clients.get("wh", answer["client_id"])
    assert answer == {"result": 1, "call_key": "c-1", "client_id": client.id, "duplicate": False}  # type: ignore[union-attr]
    assert client is not None and (client.channel, client.phone, client.can_message) == ("telephony", PHONE, False)


def test_a_new_phone_of_a_project_with_a_messenger_creates_a_whatsapp_client() -> None:
    w = world(messengers=["telegram"])
    client = w.clients.get("wh", receive_webhook(w.deps, SECRET, form())["client_id"])
    assert client is not None and (client.channel, client.can_message) == ("whatsapp", True)


def test_a_known_phone_lands_on_the_matching_client_and_creates_none() -> None:
    w = world()
    w.clients.add("wh", Client(id="known", channel="telephony", phone=PHONE))
    answer = receive_webhook(w.deps, SECRET, form())
    assert answer["client_id"] == "known" and len(w.clients.clients) == 1


def test_the_call_is_recorded_with_its_notification_and_the_pbx_call_id() -> None:
    w = world()
    receive_webhook(w.deps, SECRET, form(id="c-7", link=LINK))
    call = w.calls.get("wh", "c-7")
    assert call is not None and (call.pbx_call_id, call.talk_seconds, call.employee) == ("c-7", 155, "346")
    [note] = w.calls.dialog("wh", call.client_id)
    assert note["text"] == f"Звонок завершён · входящий · 02:35 · сотрудник 346 · запись: {LINK}"
    assert w.calls.record_links[("wh", call.client_id)] == LINK


def test_a_replay_is_a_duplicate_recorded_once() -> None:
    w = world()
    first = receive_webhook(w.deps, SECRET, form())
    again = receive_webhook(w.deps, SECRET, form())
    assert again == {**first, "duplicate": True}
    assert len(w.calls.calls) == 1 and len(w.calls.dialog("wh", first["client_id"])) == 1


def test_a_replay_answers_the_client_the_call_was_recorded_for() -> None:
    # Given a call recorded for a client that has since stopped matching (its phone changed)
    w = world()
    first = receive_webhook(w.deps, SECRET, form())
    w.clients.clients.clear()
    # When the PBX sends the call again, Then the answer names the call's client, not the one created now
    assert receive_webhook(w.deps, SECRET, form())["client_id"] == first["client_id"]


def test_a_later_recording_sets_the_link_without_a_second_notification() -> None:
    w = world()
    first = receive_webhook(w.deps, SECRET, form())
    assert ("wh", first["client_id"]) not in w.calls.record_links
    again = receive_webhook(w.deps, SECRET, form(link=LINK))
    assert again["duplicate"] is True
    assert w.calls.get("wh", "c-1").record_link == LINK  # type: ignore[union-attr]
    assert w.calls.record_links[("wh", first["client_id"])] == LINK
    [note] = w.calls.dialog("wh", first["client_id"])
    assert note["text"].endswith(f"· запись: {LINK}")


def _attempt(attempt_id: str, *, created_at: str, pbx_call_id: str | None = None) -> CallAttempt:
    return CallAttempt(
        attempt_id=attempt_id,
        kind="employee",
        client_phone=PHONE,
        short_number="346",
        created_at=created_at,
        status="initiated",
        pbx_call_id=pbx_call_id,
    )


def test_an_outgoing_call_completes_the_bots_attempt_with_its_call_key_and_client() -> None:
    w = world()
    w.attempts.add("wh", _attempt("a-1", created_at="2024-03-01T10:00:00.000000+00:00", pbx_call_id="pbx-9"))
    w.attempts.add("wh", _attempt("a-2", created_at="2024-03-01T10:05:00.000000+00:00"))
    answer = receive_webhook(w.deps, SECRET, form(id="pbx-9", calltype="OUT", src="346", dst=PHONE))
    linked = w.attempts.get("wh", "a-1")
    assert linked is not None and (linked.status, linked.call_key, linked.client_id) == (
        "completed",
        "pbx-9",
        answer["client_id"],
    )
    assert w.attempts.get("wh", "a-2").status == "initiated"  # type: ignore[union-attr]


def test_an_incoming_call_from_that_phone_leaves_the_attempt_pending() -> None:
    w = world()
    w.attempts.add("wh", _attempt("a-1", created_at="2024-03-01T10:00:00.000000+00:00"))
    receive_webhook(w.deps, SECRET, form(calltype="IN"))
    assert w.attempts.get("wh", "a-1").status == "initiated"  # type: ignore[union-attr]


@pytest.mark.parametrize("away", ["projects", "calls"])
def test_storage_away_queues_the_request_with_the_secrets_hash(away: str) -> None:
    w = world()
    getattr(w, away).unavailable = True
    answer = receive_webhook(w.deps, SECRET, form())
    assert answer == {"result": 1, "queued": True}
    [message] = w.inbox.messages
    assert SECRET not in message and json.loads(message)["secret_sha256"] == sha256_hex(SECRET)
    assert w.calls.calls == {}
    # And once storage is back, the queued request is applied as the webhook would have
    getattr(w, away).unavailable = False
    applied = apply_queued(w.deps, message)
    assert applied is not None and (applied["call_key"], applied["duplicate"]) == ("c-1", False)
    assert w.calls.get("wh", "c-1") is not None


def test_an_unknown_secret_is_404_and_queues_nothing() -> None:
    w = world()
    with pytest.raises(NotFound):
        receive_webhook(w.deps, "not-the-secret", form())
    assert w.inbox.messages == [] and w.calls.rejected == []


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (WebhookRequest(body=b'{"id": ', content_type="application/json"), InvalidJson),
        (WebhookRequest(body=b"id=1&calltype=IN", content_type="application/x-www-form-urlencoded"), InvalidPhone),
    ],
)
def test_an_unreadable_request_is_kept_before_its_4xx(request_: WebhookRequest, error: type[Exception]) -> None:
    w = world()
    with pytest.raises(error) as raised:
        receive_webhook(w.deps, SECRET, request_)
    [kept] = w.calls.rejected
    assert (kept["request"], kept["error"], kept["status"]) == (request_, raised.value.code, 400)  # type: ignore[attr-defined]
    assert w.calls.calls == {}


def test_a_queued_unreadable_request_is_kept_and_reported() -> None:
    w = world()
    message = WebhookRequest(body=b"calltype=IN", content_type="application/x-www-form-urlencoded").to_message(
        sha256_hex(SECRET)
    )
    assert apply_queued(w.deps, message) == {"result": 0, "error": "invalid_phone"}
    assert [k["error"] for k in w.calls.rejected] == ["invalid_phone"]


# -- the reads on the same fakes ---------------------------------------------------------------------------------------
def test_an_attempt_is_read_with_the_call_that_completed_it() -> None:
    w = world()
    w.attempts.add("wh", _attempt("a-1", created_at="2024-03-01T10:00:00.000000+00:00", pbx_call_id="pbx-9"))
    receive_webhook(w.deps, SECRET, form(id="pbx-9", calltype="OUT", src="346", dst=PHONE))
    shown = reads.call_record(w.reads, w.project, "a-1").model_dump(mode="json")
    assert (shown["attempt_id"], shown["record"], shown["status"], shown["completed_by_call_key"]) == (
        "a-1",
        "attempt",
        "completed",
        "pbx-9",
    )
    assert shown["call"]["call_key"] == "pbx-9" and shown["call"]["pbx_call_id"] == "pbx-9"
    assert "pbx_reply" not in shown and "call_key" not in shown


def test_a_call_is_read_by_its_call_key_and_an_unknown_key_is_404() -> None:
    w = world()
    receive_webhook(w.deps, SECRET, form(id="c-9"))
    shown = reads.call_record(w.reads, w.project, "c-9").model_dump(mode="json")
    assert (shown["call_key"], shown["pbx_call_id"], shown["client_phone_e164"]) == ("c-9", "c-9", "+" + PHONE)
    with pytest.raises(NotFound):
        reads.call_record(w.reads, w.project, "nope")
