"""Recordings through the real local stack (issue 25): a simulator call's recording is copied into moto's S3 by
RecordingFunction (run by the gateway's queue poller), and its stable link keeps playing after the PBX's link dies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import LocalStackProcess

from devstack.pbx_simulator import RECORDING_MP3

PHONE = "79007770011"
HTTP_SECONDS = 30  # a cold worker on a loaded machine takes longer than httpx's default 5 s, as API Gateway allows


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    local = LocalStackProcess.start(tmp_path_factory.mktemp("stack"), "--webhook-delay", "0.2")
    info = local.wait_until_running(timeout=90)
    yield info
    local.stop(timeout=20)


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def client_link(stack: dict[str, Any]) -> str | None:
    headers = {"Authorization": f"Bearer {stack['bot_token']}"}
    found = httpx.get(
        f"{stack['api_url']}/v1/clients", params={"phone": PHONE}, headers=headers, timeout=HTTP_SECONDS
    ).json()
    clients = found.get("clients") or []
    return clients[0]["variables"].get("iptelefon_call_record_link") if clients else None


def test_a_simulator_call_plays_from_the_archive_after_the_pbx_link_died(stack: dict[str, Any]) -> None:
    # Given a client's call on the simulated PBX, with its recording
    started = httpx.post(
        f"{stack['pbx_control_url']}/incoming", json={"phone": PHONE, "exten": "346"}, timeout=HTTP_SECONDS
    )
    assert started.status_code == 200, started.text
    link = wait_for(lambda: client_link(stack))

    # Then the client's variable holds our stable link, not the PBX's
    assert link.startswith(f"{stack['api_url']}/r/"), link

    # And once RecordingFunction copied it, the link redirects to moto's S3 (a presigned URL), and plays the MP3
    def archived() -> str | None:
        answer = httpx.get(link, timeout=HTTP_SECONDS)
        location = answer.headers.get("location", "")
        return location if answer.status_code == 302 and "X-Amz-Signature" in location else None

    location = wait_for(archived)
    assert httpx.get(location, timeout=HTTP_SECONDS).content == RECORDING_MP3

    # When the PBX's links die
    config = httpx.post(f"{stack['pbx_control_url']}/config", json={"recordings_gone": True})
    assert config.status_code == 200, config.text
    call_id = started.json()["callid"]
    assert httpx.get(f"{stack['pbx_url'].split('/b3/')[0]}/records/{call_id}.mp3").status_code == 404

    # Then the stable link still plays the recording
    again = httpx.get(link, follow_redirects=True, timeout=HTTP_SECONDS)
    assert again.status_code == 200 and again.content == RECORDING_MP3
    assert again.history[0].headers["cache-control"] == "no-store"
