"""The PBX simulator's two dialects (issue 19): `zeon` (the public integration's, the default) and `classic`.

Requests are built here with the adapter's own encoding and hash (the bytes a real connector sends), and the replies
read raw: the connector's reader is not the subject, the simulator's words are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.pbx_simulator import PbxSimulator
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
