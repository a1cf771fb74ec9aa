"""Live call events (ZEON's `cmd=event`) on in-memory fakes: a live state, never a completion; idempotent and tolerant
of order; ended by the call's `history`; read back by GET /v1/calls/live and the attempt and call reads. The same
against moto: tests/integration/test_live_calls.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes.webhook import WebhookWorld

from iptelefon.domain.errors import InvalidInput, InvalidPhone, StorageUnavailable
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.live_calls import LIVE_SECONDS, LiveCall
from iptelefon.domain.models import CallAttempt, Client, Project
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.usecases import reads
from iptelefon.usecases.webhook import apply_queued, apply_webhook, receive_webhook

SECRET = "pbx-secret-unit"
PHONE = "79004443322"
CALL = "1709290800.2001"
LINK = "https://z138.fpg.ru/zeon/records/1709290800.2001.mp3"


def world(**project: Any) -> WebhookWorld:
    return WebhookWorld(project=Project(id="wh", name="Webhook", **project), secret=SECRET)


def zeon(**fields: Any) -> WebhookRequest:
    body = {"callid": CALL, "call-type": "IN", "phone": PHONE, "exten": "346", "token": "crm-key", **fields}
    return WebhookRequest(body=json.dumps(body).encode(), content_type="application/json")


def ringing(**fields: Any) -> WebhookRequest:
    return zeon(cmd="event", **{"call-status": "RINGING", **fields})


def accepted(**fields: Any) -> WebhookRequest:
    return zeon(cmd="event", **{"call-status": "ACCEPTED", **fields})


def history(**fields: Any) -> WebhookRequest:
    values = {"call-status": "ANSWERED", "duration": 155, "link": LINK, "missed": "false", "pickedup": "false",
              "transfered": "false", "calldate": "2024-03-01 14:00:00"}  # fmt: skip
    return zeon(cmd="history", **{**values, **fields})


def send(w: WebhookWorld, *requests: WebhookRequest) -> list[dict[str, Any]]:
    return [receive_webhook(w.deps, SECRET, request) for request in requests]


def live(w: WebhookWorld, call_key: str = CALL) -> LiveCall | None:
    return w.live.get("wh", call_key)


def nothing_completed(w: WebhookWorld) -> None:
    """No call record, no notification, no record-link variable: what an event must never leave."""
    assert (w.calls.calls, w.calls.notes, w.calls.record_links) == ({}, {}, {})


# -- the ordinary call: RINGING → ACCEPTED → history -------------------------------------------------------------------
def test_ringing_accepted_then_history_is_one_answered_call_with_one_notification() -> None:
    w = world()
    # When the PBX rings employee 346, 346 answers, the call ends with its history
    rang, took, answer = send(w, ringing(), accepted(), history())
    client_id = rang["client_id"]
    # Then each event said the live state it left, and changed it; the history is a new call, not a duplicate
    assert rang == {"result": 1, "call_key": CALL, "client_id": client_id, "live": "ringing", "changed": True}
    assert took == {"result": 1, "call_key": CALL, "client_id": client_id, "live": "answered", "changed": True}
    assert answer == {"result": 1, "call_key": CALL, "client_id": client_id, "duplicate": False}
    # And one answered incoming call with its link and one notification, the completion
    call = w.calls.get("wh", CALL)
    assert call is not None and (call.direction, call.status, call.talk_seconds, call.record_link) == (
        "in", "answered", 155, LINK)  # fmt: skip
    [note] = w.calls.dialog("wh", client_id)
    assert note["text"] == f"Звонок завершён · входящий · 02:35 · сотрудник 346 · запись: {LINK}"
    # And the call is not "now" any more
    assert reads.live_calls(w.reads, w.project).calls == []
    ended = live(w)
    assert ended is not None and (ended.state, ended.client_id) == ("ended", client_id)


def test_an_event_is_never_a_completion() -> None:
    w = world()
    send(w, ringing(), accepted(), ringing(exten="347"), accepted())
    nothing_completed(w)
    assert w.attempts.attempts == {} and w.calls.rejected == []


def test_the_live_state_names_client_extension_direction_and_since_when() -> None:
    w = world()
    [rang] = send(w, ringing())
    state = live(w)
    assert state is not None
    assert (state.state, state.client_id, state.client_phone, state.direction, state.employee) == (
        "ringing", rang["client_id"], PHONE, "in", "346")  # fmt: skip
    assert state.since.timestamp() == state.updated_at.timestamp() == w.clock.now
    w.clock.now += 7
    send(w, accepted())
    answered = live(w)
    assert answered is not None and (answered.state, answered.since.timestamp()) == ("answered", w.clock.now)


# -- idempotent and tolerant of order ----------------------------------------------------------------------------------
@pytest.mark.parametrize("event", [ringing, accepted], ids=["RINGING", "ACCEPTED"])
def test_a_repeated_event_changes_nothing_the_second_time(event: Any) -> None:
    w = world()
    first, again = send(w, event(), event())
    assert first["changed"] is True and again == {**first, "changed": False}
    assert w.live.writes == 1


def test_ringing_after_accepted_does_not_go_back() -> None:
    w = world()
    took, late = send(w, accepted(), ringing(exten="347"))
    assert (took["live"], late["live"], late["changed"]) == ("answered", "answered", False)
    state = live(w)
    assert state is not None and (state.state, state.employee) == ("answered", "346")


def test_a_call_rung_at_several_extensions_keeps_the_latest_while_ringing() -> None:
    w = world()
    send(w, ringing(exten="346"))
    rang_at = w.clock.now
    w.clock.now += 10
    second, third = send(w, ringing(exten="347"), ringing(exten="347"))
    assert (second["changed"], third["changed"]) == (True, False)
    state = live(w)
    assert state is not None and (state.employee, state.since.timestamp()) == ("347", rang_at)  # ringing since then
    # and whoever answers is the call's extension
    send(w, accepted(exten="348"))
    assert live(w).employee == "348"  # type: ignore[union-attr]


def test_a_history_without_any_event_is_a_completion_as_before() -> None:
    w = world()
    [answer] = send(w, history())
    assert answer["duplicate"] is False and w.calls.get("wh", CALL) is not None
    assert reads.live_calls(w.reads, w.project).calls == []


@pytest.mark.parametrize("late", [ringing, accepted], ids=["RINGING", "ACCEPTED"])
def test_an_event_after_the_history_changes_nothing(late: Any) -> None:
    w = world()
    [recorded] = send(w, history())
    writes = w.live.writes
    [answer] = send(w, late())
    assert answer == {"result": 1, "call_key": CALL, "client_id": recorded["client_id"], "live": "ended",
                      "changed": False}  # fmt: skip
    assert w.live.writes == writes and reads.live_calls(w.reads, w.project).calls == []
    assert len(w.calls.dialog("wh", recorded["client_id"])) == 1


def test_a_history_replayed_after_events_stays_a_duplicate_and_the_call_stays_ended() -> None:
    w = world()
    send(w, ringing(), accepted())
    first, again = send(w, history(), history())
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert live(w).state == "ended"  # type: ignore[union-attr]


def test_the_end_that_slips_in_between_a_read_and_a_write_wins() -> None:
    # Given a ringing call, and its history recorded while an ACCEPTED is between reading and writing the live state
    w = world()
    send(w, ringing())
    w.live.before_put.append(lambda: receive_webhook(w.deps, SECRET, history()))
    # When the ACCEPTED writes, Then its write fails, it reads the end and changes nothing
    [answer] = send(w, accepted())
    assert (answer["live"], answer["changed"]) == ("ended", False)
    assert live(w).state == "ended"  # type: ignore[union-attr]


def test_a_live_state_that_keeps_changing_under_the_event_is_an_outage_not_a_guess() -> None:
    w = world()
    send(w, ringing())

    def another_event() -> None:
        stored = live(w)
        assert stored is not None
        w.live.calls[("wh", CALL)] = stored.model_copy(update={"version": stored.version + 1})
        w.live.before_put.append(another_event)

    w.live.before_put.append(another_event)
    # Then the event gives up with StorageUnavailable (the webhook queues it: the inbox tries again later)
    with pytest.raises(StorageUnavailable):
        apply_webhook(w.deps, w.project, accepted())
    assert [json.loads(m)["secret_sha256"] for m in w.inbox.messages] == []


# -- the client ------------------------------------------------------------------------------------------------------
def test_an_event_from_an_unknown_phone_creates_the_client_and_the_history_lands_on_it() -> None:
    w = world()
    [rang] = send(w, ringing())
    created = w.clients.get("wh", rang["client_id"])
    assert created is not None and (created.channel, created.phone, created.can_message) == ("telephony", PHONE, False)
    [recorded] = send(w, history())
    assert recorded["client_id"] == rang["client_id"] and len(w.clients.clients) == 1


def test_an_event_from_a_known_phone_names_its_client_and_creates_none() -> None:
    w = world()
    w.clients.add("wh", Client(id="known", channel="whatsapp", phone=PHONE))
    [rang] = send(w, ringing())
    assert rang["client_id"] == "known" and len(w.clients.clients) == 1


# -- unreadable events: kept, 400 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_", "error", "code"),
    [
        (zeon(cmd="event", **{"call-status": "HANGUP"}), InvalidInput, "validation_error"),
        (WebhookRequest(body=b'{"cmd": "event", "call-status": "RINGING", "phone": "79004443322"}',
                        content_type="application/json"), InvalidInput, "validation_error"),
        (ringing(phone="346"), InvalidPhone, "invalid_phone"),
    ],
    ids=["unknown state", "no callid", "no phone"],
)  # fmt: skip
def test_an_unreadable_event_is_kept_before_its_400(
    request_: WebhookRequest, error: type[Exception], code: str
) -> None:
    w = world()
    with pytest.raises(error):
        receive_webhook(w.deps, SECRET, request_)
    [kept] = w.calls.rejected
    assert (kept["request"], kept["error"], kept["status"]) == (request_, code, 400)
    assert w.live.calls == {} and w.clients.clients == {}


# -- the inbox ---------------------------------------------------------------------------------------------------------
def test_an_event_during_an_outage_is_queued_and_applied_from_when_it_came() -> None:
    w = world()
    w.projects.unavailable = True
    assert send(w, ringing()) == [{"result": 1, "queued": True}]
    [message] = w.inbox.messages
    came = w.clock.now
    w.projects.unavailable = False
    w.clock.now += 60
    applied = apply_queued(w.deps, message)
    assert applied is not None and (applied["live"], applied["changed"]) == ("ringing", True)
    assert live(w).since.timestamp() == came  # type: ignore[union-attr]
    nothing_completed(w)


def test_an_event_applied_from_the_inbox_after_its_history_changes_nothing() -> None:
    w = world()
    message = ringing().to_message(sha256_hex(SECRET), received_at=w.clock.now)
    send(w, history())
    call = w.calls.get("wh", CALL)
    assert call is not None
    applied = apply_queued(w.deps, message)
    assert applied == {"result": 1, "call_key": CALL, "client_id": call.client_id, "live": "ended", "changed": False}


# -- the history read whole --------------------------------------------------------------------------------------------
def test_a_no_answer_history_with_a_ring_time_is_a_missed_incoming_call() -> None:
    w = world()
    send(w, ringing())
    [answer] = send(w, history(**{"call-status": "NO ANSWER", "duration": 23, "missed": "true", "link": ""}))
    call = w.calls.get("wh", CALL)
    assert call is not None and (call.direction, call.status, call.talk_seconds) == ("in", "missed", 0)
    [note] = w.calls.dialog("wh", answer["client_id"])
    assert note["text"] == "Звонок завершён · входящий · пропущен · сотрудник 346"


def test_a_picked_up_transferred_history_says_so_and_keeps_the_flags() -> None:
    w = world()
    [answer] = send(w, history(pickedup="true", transfered="true", exten="347", link=""))
    call = w.calls.get("wh", CALL)
    assert call is not None and (call.picked_up, call.transferred) == (True, True)
    [note] = w.calls.dialog("wh", answer["client_id"])
    assert note["text"] == "Звонок завершён · входящий · 02:35 · перехвачен · переведён · сотрудник 347"


# -- the reads ---------------------------------------------------------------------------------------------------------
def test_the_live_list_shows_ringing_and_answered_calls_of_the_project_longest_first() -> None:
    w = world()
    send(w, ringing(callid="c-a", phone="79001110001"))
    w.clock.now += 3
    send(w, accepted(callid="c-b", phone="79001110002", exten="347"), ringing(callid="c-c"))
    send(w, history(callid="c-c"))
    shown = reads.live_calls(w.reads, w.project).model_dump(mode="json")["calls"]
    assert [(c["call_key"], c["state"], c["employee"], c["client_phone"]) for c in shown] == [
        ("c-a", "ringing", "346", "79001110001"),
        ("c-b", "answered", "347", "79001110002"),
    ]
    assert set(shown[0]) == {"call_key", "record", "pbx_call_id", "client_id", "client_phone", "client_phone_e164",
                             "direction", "employee", "state", "since", "updated_at", "client"}  # fmt: skip


def test_a_call_whose_history_never_came_leaves_the_live_list_when_it_expires() -> None:
    w = world()
    send(w, ringing())
    w.clock.now += LIVE_SECONDS - 1
    assert len(reads.live_calls(w.reads, w.project).calls) == 1
    w.clock.now += 1
    assert reads.live_calls(w.reads, w.project).calls == []


def _attempt(pbx_call_id: str | None) -> CallAttempt:
    return CallAttempt(
        attempt_id="a-1",
        kind="employee",
        client_phone=PHONE,
        short_number="346",
        created_at="2024-03-01T10:00:00.000000+00:00",
        status="initiated",
        pbx_call_id=pbx_call_id,
    )


def test_the_attempt_read_says_its_call_is_ringing_then_answered_then_completed() -> None:
    w = world()
    w.attempts.add("wh", _attempt(CALL))
    assert reads.call_record(w.reads, w.project, "a-1").live is None  # type: ignore[union-attr]
    outgoing = {"call-type": "OUT", "exten": "346"}
    send(w, ringing(**outgoing))
    assert reads.call_record(w.reads, w.project, "a-1").live == "ringing"  # type: ignore[union-attr]
    send(w, accepted(**outgoing))
    assert reads.call_record(w.reads, w.project, "a-1").live == "answered"  # type: ignore[union-attr]
    send(w, history(**outgoing))
    done = reads.call_record(w.reads, w.project, "a-1").model_dump(mode="json")
    assert (done["status"], done["live"], done["call"]["status"]) == ("completed", None, "answered")


def test_an_attempt_without_a_pbx_call_id_has_no_live_state() -> None:
    w = world()
    w.attempts.add("wh", _attempt(None))
    send(w, ringing(**{"call-type": "OUT"}))
    assert reads.call_record(w.reads, w.project, "a-1").live is None  # type: ignore[union-attr]


def test_a_call_is_read_live_while_it_rings_and_as_a_completed_call_after() -> None:
    w = world()
    send(w, ringing())
    shown = reads.call_record(w.reads, w.project, CALL).model_dump(mode="json")
    assert (shown["record"], shown["state"], shown["call_key"]) == ("live", "ringing", CALL)
    send(w, history())
    done = reads.call_record(w.reads, w.project, CALL).model_dump(mode="json")
    assert (done["status"], "live" in done, "record" in done) == ("answered", False, False)
