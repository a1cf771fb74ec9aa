"""`make run` keeps the local data across restarts (issue 21): what was stored is there again (the archived call
recordings too), the demo project is seeded once and the tokens the banner printed still work; `--fresh`
(`make run FRESH=1`) starts clean."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import LocalStackProcess

from devstack.pbx_simulator import RECORDING_MP3
from iptel_admin import cli

PHONE = "79004443322"


def _iptel(stack_file: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = cli.main(["--stack-file", str(stack_file), *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _clients(stack: dict[str, Any], token: str) -> httpx.Response:
    return httpx.get(
        f"{stack['api_url']}/v1/clients", params={"phone": PHONE}, headers={"Authorization": f"Bearer {token}"}
    )


def _archived_recording(stack: dict[str, Any]) -> str:
    """A call with the simulator's recording, archived by RecordingFunction: its recording id (issue 25)."""
    pbx = stack["pbx_url"].split("/b3/")[0]
    form = {"id": "saved-rec", "calltype": "IN", "src": "79004443311", "talktime": "2", "link": f"{pbx}/records/x.mp3"}
    assert httpx.post(stack["webhook_url"], data=form).status_code == 200
    headers = {"Authorization": f"Bearer {stack['bot_token']}"}
    deadline = time.monotonic() + 60
    while (call := httpx.get(f"{stack['api_url']}/v1/calls/saved-rec", headers=headers).json())["recording"][
        "state"
    ] != "archived":
        assert time.monotonic() < deadline, call
        time.sleep(0.2)
    return str(call["recording"]["url"]).rsplit("/", 1)[1]


def test_a_restart_keeps_the_data_and_the_demo_tokens_and_fresh_starts_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack where an operator added a client and a project
    first = LocalStackProcess.start(tmp_path)
    before = first.wait_until_running()
    assert "local data: a fresh start" in first.log
    _iptel(first.stack_file, capsys, "client", "add", "demo", "--phone", PHONE, "--var", "name=Иван")
    _iptel(
        first.stack_file,
        capsys,
        *["project", "create", "--id", "shop", "--name", "Shop", "--secret", "shop-pbx-secret-0123"],
        *["--server-url", "https://a00.abc.ru/b3/api/v2/start.php"],
    )
    recording_id = _archived_recording(before)
    assert first.stop() == 0 and "saved the local data" in first.log
    # When it is started again, on other ports
    second = LocalStackProcess.start(tmp_path)
    after = second.wait_until_running()
    try:
        # Then it says it loaded the saved data
        assert "local data: loaded" in second.log
        # And the client and the project are there, the demo project once, with its three employees
        assert [p["project_id"] for p in _iptel(second.stack_file, capsys, "project", "list")] == ["demo", "shop"]
        employees = _iptel(second.stack_file, capsys, "employee", "list", "demo")
        assert sorted(e["id"] for e in employees) == ["346", "intern", "zoiper"]
        # And the tokens are the ones printed before, and they work against the new gateway
        assert [after[k] for k in ("bot_token", "admin_token", "operator_token")] == [
            before[k] for k in ("bot_token", "admin_token", "operator_token")
        ]
        found = _clients(after, after["bot_token"])
        assert found.status_code == 200 and found.json()["clients"][0]["variables"]["name"] == "Иван"
        # And the archived recording plays from the new stack's archive (its API's port changed, so its base too)
        played = httpx.get(f"{after['api_url']}/r/{recording_id}", follow_redirects=True)
        assert played.status_code == 200 and played.content == RECORDING_MP3
        # And the demo project's PBX is this run's simulator (its port changed)
        assert _iptel(second.stack_file, capsys, "pbx", "ping", "demo")["server_url"] == after["pbx_url"]
    finally:
        assert second.stop() == 0
    # When it is started with --fresh
    third = LocalStackProcess.start(tmp_path, "--fresh")
    fresh = third.wait_until_running()
    try:
        # Then nothing of before is there, and the old tokens are unknown
        assert "local data: a fresh start" in third.log
        assert [p["project_id"] for p in _iptel(third.stack_file, capsys, "project", "list")] == ["demo"]
        assert _clients(fresh, before["bot_token"]).status_code == 401
        assert _clients(fresh, fresh["bot_token"]).json()["clients"] == []
    finally:
        third.stop()
