"""DynamoDB goes away mid-request: the webhook's call waits in the inbox (a bot call gets a clear 503 with Retry-After),
never a 500; no partial client; recovery heals.

DynamoDB is a real moto server on 127.0.0.1 (fixture `dynamodb_server`), reached by the service's own clients
(`gateway.dynamodb_client()`: standard retries, short timeouts). The outage is real: the server is stopped and
its socket closed, so the SDK gets `connection refused` on every attempt. SSM stays in-process (moto's `mock_aws`): this
file is about the table, and the PBX secret stays readable. The server serves moto's in-process backends, so the state
left by a failed request is read in-process while the server is down, and a restarted server sees the same data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import pytest
from fixtures.aws import Inbox
from fixtures.dynamodb_server import DynamoDBServer
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from employee_call.handler import lambda_handler as employee_call_handler
from group_call.handler import lambda_handler as group_call_handler
from iptelefon.data.attempts import attempt_sk
from iptelefon.data.call_records import call_sk, dialog_pk
from iptelefon.data.client_items import (
    INDEX_SK,
    RANK_OTHER,
    RANK_TELEPHONY,
    client_item,
    client_sk,
    entry_client_id,
    index_entry,
    phone_of,
    phone_pk,
)
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import from_item, get_storage, project_pk, to_item
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import Client, Project
from iptelefon.platform.settings import get_settings
from webhook.handler import lambda_handler as webhook_handler

PHONE = "79004443322"
CALL_ID = "1709290800.1843"
IN_PROCESS = "https://dynamodb.us-east-1.amazonaws.com"  # moto's in-process mock: readable while the server is down


# -- requests ----------------------------------------------------------------------------------------------------------
def webhook(context: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = body or {
        "id": CALL_ID,
        "calltype": "IN",
        "src": PHONE,
        "exten": "346",
        "calldate": "2024-03-01 14:00:00",
        "talktime": "00:02:35",
        "link": "https://z138.fpg.ru/records/1709290800.1843.mp3",
    }
    return webhook_handler(webhook_event(PBX_SECRET, payload), context)  # type: ignore[no-any-return]


CallRoute = tuple[Callable[..., Any], str, str, dict[str, str] | None, dict[str, Any]]
CALL_ROUTES: dict[str, CallRoute] = {
    "employee": (
        employee_call_handler,
        "/v1/calls/employee",
        "/v1/calls/employee",
        None,
        {"client_phone": PHONE, "short_employee_phone": "346"},
    ),
    "group": (group_call_handler, "/v1/calls/group", "/v1/calls/group", None, {"client_phone": PHONE, "group_id": "3"}),
    "client_card": (
        employee_call_handler,
        "/v1/clients/{client_id}/call",
        "/v1/clients/c-card/call",
        {"client_id": "c-card"},
        {"employee_id": "346"},
    ),
}


def start_call(route: str, context: Any, token: str, *, key: str | None = None) -> dict[str, Any]:
    handler, resource, path, params, body = CALL_ROUTES[route]
    headers = {"Idempotency-Key": key} if key else None
    event = api_event("POST", resource, path, path_params=params, body=body, headers=headers, token=token)
    return handler(event, context)  # type: ignore[no-any-return]


def assert_storage_unavailable(answer: dict[str, Any]) -> None:
    """A clear 503: JSON naming the problem and when to retry (never a 500, never a crash)."""
    assert answer["statusCode"] == 503, answer
    assert answer_json(answer)["error"] == "storage_unavailable"
    assert answer_json(answer)["message"]
    assert answer["multiValueHeaders"]["Retry-After"] == ["2"]


# -- state -------------------------------------------------------------------------------------------------------------
def stored_items() -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", endpoint_url=IN_PROCESS)
    pages = dynamodb.get_paginator("scan").paginate(TableName=get_settings().table_name)
    return [from_item(item) for page in pages for item in page["Items"]]


def clients_of(project: Project, items: list[dict[str, Any]]) -> dict[str, Client]:
    return {
        item["id"]: Client.model_validate(item)
        for item in items
        if item["pk"] == project_pk(project.id) and item["sk"].startswith(client_sk(""))
    }


def assert_no_partial_client(project: Project) -> dict[str, Client]:
    """Every client has all its phone-index entries, and every index entry names a stored client."""
    items = stored_items()
    clients = clients_of(project, items)
    index = {
        item["pk"]: set(item.get("entries", ()))
        for item in items
        if item["pk"].startswith(phone_pk(project.id, "")) and item["sk"] == INDEX_SK
    }
    for client in clients.values():
        expected: list[tuple[str, str]] = []
        if client.phone:
            rank = RANK_TELEPHONY if client.channel == "telephony" else RANK_OTHER
            expected.append((client.phone, index_entry(rank, client, "phone")))
        for name, value in client.variables.items():
            if phone := phone_of(value, project.default_region):
                expected.append((phone, index_entry(RANK_OTHER, client, f"var:{name}")))
        for phone, entry in expected:
            assert entry in index.get(phone_pk(project.id, phone), set()), f"client {client.id} lacks index {entry}"
    for pk, entries in index.items():
        for entry in entries:
            assert entry_client_id(entry) in clients, f"{pk} entry {entry} names a missing client"
    return clients


def calls_recorded(project: Project) -> list[dict[str, Any]]:
    return [i for i in stored_items() if i["pk"] == project_pk(project.id) and i["sk"] == call_sk(CALL_ID)]


def dialog_of(project: Project, client_id: str) -> list[dict[str, Any]]:
    return [i for i in stored_items() if i["pk"] == dialog_pk(project.id, client_id)]


def test_the_partial_client_check_catches_a_client_without_its_index_entry(aws: None, project: Any) -> None:
    # Given a client item written alone, as a non-atomic write interrupted between the client and its index would leave
    client = Client(id="c-alone", channel="telephony", phone=PHONE, can_message=False)
    get_storage().client.put_item(
        TableName=get_settings().table_name, Item=to_item(client_item(project.project.id, client))
    )

    # When the check runs, then it names the client that lacks its index entry
    with pytest.raises(AssertionError, match="c-alone lacks index"):
        assert_no_partial_client(project.project)


def test_the_partial_client_check_catches_an_index_entry_without_its_client(aws: None, project: Any) -> None:
    # Given a phone-index entry whose client was never written
    ghost = Client(id="c-ghost", channel="telephony", phone=PHONE, can_message=False)
    get_storage().client.update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": phone_pk(project.project.id, PHONE)}, "sk": {"S": INDEX_SK}},
        UpdateExpression="ADD entries :e",
        ExpressionAttributeValues={":e": {"SS": [index_entry(RANK_TELEPHONY, ghost, "phone")]}},
    )

    # When the check runs, then it names the entry that points to a missing client
    with pytest.raises(AssertionError, match="names a missing client"):
        assert_no_partial_client(project.project)


# -- the webhook -------------------------------------------------------------------------------------------------------
def _is_phone_index_lookup(params: dict[str, Any]) -> bool:
    return str(params["Key"]["pk"]["S"]).startswith("PHONE#")


# Where DynamoDB goes down during a webhook for a new phone -> how many clients that failed request leaves behind.
WEBHOOK_OUTAGES: dict[str, tuple[Callable[[DynamoDBServer], None], int]] = {
    "before the request": (lambda server: server.stop(), 0),
    "at matching (phone-index GetItem)": (lambda server: server.stop_at("GetItem", 1, _is_phone_index_lookup), 0),
    "at the client's creation (1st transaction)": (lambda server: server.stop_at("TransactWriteItems", 1), 0),
    "at the call's transaction (2nd transaction)": (lambda server: server.stop_at("TransactWriteItems", 2), 1),
}


def assert_queued(answer: dict[str, Any], inbox: Inbox) -> None:
    """The PBX hears the call was taken (200 queued), and the request waits in the inbox with its secret's hash only."""
    assert answer["statusCode"] == 200, answer
    assert answer_json(answer) == {"result": 1, "queued": True}
    (message,) = inbox.messages()
    assert PBX_SECRET not in message["Body"]
    assert json.loads(message["Body"])["secret_sha256"] == sha256_hex(PBX_SECRET)


@pytest.mark.parametrize("outage", list(WEBHOOK_OUTAGES))
def test_webhook_for_a_new_phone_during_an_outage_is_queued_and_applied_once_after_recovery(
    outage: str, dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given a project, a phone nobody has seen, and DynamoDB going down at one point of the request
    go_down, clients_left = WEBHOOK_OUTAGES[outage]
    go_down(dynamodb_server)

    # When the PBX posts the completed call
    answer = webhook(lambda_context)

    # Then the call is taken into the inbox (the PBX need not retry), and the outage did hit inside this request
    assert_queued(answer, inbox)
    assert not dynamodb_server.running
    # And no client exists without its phone index (nor an index entry without its client), and no call is recorded
    clients = assert_no_partial_client(project.project)
    assert len(clients) == clients_left
    assert calls_recorded(project.project) == []

    # When DynamoDB is back and the inbox is applied
    dynamodb_server.start()
    assert inbox.drain() == 1

    # Then the call is recorded once, for one client of that phone, with one notification
    clients = assert_no_partial_client(project.project)
    assert [c.phone for c in clients.values()] == [PHONE]
    (record,) = calls_recorded(project.project)
    assert record["client_id"] in clients
    assert len(dialog_of(project.project, record["client_id"])) == 1
    assert inbox.messages() == []
    # And a replay of the PBX changes nothing
    replay = answer_json(webhook(lambda_context))
    assert (replay["duplicate"], replay["client_id"]) == (True, record["client_id"])
    assert len(calls_recorded(project.project)) == 1


def test_webhook_for_a_known_client_during_an_outage_at_the_call_transaction_leaves_nothing_half_done(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given a client with a phone variable (indexed), and DynamoDB going down at the call's transaction
    known = Client(id="c-known", channel="telegram", variables={"phone": "+7 900 444-33-22"})
    ClientStore(get_storage()).add(project.project, known)
    dynamodb_server.stop_at("TransactWriteItems", 1)

    # When the PBX posts a call of that phone
    answer = webhook(lambda_context)

    # Then queued; the client and its index are intact; no call, notification or record-link variable was written
    assert_queued(answer, inbox)
    clients = assert_no_partial_client(project.project)
    assert list(clients) == ["c-known"]
    assert clients["c-known"].variables == {"phone": "+7 900 444-33-22"}
    assert calls_recorded(project.project) == []
    assert dialog_of(project.project, "c-known") == []

    # When DynamoDB is back and the inbox is applied, then the call lands on the known client, once
    dynamodb_server.start()
    assert inbox.drain() == 1
    (record,) = calls_recorded(project.project)
    assert record["client_id"] == "c-known"
    assert len(dialog_of(project.project, "c-known")) == 1
    assert "iptelefon_call_record_link" in assert_no_partial_client(project.project)["c-known"].variables


def test_unreadable_webhook_during_an_outage_is_queued_and_kept_once_after_recovery(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given a payload without a phone (a 400 that must keep the raw request) and DynamoDB down at that PutItem
    dynamodb_server.stop_at("PutItem", 1)
    unreadable = {"id": "no-phone-1", "calltype": "IN", "exten": "346"}

    # When it arrives, then it waits in the inbox: the raw request could not be kept yet
    assert_queued(webhook(lambda_context, unreadable), inbox)
    assert [i for i in stored_items() if i["sk"].startswith("REJECTED#")] == []

    # When DynamoDB is back and the inbox is applied, then the raw request is kept once, with why it was refused
    dynamodb_server.start()
    assert inbox.drain() == 1
    (kept,) = [i for i in stored_items() if i["sk"].startswith("REJECTED#")]
    assert "no-phone-1" in kept["body"]
    assert kept["error"] == "invalid_phone" or kept["status"] == 400


# -- ZEON's live call events ------------------------------------------------------------------------------------------
LIVE_CALL_ID = "1709290800.2001"


def zeon_event(context: Any, status: str) -> dict[str, Any]:
    body = {"cmd": "event", "call-status": status, "callid": LIVE_CALL_ID, "call-type": "IN", "phone": PHONE,
            "exten": "346", "token": "crm-key"}  # fmt: skip
    return webhook(context, body)


def live_item(project: Project) -> dict[str, Any] | None:
    found = [i for i in stored_items() if i["pk"] == project_pk(project.id) and i["sk"] == f"LIVE#{LIVE_CALL_ID}"]
    return found[0] if found else None


@pytest.mark.parametrize(
    "go_down",
    [
        lambda server: server.stop(),
        # the live state is written with its call event, in one transaction (issue 22)
        lambda server: server.stop_at("TransactWriteItems", 1, where=lambda p: "LIVE#" in str(p["TransactItems"])),
    ],
    ids=["before the request", "at the live state's write"],
)
def test_a_live_event_during_an_outage_is_queued_and_applied_from_when_it_came(
    go_down: Callable[[DynamoDBServer], None],
    dynamodb_server: DynamoDBServer,
    inbox: Inbox,
    project: Any,
    lambda_context: Any,
) -> None:
    # Given DynamoDB going down during a RINGING
    go_down(dynamodb_server)
    came = time.time()
    # When it arrives, then it waits in the inbox, and no live state, call or notification exists
    assert_queued(zeon_event(lambda_context, "RINGING"), inbox)
    assert not dynamodb_server.running  # the outage did hit inside this request
    assert "crm-key" not in inbox.messages()[0]["Body"]
    assert live_item(project.project) is None and calls_recorded(project.project) == []
    assert [i for i in stored_items() if i["sk"].startswith("EVENT#")] == []  # no event without its live state
    # When DynamoDB is back and the inbox is applied, then the call is ringing since it came, and no call is recorded
    dynamodb_server.start()
    assert inbox.drain() == 1
    item = live_item(project.project)
    assert item is not None and item["state"] == "ringing"
    assert came - 1 <= datetime.fromisoformat(item["since"]).timestamp() <= came + 1
    assert [i for i in stored_items() if i["sk"].startswith("CALL#") or i["pk"].startswith("DIALOG#")] == []


def test_a_live_event_applied_from_the_inbox_after_its_history_changes_nothing(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given a RINGING queued during an outage, and the call's history recorded once DynamoDB is back
    dynamodb_server.stop()
    assert_queued(zeon_event(lambda_context, "RINGING"), inbox)
    dynamodb_server.start()
    history = {"cmd": "history", "call-status": "ANSWERED", "callid": LIVE_CALL_ID, "call-type": "IN", "phone": PHONE,
               "exten": "346", "duration": 30}  # fmt: skip
    assert answer_json(webhook(lambda_context, history))["duplicate"] is False
    ended = live_item(project.project)
    # When the inbox applies the RINGING late, then the call stays ended
    assert inbox.drain() == 1
    assert ended is not None and live_item(project.project) == ended and ended["state"] == "ended"
    assert len(calls_recorded_with_key(project.project, LIVE_CALL_ID)) == 1


def calls_recorded_with_key(project: Project, call_key: str) -> list[dict[str, Any]]:
    return [i for i in stored_items() if i["pk"] == project_pk(project.id) and i["sk"] == call_sk(call_key)]


# -- the bot call routes -----------------------------------------------------------------------------------------------
@pytest.fixture
def card_client(project: Any) -> None:
    ClientStore(get_storage()).add(
        project.project, Client(id="c-card", channel="telephony", phone=PHONE, can_message=False)
    )


def attempts(project: Project) -> list[dict[str, Any]]:
    return [i for i in stored_items() if i["pk"] == project_pk(project.id) and i["sk"].startswith(attempt_sk(""))]


@pytest.mark.parametrize("key", [None, "order-1"], ids=["no key", "idempotency key"])
@pytest.mark.parametrize("route", list(CALL_ROUTES))
def test_call_while_storage_is_down_is_503_and_reaches_no_pbx(
    route: str,
    key: str | None,
    dynamodb_server: DynamoDBServer,
    fake_pbx: Any,
    project: Any,
    card_client: None,
    lambda_context: Any,
) -> None:
    # Given DynamoDB down before the request (token lookup, Idempotency record, rate limits all need it)
    dynamodb_server.stop()

    # When a bot starts a call
    answer = start_call(route, lambda_context, project.token, key=key)

    # Then 503 with Retry-After, and nothing reached the PBX
    assert_storage_unavailable(answer)
    assert fake_pbx.requests == []

    # When the bot retries after recovery (with the same key, if it had one)
    dynamodb_server.start()
    again = start_call(route, lambda_context, project.token, key=key)

    # Then exactly one call is started and recorded
    assert again["statusCode"] == 202, again
    assert len(fake_pbx.requests) == 1
    (attempt,) = attempts(project.project)
    assert (attempt["attempt_id"], attempt["status"]) == (answer_json(again)["attempt_id"], "initiated")


@pytest.mark.parametrize("route", list(CALL_ROUTES))
def test_call_with_storage_lost_before_the_pbx_request_is_503_and_reaches_no_pbx(
    route: str, dynamodb_server: DynamoDBServer, fake_pbx: Any, project: Any, card_client: None, lambda_context: Any
) -> None:
    # Given DynamoDB going down after the bot was authenticated, at the rate-limit count (the last step before the PBX)
    dynamodb_server.stop_at("UpdateItem", 1)

    # When a bot starts a call
    answer = start_call(route, lambda_context, project.token)

    # Then 503 and no PBX request; after recovery the retry starts exactly one call
    assert_storage_unavailable(answer)
    assert fake_pbx.requests == []
    dynamodb_server.start()
    assert start_call(route, lambda_context, project.token)["statusCode"] == 202
    assert len(fake_pbx.requests) == 1


@pytest.mark.parametrize("route", list(CALL_ROUTES))
def test_call_with_storage_lost_after_the_pbx_accepted_answers_202_not_503(
    route: str, dynamodb_server: DynamoDBServer, fake_pbx: Any, project: Any, card_client: None, lambda_context: Any
) -> None:
    # Given DynamoDB going down after the PBX accepted the call, when its answer is recorded on the attempt (the 1st
    # transaction stored the `starting` attempt before the PBX was asked)
    dynamodb_server.stop_at("TransactWriteItems", 2)

    # When a bot starts a call
    answer = start_call(route, lambda_context, project.token)

    # Then the answer is the call's 202 (the client's phone is ringing: a 503 would invite a second call), never a 500,
    # and the PBX got exactly one request; the attempt stays on record as `starting` (its update is logged as lost)
    assert answer["statusCode"] == 202, answer
    assert answer_json(answer)["status"] == "initiated"
    assert not dynamodb_server.running
    assert len(fake_pbx.requests) == 1
    assert [a["status"] for a in attempts(project.project)] == ["starting"]
