"""Live calls on moto in-process: the repository (`data.live_calls`), and ZEON's `cmd=event` / `cmd=history` through
the real webhook handler, read back through the real read API (`GET /v1/calls/live`, the attempt and call reads)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event

from employee_call.handler import lambda_handler as employee_call_handler
from iptelefon.data.call_records import call_sk
from iptelefon.data.gateway import get_storage, project_pk
from iptelefon.data.live_calls import LiveCallStore, live_sk
from iptelefon.domain.live_calls import LIVE_FOR, LiveCall
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

EVENTS = Path(__file__).resolve().parent.parent / "events"
PHONE = "79004443322"
CALL = "1709290800.2001"  # the call of tests/events/zeon_event_*.json and zeon_history_answered.json
TOKEN = "crm-key-7Qx2vN9pL4sT8wZ1"
AT = datetime(2024, 3, 1, 11, 0, tzinfo=UTC)


# -- the repository --------------------------------------------------------------------------------------------------
def ringing_call(call_key: str = "c-1", *, at: datetime = AT, employee: str = "346") -> LiveCall:
    return LiveCall(call_key=call_key, pbx_call_id=call_key, client_id="cl-1", client_phone=PHONE, direction="in",
                    employee=employee, state="ringing", since=at, updated_at=at)  # fmt: skip


@pytest.fixture
def store(aws: None) -> LiveCallStore:
    return LiveCallStore(get_storage())


@pytest.fixture
def operations(aws: None) -> Iterator[list[dict[str, Any]]]:
    """Every DynamoDB request the service's client sends while a test runs: (operation, its parameters)."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append({"operation": model.name, **params})

    events = get_storage().client.meta.events
    events.register("provide-client-params.dynamodb.*", record)
    yield seen
    events.unregister("provide-client-params.dynamodb.*", record)


def test_a_live_call_is_stored_with_its_ttl_and_read_back(store: LiveCallStore) -> None:
    assert store.put("p", ringing_call(), replacing=None) is True
    stored = store.get("p", "c-1")
    assert stored is not None and stored.model_dump(exclude={"version"}) == ringing_call().model_dump(
        exclude={"version"}
    )
    item = get_storage().get(project_pk("p"), live_sk("c-1"))
    assert item is not None and item["expires_at"] == int((AT + LIVE_FOR).timestamp())
    assert (item["gsi1pk"], item["gsi1sk"]) == ("LIVE#p", f"{AT.isoformat(timespec='microseconds')}#c-1")


def test_a_write_over_a_state_that_changed_meanwhile_is_refused(store: LiveCallStore) -> None:
    store.put("p", ringing_call(), replacing=None)
    seen = store.get("p", "c-1")
    assert seen is not None
    # two events read the same state; the first one's write wins, the second is told to read again
    assert store.put("p", seen.model_copy(update={"employee": "347"}), replacing=seen) is True
    assert store.put("p", seen.model_copy(update={"state": "answered"}), replacing=seen) is False
    assert store.put("p", ringing_call(), replacing=None) is False  # "nothing was there" is not true either
    assert store.get("p", "c-1").employee == "347"  # type: ignore[union-attr]


def test_the_end_wins_over_any_version_and_leaves_the_live_list(store: LiveCallStore) -> None:
    store.put("p", ringing_call(), replacing=None)
    seen = store.get("p", "c-1")
    later = AT + timedelta(minutes=2)
    store.end("p", LiveCall(call_key="c-1", client_id="cl-1", state="ended", since=later, updated_at=later))
    ended = store.get("p", "c-1")
    # the end keeps what the live state knew (phone, extension) and is out of the project's calls now
    assert ended is not None and (ended.state, ended.client_phone, ended.employee) == ("ended", PHONE, "346")
    assert store.put("p", seen.model_copy(update={"state": "answered"}), replacing=seen) is False  # type: ignore[union-attr]
    assert store.of_project("p") == []
    item = get_storage().get(project_pk("p"), live_sk("c-1"))
    assert item is not None and "gsi1pk" not in item and item["expires_at"] == int((later + LIVE_FOR).timestamp())


def test_an_end_before_any_event_stands_alone(store: LiveCallStore) -> None:
    store.end("p", LiveCall(call_key="c-1", client_id="cl-1", state="ended", since=AT, updated_at=AT))
    ended = store.get("p", "c-1")
    assert ended is not None and (ended.state, ended.version) == ("ended", 1)


def test_the_live_list_is_one_query_of_the_projects_live_calls(
    store: LiveCallStore, operations: list[dict[str, Any]]
) -> None:
    # Given live calls of two projects and an ended call
    for n in range(3):
        store.put("p", ringing_call(f"c-{n}", at=AT + timedelta(seconds=10 - n)), replacing=None)
    store.put("q", ringing_call("other"), replacing=None)
    store.end("p", LiveCall(call_key="c-9", client_id="cl-1", state="ended", since=AT, updated_at=AT))
    operations.clear()
    # When the project's calls now are listed
    listed = store.of_project("p")
    # Then its three live calls, the longest-standing first, read by one Query on gsi1 (never a scan)
    assert [c.call_key for c in listed] == ["c-2", "c-1", "c-0"]
    assert [(o["operation"], o.get("IndexName")) for o in operations] == [("Query", "gsi1")]


def test_a_key_that_cannot_exist_is_none_without_a_request(
    store: LiveCallStore, operations: list[dict[str, Any]]
) -> None:
    assert store.get("p", "no#such/key") is None and operations == []


# -- through the handlers --------------------------------------------------------------------------------------------
def zeon(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded ZEON request of tests/events/, sent to proj-a's webhook, with its JSON body changed."""
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    event["body"] = json.dumps({**json.loads(event["body"]), **changes})
    event["path"] = f"/iptelefon_webhook/{PBX_SECRET}"
    event["pathParameters"] = {"secret": PBX_SECRET}
    return event


def deliver(context: Any, name: str, **changes: Any) -> dict[str, Any]:
    answer = webhook_handler(zeon(name, **changes), context)
    assert answer["statusCode"] == 200, answer["body"]
    return dict(answer_json(answer))


def read(token: str, resource: str, path: str, context: Any, **params: str) -> dict[str, Any]:
    answer = read_api_handler(api_event("GET", resource, path, path_params=params or None, token=token), context)
    assert answer["statusCode"] == 200, answer["body"]
    return dict(answer_json(answer))


def live_now(project: Any, context: Any) -> list[dict[str, Any]]:
    return list(read(project.token, "/v1/calls/live", "/v1/calls/live", context)["calls"])


def test_ringing_accepted_history_through_the_handlers(project: Any, lambda_context: Any) -> None:
    # When the PBX posts RINGING, ACCEPTED, then the history of the call
    rang = deliver(lambda_context, "zeon_event_ringing.json")
    calls_while_ringing = live_now(project, lambda_context)
    took = deliver(lambda_context, "zeon_event_accepted.json")
    calls_while_talking = live_now(project, lambda_context)
    recorded = deliver(lambda_context, "zeon_history_answered.json")
    client_id = rang["client_id"]
    # Then the events answered the live state, the history a new call of the same client
    assert rang == {"result": 1, "call_key": CALL, "client_id": client_id, "live": "ringing", "changed": True}
    assert (took["live"], took["changed"], recorded["duplicate"], recorded["client_id"]) == (
        "answered", True, False, client_id)  # fmt: skip
    # And GET /v1/calls/live showed the call ringing, then in talk, then not at all
    assert [(c["call_key"], c["state"], c["employee"], c["client_id"], c["client_phone"], c["direction"])
            for c in calls_while_ringing] == [(CALL, "ringing", "346", client_id, PHONE, "in")]  # fmt: skip
    assert [c["state"] for c in calls_while_talking] == ["answered"]
    assert live_now(project, lambda_context) == []
    # And the call is one answered call with one notification, the completion
    call = read(project.token, "/v1/calls/{call_id}", f"/v1/calls/{CALL}", lambda_context, call_id=CALL)
    assert (call["status"], call["direction"], call["talk_seconds"], call["picked_up"], call["transferred"]) == (
        "answered", "in", 155, False, False)  # fmt: skip
    card = read(project.token, "/v1/clients/{client_id}", f"/v1/clients/{client_id}", lambda_context,
                client_id=client_id)  # fmt: skip
    assert call["record_link"] == "https://z138.fpg.ru/zeon/records/2024/03/01/1709290800.2001.mp3"
    stable = call["recording"]["url"]  # our stable link to the recording (issue 25), on the API's own base
    assert stable.startswith("https://abcdef1234.execute-api.eu-central-1.amazonaws.com/dev/r/")
    assert [note["text"] for note in card["dialog"]] == [
        f"Звонок завершён · входящий · 02:35 · сотрудник 346 · запись: {stable}"
    ]
    assert card["variables"] == {"iptelefon_call_record_link": stable}


def test_events_out_of_order_and_repeated_change_nothing_twice(project: Any, lambda_context: Any) -> None:
    answers = [
        deliver(lambda_context, "zeon_event_accepted.json"),
        deliver(lambda_context, "zeon_event_ringing.json"),  # late: no going back
        deliver(lambda_context, "zeon_event_accepted.json"),  # a repeat
        deliver(lambda_context, "zeon_history_answered.json"),
        deliver(lambda_context, "zeon_event_ringing.json"),  # after the history
        deliver(lambda_context, "zeon_history_answered.json"),  # a replay
    ]
    assert [(a.get("live"), a.get("changed"), a.get("duplicate")) for a in answers] == [
        ("answered", True, None),
        ("answered", False, None),
        ("answered", False, None),
        (None, None, False),
        ("ended", False, None),
        (None, None, True),
    ]
    assert live_now(project, lambda_context) == []
    card = read(project.token, "/v1/clients/{client_id}", f"/v1/clients/{answers[0]['client_id']}", lambda_context,
                client_id=answers[0]["client_id"])  # fmt: skip
    assert len(card["dialog"]) == 1


def test_a_no_answer_history_is_a_missed_incoming_call(project: Any, lambda_context: Any) -> None:
    recorded = deliver(lambda_context, "zeon_history_no_answer.json")
    call = read(project.token, "/v1/calls/{call_id}", f"/v1/calls/{recorded['call_key']}", lambda_context,
                call_id=recorded["call_key"])  # fmt: skip
    assert (call["status"], call["direction"], call["talk_seconds"], call["record_link"]) == ("missed", "in", 0, None)


def test_the_crm_token_is_in_no_stored_item(project: Any, lambda_context: Any) -> None:
    deliver(lambda_context, "zeon_event_ringing.json")
    deliver(lambda_context, "zeon_history_answered.json")
    refused = webhook_handler(zeon("zeon_event_ringing.json", callid=None), lambda_context)
    assert refused["statusCode"] == 400 and TOKEN not in refused["body"]
    items = get_storage().query(project_pk("proj-a"))
    raw = get_storage().get(project_pk("proj-a"), call_sk(CALL))["raw"]  # type: ignore[index]
    assert json.loads(raw["body"])["token"] == "***"
    assert TOKEN not in json.dumps(items, default=str)
    assert any(item["sk"].startswith("REJECTED#") for item in items)  # the unreadable event is kept, blanked


def test_an_unreadable_event_is_a_400_naming_the_field_and_kept(project: Any, lambda_context: Any) -> None:
    answer = webhook_handler(zeon("zeon_event_ringing.json", **{"call-status": "HANGUP"}), lambda_context)
    assert answer["statusCode"] == 400
    body = answer_json(answer)
    assert (body["error"], body["details"][0]["field"]) == ("validation_error", "call-status")
    rejected = get_storage().query(project_pk("proj-a"), "REJECTED#")
    assert [json.loads(r["body"])["call-status"] for r in rejected] == ["HANGUP"]
    assert live_now(project, lambda_context) == []


def test_the_attempt_read_says_its_call_is_live(project: Any, fake_pbx: Any, lambda_context: Any) -> None:
    # Given a bot's call the PBX started under its own call id
    started = employee_call_handler(
        api_event("POST", "/v1/calls/employee", "/v1/calls/employee", token=project.token,
                  body={"client_phone": PHONE, "short_employee_phone": "346"}),
        lambda_context,
    )  # fmt: skip
    attempt_id, pbx_call_id = answer_json(started)["attempt_id"], answer_json(started)["pbx_call_id"]
    outgoing = {"callid": pbx_call_id, "call-type": "OUT"}

    def attempt() -> dict[str, Any]:
        return read(project.token, "/v1/calls/{call_id}", f"/v1/calls/{attempt_id}", lambda_context,
                    call_id=attempt_id)  # fmt: skip

    # When the PBX reports the call ringing, answered, then over
    before = attempt()
    deliver(lambda_context, "zeon_event_ringing.json", **outgoing)
    while_ringing = attempt()
    deliver(lambda_context, "zeon_event_accepted.json", **outgoing)
    while_talking = attempt()
    deliver(lambda_context, "zeon_history_answered.json", **outgoing)
    after = attempt()
    # Then the attempt said so each time; once completed it has its call and no live state
    assert [a["live"] for a in (before, while_ringing, while_talking, after)] == [None, "ringing", "answered", None]
    assert (after["status"], after["completed_by_call_key"]) == ("completed", pbx_call_id)


def test_a_call_read_by_its_key_while_it_rings(project: Any, lambda_context: Any) -> None:
    deliver(lambda_context, "zeon_event_ringing.json")
    shown = read(project.token, "/v1/calls/{call_id}", f"/v1/calls/{CALL}", lambda_context, call_id=CALL)
    assert (shown["record"], shown["state"], shown["call_key"], shown["client_phone_e164"]) == (
        "live", "ringing", CALL, "+" + PHONE)  # fmt: skip
    assert "raw" not in shown and "version" not in shown and "expires_at" not in shown
