"""The three call-starting routes through their real Lambda handlers (moto in-process; the PBX is the real simulator on
127.0.0.1 or a FakePbx behind httpx.MockTransport)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event

import employee_call.handler
from employee_call.handler import lambda_handler as employee_call_handler
from group_call.handler import lambda_handler as group_call_handler
from iptelefon.data.attempts import attempt_sk
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage, project_pk
from iptelefon.data.projects import get_project_store
from iptelefon.domain.models import Client
from read_api.handler import lambda_handler as read_api_handler

PHONE = "79004443322"
Route = tuple[Any, str, str, dict[str, str] | None, dict[str, Any]]

EMPLOYEE: Route = (
    employee_call_handler,
    "/v1/calls/employee",
    "/v1/calls/employee",
    None,
    {"client_phone": "+7 (900) 444-33-22", "short_employee_phone": "346"},
)
GROUP: Route = (
    group_call_handler,
    "/v1/calls/group",
    "/v1/calls/group",
    None,
    {"client_phone": "8 900 444 33 22", "group_id": "3"},
)
CARD: Route = (
    employee_call_handler,
    "/v1/clients/{client_id}/call",
    "/v1/clients/c-a/call",
    {"client_id": "c-a"},
    {"employee_id": "346"},
)
CALL_ROUTES = {"employee": EMPLOYEE, "group": GROUP, "client_card": CARD}


@pytest.fixture
def card_clients(project: Any, other_project: Any) -> None:
    """Client c-a in project A, client c-b in project B, both with PHONE."""
    store = ClientStore(get_storage())
    store.add(project.project, Client(id="c-a", channel="telephony", phone=PHONE, can_message=False))
    store.add(other_project.project, Client(id="c-b", channel="whatsapp", phone=PHONE))


def _call(
    route: Route, context: Any, token: str, *, key: str | None = None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    handler, resource, path, params, default_body = route
    headers = {"Idempotency-Key": key} if key is not None else None
    event = api_event(
        "POST", resource, path, path_params=params, body=body or default_body, headers=headers, token=token
    )
    return handler(event, context)  # type: ignore[no-any-return]


def _attempts(project_id: str) -> list[dict[str, Any]]:
    return get_storage().query(project_pk(project_id), attempt_sk(""))


# -- happy paths against the real simulator ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("route", "method", "params"),
    [
        ("employee", "call-employee", {"ext": "346", "phone": PHONE}),
        ("group", "call-group", {"group": "3", "phone": PHONE}),
        ("client_card", "call-employee", {"ext": "346", "phone": PHONE}),
    ],
)
def test_call_route_starts_one_call_on_the_pbx(
    route: str,
    method: str,
    params: dict[str, str],
    simulated_pbx: Any,
    project: Any,
    card_clients: None,
    lambda_context: Any,
) -> None:
    # Given the simulator as the project's PBX
    # When the route is called by the project's bot
    answer = _call(CALL_ROUTES[route], lambda_context, project.token)
    # Then 202 with our attempt id and the canonical phone
    body = answer_json(answer)
    assert answer["statusCode"] == 202
    assert (body["status"], body["client_phone"]) == ("initiated", PHONE)
    assert body["pbx_call_id"]
    assert body.get("method") == ("api" if route == "client_card" else None)
    # And the PBX got exactly one request with the right method, normalized params and a valid hash
    (request,) = simulated_pbx.requests
    assert (request["method"], request["params"], request["auth"], request["valid"]) == (method, params, "hash", True)
    # And the attempt is stored as initiated
    (attempt,) = _attempts("proj-a")
    assert (attempt["attempt_id"], attempt["status"]) == (body["attempt_id"], "initiated")


def test_card_call_app_method_answers_a_tel_uri(
    fake_pbx: Any, project: Any, card_clients: None, lambda_context: Any
) -> None:
    answer = _call(CARD, lambda_context, project.token, body={"employee_id": "soft"})
    assert answer["statusCode"] == 200
    assert answer_json(answer) == {"method": "app", "uri": "tel:+79004443322"}
    assert fake_pbx.requests == []


def test_card_call_disabled_method_is_403_calls_disabled(
    fake_pbx: Any, project: Any, card_clients: None, lambda_context: Any
) -> None:
    answer = _call(CARD, lambda_context, project.token, body={"employee_id": "off"})
    assert answer["statusCode"] == 403
    assert answer_json(answer)["error"] == "calls_disabled"
    assert fake_pbx.requests == []


def test_hash_in_the_request_matches_a_hand_computed_md5(fake_pbx: Any, project: Any, lambda_context: Any) -> None:
    # Given the project's PBX in hash mode; when a group call is started through the handler
    assert _call(GROUP, lambda_context, project.token)["statusCode"] == 202
    # Then the bytes sent are the form plus md5(form + secret)
    head = "topic=base&method=call-group&group=3&phone=79004443322"
    assert (
        fake_pbx.requests[0].content.decode() == f"{head}&hash={hashlib.md5((head + PBX_SECRET).encode()).hexdigest()}"
    )


# -- PBX faults --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", list(CALL_ROUTES))
@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [
        ("timeout", 504, "pbx_timeout"),
        ("http_500", 502, "pbx_error"),
        ("result_0", 502, "pbx_error"),
        ("reset", 502, "pbx_error"),
    ],
)
def test_each_pbx_fault_answers_its_status_after_exactly_one_request(
    route: str,
    mode: str,
    status: int,
    error: str,
    simulated_pbx: Any,
    project: Any,
    card_clients: None,
    lambda_context: Any,
) -> None:
    # Given a PBX in a fault mode
    simulated_pbx.set_fault(mode, seconds=5)
    # When a call is started
    answer = _call(CALL_ROUTES[route], lambda_context, project.token)
    # Then the answer is the fault's, the PBX got one request (no retry), and a failed attempt records why
    assert (answer["statusCode"], answer_json(answer)["error"]) == (status, error)
    assert len(simulated_pbx.requests) == 1
    (attempt,) = _attempts("proj-a")
    assert (attempt["status"], attempt["reason"]["error"]) == ("failed", error)


@pytest.mark.parametrize("route", list(CALL_ROUTES))
def test_an_unreadable_pbx_reply_is_202_unknown_and_its_key_answers_the_same(
    route: str, simulated_pbx: Any, project: Any, card_clients: None, lambda_context: Any
) -> None:
    # Given a PBX that takes the request and answers a page that is not its JSON (the call may be ringing)
    simulated_pbx.set_fault("garbage")
    # When a call is started, then 202 `unknown` with the attempt, never a 502 a bot would retry
    first = _call(CALL_ROUTES[route], lambda_context, project.token, key="bot-msg-9")
    body = answer_json(first)
    assert (first["statusCode"], body["status"]) == (202, "unknown")
    assert "may have started the call" in body["message"]
    # And the attempt is `unknown` with what came
    (attempt,) = _attempts("proj-a")
    assert (attempt["attempt_id"], attempt["status"]) == (body["attempt_id"], "unknown")
    assert attempt["reason"]["message"].endswith("with something that is not JSON (not_json)")
    # And a repeat with the same key, the PBX well again, answers the same without a second request
    simulated_pbx.set_fault("none")
    again = _call(CALL_ROUTES[route], lambda_context, project.token, key="bot-msg-9")
    assert (again["statusCode"], again["body"]) == (202, first["body"])
    assert len(simulated_pbx.requests) == 1


def test_pbx_refusal_text_reaches_the_caller(simulated_pbx: Any, project: Any, lambda_context: Any) -> None:
    simulated_pbx.set_fault("result_0", text="Абонент недоступен")
    answer = _call(EMPLOYEE, lambda_context, project.token)
    assert answer["statusCode"] == 502
    assert "Абонент недоступен" in answer_json(answer)["message"]


# -- toll-fraud guard --------------------------------------------------------------------------------------------------
def test_country_not_allowed_is_403_and_nothing_reaches_the_pbx(
    fake_pbx: Any, project: Any, lambda_context: Any
) -> None:
    answer = _call(
        EMPLOYEE,
        lambda_context,
        project.token,
        body={"client_phone": "+44 20 7946 0958", "short_employee_phone": "346"},
    )
    body = answer_json(answer)
    assert (answer["statusCode"], body["error"]) == (403, "country_not_allowed")
    assert "GB" in body["message"]
    assert fake_pbx.requests == []


def test_rate_limit_is_429_with_retry_after_and_nothing_reaches_the_pbx(
    fake_pbx: Any, project: Any, lambda_context: Any
) -> None:
    # Given one call per client phone per hour
    get_project_store().update_project(project.project.model_copy(update={"calls_per_phone_per_hour": 1}))
    assert _call(EMPLOYEE, lambda_context, project.token)["statusCode"] == 202
    # When the same phone is called again, by another route
    answer = _call(GROUP, lambda_context, project.token)
    # Then 429 with Retry-After (seconds to the end of the hour window) and no second PBX request
    assert (answer["statusCode"], answer_json(answer)["error"]) == (429, "rate_limited")
    (retry_after,) = answer["multiValueHeaders"]["Retry-After"]  # a REST API proxy answer lists header values
    assert 1 <= int(retry_after) <= 3600
    assert len(fake_pbx.requests) == 1


# -- Idempotency-Key ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", list(CALL_ROUTES))
def test_repeat_with_the_same_key_returns_the_first_answer(
    route: str, fake_pbx: Any, project: Any, card_clients: None, lambda_context: Any
) -> None:
    first = _call(CALL_ROUTES[route], lambda_context, project.token, key="bot-msg-1")
    again = _call(CALL_ROUTES[route], lambda_context, project.token, key="bot-msg-1")
    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    assert again["body"] == first["body"]  # byte for byte
    assert len(fake_pbx.requests) == 1


def test_repeat_after_a_timeout_gets_the_504_and_never_a_second_request(
    simulated_pbx: Any, project: Any, lambda_context: Any
) -> None:
    simulated_pbx.set_fault("timeout", seconds=5)
    first = _call(EMPLOYEE, lambda_context, project.token, key="k-504")
    simulated_pbx.set_fault("none")
    again = _call(EMPLOYEE, lambda_context, project.token, key="k-504")
    assert (first["statusCode"], again["statusCode"]) == (504, 504)
    assert answer_json(again) == answer_json(first)
    assert len(simulated_pbx.requests) == 1


def test_same_key_in_another_project_is_independent(
    fake_pbx: Any, project: Any, other_project: Any, lambda_context: Any
) -> None:
    a = _call(EMPLOYEE, lambda_context, project.token, key="shared")
    b = _call(EMPLOYEE, lambda_context, other_project.token, key="shared")
    assert (a["statusCode"], b["statusCode"]) == (202, 202)
    assert answer_json(a)["attempt_id"] != answer_json(b)["attempt_id"]
    assert len(fake_pbx.requests) == 2


def test_malformed_idempotency_key_is_400(fake_pbx: Any, project: Any, lambda_context: Any) -> None:
    answer = _call(EMPLOYEE, lambda_context, project.token, key="x" * 201)
    assert answer["statusCode"] == 400
    assert answer_json(answer)["details"][0]["field"] == "Idempotency-Key"
    assert fake_pbx.requests == []


class _PerThreadContext(MutableMapping[str, Any]):
    """The resolver's per-request `context` dict, one per thread.

    Lambda never runs two invocations in one process, so Powertools keeps the route of the current request on the
    module-level resolver. Threads sharing it would clear each other's route; each thread here stands for its own
    execution environment, so it gets its own context.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def _data(self) -> dict[str, Any]:
        if not hasattr(self._local, "data"):
            self._local.data = {}
        return self._local.data  # type: ignore[no-any-return]

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_concurrent_repeats_send_exactly_one_pbx_request(
    fake_pbx: Any, project: Any, lambda_context: Any, atomic_dynamodb: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a slow PBX and 20 invocations of the handler with one Idempotency-Key, released at once
    monkeypatch.setattr(employee_call.handler.app, "context", _PerThreadContext())
    fake_pbx.delay = 0.5
    start = threading.Barrier(20)
    answers: list[dict[str, Any]] = []

    def invoke() -> None:
        start.wait()
        answers.append(_call(EMPLOYEE, lambda_context, project.token, key="storm"))

    threads = [threading.Thread(target=invoke) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    # Then the PBX got exactly one request
    assert len(answers) == 20
    assert len(fake_pbx.requests) == 1
    # And every answer is that call's 202, or a 409 asking to retry while it was in flight
    (first,) = {a["body"] for a in answers if a["statusCode"] == 202}
    conflicts = [a for a in answers if a["statusCode"] == 409]
    assert len(conflicts) + sum(a["statusCode"] == 202 for a in answers) == 20
    assert conflicts and all("retry" in answer_json(a)["message"] for a in conflicts)
    assert all(a["multiValueHeaders"]["Retry-After"] == ["2"] for a in conflicts)
    # And a later repeat gets the first answer
    assert _call(EMPLOYEE, lambda_context, project.token, key="storm")["body"] == first


# -- tenancy -----------------------------------------------------------------------------------------------------------
def test_a_token_of_project_a_cannot_call_a_client_of_project_b(
    fake_pbx: Any, project: Any, card_clients: None, lambda_context: Any
) -> None:
    route = (
        employee_call_handler,
        "/v1/clients/{client_id}/call",
        "/v1/clients/c-b/call",
        {"client_id": "c-b"},
        {"employee_id": "346"},
    )
    answer = _call(route, lambda_context, project.token)
    assert (answer["statusCode"], answer_json(answer)["error"]) == (404, "not_found")
    assert fake_pbx.requests == []


@pytest.mark.parametrize(
    ("resource", "path", "params", "query"),
    [
        ("/v1/clients/{client_id}", "/v1/clients/c-b", {"client_id": "c-b"}, None),
        ("/v1/calls", "/v1/calls", None, {"client_id": "c-b"}),
    ],
)
def test_a_token_of_project_a_cannot_read_project_b(
    resource: str,
    path: str,
    params: dict[str, str] | None,
    query: dict[str, str] | None,
    project: Any,
    card_clients: None,
    lambda_context: Any,
) -> None:
    event = api_event("GET", resource, path, path_params=params, query=query, token=project.token)
    answer = read_api_handler(event, lambda_context)
    assert answer["statusCode"] == 404
    assert "c-b" not in str(answer_json(answer).get("clients", ""))


# -- secrets stay out of logs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["none", "result_0", "reset"])
def test_secret_hash_and_token_never_appear_in_logs(
    fault: str,
    simulated_pbx: Any,
    project: Any,
    card_clients: None,
    lambda_context: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given our logs and the HTTP client's captured at DEBUG, and a PBX that echoes what it got in its error text
    # (botocore's own DEBUG log dumps every AWS response, SSM values included: an SDK debugging switch left off)
    for name in ("iptelefon-connector", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    head = "topic=base&method=call-employee&ext=346&phone=79004443322"
    the_hash = hashlib.md5((head + PBX_SECRET).encode()).hexdigest()
    simulated_pbx.set_fault(fault, text=f"bad hash {the_hash} for secret {PBX_SECRET}", seconds=5)
    # When calls run through the handlers (one per route)
    for route in CALL_ROUTES.values():
        answer = _call(route, lambda_context, project.token, key=f"k-{fault}")
        assert PBX_SECRET not in answer["body"] and the_hash not in answer["body"]
    # Then neither the PBX secret, the hash nor the bot token was logged, and the phone only masked
    out, err = capfd.readouterr()
    logged = out + err + caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "starting call" in logged
    for secret in (PBX_SECRET, the_hash, project.token):
        assert secret not in logged
    assert PHONE not in logged
