"""ZEON's JSON webhooks as the public integration shows them: `cmd=history` read whole (hyphenated keys, `call-status`
as the last word, the flags), `cmd=event` read as a live state, and the CRM `token` they carry blanked at the door.

The files under tests/events/zeon_event_*.json and zeon_history_*.json are such requests as API Gateway hands them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iptelefon.domain.call_aliases import canonicalize, is_live_event, read_live_event
from iptelefon.domain.errors import InvalidInput, InvalidPhone
from iptelefon.domain.webhook_body import WebhookRequest, blank_credentials, extract_fields

EVENTS = Path(__file__).resolve().parent.parent / "events"
PHONE = "79004443322"
TOKEN = "crm-key-7Qx2vN9pL4sT8wZ1"  # the CRM token in tests/events/zeon_*.json
MULTIPART = b'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\n%s\r\n--b--'


def fields_of(name: str) -> dict[str, Any]:
    request = WebhookRequest.from_event(json.loads((EVENTS / name).read_text(encoding="utf-8")))
    return extract_fields(body=request.body, content_type=request.content_type, query=request.query)


def history(**fields: Any) -> dict[str, Any]:
    return {"cmd": "history", "callid": "c-1", "call-type": "IN", "phone": PHONE, "exten": "346", **fields}


# -- history: read whole -----------------------------------------------------------------------------------------------
def test_an_answered_history_gives_direction_status_talk_time_link_and_flags() -> None:
    call = canonicalize(fields_of("zeon_history_answered.json"))
    assert (call.pbx_call_id, call.direction, call.status, call.talk_seconds) == (
        "1709290800.2001",
        "in",
        "answered",
        155,
    )
    assert (call.client_phone, call.employee, call.picked_up, call.transferred) == (PHONE, "346", False, False)
    assert call.record_link == "https://z138.fpg.ru/zeon/records/2024/03/01/1709290800.2001.mp3"


def test_a_no_answer_history_that_rang_is_missed_with_no_talk_time() -> None:
    # Given NO ANSWER, missed=true and a `duration` of 23 s (how long it rang)
    call = canonicalize(fields_of("zeon_history_no_answer.json"))
    # Then a missed incoming call: the duration is not talk
    assert (call.direction, call.status, call.talk_seconds) == ("in", "missed", 0)


@pytest.mark.parametrize(("status", "expected"), [("NO ANSWER", "missed"), ("BUSY", "busy"), ("ANSWERED", "answered")])
def test_in_a_history_the_call_status_decides_whatever_the_duration(status: str, expected: str) -> None:
    call = canonicalize(history(**{"call-status": status, "duration": 40}))
    assert call.status == expected
    assert call.talk_seconds == (40 if expected == "answered" else 0)


def test_outside_a_history_any_talk_time_still_means_answered() -> None:
    # the contract's rule for its own dialect stays (tests/unit/test_webhook_body_and_aliases.py has its table)
    assert canonicalize({"disposition": "NO ANSWER", "talktime": "40", "client": PHONE}).status == "answered"


@pytest.mark.parametrize("flag", ["true", "TRUE", "1", "yes", True, 1])
def test_missed_true_is_missed_in_any_dialect_even_with_talk_time(flag: Any) -> None:
    assert canonicalize({"missed": flag, "talktime": "40", "client": PHONE}).status == "missed"
    assert canonicalize(history(**{"call-status": "ANSWERED", "duration": 40, "missed": flag})).talk_seconds == 0


@pytest.mark.parametrize("flag", ["false", "0", "no", False, "", "maybe"])
def test_missed_false_or_unreadable_leaves_the_status_to_the_rest(flag: Any) -> None:
    assert canonicalize({"missed": flag, "talktime": "40", "client": PHONE}).status == "answered"


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("yes", True), ("no", False), (True, True),
     ("garbage", None), ("", None)],
)  # fmt: skip
def test_pickedup_and_transfered_are_kept_as_flags(sent: Any, expected: bool | None) -> None:
    call = canonicalize(history(**{"call-status": "ANSWERED", "pickedup": sent, "transfered": sent}))
    assert (call.picked_up, call.transferred) == (expected, expected)


def test_without_the_flags_the_call_does_not_say() -> None:
    call = canonicalize({"id": "c-1", "calltype": "IN", "src": PHONE, "talktime": "10"})
    assert (call.picked_up, call.transferred) == (None, None)


@pytest.mark.parametrize("key", ["call-type", "Call-Type", "CALL-TYPE", "call_type", "Call_Type"])
def test_hyphenated_keys_in_any_case_are_read(key: str) -> None:
    call = canonicalize({key: "OUT", "CALL-STATUS": "BUSY", "phone": PHONE})
    assert (call.direction, call.status) == ("out", "busy")


def test_the_flags_do_not_change_the_key_of_a_call_without_an_id() -> None:
    # a call key stored before the flags existed stays the call's key (a replay is still a duplicate)
    plain = {"calltype": "IN", "src": PHONE, "talktime": "10", "calldate": "2024-03-01 14:00:00"}
    flagged = {**plain, "pickedup": "true", "transfered": "false"}
    assert canonicalize(plain).call_key == canonicalize(flagged).call_key
    # the key this call had before the flags came (main before issue 19)
    assert canonicalize(plain).call_key == "821c1976af4db2d8b07c8294579fba2a44269c3076da2c257f79e3d2edcec7eb"


# -- event: a live state -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "state"), [("zeon_event_ringing.json", "ringing"), ("zeon_event_accepted.json", "answered")]
)
def test_an_event_is_a_live_state_of_the_call(name: str, state: str) -> None:
    fields = fields_of(name)
    assert is_live_event(fields)
    event = read_live_event(fields)
    assert (event.pbx_call_id, event.call_key, event.state) == ("1709290800.2001", "1709290800.2001", state)
    assert (event.client_phone, event.direction, event.employee) == (PHONE, "in", "346")


@pytest.mark.parametrize("cmd", ["event", "EVENT", " Event "])
def test_cmd_event_in_any_case_is_live(cmd: str) -> None:
    assert is_live_event({"cmd": cmd})


@pytest.mark.parametrize("fields", [{"cmd": "history"}, {}, {"cmd": ""}, {"event": "RINGING"}])
def test_anything_else_is_a_completion(fields: dict[str, str]) -> None:
    assert not is_live_event(fields)


def test_an_event_without_a_call_id_names_callid() -> None:
    with pytest.raises(InvalidInput) as refused:
        read_live_event({"cmd": "event", "call-status": "RINGING", "phone": PHONE})
    assert refused.value.details == [{"field": "callid", "message": refused.value.details[0]["message"]}]
    assert "callid" in refused.value.message


@pytest.mark.parametrize("status", ["HANGUP", "", None])
def test_an_event_of_an_unknown_state_names_call_status(status: str | None) -> None:
    fields = {"cmd": "event", "callid": "c-1", "phone": PHONE, "call-status": status}
    with pytest.raises(InvalidInput) as refused:
        read_live_event(fields)
    assert refused.value.details[0]["field"] == "call-status"
    assert "RINGING or ACCEPTED" in refused.value.message


def test_an_event_without_a_phone_is_an_invalid_phone() -> None:
    with pytest.raises(InvalidPhone):
        read_live_event({"cmd": "event", "callid": "c-1", "call-status": "RINGING", "exten": "346"})


def test_an_outgoing_event_names_the_called_client() -> None:
    event = read_live_event({"cmd": "event", "callid": "c-9", "call-status": "RINGING", "call-type": "OUT",
                             "phone": "8 900 444-33-22", "exten": "347"})  # fmt: skip
    assert (event.direction, event.client_phone, event.employee) == ("out", PHONE, "347")


def test_a_call_id_that_does_not_fit_a_key_is_hashed_as_a_completion_would_be() -> None:
    odd = "вызов #1/2"
    event = read_live_event({"cmd": "event", "callid": odd, "call-status": "RINGING", "phone": PHONE})
    assert event.call_key == canonicalize({"callid": odd, "phone": PHONE}).call_key != odd


# -- the CRM token: blanked as the request comes in --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["zeon_event_ringing.json", "zeon_history_answered.json"])
def test_the_token_of_a_recorded_request_is_blanked_at_the_door(name: str) -> None:
    request = WebhookRequest.from_event(json.loads((EVENTS / name).read_text(encoding="utf-8")))
    assert TOKEN.encode() not in request.body
    assert json.loads(request.body)["token"] == "***"
    assert TOKEN not in request.to_message("0" * 64)


@pytest.mark.parametrize(
    ("body", "blanked"),
    [
        (b'{"cmd":"event","token":"abc","phone":"1"}', b'{"cmd":"event","token":"***","phone":"1"}'),
        (b'{"Token" : "a\\"b", "x": 1}', b'{"Token" : "***", "x": 1}'),
        (b'{"token": 12345}', b'{"token": "***"}'),
        (b'{"data": "{\\"token\\":\\"abc\\"}"}', b'{"data": "{\\"token\\":\\"***\\"}"}'),
        (b"cmd=event&token=abc&phone=1", b"cmd=event&token=***&phone=1"),
        (b"TOKEN=abc", b"TOKEN=***"),
        (MULTIPART % b"abc", MULTIPART % b"***"),
        (b'{"tokens": "kept", "my_token_count": 2}', b'{"tokens": "kept", "my_token_count": 2}'),
        (b"calltype=IN&src=79004443322", b"calltype=IN&src=79004443322"),
    ],
)  # fmt: skip
def test_only_the_tokens_value_changes(body: bytes, blanked: bytes) -> None:
    assert blank_credentials(body) == blanked


def test_a_token_in_the_query_is_blanked_too() -> None:
    event = {"httpMethod": "GET", "queryStringParameters": {"Token": TOKEN, "phone": PHONE}, "body": None}
    assert WebhookRequest.from_event(event).query == {"Token": "***", "phone": PHONE}
