"""Issue 19's suite: the real ZEON dialect and contract §1's classic one, end to end through the local gateway.

One local stack per dialect (`make run PBX_DIALECT=zeon|classic`: the simulator answers and posts webhooks in it, the
demo project is seeded with its method names). Each case of the issue is driven as a PBX and a bot would drive it:
a bot's call through `/v1/calls/employee`, the simulator's replies and webhooks, the reads a bot and the console use.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import LocalStackProcess, eventually

DIALECTS = ("zeon", "classic")
# The simulator's gaps between a call's webhooks: long enough to see the call live, short enough for a test.
RING_SECONDS = 1.5
TALK_SECONDS = 1.5


@pytest.fixture(scope="module", params=DIALECTS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    dialect = request.param
    local = LocalStackProcess.start(tmp_path_factory.mktemp(f"stack-{dialect}"), "--pbx-dialect", dialect)
    info = local.wait_until_running(timeout=60)
    yield info
    local.stop(timeout=20)


@pytest.fixture
def sim(stack: dict[str, Any]) -> Iterator[str]:
    """The simulator's control URL, its requests, webhooks and faults cleared, calls answered, short gaps."""
    control = stack["pbx_control_url"]
    httpx.delete(f"{control}/requests")
    httpx.delete(f"{control}/webhooks")
    httpx.post(f"{control}/fault", json={"mode": "none"})
    config = {"answer": "answered", "ring_seconds": RING_SECONDS, "talk_seconds": TALK_SECONDS}
    assert httpx.post(f"{control}/config", json=config).status_code == 200
    yield control
    httpx.post(f"{control}/fault", json={"mode": "none"})


def bot(stack: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack['bot_token']}"}


def new_phone() -> str:
    return "7900" + str(uuid.uuid4().int)[:7]


def start_employee_call(stack: dict[str, Any], phone: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{stack['api_url']}/v1/calls/employee",
        json={"client_phone": phone, "short_employee_phone": "346"},
        headers={**bot(stack), **headers},
        timeout=30,
    )


def webhooks_of(control: str, callid: str) -> list[dict[str, Any]]:
    return [hook for hook in httpx.get(f"{control}/webhooks").json() if hook["call_id"] == callid]


def ended(control: str, callid: str) -> list[dict[str, Any]] | None:
    """The call's webhooks once its completion (zeon `history`, classic the one form) has been answered."""
    hooks = webhooks_of(control, callid)
    last = hooks[-1] if hooks else None
    done = last is not None and last["status"] is not None and last["cmd"] in ("history", "completion")
    return hooks if done else None


def read(stack: dict[str, Any], path: str) -> dict[str, Any]:
    answer = httpx.get(f"{stack['api_url']}{path}", headers=bot(stack), timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def post_webhook(stack: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(stack["webhook_url"], json=payload, timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# -- starting a call ---------------------------------------------------------------------------------------------------
def test_a_started_call_answers_202_with_the_pbx_call_id_after_one_request(stack: dict[str, Any], sim: str) -> None:
    phone = new_phone()

    started = start_employee_call(stack, phone)

    assert started.status_code == 202, started.text
    body = started.json()
    assert body["status"] == "initiated" and body["pbx_call_id"]
    (request,) = httpx.get(f"{sim}/requests").json()
    if stack["pbx_dialect"] == "zeon":
        assert (request["method"], request["params"]) == ("call-me", {"src": "346", "dst": phone})
    else:
        assert (request["method"], request["params"]) == ("call-employee", {"ext": "346", "phone": phone})
    # The id the PBX gave is the id its webhooks carry.
    hooks = eventually(lambda: ended(sim, body["pbx_call_id"]), within=20)
    assert all(hook["call_id"] == body["pbx_call_id"] for hook in hooks)


def test_a_refused_call_is_502_naming_the_pbx_words(stack: dict[str, Any], sim: str) -> None:
    httpx.post(f"{sim}/fault", json={"mode": "result_0", "text": "Абонент занят"})

    refused = start_employee_call(stack, new_phone())

    assert refused.status_code == 502, refused.text
    assert "Абонент занят" in refused.json()["message"]


@pytest.mark.parametrize("fault", ["garbage", "unknown_json"])
def test_an_unreadable_reply_is_unknown_and_a_repeat_never_rings_again(
    stack: dict[str, Any], sim: str, fault: str
) -> None:
    httpx.post(f"{sim}/fault", json={"mode": fault})
    phone = new_phone()
    key = str(uuid.uuid4())

    first = start_employee_call(stack, phone, **{"Idempotency-Key": key})
    again = start_employee_call(stack, phone, **{"Idempotency-Key": key})

    assert first.status_code == 202, first.text
    assert first.json()["status"] == "unknown"
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert len(httpx.get(f"{sim}/requests").json()) == 1
    attempt = read(stack, f"/v1/calls/{first.json()['attempt_id']}")
    assert attempt["status"] == "unknown"


# -- the call's life: live events, then its completion -----------------------------------------------------------------
def test_a_call_rings_is_answered_and_completes_once(stack: dict[str, Any], sim: str) -> None:
    phone = new_phone()
    started = start_employee_call(stack, phone).json()
    callid = started["pbx_call_id"]

    if stack["pbx_dialect"] == "zeon":
        # While it rings and while they talk, the project's live calls show it
        ringing = eventually(lambda: _live(stack, callid, "ringing"), within=10)
        assert ringing["client_phone"] == phone and ringing["direction"] == "out"
        eventually(lambda: _live(stack, callid, "answered"), within=10)
    hooks = eventually(lambda: ended(sim, callid), within=20)

    completion = hooks[-1]["answer"]
    assert completion["duplicate"] is False
    if stack["pbx_dialect"] == "zeon":
        assert [hook["call_status"] for hook in hooks] == ["RINGING", "ACCEPTED", "ANSWERED"]
        assert [hook["answer"].get("live") for hook in hooks[:2]] == ["ringing", "answered"]
        assert not any("duplicate" in hook["answer"] for hook in hooks[:2])
        assert _live(stack, callid, None) is None  # no longer live
    call = read(stack, f"/v1/calls/{completion['call_key']}")
    assert (call["status"], call["direction"], call["employee"]) == ("answered", "out", "346")
    assert call["record_link"].endswith(f"/records/{callid}.mp3")
    client = read(stack, f"/v1/clients/{completion['client_id']}")
    stable = call["recording"]["url"]  # our stable link to the recording (issue 25): in the variable and the dialog
    assert [line for line in client["dialog"] if stable in str(line)] == client["dialog"][:1]
    assert len(client["dialog"]) == 1
    assert client["variables"]["iptelefon_call_record_link"] == stable
    attempt = read(stack, f"/v1/calls/{started['attempt_id']}")
    assert attempt["status"] == "completed"


def test_a_missed_incoming_call_is_kept_as_missed(stack: dict[str, Any], sim: str) -> None:
    httpx.post(f"{sim}/config", json={"answer": "no_answer"})
    phone = new_phone()

    callid = httpx.post(f"{sim}/incoming", json={"phone": phone, "exten": "346"}).json()["callid"]
    hooks = eventually(lambda: ended(sim, callid), within=20)

    completion = hooks[-1]["answer"]
    assert completion["duplicate"] is False
    call = read(stack, f"/v1/calls/{completion['call_key']}")
    assert (call["status"], call["direction"], call["client_phone"]) == ("missed", "in", phone)
    assert call.get("record_link") is None


def test_events_out_of_order_and_repeated_change_nothing_twice(stack: dict[str, Any], sim: str) -> None:
    # The webhook reads both dialects whatever the simulator speaks: the PBX's events are posted here by hand.
    phone, callid = new_phone(), f"e2e-{uuid.uuid4().hex[:12]}"
    event = {"cmd": "event", "callid": callid, "call-type": "IN", "exten": "346", "phone": phone}
    history = {
        "cmd": "history",
        "callid": callid,
        "calldate": "2026-12-01 10:00:00",
        "call-type": "IN",
        "call-status": "ANSWERED",
        "exten": "346",
        "phone": phone,
        "link": f"https://pbx.example/rec/{callid}.mp3",
        "duration": 42,
        "missed": "false",
        "pickedup": "false",
        "transfered": "true",
    }

    accepted = post_webhook(stack, {**event, "call-status": "ACCEPTED"})
    rang_late = post_webhook(stack, {**event, "call-status": "RINGING"})  # RINGING after ACCEPTED: no step back
    completed = post_webhook(stack, history)
    replayed = post_webhook(stack, history)
    after_end = post_webhook(stack, {**event, "call-status": "RINGING"})

    assert (accepted["live"], accepted["changed"]) == ("answered", True)
    assert (rang_late["live"], rang_late["changed"]) == ("answered", False)
    assert completed["duplicate"] is False and replayed["duplicate"] is True
    assert after_end["changed"] is False
    assert _live(stack, callid, None) is None
    client = read(stack, f"/v1/clients/{completed['client_id']}")
    assert len(client["dialog"]) == 1
    assert "переведён" in client["dialog"][0]["text"]
    call = read(stack, f"/v1/calls/{completed['call_key']}")
    assert (call["status"], call["direction"], call["talk_seconds"]) == ("answered", "in", 42)


def _live(stack: dict[str, Any], callid: str, state: str | None) -> dict[str, Any] | None:
    calls = read(stack, "/v1/calls/live")["calls"]
    found = next((call for call in calls if call["pbx_call_id"] == callid), None)
    if state is None:
        return found
    return found if found is not None and found["state"] == state else None
