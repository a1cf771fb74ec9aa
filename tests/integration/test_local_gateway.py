"""The local gateway runs functions as Lambda does: separate execution environments (worker processes) side by side
up to a limit, warm ones reused, a function outliving its Timeout stopped, and API Gateway's own limits applied.

It serves tests/gateway_template/template.yaml: a probe function that says which process ran it and when."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.gateway import MAX_REQUEST_LINE_AND_HEADERS_BYTES, LocalGateway
from devstack.template import Template

TEMPLATE = Path(__file__).parent.parent / "gateway_template" / "template.yaml"
MAX_INSTANCES = 3


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    template = Template(TEMPLATE, parameters={"Stage": "test"})
    gateway = LocalGateway(template, port=0, max_instances=MAX_INSTANCES, integration_timeout=5.0).start()
    yield gateway
    gateway.stop()


def probe(gateway: LocalGateway, body: dict[str, Any], path: str = "/probe", **headers: str) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, headers=headers, timeout=60)


def together(gateway: LocalGateway, count: int, body: dict[str, Any]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: probe(gateway, body), range(count)))


def test_concurrent_requests_run_side_by_side_in_separate_environments(gateway: LocalGateway) -> None:
    # When as many requests as the function may have environments come at once, each sleeping 1 s
    answers = together(gateway, MAX_INSTANCES, {"sleep": 1.0})
    # Then each ran in a process of its own, and all were running at the same moment
    assert [a.status_code for a in answers] == [200] * MAX_INSTANCES
    bodies = [a.json() for a in answers]
    assert len({b["pid"] for b in bodies}) == MAX_INSTANCES
    assert max(b["started_at"] for b in bodies) < min(b["ended_at"] for b in bodies)
    # with the function's own variables and a Lambda context counting down from its Timeout (2 s)
    assert {b["name"] for b in bodies} == {"probe"}
    assert all(0 < b["remaining_ms"] <= 2000 for b in bodies)


def test_a_warm_environment_is_reused_and_no_more_than_the_limit_start(gateway: LocalGateway) -> None:
    # Given the environments started by a burst
    together(gateway, MAX_INSTANCES, {})
    started = gateway.functions["ProbeFunction"].started
    # When one request follows another, and then a burst twice the limit comes
    first, second = probe(gateway, {}).json(), probe(gateway, {}).json()
    burst = together(gateway, 2 * MAX_INSTANCES, {"sleep": 0.3})
    # Then no new environment was started: the sequential requests met a warm one, the burst waited for free ones
    assert first["pid"] == second["pid"]
    assert [a.status_code for a in burst] == [200] * (2 * MAX_INSTANCES)
    assert len({a.json()["pid"] for a in burst}) <= MAX_INSTANCES
    assert gateway.functions["ProbeFunction"].started == started


def test_each_function_runs_in_environments_of_its_own(gateway: LocalGateway) -> None:
    probe_answer, slow_answer = probe(gateway, {}).json(), probe(gateway, {}, "/slow").json()
    assert (probe_answer["name"], slow_answer["name"]) == ("probe", "slow")
    assert probe_answer["pid"] != slow_answer["pid"]


def test_a_crash_is_a_502_in_the_templates_error_shape_and_the_environment_serves_on(gateway: LocalGateway) -> None:
    crashed = probe(gateway, {"crash": True})
    assert crashed.status_code == 502
    assert crashed.json() == {"message": "Internal server error"}  # the template has no GatewayResponses
    assert probe(gateway, {}).status_code == 200


def test_a_function_outliving_its_timeout_is_stopped_with_a_502(gateway: LocalGateway) -> None:
    # Given the environment that served the last request
    before = probe(gateway, {}).json()["pid"]
    # When a request sleeps past the function's 2 s Timeout
    answer = probe(gateway, {"sleep": 10})
    # Then the gateway answers 502 (as API Gateway does for a timed-out Lambda) and that environment is gone
    assert answer.status_code == 502
    pids = {a.json()["pid"] for a in together(gateway, MAX_INSTANCES, {"sleep": 0.5})}
    assert before not in pids


def test_api_gateways_integration_timeout_is_a_504(gateway: LocalGateway) -> None:
    # SlowFunction may run 30 s; this gateway's integration timeout is 5 s (API Gateway's is 29 s)
    answer = probe(gateway, {"sleep": 8}, "/slow")
    assert answer.status_code == 504
    assert answer.json() == {"message": "Endpoint request timed out"}


def test_request_line_and_headers_over_api_gateways_quota_are_refused(gateway: LocalGateway) -> None:
    assert probe(gateway, {}, **{"X-Padding": "a" * (MAX_REQUEST_LINE_AND_HEADERS_BYTES - 500)}).status_code == 200
    too_large = probe(gateway, {}, **{"X-Padding": "a" * MAX_REQUEST_LINE_AND_HEADERS_BYTES})
    assert too_large.status_code == 413
    assert too_large.json() == {"message": "Request line and headers too long"}


def test_hundreds_of_simultaneous_connections_are_all_answered(gateway: LocalGateway) -> None:
    # More connections at once than the environments: none is reset, each waits for its turn
    answers = together(gateway, 200, {})
    assert [a.status_code for a in answers] == [200] * 200


@pytest.mark.parametrize("query", ["q=Ольга", "q=%D0%9E%D0%BB%D1%8C%D0%B3%D0%B0"], ids=["raw-utf-8", "percent-encoded"])
def test_a_query_is_decoded_as_utf_8_whether_sent_raw_or_percent_encoded(gateway: LocalGateway, query: str) -> None:
    # Given a request line as `curl '…?q=Ольга'` sends it: UTF-8 bytes, not percent-encoded (httpx would encode them)
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        head = f"POST /probe?{query} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nConnection: close\r\n"
        connection.sendall(f"{head}\r\n{{}}".encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    # Then the function gets the text the client meant, as API Gateway hands it over
    status, _, body = reply.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200"), status
    assert json.loads(body)["query"] == {"q": "Ольга"}
