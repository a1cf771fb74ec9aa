"""The real local stack (`make run`): moto server, gateway and PBX simulator as subprocesses, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ROOT, LocalStackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    # classic: these tests start calls with call-employee and read the form completion (contract section 1)
    local = LocalStackProcess.start(
        tmp_path_factory.mktemp("stack"),
        "--webhook-delay",
        "0.2",
        "--queue-visibility-timeout",
        "2",
        "--pbx-dialect",
        "classic",
    )
    info = local.wait_until_running(timeout=60)
    info["_process"] = local.process
    info["_ports"] = local.ports
    info["_state_dir"] = str(local.state)
    yield info
    local.stop(timeout=20)


def test_stack_file_has_what_the_readme_promises(stack: dict[str, Any]) -> None:
    for name in ("api_url", "pbx_url", "project_id", "bot_token", "webhook_url", "control_url", "inbox_queue_url"):
        assert stack[name], name
    assert stack["api_url"].startswith("http://127.0.0.1:")


def test_gateway_routes_by_template_and_checks_the_token(stack: dict[str, Any]) -> None:
    # Given the running gateway
    # When a bot route is called without a token, Then 401 with a JSON body
    answer = httpx.post(f"{stack['api_url']}/v1/calls/group", json={"client_phone": "79004443322", "group_id": "3"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    # When a route that is not in template.yaml is called, Then a JSON 404
    missing = httpx.get(f"{stack['api_url']}/v1/unknown")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_unknown_webhook_secret_is_404(stack: dict[str, Any]) -> None:
    first = httpx.post(f"{stack['api_url']}/iptelefon_webhook/not-a-secret", data={"src": "79004443322"})
    second = httpx.post(f"{stack['api_url']}/iptelefon_webhook/another-one", data={"src": "79004443322"})
    assert first.status_code == second.status_code == 404
    assert first.json() == second.json()


def test_pbx_simulator_answers_ping_with_the_demo_secret(stack: dict[str, Any]) -> None:
    from devstack.run import DEMO_SECRET
    from iptelefon.adapters.pbx import PbxClient
    from iptelefon.domain.pbx_connection import PbxConnection

    client = PbxClient(httpx.Client())
    assert client.ping(PbxConnection(server_url=stack["pbx_url"], secret=DEMO_SECRET)) == "pong"


def test_zeon_webhook_lands_as_a_notification_on_the_client(stack: dict[str, Any]) -> None:
    # Given the demo project; When the PBX posts a call completion (form-encoded) to the webhook URL
    form = {
        "id": "e2e-1",
        "calltype": "IN",
        "src": "+7 (900) 555-11-22",
        "exten": "346",
        "talktime": "00:01:05",
        "link": "https://pbx.example/rec/e2e-1.mp3",
    }
    posted = httpx.post(stack["webhook_url"], data=form)
    assert posted.status_code == 200, posted.text
    assert posted.json()["duplicate"] is False
    # Then the bot finds the client by phone, with the notification and the record link
    headers = {"Authorization": f"Bearer {stack['bot_token']}"}
    found = httpx.get(f"{stack['api_url']}/v1/clients", params={"phone": "79005551122"}, headers=headers).json()
    [client] = found["clients"]
    answer = httpx.get(f"{stack['api_url']}/v1/clients/{client['id']}", headers=headers)
    assert "Звонок завершён".encode() in answer.content  # UTF-8 as it is, not \u0417 escapes
    card = answer.json()
    assert card["dialog"][0]["text"].startswith("Звонок завершён · входящий · 01:05 · сотрудник 346")
    calls = httpx.get(f"{stack['api_url']}/v1/calls", params={"client_id": client["id"]}, headers=headers).json()
    assert [c["call_key"] for c in calls["calls"]] == ["e2e-1"]
    # the call keeps the PBX's link; the variable holds our stable link to the recording (issue 25)
    assert calls["calls"][0]["record_link"] == "https://pbx.example/rec/e2e-1.mp3"
    stable = calls["calls"][0]["recording"]["url"]
    assert stable.startswith(f"{stack['api_url']}/r/")
    assert card["variables"]["iptelefon_call_record_link"] == stable


def test_bot_call_rings_on_the_pbx_and_its_completion_lands_on_the_client(stack: dict[str, Any]) -> None:
    # Given the demo project; When a bot starts an employee call
    headers = {"Authorization": f"Bearer {stack['bot_token']}"}
    started = httpx.post(
        f"{stack['api_url']}/v1/calls/employee",
        headers=headers,
        json={"client_phone": "+7 900 777-66-55", "short_employee_phone": "346"},
    )
    assert started.status_code == 202, started.text
    call_id = started.json()["attempt_id"]
    # Then the simulator got exactly one call-employee request with the normalized phone
    requests = httpx.get(f"{stack['pbx_control_url']}/requests").json()
    starts = [r for r in requests if r["method"] == "call-employee" and r["params"].get("phone") == "79007776655"]
    assert len(starts) == 1 and starts[0]["params"]["ext"] == "346" and starts[0]["valid"]
    # And its completion webhook lands: the attempt is completed by a call of a client with the notification
    deadline = time.monotonic() + 15
    attempt: dict[str, Any] = {}
    while time.monotonic() < deadline and attempt.get("status") != "completed":
        time.sleep(0.2)
        attempt = httpx.get(f"{stack['api_url']}/v1/calls/{call_id}", headers=headers).json()
    assert attempt["status"] == "completed", attempt
    card = httpx.get(f"{stack['api_url']}/v1/clients/{attempt['call']['client_id']}", headers=headers).json()
    assert card["phone"] == "79007776655"
    assert card["dialog"][0]["text"].startswith("Звонок завершён · исходящий · 01:23 · сотрудник 346")


def test_admin_cli_works_against_the_stack_without_aws_credentials(stack: dict[str, Any], tmp_path: Path) -> None:
    # Given a shell with no AWS configuration at all
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    stack_file = Path(stack["_state_dir"]) / "stack.json"
    # When the operator runs `iptel project show demo`
    shown = subprocess.run(
        [sys.executable, "-m", "iptel_admin.cli", "--stack-file", str(stack_file), "project", "show", "demo"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    # Then it prints the project and its employees, never the secret
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["project"]["id"] == "demo"
    assert "demo-pbx-secret" not in shown.stdout + shown.stderr


def _faults(stack: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{stack['control_url']}/faults", json=change)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_hundred_simultaneous_webhooks_are_all_taken(stack: dict[str, Any]) -> None:
    # When the PBX posts 100 calls at the same moment (e.g. after its own outage)
    def post(n: int) -> httpx.Response:
        form = {"id": f"burst-{n}", "calltype": "IN", "src": f"7900666{n:04d}", "talktime": "7"}
        return http.post(stack["webhook_url"], data=form)

    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=100)) as http, ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(post, range(100)))
    # Then no connection is reset or refused: each is answered 200, recorded as a call of its own (or queued)
    assert [a.status_code for a in answers] == [200] * 100
    recorded = [a.json()["call_key"] for a in answers if not a.json().get("queued")]
    assert sorted(recorded) == sorted(set(recorded))


def test_dynamodb_conflicts_switched_on_at_run_time_cost_no_webhook(stack: dict[str, Any]) -> None:
    # Given DynamoDB cancelling half of the transactions for a conflict, as under contention on AWS
    _faults(stack, {"conflict_rate": 0.5})
    try:
        # When the PBX posts ten calls of a new phone
        forms = [{"id": f"conflict-{n}", "calltype": "IN", "src": "79003334455", "talktime": "9"} for n in range(10)]
        answers = [httpx.post(stack["webhook_url"], data=form) for form in forms]
    finally:
        injected = _faults(stack, {"conflict_rate": 0})["injected"]["conflicts"]
    # Then every one is taken (recorded, or queued when the retries ran out), and conflicts did happen
    assert [a.status_code for a in answers] == [200] * 10
    assert injected > 0


def test_an_outage_queues_webhooks_and_they_land_after_recovery(stack: dict[str, Any]) -> None:
    # Given DynamoDB taken away
    _faults(stack, {"dynamodb": "down"})
    try:
        # When the PBX posts three calls
        forms = [{"id": f"outage-{n}", "calltype": "IN", "src": "79006667788", "talktime": "9"} for n in range(3)]
        answers = [httpx.post(stack["webhook_url"], data=form, timeout=30) for form in forms]
    finally:
        _faults(stack, {"dynamodb": "up"})
    # Then each one is taken into the inbox
    assert [a.json() for a in answers] == [{"result": 1, "queued": True}] * 3
    # And once DynamoDB is back, the inbox applies them: one client with the three calls
    headers = {"Authorization": f"Bearer {stack['bot_token']}"}
    deadline, calls = time.monotonic() + 30, []
    while time.monotonic() < deadline and len(calls) < 3:
        time.sleep(0.5)
        found = httpx.get(f"{stack['api_url']}/v1/clients", params={"phone": "79006667788"}, headers=headers).json()
        for client in found.get("clients", []):
            listed = httpx.get(f"{stack['api_url']}/v1/calls", params={"client_id": client["id"]}, headers=headers)
            calls = listed.json()["calls"]
    assert sorted(c["call_key"] for c in calls) == ["outage-0", "outage-1", "outage-2"]


def test_sigterm_stops_every_service(stack: dict[str, Any]) -> None:
    # Given the running stack; When it gets SIGTERM
    process: subprocess.Popen[bytes] = stack["_process"]
    process.send_signal(signal.SIGTERM)
    # Then it exits cleanly, no port is left open, and the CLI no longer finds a stack file pointing at it
    assert process.wait(timeout=20) == 0
    assert not (Path(stack["_state_dir"]) / "stack.json").exists()
    for port in stack["_ports"].values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
