"""The dialog lines about a call (contract section 2, effect 3)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from iptelefon.domain.call_aliases import CanonicalCall, canonicalize
from iptelefon.domain.notifications import format_call_notification, format_duration
from iptelefon.domain.webhook_body import extract_fields

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
RECORD_URL = "https://z138.fpg.ru/zeon/records/2024/03/01/1709290800.1843.mp3"


def make_call(**overrides: Any) -> CanonicalCall:
    values: dict[str, Any] = {
        "pbx_call_id": "1709290800.1843",
        "direction": "in",
        "client_phone": "79004443322",
        "employee": None,
        "group_id": None,
        "talk_seconds": 155,
        "status": "answered",
        "record_link": None,
    }
    return CanonicalCall(**{**values, **overrides})


def load_call(name: str) -> CanonicalCall:
    event = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event["isBase64Encoded"] else raw.encode("utf-8")
    headers = {key.lower(): value for key, value in (event.get("headers") or {}).items()}
    fields = extract_fields(body=body, content_type=headers.get("content-type"), query=event["queryStringParameters"])
    return canonicalize(fields)


def test_answered_incoming_call_reads_like_the_contract_example() -> None:
    # Given an answered incoming call of 2:35 with employee 346 and a recording
    call = make_call(employee="346", record_link=RECORD_URL)
    # When it is formatted, Then it is the contract's example line
    assert (
        format_call_notification(call) == f"Звонок завершён · входящий · 02:35 · сотрудник 346 · запись: {RECORD_URL}"
    )


def test_zeon_incoming_event_gives_the_contract_example_line() -> None:
    # Given the recorded ZEON form webhook of an incoming call, When read and formatted
    line = format_call_notification(load_call("zeon_form_incoming.json"))
    # Then the operator sees the contract's example line
    assert line == f"Звонок завершён · входящий · 02:35 · сотрудник 346 · запись: {RECORD_URL}"


def test_zeon_missed_outgoing_event_says_missed_instead_of_a_duration() -> None:
    # Given the recorded ZEON webhook of an unanswered outgoing call, When read and formatted
    line = format_call_notification(load_call("zeon_form_outgoing_missed.json"))
    # Then it says so, with no duration and no recording
    assert line == "Звонок завершён · исходящий · пропущен · сотрудник 347"


@pytest.mark.parametrize(("direction", "word"), [("in", "входящий"), ("out", "исходящий")])
def test_direction_is_named(direction: str, word: str) -> None:
    # Given a call with a known direction, When formatted, Then the direction is the second part
    assert format_call_notification(make_call(direction=direction)) == f"Звонок завершён · {word} · 02:35"


def test_unknown_direction_is_omitted() -> None:
    # Given a call without direction, When formatted, Then no direction word appears
    assert format_call_notification(make_call(direction=None)) == "Звонок завершён · 02:35"


@pytest.mark.parametrize(("status", "word"), [("missed", "пропущен"), ("busy", "занято"), ("failed", "не состоялся")])
def test_unanswered_status_replaces_the_duration(status: str, word: str) -> None:
    # Given a call that was not answered, When formatted, Then the status word stands where the duration would
    call = make_call(status=status, talk_seconds=0, employee="346")
    assert format_call_notification(call) == f"Звонок завершён · входящий · {word} · сотрудник 346"


def test_answered_call_without_talk_time_shows_zero_duration() -> None:
    # Given a call the PBX marked answered with 0 s, When formatted, Then the duration is 00:00
    assert format_call_notification(make_call(talk_seconds=0)) == "Звонок завершён · входящий · 00:00"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00"),
        (5, "00:05"),
        (59, "00:59"),
        (60, "01:00"),
        (155, "02:35"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (3725, "1:02:05"),
        (36000, "10:00:00"),
        (90061, "25:01:01"),
    ],
)
def test_duration_is_mm_ss_under_an_hour_and_h_mm_ss_from_an_hour(seconds: int, text: str) -> None:
    # Given a talk time, When formatted, Then mm:ss below an hour, h:mm:ss from an hour on
    assert format_duration(seconds) == text


def test_long_call_duration_appears_in_the_line() -> None:
    # Given an answered call of 1 h 2 min 5 s, When formatted, Then the line shows 1:02:05
    assert format_call_notification(make_call(talk_seconds=3725)) == "Звонок завершён · входящий · 1:02:05"


def test_employee_is_named_when_known() -> None:
    # Given a call with an employee, When formatted, Then `сотрудник <employee>` appears
    assert "· сотрудник 346" in format_call_notification(make_call(employee="346"))


def test_employee_is_omitted_when_unknown() -> None:
    # Given a call without employee, When formatted, Then the word does not appear
    assert "сотрудник" not in format_call_notification(make_call(employee=None))


def test_group_is_named_when_known() -> None:
    # Given a call through group 3, When formatted, Then `группа 3` follows the employee
    line = format_call_notification(make_call(employee="346", group_id="3"))
    assert line == "Звонок завершён · входящий · 02:35 · сотрудник 346 · группа 3"


def test_group_is_omitted_when_unknown() -> None:
    # Given a call without group, When formatted, Then the word does not appear
    assert "группа" not in format_call_notification(make_call(group_id=None))


def test_record_link_is_last() -> None:
    # Given a call with a recording, When formatted, Then `запись: <link>` ends the line
    assert format_call_notification(make_call(record_link=RECORD_URL)).endswith(f" · запись: {RECORD_URL}")


def test_bare_record_ref_is_not_shown() -> None:
    # Given a call with only a recording id (not a link), When formatted, Then no recording part is shown
    assert "запись" not in format_call_notification(make_call(record_ref="1700000000.123"))


def test_line_breaks_from_the_pbx_do_not_break_the_line() -> None:
    # Given an employee name with a line break and tabs, When formatted, Then the line stays one line
    line = format_call_notification(make_call(employee="Иван\n\tПетров"))
    assert line == "Звонок завершён · входящий · 02:35 · сотрудник Иван Петров"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"picked_up": True}, ["перехвачен"]),
        ({"transferred": True}, ["переведён"]),
        ({"picked_up": True, "transferred": True}, ["перехвачен", "переведён"]),
        ({"picked_up": False, "transferred": False}, []),
        ({}, []),
    ],
)
def test_a_picked_up_or_transferred_call_says_so_after_its_duration(flags: dict[str, bool], words: list[str]) -> None:
    text = format_call_notification(make_call(employee="347", **flags))
    assert text == " · ".join(["Звонок завершён", "входящий", "02:35", *words, "сотрудник 347"])


def test_a_zeon_no_answer_history_that_rang_reads_as_missed() -> None:
    # the 23 s of ringing in `duration` are no talk: "пропущен", not "00:23"
    assert format_call_notification(load_call("zeon_history_no_answer.json")) == (
        "Звонок завершён · входящий · пропущен · сотрудник 346"
    )
