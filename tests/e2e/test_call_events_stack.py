"""Issue 22 through the real local stack (`make run`'s processes): the simulator's calls produce the whole sequence of
call events, relayed from moto's DynamoDB Stream, delivered to the sample receiver and verified here with the
`standardwebhooks` package; a bot's own reference comes back in its call's events; the CLI replays one event."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from support import ROOT, LocalStackProcess, eventually

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    state = tmp_path_factory.mktemp("stack-events")
    local = LocalStackProcess.start(state)
    info = local.wait_until_running(timeout=60)
    httpx.post(f"{info['pbx_control_url']}/config", json={"ring_seconds": 0.5, "talk_seconds": 0.5})
    yield info, state
    local.stop(timeout=20)


def events_of(info: dict[str, Any], call_key: str, count: int) -> list[dict[str, Any]]:
    def arrived() -> list[dict[str, Any]] | None:
        came = httpx.get(f"{info['receiver_url']}_events").json()
        mine = [e for e in came if (e["event"] or {}).get("data", {}).get("call_key") == call_key]
        return mine if len(mine) >= count else None

    return eventually(arrived, within=20)


def test_a_simulated_call_arrives_as_signed_events_in_order(stack: tuple[dict[str, Any], Path]) -> None:
    info, state = stack
    secret = (state / "receiver-secret").read_text().strip()
    call = httpx.post(f"{info['pbx_control_url']}/incoming", json={"phone": "79005550111", "exten": "346"}).json()
    came = events_of(info, call["callid"], 4)
    assert [e["type"] for e in came] == ["call.ringing", "call.answered", "call.completed", "recording.ready"]
    for entry in came:  # checked here too, with the package, from the bytes and headers as they came
        assert Webhook(secret).verify(entry["body"], entry["headers"])["event_id"] == entry["webhook_id"]
    assert came[0]["event"]["data"]["client"]["phone"] == "79005550111"


def test_a_bots_reference_comes_back_in_its_calls_events_and_a_replay_keeps_the_id(
    stack: tuple[dict[str, Any], Path],
) -> None:
    info, state = stack
    started = httpx.post(
        f"{info['api_url']}/v1/calls/employee",
        headers={"Authorization": f"Bearer {info['bot_token']}"},
        json={"client_phone": "79005550222", "short_employee_phone": "346", "reference": "deal-42"},
    ).json()
    came = events_of(info, started["pbx_call_id"], 3)
    completed = next(e for e in came if e["type"] == "call.completed")
    assert completed["event"]["data"]["attempt"] == {"id": started["attempt_id"], "reference": "deal-42"}
    # When the admin replays it with the CLI
    replay = subprocess.run(
        [sys.executable, "-m", "iptel_admin.cli", "--stack-file", str(state / "stack.json"), "event", "replay", "demo",
         "--id", completed["webhook_id"]],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["queued"] == [info["receiver_endpoint_id"]]

    def again() -> list[dict[str, Any]] | None:
        came = httpx.get(f"{info['receiver_url']}_events").json()
        same = [e for e in came if e["webhook_id"] == completed["webhook_id"]]
        return same if len(same) == 2 else None

    assert all(e["verified"] for e in eventually(again, within=20))
