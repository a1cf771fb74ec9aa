"""Issue 22's incoming-call card through the real local stack: the simulator rings an extension, and
`GET /v1/calls/live` through the local gateway shows the call with its client, answers a repeat with the same ETag a
bodiless 304 (on a kept-alive connection that serves on), and shows an operator the calls of its extension only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import LocalStackProcess, eventually


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    local = LocalStackProcess.start(tmp_path_factory.mktemp("stack-card"))
    info = local.wait_until_running(timeout=60)
    # calls ring long enough to be read while they ring
    assert httpx.post(f"{info['pbx_control_url']}/config", json={"ring_seconds": 30, "talk_seconds": 1}).is_success
    yield info
    local.stop(timeout=20)


def new_phone() -> str:
    return "7900" + str(uuid.uuid4().int)[:7]


def test_a_ringing_call_is_listed_with_its_client_and_a_repeat_is_a_304_on_the_same_connection(
    stack: dict[str, Any],
) -> None:
    phone = new_phone()
    assert httpx.post(f"{stack['pbx_control_url']}/incoming", json={"phone": phone, "exten": "346"}).is_success
    with httpx.Client(base_url=stack["api_url"], headers={"Authorization": f"Bearer {stack['admin_token']}"}) as api:

        def ringing() -> httpx.Response | None:
            answer = api.get("/v1/calls/live")
            return answer if any(c["client_phone"] == phone for c in answer.json()["calls"]) else None

        first = eventually(ringing, within=10)
        [call] = [c for c in first.json()["calls"] if c["client_phone"] == phone]
        assert (call["state"], call["employee"]) == ("ringing", "346")
        assert call["client"] == {"display_name": None, "phone": phone, "phone_e164": "+" + phone, "is_new": True,
                                  "dialog": []}  # fmt: skip
        tag = first.headers["ETag"]
        # When the poller sends the tag back: 304, no content, and the connection carries the next request
        repeat = api.get("/v1/calls/live", headers={"If-None-Match": tag})
        assert (repeat.status_code, repeat.content, repeat.headers["ETag"]) == (304, b"", tag)
        assert "content-length" not in repeat.headers
        again = api.get("/v1/calls/live")
        assert again.status_code == 200 and again.headers["ETag"] == tag


def test_an_operator_sees_the_calls_at_its_extension_only(stack: dict[str, Any]) -> None:
    at_346, at_347 = new_phone(), new_phone()
    for phone, exten in ((at_346, "346"), (at_347, "347")):
        assert httpx.post(f"{stack['pbx_control_url']}/incoming", json={"phone": phone, "exten": exten}).is_success

    def phones(token: str) -> set[str]:
        answer = httpx.get(f"{stack['api_url']}/v1/calls/live", headers={"Authorization": f"Bearer {token}"})
        return {c["client_phone"] for c in answer.json()["calls"]}

    eventually(lambda: {at_346, at_347} <= phones(stack["admin_token"]) or None, within=10)
    operator = phones(stack["operator_token"])  # employee 346
    assert at_346 in operator and at_347 not in operator
