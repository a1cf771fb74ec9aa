"""`iptel pbx ping|methods|points`, `iptel token create|revoke`, `iptel employee list` against moto and the PBX
simulator (or a PBX behind httpx.MockTransport where the simulator has no such method)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET

from iptel_admin import admin, cli
from iptelefon.adapters.pbx import PbxClient, method_names
from iptelefon.platform.settings import get_settings


@pytest.fixture
def stack_file(tmp_path: Path, aws: None) -> Path:
    """A stack file like `make run` writes, pointing at the in-process moto (endpoint null)."""
    path = tmp_path / "stack.json"
    settings = get_settings()
    path.write_text(
        json.dumps(
            {
                "aws_endpoint_url": None,
                "region": "us-east-1",
                "table_name": settings.table_name,
                "ssm_prefix": settings.ssm_prefix,
                "api_url": "http://127.0.0.1:3000",
            }
        )
    )
    return path


def _run(capsys: pytest.CaptureFixture[str], stack_file: Path, *args: str) -> tuple[int, Any, str]:
    code = cli.main(["--stack-file", str(stack_file), *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def test_pbx_methods_lists_the_names_the_pbx_returns(
    simulated_pbx: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given proj-a connected to the simulator (server_url and secret in SSM)
    # When an operator lists the PBX's methods, by option or by position
    code, names, _ = _run(capsys, stack_file, "pbx", "methods", "--project", "proj-a")
    positional = _run(capsys, stack_file, "pbx", "methods", "proj-a")[1]
    # Then the simulator's names are printed, from a valid hash-signed get-method-list
    assert code == 0
    assert {"call-employee", "call-group", "get-method-list", "ping"} <= set(names) and names == positional
    assert [r["method"] for r in simulated_pbx.requests] == ["get-method-list", "get-method-list"]
    assert all(r["valid"] for r in simulated_pbx.requests)


def test_pbx_ping_reports_the_reply_without_the_secret(
    simulated_pbx: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--stack-file", str(stack_file), "pbx", "ping", "--project", "proj-a"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["reply"] == "pong"
    assert PBX_SECRET not in out


def test_pbx_errors_are_reported_without_a_traceback_or_the_secret(
    simulated_pbx: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a PBX that refuses, echoing the secret
    simulated_pbx.set_fault("result_0", text=f"bad secret {PBX_SECRET}")
    # When pinged, then exit code 2 and a one-line message without the secret
    code, _, err = _run(capsys, stack_file, "pbx", "ping", "--project", "proj-a")
    assert code == 2
    assert err.startswith("iptel: PBX error on ping") and PBX_SECRET not in err


def _pbx_answering(monkeypatch: pytest.MonkeyPatch, reply: Any) -> list[str]:
    """`iptel`'s PBX client answers every request with `reply` (JSON); returns the bodies it got."""
    import httpx

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content.decode())
        return httpx.Response(200, json=reply)

    pbx = PbxClient(httpx.Client(transport=httpx.MockTransport(answer)))
    monkeypatch.setattr(admin, "get_pbx_client", lambda network: pbx)
    return seen


def test_pbx_points_lists_the_extensions_the_pbx_returns(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given proj-a's PBX answering get-points with a bare list, as the public integration reads it
    seen = _pbx_answering(monkeypatch, ["346", 347])
    # When an operator lists the points, by position or by option
    code, points, _ = _run(capsys, stack_file, "pbx", "points", "proj-a")
    by_option = _run(capsys, stack_file, "pbx", "points", "--project", "proj-a")[1]
    # Then the extensions are printed as text, from a hash-signed get-points
    assert (code, points, by_option) == (0, ["346", "347"], ["346", "347"])
    assert len(seen) == 2 and all(body.startswith("topic=base&method=get-points&hash=") for body in seen)


def test_pbx_points_of_a_pbx_without_get_points_is_a_one_line_error(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a PBX that has no get-points: exit code 2 with the PBX's words, never the secret
    _pbx_answering(monkeypatch, {"result": 0, "text": f"unknown method (key {PBX_SECRET})"})
    code, _, err = _run(capsys, stack_file, "pbx", "points", "proj-a")
    assert code == 2 and err.startswith("iptel: PBX error on get-points: unknown method") and PBX_SECRET not in err


@pytest.mark.parametrize(
    "args", [["pbx", "ping"], ["pbx", "methods", "--project", "nope"], ["pbx", "points", "--project", "nope"]]
)
def test_pbx_commands_need_an_existing_project(
    args: list[str], project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, stack_file, *args)
    assert code == 2
    assert "project" in err


@pytest.mark.parametrize(
    ("data", "names"),
    [
        (["ping", "call-employee"], ["ping", "call-employee"]),
        ([{"method": "ping", "description": "…"}, {"name": "get-calls"}], ["ping", "get-calls"]),
        ({"ping": "check", "get-calls": "calls"}, ["ping", "get-calls"]),
        ({"methods": ["ping"]}, ["ping"]),
        ("ping, get-calls", ["ping", "get-calls"]),
        (None, []),
    ],
)
def test_method_names_accepts_the_shapes_a_pbx_may_answer(data: Any, names: list[str]) -> None:
    assert method_names(data) == names


def test_token_create_and_revoke_and_employee_list(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a token is created, then it is shown once with its id
    code, created, _ = _run(capsys, stack_file, "token", "create", "--project", "proj-a")
    assert code == 0 and created["token"].startswith("iptb_")
    # And it can be revoked by id; an unknown id is an error
    assert _run(capsys, stack_file, "token", "revoke", "--project", "proj-a", "--token-id", created["token_id"])[0] == 0
    assert _run(capsys, stack_file, "token", "revoke", "--project", "proj-a", "--token-id", "nope")[0] == 2
    # And the employees are listed with their call methods
    code, employees, _ = _run(capsys, stack_file, "employee", "list", "--project", "proj-a")
    assert {(e["id"], e["call_method"]) for e in employees} == {("346", "api"), ("soft", "app"), ("off", "disabled")}


def test_token_create_for_an_unknown_project_is_refused(
    aws: None, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, stack_file, "token", "create", "--project", "ghost")
    assert code == 2
    assert "project ghost not found" in err
