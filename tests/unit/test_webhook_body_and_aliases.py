"""The webhook payload: raw request -> fields (`extract_fields`) -> `CanonicalCall` (`canonicalize`).

Contract section 2 is the reference for every table here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from iptelefon.domain.call_aliases import (
    CALLEE_ALIASES,
    CALLER_ALIASES,
    CLIENT_PHONE_ALIASES,
    DIRECTION_ALIASES,
    EMPLOYEE_ALIASES,
    GROUP_ID_ALIASES,
    PBX_CALL_ID_ALIASES,
    RECORD_ALIASES,
    STARTED_AT_ALIASES,
    STATUS_ALIASES,
    TALK_SECONDS_ALIASES,
    CanonicalCall,
    canonicalize,
)
from iptelefon.domain.errors import DomainError, InvalidInput, InvalidPhone, PayloadTooLarge
from iptelefon.domain.webhook_body import InvalidJson, extract_fields

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
PHONE = "79004443322"
OTHER_PHONE = "79123456789"
OFFICE_PHONE = "74951234567"
RECORD_URL = "https://z138.fpg.ru/zeon/records/2024/03/01/1709290800.1843.mp3"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- the event loader ------------------------------------------------------------------------------------------------


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


def request_of(event: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `extract_fields` for an API Gateway REST proxy event (base64 decoded here)."""
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    headers = {key.lower(): value for key, value in (event.get("headers") or {}).items()}
    return {"body": body, "content_type": headers.get("content-type"), "query": event.get("queryStringParameters")}


def call_from_event(name: str) -> CanonicalCall:
    return canonicalize(extract_fields(**request_of(load_event(name))))


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def multipart(fields: dict[str, str], boundary: str = "XyZ123") -> tuple[bytes, str]:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"


# --- the recorded events ---------------------------------------------------------------------------------------------

ALL_EVENTS = sorted(path.name for path in EVENTS_DIR.glob("*.json"))
VALID_EVENTS = [name for name in ALL_EVENTS if not name.startswith("invalid_")]


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_every_event_file_is_a_rest_proxy_event_on_the_webhook_route(name: str) -> None:
    # Given a stored event
    event = load_event(name)
    # Then it has the shape API Gateway (REST, v1) sends for the webhook route
    assert event["resource"] == "/iptelefon_webhook/{secret}"
    assert event["path"] == "/iptelefon_webhook/whsec-demo-0123456789abcdef"
    assert event["pathParameters"] == {"secret": "whsec-demo-0123456789abcdef"}
    assert event["httpMethod"] in ("GET", "POST")
    assert event["requestContext"]["requestId"] and event["requestContext"]["stage"]
    assert isinstance(event["isBase64Encoded"], bool)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "zeon_form_incoming.json",
            {
                "pbx_call_id": "1709290800.1843",
                "direction": "in",
                "client_phone": PHONE,
                "employee": "346",
                "talk_seconds": 155,
                "status": "answered",
                "record_link": RECORD_URL,
                "started_at": datetime(2024, 3, 1, 11, 0, tzinfo=UTC),
            },
        ),
        (
            "zeon_form_outgoing_missed.json",
            {"direction": "out", "client_phone": OTHER_PHONE, "employee": "347", "status": "missed", "talk_seconds": 0},
        ),
        (
            "json_flat.json",
            {"direction": "in", "client_phone": PHONE, "group_id": "3", "talk_seconds": 155, "status": "answered"},
        ),
        (
            "json_wrapped_data.json",
            {"pbx_call_id": "1709290800.1843", "client_phone": PHONE, "record_link": RECORD_URL},
        ),
        ("json_string_wrapped.json", {"pbx_call_id": "1709290800.1843", "client_phone": PHONE, "employee": "346"}),
        ("multipart.json", {"pbx_call_id": "1709290800.1843", "client_phone": PHONE, "talk_seconds": 155}),
        ("base64_form.json", {"pbx_call_id": "1709298000.3005", "client_phone": "375291234567", "talk_seconds": 65}),
        (
            "get_query.json",
            {"client_phone": PHONE, "talk_seconds": 155, "started_at": datetime(2024, 3, 1, 14, 0, tzinfo=UTC)},
        ),
        ("bare_record_id.json", {"record_link": None, "record_ref": "1700000000.123"}),
    ],
)
def test_each_valid_event_reads_into_the_expected_call(name: str, expected: dict[str, Any]) -> None:
    # Given a stored event, When it is parsed and canonicalized
    call = call_from_event(name)
    # Then the canonical fields are the ones the PBX meant
    assert {field: getattr(call, field) for field in expected} == expected


def test_the_expected_table_covers_every_valid_event() -> None:
    # Given the events directory, Then no valid event is left untested by the table above
    assert len(VALID_EVENTS) >= 9


def test_base64_event_body_is_a_form_once_decoded() -> None:
    # Given the base64 event, When its body is decoded as the handler does
    fields = extract_fields(**request_of(load_event("base64_form.json")))
    # Then the form fields come out, Cyrillic included
    assert fields["calltype"] == "IN"
    assert fields["comment"] == "перезвонить"


def test_invalid_no_phone_event_raises_invalid_phone() -> None:
    # Given an event where src and dst are both short extensions, When it is canonicalized, Then InvalidPhone
    with pytest.raises(InvalidPhone):
        call_from_event("invalid_no_phone.json")


def test_invalid_broken_json_event_raises_invalid_json() -> None:
    # Given an event with a truncated JSON body, When its fields are extracted, Then InvalidJson
    with pytest.raises(InvalidJson):
        extract_fields(**request_of(load_event("invalid_broken_json.json")))


# --- extract_fields: size ---------------------------------------------------------------------------------------------


def test_body_over_the_limit_raises_payload_too_large_naming_the_limit() -> None:
    # Given a body one byte over 64 KiB
    body = b"a=" + b"x" * 65535
    # When its fields are extracted, Then PayloadTooLarge names the limit
    with pytest.raises(PayloadTooLarge, match="65536"):
        extract_fields(body=body, content_type=FORM, query=None)


def test_body_exactly_at_the_limit_is_accepted() -> None:
    # Given a body of exactly 64 KiB, When its fields are extracted, Then it is parsed
    fields = extract_fields(body=b"a=" + b"x" * 65534, content_type=FORM, query=None)
    assert len(fields["a"]) == 65534


def test_custom_limit_is_respected() -> None:
    # Given a limit of 10 bytes, When 11 are sent, Then PayloadTooLarge names that limit
    with pytest.raises(PayloadTooLarge, match=r"\b10 bytes"):
        extract_fields(body=b"a=123456789", content_type=FORM, query=None, max_bytes=10)


# --- extract_fields: content types -----------------------------------------------------------------------------------

CONTENT_TYPE_CASES = [
    pytest.param(JSON, json.dumps({"id": "1", "client": PHONE}).encode(), id="json"),
    pytest.param("application/json; charset=utf-8", json.dumps({"id": "1", "client": PHONE}).encode(), id="json-cs"),
    pytest.param("Application/JSON", json.dumps({"id": "1", "client": PHONE}).encode(), id="json-upper"),
    pytest.param("text/json", json.dumps({"id": "1", "client": PHONE}).encode(), id="text-json"),
    pytest.param("application/vnd.zeon+json", json.dumps({"id": "1", "client": PHONE}).encode(), id="plus-json"),
    pytest.param(FORM, form(id="1", client=PHONE), id="form"),
    pytest.param(FORM + "; charset=UTF-8", form(id="1", client=PHONE), id="form-cs"),
    pytest.param(multipart({"id": "1", "client": PHONE})[1], multipart({"id": "1", "client": PHONE})[0], id="multi"),
    pytest.param(None, json.dumps({"id": "1", "client": PHONE}).encode(), id="none-sniff-json"),
    pytest.param(None, form(id="1", client=PHONE), id="none-sniff-form"),
    pytest.param("", b'  \n {"id": "1", "client": "79004443322"}', id="empty-sniff-json-ws"),
    pytest.param("text/plain", json.dumps({"id": "1", "client": PHONE}).encode(), id="text-plain-json"),
    pytest.param("application/octet-stream", form(id="1", client=PHONE), id="octet-form"),
]


@pytest.mark.parametrize(("content_type", "body"), CONTENT_TYPE_CASES)
def test_every_content_type_yields_the_same_fields(content_type: str | None, body: bytes) -> None:
    # Given the same two fields sent with a content type, When extracted
    fields = extract_fields(body=body, content_type=content_type, query=None)
    # Then both fields come out as sent
    assert fields == {"id": "1", "client": PHONE}


@pytest.mark.parametrize("content_type", [JSON, FORM, None, "multipart/form-data; boundary=x"])
def test_empty_body_yields_no_fields(content_type: str | None) -> None:
    # Given an empty body (e.g. a GET), When extracted, Then there are no fields (and no error)
    assert extract_fields(body=b"", content_type=content_type, query=None) == {}


def test_get_with_query_only_yields_the_query() -> None:
    # Given a GET with query parameters and no body, When extracted, Then the query parameters are the fields
    assert extract_fields(body=b"", content_type=None, query={"id": "7", "src": PHONE}) == {"id": "7", "src": PHONE}


def test_query_parameters_are_merged_with_body_fields() -> None:
    # Given a body field and a different query parameter, When extracted, Then both are present
    fields = extract_fields(body=form(id="1"), content_type=FORM, query={"token": "t"})
    assert fields == {"id": "1", "token": "t"}


@pytest.mark.parametrize("query_key", ["id", "ID", "Id"])
def test_body_fields_win_over_query_parameters_case_insensitively(query_key: str) -> None:
    # Given the same field in the query and the body, When extracted, Then only the body's value is kept
    fields = extract_fields(body=form(id="body"), content_type=FORM, query={query_key: "query"})
    assert fields == {"id": "body"}


def test_json_values_keep_their_json_types() -> None:
    # Given a JSON body with numbers, lists and null, When extracted, Then the values are as decoded
    body = json.dumps({"talktime": 155, "members": ["346", "347"], "group": None}).encode()
    assert extract_fields(body=body, content_type=JSON, query=None) == {
        "talktime": 155,
        "members": ["346", "347"],
        "group": None,
    }


def test_json_body_with_a_byte_order_mark_is_read() -> None:
    # Given a UTF-8 BOM before the JSON, When extracted, Then the object is read
    body = "\ufeff".encode() + json.dumps({"id": "1"}).encode()
    assert extract_fields(body=body, content_type=JSON, query=None) == {"id": "1"}


def test_form_repeated_key_keeps_the_last_value() -> None:
    # Given `id` twice (PHP semantics), When extracted, Then the last one is kept
    assert extract_fields(body=b"id=1&id=2", content_type=FORM, query=None) == {"id": "2"}


def test_form_bracket_keys_collect_a_list() -> None:
    # Given PHP-style `members[]` keys, When extracted, Then they become one list under `members`
    fields = extract_fields(body=b"members%5B%5D=346&members%5B%5D=347", content_type=FORM, query=None)
    assert fields == {"members": ["346", "347"]}


def test_form_plus_is_a_space_and_percent_escapes_are_decoded() -> None:
    # Given a PHP-encoded form value, When extracted, Then `+` is a space and %XX are decoded as UTF-8
    body = form(comment="перезвонить завтра")
    assert b"+" in body and b"%D0%BF" in body
    assert extract_fields(body=body, content_type=FORM, query=None) == {"comment": "перезвонить завтра"}


@pytest.mark.parametrize("content_type", [FORM, None, JSON])
def test_non_utf8_bytes_are_replaced_not_fatal(content_type: str | None) -> None:
    # Given a body with Windows-1251 bytes in a value
    raw = "комментарий".encode("cp1251")
    body = b'{"id": "1", "comment": "' + raw + b'"}' if content_type == JSON else b"id=1&comment=" + raw
    # When extracted, Then the field is there with replacement characters
    fields = extract_fields(body=body, content_type=content_type, query=None)
    assert fields["id"] == "1"
    assert "\ufffd" in fields["comment"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(FORM + "; charset=windows-1251", b"comment=" + "перезвонить".encode("cp1251"), id="form-raw"),
        pytest.param(
            FORM + "; charset=windows-1251",
            urlencode({"comment": "перезвонить"}, encoding="cp1251").encode(),
            id="form-escaped",
        ),
        pytest.param(JSON + '; charset="cp1251"', b'{"comment": "' + "перезвонить".encode("cp1251") + b'"}', id="json"),
    ],
)
def test_declared_charset_is_honoured(content_type: str, body: bytes) -> None:
    # Given a body in windows-1251 that says so in its content type, When extracted, Then the text is read right
    assert extract_fields(body=body, content_type=content_type, query=None) == {"comment": "перезвонить"}


@pytest.mark.parametrize("charset", ["x-nonsense", "idna", "rot13", "base64", "utf-8"])
def test_unknown_or_unusable_charset_falls_back_to_utf8(charset: str) -> None:
    # Given a charset that is not a usable text encoding, When extracted, Then the body is read as UTF-8
    body = "comment=привет&id=1".encode()
    fields = extract_fields(body=body, content_type=f"{FORM}; charset={charset}", query=None)
    assert fields == {"comment": "привет", "id": "1"}


def test_form_with_invalid_percent_escape_bytes_does_not_crash() -> None:
    # Given a form whose escapes decode to invalid UTF-8, When extracted, Then the value has replacement characters
    fields = extract_fields(body=b"comment=%FF%FE", content_type=FORM, query=None)
    assert fields == {"comment": "\ufffd\ufffd"}


# --- extract_fields: multipart ---------------------------------------------------------------------------------------


def test_multipart_skips_file_parts() -> None:
    # Given the multipart event with a text attachment, When extracted
    fields = extract_fields(**request_of(load_event("multipart.json")))
    # Then the form fields are there and the file is not
    assert fields["comment"] == "Клиент спрашивал про доставку"
    assert "attachment" not in fields


def test_multipart_part_in_its_own_charset_is_decoded() -> None:
    # Given a part declared as windows-1251
    body = (
        b'--b\r\nContent-Disposition: form-data; name="comment"\r\nContent-Type: text/plain; charset=windows-1251\r\n'
        b"\r\n" + "перезвонить".encode("cp1251") + b"\r\n--b--\r\n"
    )
    # When extracted, Then it is decoded with that charset
    fields = extract_fields(body=body, content_type="multipart/form-data; boundary=b", query=None)
    assert fields == {"comment": "перезвонить"}


def test_multipart_part_with_unknown_charset_falls_back_to_utf8() -> None:
    # Given a part with a charset Python does not know, When extracted, Then it is read as UTF-8
    body = (
        b'--b\r\nContent-Disposition: form-data; name="id"\r\nContent-Type: text/plain; charset=x-nonsense\r\n'
        b"\r\n42\r\n--b--\r\n"
    )
    assert extract_fields(body=body, content_type="multipart/form-data; boundary=b", query=None) == {"id": "42"}


def test_multipart_without_boundary_yields_no_fields() -> None:
    # Given a multipart content type without a boundary, When extracted, Then no fields (and no error)
    assert extract_fields(body=b"id=1", content_type="multipart/form-data", query=None) == {}


def test_multipart_binary_part_is_skipped() -> None:
    # Given a non-text part without a filename, When extracted, Then it is skipped
    body = (
        b'--b\r\nContent-Disposition: form-data; name="blob"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01'
        b'\r\n--b\r\nContent-Disposition: form-data; name="id"\r\n\r\n7\r\n--b--\r\n'
    )
    assert extract_fields(body=body, content_type="multipart/form-data; boundary=b", query=None) == {"id": "7"}


# --- extract_fields: JSON errors -------------------------------------------------------------------------------------


def test_broken_json_raises_invalid_json_with_its_code() -> None:
    # Given a truncated JSON object, When extracted, Then InvalidJson: a 400 validation error coded invalid_json
    with pytest.raises(InvalidJson) as caught:
        extract_fields(body=b'{"id": "1",', content_type=JSON, query=None)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "invalid_json"
    assert caught.value.status_code == 400


def test_broken_json_without_content_type_is_invalid_json_too() -> None:
    # Given a body that sniffs as JSON but is broken, When extracted, Then InvalidJson
    with pytest.raises(InvalidJson):
        extract_fields(body=b'{"id": 1 2}', content_type=None, query=None)


@pytest.mark.parametrize(
    ("body", "named"),
    [(b"[1, 2]", "an array"), (b"42", "a number"), (b'"text"', "a string"), (b"null", "null"), (b"true", "a boolean")],
)
def test_json_that_is_not_an_object_is_invalid_input_naming_the_problem(body: bytes, named: str) -> None:
    # Given a JSON body that is valid JSON but not an object, When extracted, Then InvalidInput says what it got
    with pytest.raises(InvalidInput, match=f"must be an object, got {named}"):
        extract_fields(body=body, content_type=JSON, query=None)


def test_deeply_nested_json_is_invalid_json_not_a_crash() -> None:
    # Given JSON nested deeper than the decoder's recursion limit, When extracted, Then InvalidJson
    with pytest.raises(InvalidJson):
        extract_fields(body=b'{"a":' * 30000 + b"1" + b"}" * 30000, content_type=JSON, query=None, max_bytes=10**6)


def test_json_integer_over_the_digit_limit_is_invalid_json() -> None:
    # Given an integer with more digits than Python converts, When extracted, Then InvalidJson
    with pytest.raises(InvalidJson):
        extract_fields(body=b'{"id": ' + b"9" * 5000 + b"}", content_type=JSON, query=None)


# --- extract_fields: one wrapper level -------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", ["data", "json", "call", "DATA", "Json"])
def test_wrapper_object_fields_are_merged_up(wrapper: str) -> None:
    # Given the call fields inside a wrapper object next to an outer field
    body = json.dumps({"event": "call_end", wrapper: {"id": "1", "client": PHONE}}).encode()
    # When extracted, Then the inner fields are top-level, the outer kept, the wrapper gone
    assert extract_fields(body=body, content_type=JSON, query=None) == {"event": "call_end", "id": "1", "client": PHONE}


@pytest.mark.parametrize("wrapper", ["data", "json", "call"])
def test_wrapper_string_holding_a_json_object_is_merged_up(wrapper: str) -> None:
    # Given the call fields as a JSON string inside a wrapper key
    body = json.dumps({wrapper: json.dumps({"id": "1", "client": PHONE})}).encode()
    # When extracted, Then the inner fields are top-level
    assert extract_fields(body=body, content_type=JSON, query=None) == {"id": "1", "client": PHONE}


def test_wrapper_in_a_form_field_is_merged_up() -> None:
    # Given a form post with `data=<json>`, When extracted, Then the JSON's fields are top-level
    body = form(data=json.dumps({"id": "1", "client": PHONE}), token="t")
    assert extract_fields(body=body, content_type=FORM, query=None) == {"token": "t", "id": "1", "client": PHONE}


def test_wrapper_in_a_query_parameter_is_merged_up() -> None:
    # Given a GET with `json=<json>` in the query, When extracted, Then the JSON's fields are top-level
    query = {"json": json.dumps({"id": "1", "client": PHONE})}
    assert extract_fields(body=b"", content_type=None, query=query) == {"id": "1", "client": PHONE}


@pytest.mark.parametrize("outer_key", ["id", "ID"])
def test_wrapper_fields_win_over_outer_fields(outer_key: str) -> None:
    # Given the same field outside and inside the wrapper, When extracted, Then the inner one is kept
    body = json.dumps({outer_key: "outer", "data": {"id": "inner"}}).encode()
    assert extract_fields(body=body, content_type=JSON, query=None) == {"id": "inner"}


def test_only_one_wrapper_level_is_merged_up() -> None:
    # Given a wrapper inside a wrapper, When extracted, Then only the outer one is opened
    body = json.dumps({"data": {"data": {"id": "deep"}, "client": PHONE}}).encode()
    assert extract_fields(body=body, content_type=JSON, query=None) == {"data": {"id": "deep"}, "client": PHONE}


def test_data_wrapper_is_preferred_over_call_wrapper() -> None:
    # Given both `call` and `data` objects, When extracted, Then `data` is opened and `call` stays as it is
    body = json.dumps({"call": {"id": "c"}, "data": {"id": "d"}}).encode()
    assert extract_fields(body=body, content_type=JSON, query=None) == {"call": {"id": "c"}, "id": "d"}


@pytest.mark.parametrize("value", ["not json", "{broken", "[1, 2]", 42, ["a"]])
def test_wrapper_key_without_an_object_is_kept_as_a_plain_field(value: Any) -> None:
    # Given `data` holding something that is not an object, When extracted, Then it stays a plain field
    body = json.dumps({"data": value, "id": "1"}).encode()
    assert extract_fields(body=body, content_type=JSON, query=None) == {"data": value, "id": "1"}


# --- canonicalize: pbx_call_id ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", PBX_CALL_ID_ALIASES)
def test_pbx_call_id_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias carrying an id, When canonicalized, Then it is the call id
    assert canonicalize({alias: "abc-1", "client": PHONE}).pbx_call_id == "abc-1"


@pytest.mark.parametrize("alias", PBX_CALL_ID_ALIASES)
def test_pbx_call_id_alias_is_case_insensitive(alias: str) -> None:
    # Given the alias in upper case, When canonicalized, Then it is still read
    assert canonicalize({alias.upper(): "abc-1", "client": PHONE}).pbx_call_id == "abc-1"


def test_pbx_call_id_first_alias_in_table_order_wins() -> None:
    # Given ZEON's `linkedid` and `id` (listed first), When canonicalized, Then `id` wins
    assert canonicalize({"linkedid": "L", "id": "I", "uniqueid": "U", "client": PHONE}).pbx_call_id == "I"


@pytest.mark.parametrize("empty", ["", "   ", None, [], {}])
def test_empty_pbx_call_id_alias_is_skipped(empty: Any) -> None:
    # Given an empty `id` and a filled `linkedid`, When canonicalized, Then `linkedid` is used
    assert canonicalize({"id": empty, "linkedid": "L", "client": PHONE}).pbx_call_id == "L"


def test_numeric_pbx_call_id_becomes_text() -> None:
    # Given a JSON number as the id, When canonicalized, Then it is its decimal text
    assert canonicalize({"id": 1709290800, "client": PHONE}).pbx_call_id == "1709290800"


def test_pbx_call_id_is_stripped() -> None:
    # Given an id with surrounding spaces, When canonicalized, Then the spaces are gone
    assert canonicalize({"id": "  42 ", "client": PHONE}).pbx_call_id == "42"


def test_overlong_pbx_call_id_is_skipped() -> None:
    # Given an `id` longer than any real id and a normal `linkedid`, When canonicalized, Then `linkedid` is used
    assert canonicalize({"id": "x" * 300, "linkedid": "L", "client": PHONE}).pbx_call_id == "L"


def test_no_pbx_call_id_is_none() -> None:
    # Given no id alias, When canonicalized, Then pbx_call_id is None
    assert canonicalize({"client": PHONE}).pbx_call_id is None


# --- canonicalize: direction -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", DIRECTION_ALIASES)
def test_direction_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias, When canonicalized, Then the direction is read
    assert canonicalize({alias: "OUT", "client": PHONE}).direction == "out"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("IN", "in"),
        ("in", "in"),
        ("Incoming", "in"),
        ("INBOUND", "in"),
        ("входящий", "in"),
        ("Входящий", "in"),
        ("OUT", "out"),
        ("out", "out"),
        ("outgoing", "out"),
        ("Outbound", "out"),
        ("исходящий", "out"),
        ("ИСХОДЯЩИЙ", "out"),
        (" in ", "in"),
        ("internal", None),
        ("transfer", None),
        ("1", None),
        ("", None),
    ],
)
def test_direction_values_map_to_in_or_out(value: str, expected: str | None) -> None:
    # Given a direction value, When canonicalized, Then it maps to in / out / unknown
    assert canonicalize({"calltype": value, "client": PHONE}).direction == expected


def test_direction_first_alias_in_table_order_wins() -> None:
    # Given `calltype` and `direction` disagreeing, When canonicalized, Then `calltype` (listed first) wins
    assert canonicalize({"direction": "out", "calltype": "in", "client": PHONE}).direction == "in"


def test_direction_alias_with_an_unknown_value_is_skipped() -> None:
    # Given `type` holding an event name and `call_direction` a direction, When canonicalized, Then the latter is used
    assert canonicalize({"type": "call_end", "call_direction": "outbound", "client": PHONE}).direction == "out"


# --- canonicalize: client_phone --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", CLIENT_PHONE_ALIASES)
def test_client_phone_is_read_from_every_client_alias(alias: str) -> None:
    # Given only this alias, When canonicalized, Then it is the client phone
    assert canonicalize({alias: PHONE}).client_phone == PHONE


@pytest.mark.parametrize("alias", CLIENT_PHONE_ALIASES)
def test_client_alias_wins_over_src_and_dst(alias: str) -> None:
    # Given a client alias and src/dst with other valid numbers, When canonicalized, Then the client alias is used
    fields = {"calltype": "in", "src": OTHER_PHONE, "dst": OFFICE_PHONE, alias: PHONE}
    assert canonicalize(fields).client_phone == PHONE


def test_client_phone_first_alias_in_table_order_wins() -> None:
    # Given `phone` and `client` (listed first), When canonicalized, Then `client` wins
    assert canonicalize({"phone": OTHER_PHONE, "client": PHONE}).client_phone == PHONE


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("+7 (900) 444-33-22", PHONE),
        ("8 900 444 33 22", PHONE),
        ("9004443322", PHONE),
        (79004443322, PHONE),
        ("tel:+79004443322", PHONE),
        ("+375 29 123-45-67", "375291234567"),
    ],
)
def test_client_phone_is_normalized(raw: Any, canonical: str) -> None:
    # Given a phone as a PBX may type it, When canonicalized, Then it is the canonical digits
    assert canonicalize({"client": raw}).client_phone == canonical


def test_client_phone_uses_the_default_region_for_national_numbers() -> None:
    # Given a Ukrainian national number and default region UA, When canonicalized, Then the UA country code is added
    assert canonicalize({"client": "0501234567"}, default_region="UA").client_phone == "380501234567"


def test_incoming_call_takes_src() -> None:
    # Given an incoming call with the client in src and the office in dst, When canonicalized, Then src
    assert canonicalize({"calltype": "IN", "src": PHONE, "dst": OFFICE_PHONE}).client_phone == PHONE


def test_outgoing_call_takes_dst() -> None:
    # Given an outgoing call with the office's line in src and the client in dst, When canonicalized, Then dst
    assert canonicalize({"calltype": "OUT", "src": OFFICE_PHONE, "dst": PHONE}).client_phone == PHONE


def test_incoming_call_never_takes_dst() -> None:
    # Given an incoming call whose src is a short extension and dst the office line, When canonicalized
    # Then InvalidPhone: the office's number is never mistaken for the client's
    with pytest.raises(InvalidPhone):
        canonicalize({"calltype": "IN", "src": "346", "dst": OFFICE_PHONE})


@pytest.mark.parametrize("alias", CALLER_ALIASES)
def test_caller_aliases_are_used_when_there_is_no_client_alias(alias: str) -> None:
    # Given only a caller alias, When canonicalized, Then it is the client phone
    assert canonicalize({alias: PHONE}).client_phone == PHONE


@pytest.mark.parametrize("alias", CALLEE_ALIASES)
def test_callee_aliases_are_used_last(alias: str) -> None:
    # Given only a callee alias, When canonicalized, Then it is the client phone
    assert canonicalize({alias: PHONE}).client_phone == PHONE


def test_caller_aliases_come_before_callee_aliases() -> None:
    # Given both `to` and `from` with valid numbers, When canonicalized, Then `from` wins
    assert canonicalize({"to": OTHER_PHONE, "from": PHONE}).client_phone == PHONE


def test_src_for_incoming_comes_before_caller_aliases() -> None:
    # Given an incoming call with src and `from`, When canonicalized, Then src (by direction) wins
    assert canonicalize({"calltype": "in", "from": OTHER_PHONE, "src": PHONE}).client_phone == PHONE


def test_candidates_that_do_not_normalize_are_skipped() -> None:
    # Given `client` as an extension, src as an extension, and `from` a real phone, When canonicalized, Then `from`
    assert canonicalize({"calltype": "in", "client": "346", "src": "anonymous", "from": PHONE}).client_phone == PHONE


def test_unknown_direction_tries_src_then_dst_as_a_last_resort() -> None:
    # Given no direction, an extension in src and the client in dst, When canonicalized, Then dst is used
    assert canonicalize({"src": "346", "dst": PHONE}).client_phone == PHONE


def test_unknown_direction_prefers_src_over_dst() -> None:
    # Given no direction and valid numbers in both, When canonicalized, Then src is used
    assert canonicalize({"src": PHONE, "dst": OTHER_PHONE}).client_phone == PHONE


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"id": "1", "talktime": "00:01:00"},
        {"calltype": "in", "src": "346", "dst": "347"},
        {"client": "not a phone", "phone": "12"},
        {"client": ["79004443322"]},
    ],
)
def test_no_phone_that_normalizes_raises_invalid_phone_naming_client_phone(fields: dict[str, Any]) -> None:
    # Given fields with no usable phone, When canonicalized
    with pytest.raises(InvalidPhone) as caught:
        canonicalize(fields)
    # Then the error names the field `client_phone` and says what was looked at
    assert caught.value.details[0]["field"] == "client_phone"
    assert caught.value.message.startswith("client_phone: ")
    assert "no phone number" in caught.value.message
    assert "src" in caught.value.message


# --- canonicalize: employee and group --------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", EMPLOYEE_ALIASES)
def test_employee_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias, When canonicalized, Then it is the employee
    assert canonicalize({alias: "346", "client": PHONE}).employee == "346"


def test_employee_first_alias_in_table_order_wins() -> None:
    # Given `operator` and `exten` (listed first), When canonicalized, Then `exten` wins
    assert canonicalize({"operator": "Ivan", "exten": "346", "client": PHONE}).employee == "346"


@pytest.mark.parametrize(
    "members", ["346,347", "346, 347", "346 347", " ,346;347", ["346", "347"], ["", "346"], [346, 347], 346]
)
def test_employee_falls_back_to_the_first_member(members: Any) -> None:
    # Given no employee alias and a members list in any form, When canonicalized, Then the first member
    assert canonicalize({"members": members, "client": PHONE}).employee == "346"


def test_employee_alias_wins_over_members() -> None:
    # Given `exten` and `members`, When canonicalized, Then `exten` wins
    assert canonicalize({"members": "347,348", "exten": "346", "client": PHONE}).employee == "346"


@pytest.mark.parametrize("members", ["", " , ", [], [""], None])
def test_empty_members_leave_the_employee_unknown(members: Any) -> None:
    # Given no employee alias and empty members, When canonicalized, Then employee is None
    assert canonicalize({"members": members, "client": PHONE}).employee is None


@pytest.mark.parametrize("alias", GROUP_ID_ALIASES)
def test_group_id_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias, When canonicalized, Then it is the group id
    assert canonicalize({alias: "3", "client": PHONE}).group_id == "3"


def test_group_id_first_alias_in_table_order_wins() -> None:
    # Given `queue` and `group` (listed first), When canonicalized, Then `group` wins
    assert canonicalize({"queue": "q", "group": "g", "client": PHONE}).group_id == "g"


def test_no_group_alias_means_no_group() -> None:
    # Given no group alias, When canonicalized, Then group_id is None
    assert canonicalize({"client": PHONE}).group_id is None


# --- canonicalize: started_at ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", STARTED_AT_ALIASES)
def test_started_at_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias with a Moscow wall-clock time, When canonicalized, Then it is read
    assert canonicalize({alias: "2024-03-01 14:00:00", "client": PHONE}).started_at == datetime(
        2024, 3, 1, 11, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2024-03-01 14:00:00", datetime(2024, 3, 1, 11, 0, 0, tzinfo=UTC), id="moscow-space"),
        pytest.param("2024-03-01T14:00:00", datetime(2024, 3, 1, 11, 0, 0, tzinfo=UTC), id="moscow-T"),
        pytest.param("2024-03-01 14:00:00.250", datetime(2024, 3, 1, 11, 0, 0, 250000, tzinfo=UTC), id="fraction"),
        pytest.param("2024-07-15 02:30:00", datetime(2024, 7, 14, 23, 30, 0, tzinfo=UTC), id="summer-no-dst"),
        pytest.param("2024-01-01 01:00:00", datetime(2023, 12, 31, 22, 0, 0, tzinfo=UTC), id="day-before"),
        pytest.param("2024-03-01T14:00:00Z", datetime(2024, 3, 1, 14, 0, 0, tzinfo=UTC), id="zulu"),
        pytest.param("2024-03-01T14:00:00+00:00", datetime(2024, 3, 1, 14, 0, 0, tzinfo=UTC), id="utc-offset"),
        pytest.param("2024-03-01T14:00:00+05:00", datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC), id="yekaterinburg"),
        pytest.param("2024-03-01T14:00:00-04:00", datetime(2024, 3, 1, 18, 0, 0, tzinfo=UTC), id="negative-offset"),
        pytest.param("01.03.2024 14:00:00", datetime(2024, 3, 1, 11, 0, 0, tzinfo=UTC), id="russian-format"),
        pytest.param(1709301600, datetime(2024, 3, 1, 14, 0, 0, tzinfo=UTC), id="unix-int"),
        pytest.param("1709301600", datetime(2024, 3, 1, 14, 0, 0, tzinfo=UTC), id="unix-str"),
        pytest.param(1709301600.5, datetime(2024, 3, 1, 14, 0, 0, 500000, tzinfo=UTC), id="unix-float"),
        pytest.param(1709301600000, datetime(2024, 3, 1, 14, 0, 0, tzinfo=UTC), id="unix-ms-int"),
        pytest.param("1709301600123", datetime(2024, 3, 1, 14, 0, 0, 123000, tzinfo=UTC), id="unix-ms-str"),
    ],
)
def test_started_at_formats_are_read_as_utc(value: Any, expected: datetime) -> None:
    # Given a start time in one of the accepted forms, When canonicalized, Then it is that instant, in UTC
    started_at = canonicalize({"calldate": value, "client": PHONE}).started_at
    assert started_at == expected
    assert started_at is not None and started_at.utcoffset() is not None and started_at.tzinfo == UTC


@pytest.mark.parametrize(
    "value", ["yesterday", "2024-13-01 10:00:00", "2024-02-30", "", "0", -5, True, [1709301600], {"ts": 1}, 1e300]
)
def test_unparseable_started_at_is_none_and_the_call_is_kept(value: Any) -> None:
    # Given a start time that cannot be read, When canonicalized, Then the call is kept with started_at None
    call = canonicalize({"calldate": value, "client": PHONE})
    assert call.started_at is None
    assert call.client_phone == PHONE


def test_started_at_skips_an_unparseable_alias_for_a_later_one() -> None:
    # Given a bad `calldate` and a good `start`, When canonicalized, Then `start` is used
    call = canonicalize({"calldate": "n/a", "start": "2024-03-01 14:00:00", "client": PHONE})
    assert call.started_at == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)


def test_started_at_first_alias_in_table_order_wins() -> None:
    # Given `date` and `calldate` (listed first) both valid, When canonicalized, Then `calldate` wins
    call = canonicalize({"date": "2020-01-01 00:00:00", "calldate": "2024-03-01 14:00:00", "client": PHONE})
    assert call.started_at == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)


# --- canonicalize: talk_seconds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", TALK_SECONDS_ALIASES)
def test_talk_seconds_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias, When canonicalized, Then it is the talk time
    assert canonicalize({alias: "00:02:35", "client": PHONE}).talk_seconds == 155


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00:02:35", 155),
        ("0:02:35", 155),
        ("01:00:00", 3600),
        ("10:20:30", 37230),
        ("02:35", 155),
        ("2:05", 125),
        ("155", 155),
        (" 155 ", 155),
        ("155.0", 155),
        (155, 155),
        (155.9, 155),
        ("0", 0),
        ("00:00:00", 0),
    ],
)
def test_talk_seconds_forms(value: Any, expected: int) -> None:
    # Given a talk time as HH:MM:SS, MM:SS or seconds, When canonicalized, Then it is whole seconds
    assert canonicalize({"talktime": value, "client": PHONE}).talk_seconds == expected


@pytest.mark.parametrize(
    "value", ["abc", "-5", -5, "00:99", "00:61:00", "1:2:3:4", "", None, True, [155], float("nan"), 10**9]
)
def test_bad_talk_seconds_is_zero(value: Any) -> None:
    # Given a talk time that cannot be read, When canonicalized, Then it is 0 (and the call is kept)
    assert canonicalize({"talktime": value, "client": PHONE}).talk_seconds == 0


def test_talk_seconds_skips_a_bad_alias_for_a_later_one() -> None:
    # Given a garbage `talktime` and a good `billsec`, When canonicalized, Then `billsec` is used
    assert canonicalize({"talktime": "n/a", "billsec": "42", "client": PHONE}).talk_seconds == 42


def test_talk_seconds_first_alias_in_table_order_wins() -> None:
    # Given `duration` (ring + talk) and `talktime` (listed first), When canonicalized, Then `talktime` wins
    assert canonicalize({"duration": "180", "talktime": "155", "client": PHONE}).talk_seconds == 155


# --- canonicalize: status --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", STATUS_ALIASES)
def test_status_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias and no talk time, When canonicalized, Then the status is read
    assert canonicalize({alias: "BUSY", "client": PHONE}).status == "busy"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ANSWERED", "answered"),
        ("answer", "answered"),
        ("success", "answered"),
        ("OK", "answered"),
        ("NO ANSWER", "missed"),
        ("no_answer", "missed"),
        ("NOANSWER", "missed"),
        ("missed", "missed"),
        ("lost", "missed"),
        ("cancel", "missed"),
        ("CANCELLED", "missed"),
        ("BUSY", "busy"),
        ("FAILED", "failed"),
        ("CONGESTION", "failed"),
        ("error", "failed"),
    ],
)
def test_status_values_map_to_the_canonical_status(value: str, expected: str) -> None:
    # Given a status value and no talk time, When canonicalized, Then it maps as the contract says
    assert canonicalize({"disposition": value, "talktime": "0", "client": PHONE}).status == expected


@pytest.mark.parametrize("value", ["NO ANSWER", "BUSY", "FAILED", "missed"])
def test_any_talk_time_means_answered(value: str) -> None:
    # Given a not-answered status but 10 s of talk, When canonicalized, Then the call is answered
    assert canonicalize({"disposition": value, "talktime": "00:00:10", "client": PHONE}).status == "answered"


def test_answered_status_without_talk_time_stays_answered() -> None:
    # Given ANSWERED and 0 s, When canonicalized, Then the PBX's word is kept
    assert canonicalize({"disposition": "ANSWERED", "talktime": "0", "client": PHONE}).status == "answered"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"talktime": "00:00:10"}, "answered"),
        ({"talktime": "00:00:00"}, "missed"),
        ({}, "missed"),
        ({"lost": "1"}, "missed"),
        ({"lost": "1", "talktime": "0"}, "missed"),
        ({"lost": "0", "talktime": "0"}, "missed"),
        ({"status": "whatever", "talktime": "5"}, "answered"),
        ({"status": "whatever"}, "missed"),
    ],
)
def test_without_a_known_status_talk_time_decides(fields: dict[str, str], expected: str) -> None:
    # Given no (known) status field, When canonicalized, Then answered iff there was talk time
    assert canonicalize({**fields, "client": PHONE}).status == expected


def test_status_alias_with_an_unknown_value_is_skipped() -> None:
    # Given `result` holding an API-style 1 and `call_status` a real status, When canonicalized, Then the latter wins
    assert canonicalize({"result": "1", "call_status": "BUSY", "client": PHONE}).status == "busy"


def test_status_first_alias_in_table_order_wins() -> None:
    # Given `status` and `disposition` (listed first), When canonicalized, Then `disposition` wins
    assert canonicalize({"status": "BUSY", "disposition": "FAILED", "client": PHONE}).status == "failed"


# --- canonicalize: record link / ref ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", RECORD_ALIASES)
def test_record_link_is_read_from_every_alias(alias: str) -> None:
    # Given only this alias with an https URL, When canonicalized, Then it is the record link
    call = canonicalize({alias: RECORD_URL, "client": PHONE})
    assert call.record_link == RECORD_URL
    assert call.record_ref is None


@pytest.mark.parametrize("alias", RECORD_ALIASES)
def test_bare_record_id_is_kept_as_record_ref(alias: str) -> None:
    # Given only this alias with a bare recording id, When canonicalized, Then it is the record ref, not a link
    call = canonicalize({alias: "1700000000.123", "client": PHONE})
    assert call.record_ref == "1700000000.123"
    assert call.record_link is None


@pytest.mark.parametrize("url", ["http://pbx.local/r/1.mp3", "HTTPS://Records.Example.ru/a.wav?sig=1&x=2"])
def test_http_and_https_urls_are_record_links(url: str) -> None:
    # Given an http(s) URL in any case, When canonicalized, Then it is the record link as sent
    assert canonicalize({"link": url, "client": PHONE}).record_link == url


@pytest.mark.parametrize(
    "value",
    [
        "ftp://pbx/r.mp3",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "https:///nohost",
        "https://a b.ru/x",
        "1700000000.123 extra",
        "0",
        "1",
        "true",
        "",
        True,
        ["https://x.ru/a.mp3"],
    ],
)
def test_values_that_are_neither_http_links_nor_bare_ids_are_dropped(value: Any) -> None:
    # Given a record alias with another scheme, a flag or garbage, When canonicalized, Then no link and no ref
    call = canonicalize({"link": value, "client": PHONE})
    assert call.record_link is None
    assert call.record_ref is None


def test_record_link_and_ref_come_from_their_first_fitting_aliases() -> None:
    # Given a bare id in `link` and a URL in `record_url`, When canonicalized, Then both are kept
    call = canonicalize({"link": "1700000000.123", "record_url": RECORD_URL, "client": PHONE})
    assert (call.record_link, call.record_ref) == (RECORD_URL, "1700000000.123")


def test_record_link_first_alias_in_table_order_wins() -> None:
    # Given URLs in `url` and `record_link` (listed first), When canonicalized, Then `record_link` wins
    call = canonicalize({"url": "https://b.ru/2.mp3", "record_link": "https://a.ru/1.mp3", "client": PHONE})
    assert call.record_link == "https://a.ru/1.mp3"


def test_empty_link_means_no_recording() -> None:
    # Given ZEON's empty `link` of an unanswered call, When canonicalized, Then no link and no ref
    call = canonicalize({"link": "", "client": PHONE})
    assert (call.record_link, call.record_ref) == (None, None)


# --- call key ---------------------------------------------------------------------------------------------------------

BASE_FIELDS = {
    "calltype": "in",
    "client": PHONE,
    "exten": "346",
    "group": "3",
    "calldate": "2024-03-01 14:00:00",
    "talktime": "00:02:35",
}


def test_call_key_is_the_pbx_call_id_when_present() -> None:
    # Given a call id, When canonicalized, Then the key is that id
    assert canonicalize({**BASE_FIELDS, "id": "1709290800.1843"}).call_key == "1709290800.1843"


def test_call_key_without_pbx_call_id_is_a_sha256_hex() -> None:
    # Given no call id, When canonicalized, Then the key is 64 lowercase hex characters
    assert re.fullmatch(r"[0-9a-f]{64}", canonicalize(BASE_FIELDS).call_key)


def test_call_key_is_stable_across_spellings_of_the_same_call() -> None:
    # Given the same call sent twice with other key cases, order and phone formatting
    first = canonicalize(BASE_FIELDS)
    second = canonicalize(
        {
            "TALKTIME": "155",
            "CallDate": "2024-03-01T11:00:00Z",
            "GROUP": "3",
            "Exten": "346",
            "client": "+7 (900) 444-33-22",
            "calltype": "IN",
        }
    )
    # When their keys are compared, Then they are the same
    assert first.call_key == second.call_key


def test_call_key_is_the_sha256_of_the_sorted_compact_identity() -> None:
    # Given a call without id, When its key is computed
    call = canonicalize({"client": PHONE, "calldate": "2024-03-01 14:00:00"})
    # Then it is sha256 of the canonical fields (without id and recording) as sorted, compact JSON
    identity = {
        "client_phone": PHONE,
        "direction": None,
        "employee": None,
        "group_id": None,
        "started_at": "2024-03-01T11:00:00Z",
        "status": "missed",
        "talk_seconds": 0,
    }
    expected = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert call.call_key == expected


@pytest.mark.parametrize(
    "change",
    [
        {"calltype": "out"},
        {"client": OTHER_PHONE},
        {"exten": "347"},
        {"group": "4"},
        {"calldate": "2024-03-01 14:00:01"},
        {"talktime": "00:02:36"},
        {"talktime": "0", "disposition": "BUSY"},
    ],
)
def test_call_key_differs_when_a_canonical_field_differs(change: dict[str, str]) -> None:
    # Given two calls that differ in one canonical field, When their keys are compared, Then they differ
    assert canonicalize(BASE_FIELDS).call_key != canonicalize({**BASE_FIELDS, **change}).call_key


def test_call_key_ignores_a_recording_added_later() -> None:
    # Given the same call without and then with its recording, When their keys are compared
    # Then they are the same: the second webhook only adds the recording to the call already stored
    without = canonicalize(BASE_FIELDS)
    with_link = canonicalize({**BASE_FIELDS, "link": RECORD_URL})
    with_ref = canonicalize({**BASE_FIELDS, "link": "1709290800.1843"})
    assert without.call_key == with_link.call_key == with_ref.call_key


def test_call_key_is_part_of_the_dump() -> None:
    # Given a call, When dumped for storage, Then the key is in the dump
    assert canonicalize({**BASE_FIELDS, "id": "7"}).model_dump()["call_key"] == "7"


# --- the model itself ------------------------------------------------------------------------------------------------


def test_canonical_call_is_frozen() -> None:
    # Given a call, When a field is assigned, Then pydantic refuses
    call = canonicalize(BASE_FIELDS)
    with pytest.raises(ValidationError):
        call.talk_seconds = 1  # type: ignore[misc]


def test_canonical_call_refuses_a_naive_started_at() -> None:
    # Given a started_at without a zone, When a CanonicalCall is built directly, Then it is refused
    with pytest.raises(ValidationError):
        CanonicalCall(client_phone=PHONE, status="missed", started_at=datetime(2024, 3, 1, 14, 0))


def test_canonical_call_converts_an_aware_started_at_to_utc() -> None:
    # Given an aware started_at in +03:00, When a CanonicalCall is built, Then it is stored in UTC
    aware = datetime.fromisoformat("2024-03-01T14:00:00+03:00")
    assert CanonicalCall(client_phone=PHONE, status="missed", started_at=aware).started_at == datetime(
        2024, 3, 1, 11, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("link", ["ftp://x/y", "not a url", "javascript:alert(1)"])
def test_canonical_call_refuses_a_non_http_record_link(link: str) -> None:
    # Given a record_link that is not http(s), When a CanonicalCall is built directly, Then it is refused
    with pytest.raises(ValidationError):
        CanonicalCall(client_phone=PHONE, status="missed", record_link=link)


@pytest.mark.parametrize("phone", ["+79004443322", "7900", "7900444332212345"])
def test_canonical_call_refuses_a_non_canonical_phone(phone: str) -> None:
    # Given a phone that is not 11-15 digits, When a CanonicalCall is built directly, Then it is refused
    with pytest.raises(ValidationError):
        CanonicalCall(client_phone=phone, status="missed")


# --- properties ------------------------------------------------------------------------------------------------------

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            JSON,
            FORM,
            "multipart/form-data; boundary=b",
            "multipart/form-data",
            "multipart/mixed; boundary=\r\nX-Injected: 1",
            "text/plain",
            "application/json; charset=koi8-r",
            "",
        ]
    ),
    st.text(max_size=60),
)
JSONISH_BODIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
).map(lambda value: json.dumps(value).encode())
BODIES = st.one_of(
    st.binary(max_size=600),
    JSONISH_BODIES,
    st.text(max_size=300).map(lambda text: text.encode("utf-8", errors="surrogatepass")),
    st.dictionaries(st.sampled_from(["data", "json", "call", "id", "src"]), st.text(max_size=30), max_size=4).map(
        lambda fields: json.dumps(fields).encode()
    ),
)


@PROPERTY_SETTINGS
@given(
    body=BODIES,
    content_type=CONTENT_TYPES,
    query=st.none() | st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4),
)
def test_extract_fields_returns_a_dict_or_raises_a_domain_error(
    body: bytes, content_type: str | None, query: dict[str, str] | None
) -> None:
    # Given arbitrary bytes, content types and query strings
    try:
        # When the fields are extracted
        fields = extract_fields(body=body, content_type=content_type, query=query, max_bytes=500)
    except DomainError:
        # Then either a domain error (an HTTP 4xx for the handler)...
        return
    # ...or a dict with string keys
    assert isinstance(fields, dict)
    assert all(isinstance(key, str) for key in fields)


ALL_ALIASES = sorted(
    {
        *PBX_CALL_ID_ALIASES,
        *DIRECTION_ALIASES,
        *CLIENT_PHONE_ALIASES,
        *CALLER_ALIASES,
        *CALLEE_ALIASES,
        *EMPLOYEE_ALIASES,
        *GROUP_ID_ALIASES,
        *STARTED_AT_ALIASES,
        *TALK_SECONDS_ALIASES,
        *STATUS_ALIASES,
        *RECORD_ALIASES,
        "src",
        "dst",
        "members",
        "lost",
    }
)
FIELD_NAMES = st.one_of(st.sampled_from(ALL_ALIASES), st.sampled_from(ALL_ALIASES).map(str.upper), st.text(max_size=12))
FIELD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["IN", "OUT", "ANSWERED", "NO ANSWER", "00:02:35", "https://x.ru/r.mp3", "1700000000.123", ""]),
    st.from_regex(r"\+?[78]?[ (]?9\d{2}[) -]?\d{3}-?\d{2}-?\d{2}", fullmatch=True),
    st.from_regex(r"\d{1,4}:\d{1,3}(:\d{1,3})?", fullmatch=True),
    st.from_regex(r"20\d\d-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d:\d\d|Z)?", fullmatch=True),
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
)


@PROPERTY_SETTINGS
@given(fields=st.dictionaries(FIELD_NAMES, FIELD_TEXT, max_size=10))
def test_canonicalize_returns_a_call_or_raises_a_domain_error(fields: dict[str, str]) -> None:
    # Given an arbitrary dict of str -> str
    try:
        # When it is canonicalized
        call = canonicalize(fields)
    except DomainError:
        # Then either a domain error...
        return
    # ...or a call whose key is defined and whose phone is canonical
    assert isinstance(call, CanonicalCall)
    assert call.call_key
    assert re.fullmatch(r"\d{11,15}", call.client_phone)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


@PROPERTY_SETTINGS
@given(fields=st.dictionaries(FIELD_NAMES, JSON_VALUES | FIELD_TEXT, max_size=10))
def test_canonicalize_of_any_json_values_returns_a_call_or_raises_a_domain_error(fields: dict[str, Any]) -> None:
    # Given arbitrary JSON-decoded values under alias names, When canonicalized, Then a call or a domain error
    with contextlib.suppress(DomainError):
        assert isinstance(canonicalize(fields), CanonicalCall)


@PROPERTY_SETTINGS
@given(
    fields=st.dictionaries(
        st.text(min_size=1, max_size=10).filter(lambda key: key.lower() not in ("data", "json", "call")),
        st.text(max_size=30),
        max_size=6,
    ).filter(lambda fields: len({key.lower() for key in fields}) == len(fields))
)
def test_a_json_object_without_wrapper_comes_back_as_sent(fields: dict[str, str]) -> None:
    # Given any flat JSON object of strings, When sent as JSON and extracted, Then the same dict comes back
    assert extract_fields(body=json.dumps(fields).encode(), content_type=JSON, query=None) == fields
