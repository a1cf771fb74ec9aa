"""One `iptel` grammar (issue 21): `iptel <area> <verb> [<project>] …`, the old `--project` kept as an alias, list and
delete where create exists, usage where a person stops typing, and a new token always printed as `token` + `role`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET
from support import IN_PROCESS_STACK

from iptel_admin import cli


@pytest.fixture
def stack_file(aws: None, tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(IN_PROCESS_STACK))
    return path


def _iptel(capsys: pytest.CaptureFixture[str], stack_file: Path, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(["--stack-file", str(stack_file), *argv])
    except SystemExit as exit_:  # argparse's own mistakes
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _answer(capsys: pytest.CaptureFixture[str], stack_file: Path, *argv: str) -> Any:
    code, out, err = _iptel(capsys, stack_file, *argv)
    assert code == 0, err
    return json.loads(out)


# -- usage where a person stops typing -------------------------------------------------------------------------------
def test_bare_iptel_prints_the_areas(stack_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _iptel(capsys, stack_file)
    assert (code, out) == (2, "")
    assert "usage: iptel" in err and "required" not in err
    assert all(area in err for area in ("project", "employee", "token", "client", "calls", "pbx"))
    assert "iptel <area> <verb> [<project>]" in err


def test_an_area_alone_prints_its_verbs(stack_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _iptel(capsys, stack_file, "token")
    assert (code, out) == (2, "")
    assert "usage: iptel token" in err and all(verb in err for verb in ("create", "list", "revoke"))


def test_an_unknown_option_is_the_commands_own_mistake(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a newcomer gives a client's name as an option
    code, out, err = _iptel(capsys, stack_file, "client", "add", "demo", "--name", "Ivan")
    # Then the error shows `client add`'s usage and says how a variable is given, not `iptel`'s list of areas
    assert (code, out) == (2, "")
    assert "usage: iptel client add" in err and "--var NAME=VALUE" in err
    assert "iptel client add: error: unrecognized arguments: --name Ivan" in err


# -- the project: after the verb, or the old --project ----------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["employee", "list", "{p}"],
        ["calls", "list", "{p}", "--limit", "5"],
        ["token", "list", "{p}"],
        ["project", "show", "{p}"],
    ],
)
def test_the_project_after_the_verb_and_the_old_option_are_the_same(
    argv: list[str], project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    positional = _answer(capsys, stack_file, *[a.format(p="proj-a") for a in argv])
    old = [a for a in argv if a != "{p}"] + ["--project", "proj-a"]
    assert _answer(capsys, stack_file, *old) == positional


def test_a_command_without_its_project_names_the_grammar(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _iptel(capsys, stack_file, "employee", "list")
    assert code == 2 and "name the project: iptel employee list <project>" in err


def test_two_different_projects_are_refused(project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _iptel(capsys, stack_file, "employee", "list", "proj-a", "--project", "proj-b")
    assert code == 2 and "two projects named (proj-a and --project proj-b)" in err


def test_client_import_takes_the_project_then_the_file(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("phone\n79004443322\n", encoding="utf-8")
    assert _answer(capsys, stack_file, "client", "import", "proj-a", str(csv_file))["created"] == 1
    csv_file.write_text("phone\n79004443323\n", encoding="utf-8")
    assert _answer(capsys, stack_file, "client", "import", "--project", "proj-a", str(csv_file))["created"] == 1


# -- list and delete where create exists -----------------------------------------------------------------------------
def test_project_list_shows_every_project_without_secrets(
    project: Any, other_project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = _answer(capsys, stack_file, "project", "list")
    assert [p["project_id"] for p in listed] == ["proj-a", "proj-b"]
    assert listed[1] == {
        "project_id": "proj-b",
        "name": "Other project",
        "default_region": "RU",
        "messengers": ["whatsapp"],
    }
    assert PBX_SECRET not in json.dumps(listed)


def test_token_create_prints_token_and_role_and_token_list_never_the_token(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a new operator token and a revoked bot token
    created = _answer(capsys, stack_file, "token", "create", "proj-a", "--role", "operator", "--employee", "346")
    assert created["role"] == "operator" and created["token"].startswith("iptb_")
    assert created["operator_token"] == created["token"]  # the old name, until the next release
    revoked = _answer(capsys, stack_file, "token", "create", "proj-a")
    _answer(capsys, stack_file, "token", "revoke", "proj-a", "--token-id", revoked["token_id"])
    # When the tokens are listed
    listed = _answer(capsys, stack_file, "token", "list", "proj-a")
    # Then the live ones are, with their roles, and no token (nor a hash of one) is printed
    by_id = {t["token_id"]: t for t in listed}
    assert revoked["token_id"] not in by_id
    assert by_id[created["token_id"]] == {
        "token_id": created["token_id"],
        "role": "operator",
        "employee_id": "346",
        "created_at": by_id[created["token_id"]]["created_at"],
    }
    assert {t["role"] for t in listed} == {"bot", "operator"}  # the project's first bot token and the operator's
    assert "iptb_" not in json.dumps(listed) and "hash" not in json.dumps(listed)


def test_project_create_prints_its_bot_token_as_token_with_its_role(
    aws: None, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = _answer(
        capsys,
        stack_file,
        *["project", "create", "--id", "shop", "--name", "Shop"],
        *["--server-url", "https://a00.abc.ru/b3/api/v2/start.php", "--secret", "shop-pbx-secret-0123"],
    )
    assert created["role"] == "bot" and created["token"].startswith("iptb_")
    assert [t["token_id"] for t in _answer(capsys, stack_file, "token", "list", "shop")] == [created["token_id"]]


def test_employee_delete_removes_the_employee_and_revokes_their_tokens(
    project: Any, stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given employee 346 with an operator token
    issued = _answer(capsys, stack_file, "token", "create", "proj-a", "--role", "operator", "--employee", "346")
    # When the employee is deleted
    assert _answer(capsys, stack_file, "employee", "delete", "proj-a", "--id", "346")["deleted"] == "346"
    # Then they are gone from the list, and so is their token
    assert "346" not in {e["id"] for e in _answer(capsys, stack_file, "employee", "list", "proj-a")}
    assert issued["token_id"] not in {t["token_id"] for t in _answer(capsys, stack_file, "token", "list", "proj-a")}
    # And deleting them again names the mistake
    code, _, err = _iptel(capsys, stack_file, "employee", "delete", "proj-a", "--id", "346")
    assert code == 2 and err == "iptel: employee 346 not found\n"
