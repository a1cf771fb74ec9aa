"""The PBX simulator's two dialects (issue 19): `zeon` (the public integration's, the default) and `classic`.

Requests are built here with the adapter's own encoding and hash (the bytes a real connector sends), and the replies
read raw: the connector's reader is not the subject, the simulator's words are.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fixtures.webhook_receiver import WebhookReceiver
from support import eventually

from devstack.pbx_simulator import DEFAULT_CRM_TOKEN, PbxSimulator
from iptelefon.adapters.pbx import body_hash, encode_body

SECRET = "s3cr3t"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        yield client


@pytest.fixture
def zeon() -> Iterator[PbxSimulator]:
    with PbxSimulator(SECRET, webhook_delay_seconds=0) as sim:
        yield sim


@pytest.fixture
def classic() -> Iterator[PbxSimulator]:
    with PbxSimulator(SECRET, dialect="classic", webhook_delay_seconds=0) as sim:
        yield sim


def call(
    http: httpx.Client, sim: PbxSimulator, method: str, params: dict[str, str] | None = None, *, secret: str = SECRET
) -> httpx.Response:
    """One start.php request, hash mode: `hash = md5(body + secret)` appended last."""
    body = encode_body([("topic", "base"), ("method", method), *(params or {}).items()])
    content = f"{body}&hash={body_hash(body, secret)}"
    return http.post(sim.url, content=content, headers={"Content-Type": "application/x-www-form-urlencoded"})


def bearer_call(http: httpx.Client, sim: PbxSimulator, method: str, token: str) -> httpx.Response:
    body = encode_body([("topic", "base"), ("method", method)])
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {token}"}
    return http.post(sim.url, content=body, headers=headers)


# --- zeon replies ------------------------------------------------------------------------------------------------


def test_zeon_is_the_default_dialect(zeon: PbxSimulator, http: httpx.Client) -> None:
    assert zeon.config["dialect"] == "zeon"
    assert http.get(f"{zeon.base_url}/_sim/config").json()["dialect"] == "zeon"


def test_zeon_call_me_starts_a_call_and_answers_code_and_callid(zeon: PbxSimulator, http: httpx.Client) -> None:
    # When the employee's extension and the client are given as src and dst
    answer = call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"})

    # Then the reply is the public integration's: code success and a call id, nothing else
    reply = answer.json()
    assert answer.status_code == 200
    assert set(reply) == {"code", "callid"}
    assert reply["code"] == "success" and reply["callid"]
    (request,) = zeon.requests
    assert (request["method"], request["params"], request["valid"]) == (
        "call-me",
        {"src": "346", "dst": "79004443322"},
        True,
    )
    assert request["dialect"] == "zeon"


@pytest.mark.parametrize(
    ("params", "missing"),
    [({"src": "346"}, "dst"), ({"dst": "79004443322"}, "src"), ({}, "src, dst")],
)
def test_zeon_call_me_without_its_params_is_a_code_error(
    params: dict[str, str], missing: str, zeon: PbxSimulator, http: httpx.Client
) -> None:
    assert call(http, zeon, "call-me", params).json() == {"code": "error", "text": f"missing parameter: {missing}"}


def test_zeon_ping_answers_text_pong(zeon: PbxSimulator, http: httpx.Client) -> None:
    assert call(http, zeon, "ping").json() == {"text": "pong"}


def test_zeon_get_points_is_a_bare_list_of_extensions(zeon: PbxSimulator, http: httpx.Client) -> None:
    # Given the default extensions, then extensions set over the control API
    assert call(http, zeon, "get-points").json() == ["346", "347", "348"]
    http.post(f"{zeon.base_url}/_sim/config", json={"points": ["101", "102"]})

    # Then get-points lists what is set now
    assert call(http, zeon, "get-points").json() == ["101", "102"]


def test_zeon_method_list_names_call_me_and_not_the_classic_methods(zeon: PbxSimulator, http: httpx.Client) -> None:
    methods = call(http, zeon, "get-method-list").json()["data"]
    assert {"call-me", "ping", "get-points", "get-method-list"} <= set(methods)
    assert "call-employee" not in methods and "call-group" not in methods


@pytest.mark.parametrize("method", ["call-employee", "call-group", "call-everyone"])
def test_zeon_refuses_an_unknown_method_in_its_words(method: str, zeon: PbxSimulator, http: httpx.Client) -> None:
    assert call(http, zeon, method, {"ext": "346", "phone": "79004443322"}).json() == {
        "code": "error",
        "text": "unknown method",
    }


def test_zeon_refuses_a_wrong_hash_in_its_words(zeon: PbxSimulator, http: httpx.Client) -> None:
    answer = call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"}, secret="wrong")
    assert answer.json() == {"code": "error", "text": "invalid hash"}
    assert zeon.requests[0]["valid"] is False


def test_zeon_takes_a_bearer_token_and_refuses_a_wrong_one(zeon: PbxSimulator, http: httpx.Client) -> None:
    assert bearer_call(http, zeon, "ping", SECRET).json() == {"text": "pong"}
    assert bearer_call(http, zeon, "ping", "wrong").json() == {"code": "error", "text": "invalid token"}
    assert [(r["auth"], r["valid"]) for r in zeon.requests] == [("bearer", True), ("bearer", False)]


# --- classic replies ---------------------------------------------------------------------------------------------


def test_classic_get_points_wraps_the_extensions_in_result_and_data(classic: PbxSimulator, http: httpx.Client) -> None:
    assert call(http, classic, "get-points").json() == {"result": 1, "data": ["346", "347", "348"]}


def test_classic_answers_as_before_and_does_not_know_call_me(classic: PbxSimulator, http: httpx.Client) -> None:
    started = call(http, classic, "call-employee", {"ext": "346", "phone": "79004443322"}).json()
    assert started["result"] == 1 and started["data"]["call_id"]
    assert call(http, classic, "ping").json() == {"result": 1, "data": "pong"}
    assert call(http, classic, "call-me", {"src": "346", "dst": "79004443322"}).json() == {
        "result": 0,
        "text": "unknown method",
    }
    assert call(http, classic, "ping", secret="wrong").json() == {"result": 0, "text": "invalid hash"}


# --- switching and faults ----------------------------------------------------------------------------------------


def test_the_dialect_is_switched_at_run_time(zeon: PbxSimulator, http: httpx.Client) -> None:
    # When the dialect is switched to classic over the control API
    switched = http.post(f"{zeon.base_url}/_sim/config", json={"dialect": "classic"})

    # Then the next reply is classic, and back
    assert switched.json()["dialect"] == "classic"
    assert call(http, zeon, "ping").json() == {"result": 1, "data": "pong"}
    http.post(f"{zeon.base_url}/_sim/config", json={"dialect": "zeon"})
    assert call(http, zeon, "ping").json() == {"text": "pong"}


@pytest.mark.parametrize(
    "body",
    [{"dialect": "asterisk"}, {"dialect": "classic", "answer": "maybe"}, {"points": []}, {"transferred": True}],
    ids=["unknown dialect", "half valid", "no points", "misspelt setting"],
)
def test_a_bad_config_is_refused_and_nothing_changes(
    body: dict[str, Any], zeon: PbxSimulator, http: httpx.Client
) -> None:
    before = zeon.config
    answer = http.post(f"{zeon.base_url}/_sim/config", json=body)
    assert answer.status_code == 400 and answer.json()["error"]
    assert zeon.config == before


def test_a_simulator_cannot_be_built_with_an_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="dialect must be one of zeon, classic"):
        PbxSimulator(SECRET, dialect="asterisk")


@pytest.mark.parametrize(
    ("dialect", "refusal"),
    [("zeon", {"code": "error", "text": "Нет линий"}), ("classic", {"result": 0, "text": "Нет линий"})],
)
def test_the_refusal_fault_answers_in_the_dialects_words(
    dialect: str, refusal: dict[str, Any], zeon: PbxSimulator, http: httpx.Client
) -> None:
    zeon.configure(dialect=dialect)
    zeon.set_fault("result_0", text="Нет линий")
    assert call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"}).json() == refusal


@pytest.mark.parametrize("dialect", ["zeon", "classic"])
def test_garbage_is_an_unreadable_html_page_in_both_dialects(
    dialect: str, zeon: PbxSimulator, http: httpx.Client
) -> None:
    zeon.configure(dialect=dialect)
    zeon.set_fault("garbage")
    answer = call(http, zeon, "ping")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        answer.json()


@pytest.mark.parametrize("dialect", ["zeon", "classic"])
def test_unknown_json_is_valid_json_of_no_known_shape(dialect: str, zeon: PbxSimulator, http: httpx.Client) -> None:
    # Given the fault switched on over the control API
    zeon.configure(dialect=dialect)
    assert http.post(f"{zeon.base_url}/_sim/fault", json={"mode": "unknown_json"}).status_code == 200

    # When a call is started, then the reply is JSON without result, code, callid or text; the request was recorded
    reply = call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"}).json()
    assert reply == {"status": "queued"}
    assert [r["fault"] for r in zeon.requests] == ["unknown_json"]


# --- the call's webhooks -----------------------------------------------------------------------------------------

EVENT_KEYS = ["cmd", "callid", "call-type", "call-status", "exten", "phone", "token"]
HISTORY_KEYS = [
    "cmd",
    "calldate",
    "callid",
    "call-type",
    "call-status",
    "exten",
    "phone",
    "link",
    "duration",
    "missed",
    "pickedup",
    "transfered",
    "token",
]


def test_an_answered_zeon_call_posts_ringing_accepted_then_history_as_json_with_honest_gaps(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    # Given a zeon PBX posting to the receiver, ringing 0.2 s and talking 0.3 s
    zeon.configure(webhook_url=webhook_receiver.url, ring_seconds=0.2, talk_seconds=0.3)

    # When employee 346 calls the client
    started = time.monotonic()
    callid = call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"}).json()["callid"]

    # Then three JSON webhooks arrive, in order, with exactly the public integration's keys
    ringing, accepted, history = webhook_receiver.take(3)
    assert {r.content_type for r in (ringing, accepted, history)} == {"application/json"}
    assert list(ringing.json) == list(accepted.json) == EVENT_KEYS
    assert ringing.json == {
        "cmd": "event",
        "callid": callid,
        "call-type": "OUT",
        "call-status": "RINGING",
        "exten": "346",
        "phone": "79004443322",
        "token": DEFAULT_CRM_TOKEN,
    }
    assert accepted.json == {**ringing.json, "call-status": "ACCEPTED"}
    assert list(history.json) == HISTORY_KEYS
    assert history.json | {"calldate": None} == {
        "cmd": "history",
        "calldate": None,
        "callid": callid,
        "call-type": "OUT",
        "call-status": "ANSWERED",
        "exten": "346",
        "phone": "79004443322",
        "link": f"{zeon.base_url}/records/{callid}.mp3",
        "duration": 83,
        "missed": "false",
        "pickedup": "false",
        "transfered": "false",
        "token": DEFAULT_CRM_TOKEN,
    }
    assert datetime.strptime(history.json["calldate"], "%Y-%m-%d %H:%M:%S")
    # And the gaps are the configured ones (a loose upper bound: two cores shared with other test runs)
    assert ringing.at - started < 0.2
    assert 0.2 <= accepted.at - ringing.at < 1.0
    assert 0.3 <= history.at - accepted.at < 1.0
    assert webhook_receiver.nothing_more()


def test_the_calldate_is_moscow_time_of_the_call_start(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    zeon.configure(webhook_url=webhook_receiver.url)
    call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"})
    history = webhook_receiver.take(3)[-1].json
    moscow = datetime.strptime(history["calldate"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone(timedelta(hours=3)))
    assert abs((datetime.now(UTC) - moscow).total_seconds()) < 5


def test_the_gaps_follow_webhook_delay_seconds_when_not_set(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    # Given only the classic knob: 0.6 s from the call start to its end
    zeon.configure(webhook_url=webhook_receiver.url, webhook_delay_seconds=0.6)
    call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"})
    ringing, accepted, history = webhook_receiver.take(3)
    # Then it rings a third of it and talks the rest
    assert 0.2 <= accepted.at - ringing.at < 0.8
    assert 0.4 <= history.at - accepted.at < 1.0


@pytest.mark.parametrize(("answer", "status"), [("no_answer", "NO ANSWER"), ("busy", "BUSY")])
def test_an_unanswered_zeon_call_rings_then_ends_without_accepted_or_link(
    answer: str, status: str, zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    # Given the next calls set not to be answered, over the control API
    http.post(f"{zeon.base_url}/_sim/config", json={"webhook_url": webhook_receiver.url, "answer": answer})

    # When a call is started
    call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"})

    # Then it rings, and ends without ACCEPTED, without a recording, with no talk; an outgoing call is not "missed"
    ringing, history = webhook_receiver.take(2)
    assert ringing.json["call-status"] == "RINGING"
    assert history.json["call-status"] == status
    assert "link" not in history.json
    assert (history.json["duration"], history.json["missed"]) == (0, "false")
    assert list(history.json) == [key for key in HISTORY_KEYS if key != "link"]
    assert webhook_receiver.nothing_more()


def test_transfered_and_pickedup_are_reported_as_set(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    config = http.post(
        f"{zeon.base_url}/_sim/config", json={"webhook_url": webhook_receiver.url, "transfered": True, "pickedup": True}
    ).json()
    assert (config["transfered"], config["pickedup"]) == (True, True)
    call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"})
    history = webhook_receiver.take(3)[-1].json
    assert (history["transfered"], history["pickedup"]) == ("true", "true")


def test_a_group_number_as_src_rings_two_members_under_one_callid_and_the_group_member_answers(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    # Given 347 answers group calls
    zeon.configure(webhook_url=webhook_receiver.url, group_member="347")

    # When src is a group's number (not one of the extensions)
    callid = call(http, zeon, "call-me", {"src": "3", "dst": "79004443322"}).json()["callid"]

    # Then another member rings first, then the group member, who answers; one call id throughout
    posts = [r.json for r in webhook_receiver.take(4)]
    assert [(p["cmd"], p.get("call-status"), p["exten"]) for p in posts] == [
        ("event", "RINGING", "346"),
        ("event", "RINGING", "347"),
        ("event", "ACCEPTED", "347"),
        ("history", "ANSWERED", "347"),
    ]
    assert {p["callid"] for p in posts} == {callid}


@pytest.mark.parametrize(
    ("answer", "status", "missed"), [("answered", "ANSWERED", "false"), ("no_answer", "NO ANSWER", "true")]
)
def test_an_incoming_zeon_call_names_the_caller_and_a_missed_one_is_missed(
    answer: str,
    status: str,
    missed: str,
    zeon: PbxSimulator,
    http: httpx.Client,
    webhook_receiver: WebhookReceiver,
) -> None:
    # Given a zeon PBX posting to the receiver
    zeon.configure(webhook_url=webhook_receiver.url)

    # When a client calls extension 347
    started = http.post(
        f"{zeon.base_url}/_sim/incoming", json={"phone": "79001234567", "exten": "347", "answer": answer}
    )

    # Then its webhooks say IN, the caller as phone, the extension rung; unanswered it is missed
    callid = started.json()["callid"]
    posts = [r.json for r in webhook_receiver.take(3 if answer == "answered" else 2)]
    assert {(p["callid"], p["call-type"], p["phone"], p["exten"]) for p in posts} == {
        (callid, "IN", "79001234567", "347")
    }
    assert (posts[-1]["call-status"], posts[-1]["missed"]) == (status, missed)
    assert webhook_receiver.nothing_more()


def test_the_webhooks_are_listed_with_the_connectors_answers_in_order(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    zeon.configure(webhook_url=webhook_receiver.url)
    callid = http.post(f"{zeon.base_url}/_sim/incoming", json={"phone": "79001234567"}).json()["callid"]
    webhook_receiver.take(3)
    listed = eventually(lambda: w if len(w := http.get(f"{zeon.base_url}/_sim/webhooks").json()) == 3 else None)
    assert [(w["call_id"], w["cmd"], w["call_status"], w["status"]) for w in listed] == [
        (callid, "event", "RINGING", 200),
        (callid, "event", "ACCEPTED", 200),
        (callid, "history", "ANSWERED", 200),
    ]
    assert [w["answer"] for w in listed] == [
        {"result": 1, "seen": "RINGING"},
        {"result": 1, "seen": "ACCEPTED"},
        {"result": 1, "seen": "ANSWERED"},
    ]
    assert listed[0]["payload"]["exten"] == "346"  # the first extension when none is named


def test_a_refused_webhook_is_listed_with_its_status_and_answer(zeon: PbxSimulator, http: httpx.Client) -> None:
    # Given the webhook URL points at the simulator's own 404
    zeon.configure(webhook_url=f"{zeon.base_url}/nowhere")
    http.post(f"{zeon.base_url}/_sim/incoming", json={"phone": "79001234567", "answer": "busy"})
    listed = eventually(lambda: w if len(w := zeon.webhooks) == 2 else None)
    assert [(w["status"], w["answer"]) for w in listed] == [(404, {"error": "not found"})] * 2


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "+7 900"},
        {},
        {"phone": "79001234567", "exten": "3; drop"},
        {"phone": "79001234567", "answer": "x"},
        {"phone": "79001234567", "calltype": "IN"},
    ],
    ids=["bad phone", "no phone", "bad exten", "bad answer", "unknown field"],
)
def test_a_bad_incoming_call_is_refused(body: dict[str, Any], zeon: PbxSimulator, http: httpx.Client) -> None:
    answer = http.post(f"{zeon.base_url}/_sim/incoming", json=body)
    assert answer.status_code == 400 and answer.json()["error"]


def test_a_classic_call_posts_one_form_completion_and_no_events(
    classic: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    classic.configure(webhook_url=webhook_receiver.url)
    call_id = call(http, classic, "call-employee", {"ext": "346", "phone": "79004443322"}).json()["data"]["call_id"]
    (completion,) = webhook_receiver.take(1)
    assert completion.content_type == "application/x-www-form-urlencoded"
    assert (completion.form["id"], completion.form["calltype"], completion.form["talktime"]) == (
        call_id,
        "OUT",
        "00:01:23",
    )
    assert "token" not in completion.form and "cmd" not in completion.form
    assert webhook_receiver.nothing_more()
    assert [(w["cmd"], w["call_status"]) for w in classic.webhooks] == [("completion", None)]


@pytest.mark.parametrize("answer", ["answered", "no_answer"])
def test_an_incoming_classic_call_is_one_completion_with_calltype_in(
    answer: str, classic: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    classic.configure(webhook_url=webhook_receiver.url)
    callid = http.post(
        f"{classic.base_url}/_sim/incoming", json={"phone": "79001234567", "exten": "348", "answer": answer}
    ).json()["callid"]
    fields = webhook_receiver.take(1)[0].form
    assert (fields["id"], fields["calltype"], fields["src"], fields["client"], fields["exten"]) == (
        callid,
        "IN",
        "79001234567",
        "79001234567",
        "348",
    )
    if answer == "answered":
        assert (fields["talktime"], fields["lost"]) == ("00:01:23", "0") and fields["link"]
    else:
        assert (fields["talktime"], fields["lost"], fields["disposition"]) == ("00:00:00", "1", "NO ANSWER")
        assert "link" not in fields
    assert webhook_receiver.nothing_more()


def test_the_crm_token_is_a_setting(http: httpx.Client, webhook_receiver: WebhookReceiver) -> None:
    with PbxSimulator(SECRET, webhook_url=webhook_receiver.url, webhook_delay_seconds=0, crm_token="my-crm-key") as sim:
        http.post(f"{sim.base_url}/_sim/incoming", json={"phone": "79001234567", "answer": "busy"})
        assert {r.json["token"] for r in webhook_receiver.take(2)} == {"my-crm-key"}


def test_no_webhook_url_posts_nothing_but_the_call_still_ends(zeon: PbxSimulator, http: httpx.Client) -> None:
    callid = call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"}).json()["callid"]
    (ended,) = eventually(lambda: zeon.calls or None)
    assert (ended["callid"], ended["call-status"]) == (callid, "ANSWERED")
    assert zeon.webhooks == []


def test_a_running_call_keeps_its_dialect_and_posts_where_the_url_points_now(
    zeon: PbxSimulator, http: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    # Given a zeon call that rings 0.3 s while no webhook URL is set (its RINGING goes nowhere)
    zeon.configure(ring_seconds=0.3, talk_seconds=0)
    call(http, zeon, "call-me", {"src": "346", "dst": "79004443322"})

    # When, while it rings, the URL is set and the dialect switched
    zeon.configure(webhook_url=webhook_receiver.url, dialect="classic")

    # Then the rest of the call reaches the new URL, still in the dialect it started in
    accepted, history = webhook_receiver.take(2)
    assert [(r.json["cmd"], r.json["call-status"]) for r in (accepted, history)] == [
        ("event", "ACCEPTED"),
        ("history", "ANSWERED"),
    ]
