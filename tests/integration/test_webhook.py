"""The webhook through its real handler (moto in-process): effects exactly once, matching, creation, bad input."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import answer_json, api_event

from iptel_admin import admin
from iptelefon.data.call_records import RECORD_LINK_VARIABLE, CallRecordStore, call_sk
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage, project_pk
from iptelefon.domain.models import Client
from webhook.handler import lambda_handler

EVENTS = Path(__file__).resolve().parent.parent / "events"
SECRET = "whsec-demo-0123456789abcdef"  # the secret in tests/events/*.json
PHONE = "79004443322"


@pytest.fixture
def pbx_project(admin_target: Any) -> Any:
    created = admin.create_project(
        admin_target,
        name="Webhook project",
        server_url="https://pbx.test/start.php",
        secret=SECRET,
        messengers=[],
        project_id="wh",
    )
    return created.project


def post(
    body: str | dict[str, Any], *, secret: str = SECRET, content_type: str | None = None, context: Any = None
) -> dict[str, Any]:
    if isinstance(body, dict):
        body, content_type = urllib.parse.urlencode(body), content_type or "application/x-www-form-urlencoded"
    event = api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{secret}",
        body=body,
        path_params={"secret": secret},
        headers={"Content-Type": content_type or "application/json"},
    )
    return lambda_handler(event, context)


def event_file(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def zeon_form(**overrides: str) -> dict[str, str]:
    return {
        "id": "1709290800.1843",
        "calltype": "IN",
        "src": PHONE,
        "dst": "74951234567",
        "exten": "346",
        "calldate": "2024-03-01 14:00:00",
        "talktime": "00:02:35",
        "link": "https://z138.fpg.ru/records/1709290800.1843.mp3",
        **overrides,
    }


def call_item(project_id: str, call_key: str) -> dict[str, Any] | None:
    """The stored call item as it is in the table (the raw payload included)."""
    return get_storage().get(project_pk(project_id), call_sk(call_key))


def dialog(project_id: str, client_id: str) -> list[dict[str, Any]]:
    return CallRecordStore(get_storage()).dialog(project_id, client_id)


def test_zeon_form_post_records_the_call_creates_a_telephony_client_and_notifies(
    pbx_project: Any, lambda_context: Any
) -> None:
    # Given a project without messengers and a ZEON form post for an unknown phone
    answer = post(zeon_form(), context=lambda_context)
    # Then 200 with the call and a new client
    body = answer_json(answer)
    assert answer["statusCode"] == 200
    assert body["result"] == 1 and body["call_key"] == "1709290800.1843" and body["duplicate"] is False
    client = ClientStore(get_storage()).get("wh", body["client_id"])
    assert client is not None
    assert (client.channel, client.phone, client.can_message) == ("telephony", PHONE, False)
    # And the record link variable holds our stable link to the recording (issue 25; the call keeps the PBX's link),
    # and one human-readable notification with that link is in the dialog
    record = call_item("wh", "1709290800.1843")
    assert record is not None and record["record_link"] == "https://z138.fpg.ru/records/1709290800.1843.mp3"
    assert client.variables[RECORD_LINK_VARIABLE] == record["recording_link"]
    assert record["recording_link"] == f"https://localhost/r/{record['recording_id']}"
    [note] = dialog("wh", client.id)
    assert note["text"].startswith("Звонок завершён · входящий · 02:35 · сотрудник 346")
    assert f"запись: {record['recording_link']}" in note["text"]
    # And the call keeps the raw payload next to the canonical fields
    assert record["talk_seconds"] == 155 and "calltype=IN" in record["raw"]["body"]


def test_replay_answers_duplicate_and_changes_nothing(pbx_project: Any, lambda_context: Any) -> None:
    first = answer_json(post(zeon_form(), context=lambda_context))
    # When the PBX retries the same webhook
    again = post(zeon_form(), context=lambda_context)
    # Then 200 duplicate, same client, and still one notification
    assert again["statusCode"] == 200
    assert answer_json(again) == {**first, "duplicate": True}
    assert len(dialog("wh", first["client_id"])) == 1


def test_later_webhook_adds_the_recording_without_a_second_notification(pbx_project: Any, lambda_context: Any) -> None:
    # Given a call recorded without a link
    first = answer_json(post(zeon_form(link=""), context=lambda_context))
    assert RECORD_LINK_VARIABLE not in ClientStore(get_storage()).get("wh", first["client_id"]).variables  # type: ignore[union-attr]
    # When the same call comes again with the recording
    again = answer_json(post(zeon_form(link="https://pbx.test/rec/1.mp3"), context=lambda_context))
    # Then the call carries the link, the variable and the one notification our stable link to it (issue 25)
    assert again["duplicate"] is True
    record = call_item("wh", first["call_key"])
    assert record is not None and record["record_link"] == "https://pbx.test/rec/1.mp3"
    client = ClientStore(get_storage()).get("wh", first["client_id"])
    assert client is not None and client.variables[RECORD_LINK_VARIABLE] == record["recording_link"]
    [note] = dialog("wh", first["client_id"])
    assert f"запись: {record['recording_link']}" in note["text"]


def test_project_with_a_messenger_gets_a_whatsapp_client(admin_target: Any, lambda_context: Any) -> None:
    admin.create_project(
        admin_target,
        name="WA",
        server_url="https://pbx.test/start.php",
        secret=SECRET,
        messengers=["whatsapp"],
        project_id="wa",
    )
    body = answer_json(post(zeon_form(), context=lambda_context))
    client = ClientStore(get_storage()).get("wa", body["client_id"])
    assert client is not None and (client.channel, client.phone, client.can_message) == ("whatsapp", PHONE, True)


def _add_client(
    project: Any,
    client_id: str,
    channel: str,
    *,
    phone: str | None = None,
    variables: dict[str, str] | None = None,
    created: str = "2024-01-01T00:00:00+00:00",
) -> None:
    client = Client.model_validate(
        {"id": client_id, "channel": channel, "phone": phone, "variables": variables or {}, "created_at": created}
    )
    ClientStore(get_storage()).add(project, client)


def test_telephony_client_wins_over_an_older_variable_match(pbx_project: Any, lambda_context: Any) -> None:
    _add_client(
        pbx_project,
        "older-crm",
        "telegram",
        variables={"phone": "+7 (900) 444-33-22"},
        created="2020-01-01T00:00:00+00:00",
    )
    _add_client(pbx_project, "tel", "telephony", phone=PHONE, created="2024-01-01T00:00:00+00:00")
    assert answer_json(post(zeon_form(), context=lambda_context))["client_id"] == "tel"


def test_without_telephony_clients_the_earliest_variable_match_wins(pbx_project: Any, lambda_context: Any) -> None:
    _add_client(
        pbx_project, "newer", "telegram", variables={"contact": "8 900 444 33 22"}, created="2024-05-01T00:00:00+00:00"
    )
    _add_client(
        pbx_project,
        "earlier",
        "vk",
        variables={"tel": "9004443322", "name": "Ivan"},
        created="2023-05-01T00:00:00+00:00",
    )
    assert answer_json(post(zeon_form(), context=lambda_context))["client_id"] == "earlier"


def test_clients_of_another_project_are_never_matched(
    pbx_project: Any, other_project: Any, lambda_context: Any
) -> None:
    _add_client(other_project.project, "foreign", "telephony", phone=PHONE)
    body = answer_json(post(zeon_form(), context=lambda_context))
    assert body["client_id"] != "foreign"


def test_variable_change_moves_the_phone_index(pbx_project: Any) -> None:
    store = ClientStore(get_storage())
    _add_client(pbx_project, "c1", "telegram", variables={"phone": PHONE})
    client = store.get("wh", "c1")
    assert client is not None
    # When the variable changes to another phone
    store.set_variable(pbx_project, client, "phone", "+7 901 000 00 01")
    # Then the old phone no longer matches and the new one does
    assert store.match("wh", PHONE) == []
    assert store.match("wh", "79010000001") == ["c1"]


def test_matching_is_one_get_item_never_a_query_or_scan(pbx_project: Any) -> None:
    # Given a client indexed by phone, When matching, Then DynamoDB sees exactly one GetItem
    _add_client(pbx_project, "c1", "telephony", phone=PHONE)
    storage = get_storage()
    operations: list[str] = []
    hook = lambda model, **_: operations.append(model.name)  # noqa: E731
    storage.client.meta.events.register("before-call.dynamodb", hook)
    try:
        assert ClientStore(storage).match("wh", PHONE) == ["c1"]
    finally:
        storage.client.meta.events.unregister("before-call.dynamodb", hook)
    assert operations == ["GetItem"]


def test_unknown_secret_is_404_with_the_same_body_and_nothing_stored(pbx_project: Any, lambda_context: Any) -> None:
    first = post(zeon_form(), secret="wrong-secret-1", context=lambda_context)
    second = post("garbage", secret="another-wrong-one", context=lambda_context)
    assert first["statusCode"] == second["statusCode"] == 404
    assert first["body"] == second["body"]
    assert not boto3.client("dynamodb").query(
        TableName="local-MainTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": project_pk("wh")}, ":c": {"S": call_sk("")}},
        FilterExpression="begins_with(sk, :c)",
    )["Items"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ('{"id": 1, "calltype": "IN"', "application/json", 400, "invalid_json"),
        ("id=1&calltype=IN&src=346&dst=347", "application/x-www-form-urlencoded", 400, "invalid_phone"),
        ("src=" + "7" * 70_000, "application/x-www-form-urlencoded", 413, "payload_too_large"),
        ("[1, 2, 3]", "application/json", 400, "invalid_json"),
    ],
)
def test_bad_payload_is_4xx_naming_the_problem_and_the_raw_request_is_kept(
    body: str, content_type: str, status: int, error: str, pbx_project: Any, lambda_context: Any
) -> None:
    answer = post(body, content_type=content_type, context=lambda_context)
    assert answer["statusCode"] == status
    assert answer_json(answer)["error"] == error
    [kept] = CallRecordStore(get_storage()).rejected("wh")
    assert kept["body"] == body[: len(kept["body"])] and kept["status"] == status and kept["error"] == error


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*.json")))
def test_every_recorded_event_gets_a_clear_answer(name: str, pbx_project: Any, lambda_context: Any) -> None:
    # Given a real-looking event, When it reaches the handler, Then 200 for valid ones and a named 4xx otherwise
    answer = lambda_handler(event_file(name), lambda_context)
    expected = 400 if name.startswith("invalid_") else 200
    assert answer["statusCode"] == expected, answer["body"]
    assert answer_json(answer)


def test_get_with_query_parameters_is_accepted(pbx_project: Any, lambda_context: Any) -> None:
    event = api_event(
        "GET",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{SECRET}",
        path_params={"secret": SECRET},
        query={"id": "q-1", "calltype": "IN", "src": PHONE, "talktime": "65"},
    )
    answer = lambda_handler(event, lambda_context)
    assert answer["statusCode"] == 200
    assert answer_json(answer)["call_key"] == "q-1"


def test_a_repeated_query_name_is_read_from_the_multi_value_parameters(pbx_project: Any, lambda_context: Any) -> None:
    # Given a GET webhook listing two employees, as API Gateway delivers it: `queryStringParameters` holds only the
    # last value of a repeated name, `multiValueQueryStringParameters` all of them
    event = api_event(
        "GET",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{SECRET}",
        path_params={"secret": SECRET},
        query={"id": "q-2", "calltype": "IN", "src": PHONE, "members[]": "500"},
    )
    event["multiValueQueryStringParameters"]["members[]"] = ["346", "500"]
    # When it comes
    answer = lambda_handler(event, lambda_context)
    # Then the query was read as a form body would be: the first listed member took the call, both are kept
    assert answer["statusCode"] == 200, answer["body"]
    record = call_item("wh", "q-2")
    assert record is not None and record["employee"] == "346"
    assert json.loads(record["raw"]["query"])["members"] == ["346", "500"]


def test_record_link_replacing_a_phone_valued_variable_keeps_the_index_right(
    pbx_project: Any, lambda_context: Any
) -> None:
    # Given the telephony client's record-link variable holds a phone (set by hand), which the index mirrors
    _add_client(pbx_project, "tel", "telephony", phone=PHONE, variables={RECORD_LINK_VARIABLE: "79010000001"})
    assert ClientStore(get_storage()).match("wh", "79010000001") == ["tel"]
    # When a call with a recording comes
    body = answer_json(post(zeon_form(), context=lambda_context))
    # Then the variable holds the link and the old phone no longer matches that client
    assert body["client_id"] == "tel"
    client = ClientStore(get_storage()).get("wh", "tel")
    assert client is not None and client.variables[RECORD_LINK_VARIABLE].startswith("https://")
    assert ClientStore(get_storage()).match("wh", "79010000001") == []


def test_an_oversize_body_of_invalid_utf8_is_413_and_still_kept(pbx_project: Any, lambda_context: Any) -> None:
    # Given 150,000 bytes that are not UTF-8 (each would become a 3-byte replacement character)
    event = api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{SECRET}",
        path_params={"secret": SECRET},
        headers={"Content-Type": "application/octet-stream"},
    )
    event["body"], event["isBase64Encoded"] = base64.b64encode(b"\xff" * 150_000).decode(), True
    # When posted
    answer = lambda_handler(event, lambda_context)
    # Then 413, and the request is kept (its first 100,000 bytes) with its real size
    assert answer["statusCode"] == 413
    [kept] = CallRecordStore(get_storage()).rejected("wh")
    assert (kept["body_bytes"], kept["truncated"], kept["error"]) == (150_000, True, "payload_too_large")


def test_an_empty_query_parameter_name_is_stored_and_read_back(
    pbx_project: Any, project: Any, lambda_context: Any
) -> None:
    # Given a GET webhook whose query string has a parameter without a name (`?=x&...`)
    event = api_event(
        "GET",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{SECRET}",
        path_params={"secret": SECRET},
        query={"": "x", "src": PHONE, "id": "emptykey-1"},
    )
    assert lambda_handler(event, lambda_context)["statusCode"] == 200
    # Then the call reads back, and a replay is a clean duplicate
    record = call_item("wh", "emptykey-1")
    assert record is not None and json.loads(record["raw"]["query"]) == {"": "x", "src": PHONE, "id": "emptykey-1"}
    assert answer_json(lambda_handler(event, lambda_context))["duplicate"] is True


@pytest.mark.parametrize("kind", ["form", "json", "query"])
def test_the_kept_raw_payload_loses_a_recording_links_user_and_password(
    pbx_project: Any, lambda_context: Any, kind: str
) -> None:
    # Given a PBX whose recording link carries a user and password, as a form, as JSON, or in the query
    link = "https://rec:hunter2pw@z138.fpg.ru/records/ui-1.mp3"
    fields = zeon_form(id=f"ui-{kind}", link=link)
    if kind == "form":
        answer = post(fields, context=lambda_context)
    elif kind == "json":
        answer = post(json.dumps(fields), context=lambda_context)
    else:
        event = api_event(
            "GET",
            "/iptelefon_webhook/{secret}",
            f"/iptelefon_webhook/{SECRET}",
            path_params={"secret": SECRET},
            query=fields,
        )
        answer = lambda_handler(event, lambda_context)
    assert answer["statusCode"] == 200, answer
    # Then nothing stored with the call holds the password, and the link is kept without it
    record = call_item("wh", f"ui-{kind}")
    assert record is not None
    assert "hunter2pw" not in json.dumps(record)
    assert "z138.fpg.ru/records/ui-1.mp3" in urllib.parse.unquote(json.dumps(record["raw"]))
