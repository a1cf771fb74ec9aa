"""The real PbxClient over HTTP against the PBX simulator of the local stack (127.0.0.1 only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fixtures.webhook_receiver import WebhookReceiver
from support import eventually

from devstack.pbx_simulator import PbxSimulator
from iptelefon.adapters.pbx import PbxClient
from iptelefon.domain.errors import PbxError, PbxTimeout
from iptelefon.domain.models import PBX_CALL_NAMES
from iptelefon.domain.pbx_connection import PbxConnection

SECRET = "s3cr3t"
CLASSIC = PBX_CALL_NAMES["classic"]  # the names this simulator answers (contract section 1)


@pytest.fixture
def simulator() -> Iterator[PbxSimulator]:
    with PbxSimulator(SECRET, dialect="classic", webhook_delay_seconds=0) as sim:
        yield sim


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        yield client


@pytest.fixture
def pbx(http: httpx.Client) -> PbxClient:
    return PbxClient(http)


@pytest.fixture
def conn(simulator: PbxSimulator) -> PbxConnection:
    return PbxConnection(
        server_url=simulator.url,
        secret=SECRET,
        timeout_seconds=0.5,
        employee_method=CLASSIC.employee_method,
        group_method=CLASSIC.group_method,
        param_names=CLASSIC.param_names,
    )


def test_employee_call_starts_and_is_recorded_with_its_params(
    pbx: PbxClient, conn: PbxConnection, simulator: PbxSimulator
) -> None:
    # Given a running simulator
    # When an employee call is started with the real client
    started = pbx.start_employee_call(conn, "346", "79004443322")

    # Then it answers a call id and recorded one valid hash-mode request without the hash
    assert started.pbx_call_id
    (request,) = simulator.requests
    assert request["method"] == "call-employee"
    assert request["params"] == {"ext": "346", "phone": "79004443322"}
    assert (request["auth"], request["valid"]) == ("hash", True)


def test_group_call_starts_and_is_recorded_with_its_params(
    pbx: PbxClient, conn: PbxConnection, simulator: PbxSimulator
) -> None:
    # Given a running simulator
    # When a group call is started
    started = pbx.start_group_call(conn, "3", "79004443322")

    # Then the group call was recorded
    assert started.pbx_call_id
    (request,) = simulator.requests
    assert (request["method"], request["params"]) == ("call-group", {"group": "3", "phone": "79004443322"})


def test_hash_over_php_encoded_unicode_is_accepted(
    pbx: PbxClient, conn: PbxConnection, simulator: PbxSimulator
) -> None:
    # Given a parameter with spaces, a plus and cyrillic
    # When it is sent
    pbx.request(conn, "ping", {"note": "Иван + Мария ~"})

    # Then the simulator's hash over the raw bytes matched and the value decoded back
    (request,) = simulator.requests
    assert request["valid"] is True
    assert request["params"] == {"note": "Иван + Мария ~"}


def test_wrong_secret_is_rejected_with_invalid_hash(pbx: PbxClient, simulator: PbxSimulator) -> None:
    # Given a connection with the wrong secret
    conn = PbxConnection(server_url=simulator.url, secret="wrong")

    # When a call is started, then the PBX refuses it
    with pytest.raises(PbxError, match="invalid hash"):
        pbx.start_employee_call(conn, "346", "79004443322")
    assert simulator.requests[0]["valid"] is False


def test_bearer_mode_is_accepted(pbx: PbxClient, simulator: PbxSimulator) -> None:
    # Given a bearer-mode connection
    conn = PbxConnection(server_url=simulator.url, secret=SECRET, auth_mode="bearer")

    # When the PBX is pinged
    answer = pbx.ping(conn)

    # Then it answers and recorded a valid bearer request
    assert answer == "pong"
    assert (simulator.requests[0]["auth"], simulator.requests[0]["valid"]) == ("bearer", True)


def test_wrong_bearer_token_is_rejected_with_invalid_token(pbx: PbxClient, simulator: PbxSimulator) -> None:
    # Given a bearer-mode connection with the wrong secret
    conn = PbxConnection(server_url=simulator.url, secret="wrong", auth_mode="bearer")

    # When the PBX is pinged, then it refuses
    with pytest.raises(PbxError, match="invalid token"):
        pbx.ping(conn)


def test_method_list_names_the_call_methods(pbx: PbxClient, conn: PbxConnection) -> None:
    # Given a running simulator, when its methods are listed
    methods = pbx.method_list(conn)

    # Then the call-starting and history methods are there
    assert {"call-employee", "call-group", "get-calls", "get-calls-last-id", "ping", "get-method-list"} <= set(methods)


def test_unknown_method_is_a_pbx_error(pbx: PbxClient, conn: PbxConnection) -> None:
    # Given a running simulator, when an unknown method is called, then it is a PBX error
    with pytest.raises(PbxError, match="unknown method"):
        pbx.request(conn, "call-everyone", ())


def test_call_without_a_phone_is_a_pbx_error(pbx: PbxClient, conn: PbxConnection) -> None:
    # Given a running simulator, when an employee call lacks its phone, then the PBX names it
    with pytest.raises(PbxError, match="missing parameter: phone"):
        pbx.request(conn, "call-employee", {"ext": "346"})


def test_timeout_fault_gives_pbx_timeout_after_one_request(
    pbx: PbxClient, conn: PbxConnection, simulator: PbxSimulator
) -> None:
    # Given a PBX that reads the request and never answers
    simulator.set_fault("timeout")

    # When a call is started with a 0.5 s timeout
    with pytest.raises(PbxTimeout):
        pbx.start_employee_call(conn, "346", "79004443322")

    # Then exactly one request reached the PBX: no double start
    assert len(simulator.requests) == 1


@pytest.mark.parametrize("mode", ["http_500", "result_0", "garbage", "reset"])
def test_fault_gives_pbx_error_after_one_request(
    mode: str, pbx: PbxClient, conn: PbxConnection, simulator: PbxSimulator
) -> None:
    # Given a PBX in a fault mode
    simulator.set_fault(mode)

    # When a call is started
    with pytest.raises(PbxError):
        pbx.start_employee_call(conn, "346", "79004443322")

    # Then exactly one request reached the PBX: no double start
    assert len(simulator.requests) == 1


def test_result_0_fault_carries_the_pbx_text(pbx: PbxClient, conn: PbxConnection, simulator: PbxSimulator) -> None:
    # Given a PBX that refuses calls with its own words
    simulator.set_fault("result_0", text="Абонент недоступен")

    # When a call is started, then the error carries them
    with pytest.raises(PbxError, match="Абонент недоступен"):
        pbx.start_employee_call(conn, "346", "79004443322")


def test_stop_returns_while_a_timeout_fault_holds_a_request(pbx: PbxClient, conn: PbxConnection) -> None:
    # Given a simulator sleeping 30 s on an unanswered request
    sim = PbxSimulator(SECRET, dialect="classic").start()
    sim.set_fault("timeout", seconds=30)
    with pytest.raises(PbxTimeout):
        pbx.ping(PbxConnection(server_url=sim.url, secret=SECRET, timeout_seconds=0.2))

    # When it is stopped in the background
    stopper = threading.Thread(target=sim.stop)
    stopper.start()
    stopper.join(timeout=5)

    # Then stop() has returned instead of waiting out the sleep
    assert not stopper.is_alive()


def test_completion_webhook_is_posted_form_encoded(
    pbx: PbxClient,
    conn: PbxConnection,
    simulator: PbxSimulator,
    webhook_receiver: WebhookReceiver,
) -> None:
    # Given a simulator that completes calls to the receiver's webhook URL
    simulator.configure_webhook(webhook_receiver.url, 0)

    # When an employee call is started
    call_id = pbx.start_employee_call(conn, "346", "79004443322").pbx_call_id

    # Then a ZEON-style completion is posted as a form
    (post,) = webhook_receiver.take(1)
    assert post.content_type == "application/x-www-form-urlencoded"
    fields = post.form
    assert fields["id"] == fields["linkedid"] == call_id
    assert fields["calltype"] == "OUT"
    assert (fields["src"], fields["exten"], fields["members"]) == ("346", "346", "346")
    assert (fields["dst"], fields["client"]) == ("79004443322", "79004443322")
    assert (fields["talktime"], fields["lost"], fields["waiting"]) == ("00:01:23", "0", "0")
    assert fields["link"] == f"{simulator.base_url}/records/{call_id}.mp3"
    assert time.strptime(fields["calldate"], "%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("member", [None, "512"])
def test_group_call_completion_names_the_answering_member_not_the_group(
    member: str | None,
    pbx: PbxClient,
    conn: PbxConnection,
    http: httpx.Client,
    simulator: PbxSimulator,
    webhook_receiver: WebhookReceiver,
) -> None:
    # Given a simulator completing to the receiver, with the default answering member or one set over the control API
    config: dict[str, Any] = {"webhook_url": webhook_receiver.url, "webhook_delay_seconds": 0}
    if member:
        config["group_member"] = member
    assert http.post(f"{simulator.base_url}/_sim/config", json=config).json()["group_member"] == (member or "346")

    # When group 3 is called
    pbx.start_group_call(conn, "3", "79004443322")

    # Then the completion reports who talked as the employee, and the queue as the group
    fields = webhook_receiver.take(1)[0].form
    answered = member or "346"
    assert (fields["exten"], fields["members"], fields["src"], fields["group"]) == (answered, answered, answered, "3")


def test_an_invalid_group_member_is_refused_and_nothing_changes(http: httpx.Client, simulator: PbxSimulator) -> None:
    answer = http.post(
        f"{simulator.base_url}/_sim/config", json={"group_member": "3; drop", "webhook_delay_seconds": 5}
    )
    assert answer.status_code == 400
    assert simulator.config["group_member"] == "346"
    assert simulator.config["webhook_delay_seconds"] == 0


def test_webhook_outcome_and_completed_call_are_recorded(
    pbx: PbxClient,
    conn: PbxConnection,
    http: httpx.Client,
    simulator: PbxSimulator,
    webhook_receiver: WebhookReceiver,
) -> None:
    # Given a webhook configured over the control API
    config = {"webhook_url": webhook_receiver.url, "webhook_delay_seconds": 0}
    http.post(f"{simulator.base_url}/_sim/config", json=config)

    # When a group call is started and completes
    call_id = pbx.start_group_call(conn, "3", "79004443322").pbx_call_id
    webhooks = eventually(lambda: http.get(f"{simulator.base_url}/_sim/webhooks").json() or None)

    # Then the post's status is listed and get-calls returns the completed call
    assert (webhooks[0]["call_id"], webhooks[0]["status"]) == (call_id, 200)
    assert [c["id"] for c in pbx.request(conn, "get-calls", ()).data] == [call_id]


def test_record_link_serves_audio(
    pbx: PbxClient, conn: PbxConnection, http: httpx.Client, simulator: PbxSimulator
) -> None:
    # Given a completed call
    pbx.start_employee_call(conn, "346", "79004443322")
    (call,) = eventually(lambda: simulator.calls or None)

    # When its recording link is fetched
    response = http.get(call["link"])

    # Then it is some audio
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content


def test_fault_switched_over_http_applies(
    pbx: PbxClient, conn: PbxConnection, http: httpx.Client, simulator: PbxSimulator
) -> None:
    # Given a fault switched on over the control API
    answer = http.post(f"{simulator.base_url}/_sim/fault", json={"mode": "result_0", "text": "Нет линий"})

    # When a call is started, then the fault is in effect and readable back
    assert answer.status_code == 200
    with pytest.raises(PbxError, match="Нет линий"):
        pbx.start_employee_call(conn, "346", "79004443322")
    assert http.get(f"{simulator.base_url}/_sim/fault").json()["mode"] == "result_0"


def test_unknown_fault_mode_is_refused(http: httpx.Client, simulator: PbxSimulator) -> None:
    # Given a running simulator, when an unknown fault mode is posted, then it answers 400 and keeps its mode
    assert http.post(f"{simulator.base_url}/_sim/fault", json={"mode": "meltdown"}).status_code == 400
    assert simulator.fault["mode"] == "none"


def test_requests_are_listed_and_cleared_over_http(
    pbx: PbxClient, conn: PbxConnection, http: httpx.Client, simulator: PbxSimulator
) -> None:
    # Given one recorded request
    pbx.ping(conn)

    # When the requests are listed, then cleared
    listed = http.get(f"{simulator.base_url}/_sim/requests").json()
    cleared = http.delete(f"{simulator.base_url}/_sim/requests")

    # Then the list had it (without the hash) and is empty afterwards
    assert [(r["method"], r["params"]) for r in listed] == [("ping", {})]
    assert cleared.status_code == 200
    assert http.get(f"{simulator.base_url}/_sim/requests").json() == []


def test_traffic_brings_incoming_calls_by_themselves(
    simulator: PbxSimulator, webhook_receiver: WebhookReceiver
) -> None:
    # Given a simulator whose clients call in every second (at most 1.5 s apart), none before it is switched on
    simulator.configure_webhook(webhook_receiver.url, 0)
    assert webhook_receiver.nothing_more(wait=1.0)
    simulator.configure(traffic_seconds=1)
    # Then incoming calls arrive, each from a regular caller, with an outcome of the PBX's own words
    posts = webhook_receiver.take(2, within=5.0)
    assert [post.form["calltype"] for post in posts] == ["IN", "IN"]
    assert all(post.form["src"].startswith("7900444") for post in posts)
    # and a bad value is refused, the traffic off again stops them
    with pytest.raises(ValueError, match="traffic_seconds"):
        simulator.configure(traffic_seconds=0.2)
    simulator.configure(traffic_seconds=None)
    while not webhook_receiver.nothing_more(wait=0.6):  # a call started just before ends
        pass
    assert webhook_receiver.nothing_more(wait=2.0)
