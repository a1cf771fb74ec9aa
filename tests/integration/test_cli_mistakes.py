"""A new user's mistakes with `iptel` (issue 13): one line `iptel: <what is wrong, what to do>`, exit 2."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET
from support import IN_PROCESS_STACK

from iptel_admin import cli
from iptelefon.data.clients import ClientStore
from iptelefon.data.pbx_settings import PbxCredentials, put_pbx_credentials


@pytest.fixture
def stack_file(aws: None, tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(IN_PROCESS_STACK))
    return path


def _fails(capsys: pytest.CaptureFixture[str], stack_file: Path, *argv: str) -> str:
    """Runs the command, expects exit 2 and nothing on stdout; returns the one stderr line."""
    code = cli.main(["--stack-file", str(stack_file), *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert err.startswith("iptel: ") and err.count("\n") == 1, err
    return err


def _succeeds(capsys: pytest.CaptureFixture[str], stack_file: Path, *argv: str) -> Any:
    code = cli.main(["--stack-file", str(stack_file), *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


# -- files -----------------------------------------------------------------------------------------------------------
def test_importing_a_missing_csv_names_the_file(project: Any, stack_file: Path, capsys: Any, tmp_path: Path) -> None:
    err = _fails(capsys, stack_file, "client", "import", "--project", "proj-a", str(tmp_path / "missing.csv"))
    assert "cannot read" in err and "missing.csv" in err and "No such file" in err


def test_a_csv_path_that_is_a_folder_is_named(project: Any, stack_file: Path, capsys: Any, tmp_path: Path) -> None:
    err = _fails(capsys, stack_file, "client", "import", "--project", "proj-a", str(tmp_path))
    assert str(tmp_path) in err


# -- CSV as Excel saves it -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_import_reads_excel_encodings_and_separators(
    encoding: str, delimiter: str, project: Any, stack_file: Path, capsys: Any, tmp_path: Path, admin_target: Any
) -> None:
    # Given a CSV with Cyrillic headers and values, in the encoding and with the separator Excel may have used
    rows = [["Телефон", "Имя", "Город"], ["8 900 444-33-22", "Иван", "Москва, центр"], ["79001112233", "Ольга", ""]]
    csv_file = tmp_path / "clients.csv"
    lines = [delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row) for row in rows]
    csv_file.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    # When imported
    report = _succeeds(capsys, stack_file, "client", "import", "--project", "proj-a", str(csv_file))
    # Then both clients are in, with readable variables (the name as `name`), and matched by their phones
    assert report == {"created": 2, "updated": 0, "unchanged": 0, "imported": 2, "skipped": []}
    store = ClientStore(admin_target.storage)
    [ivan] = store.match("proj-a", "79004443322")
    client = store.get("proj-a", ivan)
    assert client is not None and client.variables == {"name": "Иван", "Город": "Москва, центр"}


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_import_without_a_phone_column_names_the_columns_it_found(
    delimiter: str, project: Any, stack_file: Path, capsys: Any, tmp_path: Path
) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text(f"Мобила{delimiter}Имя\n79004443322{delimiter}Иван\n", encoding="utf-8")
    err = _fails(capsys, stack_file, "client", "import", "--project", "proj-a", str(csv_file))
    assert "no phone column" in err and "'Мобила', 'Имя'" in err and repr(delimiter) in err


def test_import_of_messenger_clients_needs_no_phone_column(
    project: Any, stack_file: Path, capsys: Any, tmp_path: Path
) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("channel;name\ntelegram;Ivan\n", encoding="utf-8")
    assert _succeeds(capsys, stack_file, "client", "import", "--project", "proj-a", str(csv_file))["created"] == 1


# -- clients ---------------------------------------------------------------------------------------------------------
def test_client_add_by_telephony_without_a_phone_says_what_is_missing(
    project: Any, stack_file: Path, capsys: Any
) -> None:
    err = _fails(capsys, stack_file, "client", "add", "--project", "proj-a", "--channel", "telephony", "--var", "a=X")
    assert "telephony client needs a phone" in err


def test_client_add_with_a_variable_that_is_not_name_value(project: Any, stack_file: Path, capsys: Any) -> None:
    err = _fails(capsys, stack_file, "client", "add", "--project", "proj-a", "--channel", "telegram", "--var", "X")
    assert "NAME=VALUE" in err


# -- projects, employees, tokens: one not-found answer ---------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["employee", "list", "--project", "nope"],
        ["employee", "set", "--project", "nope", "--id", "1", "--name", "A", "--method", "app"],
        ["token", "create", "--project", "nope"],
        ["token", "revoke", "--project", "nope", "--token-id", "t1"],
        ["client", "add", "--project", "nope", "--phone", "79004443322"],
        ["calls", "list", "--project", "nope"],
        ["project", "show", "nope"],
        ["project", "rotate-secret", "nope", "--secret", "new-secret-0123"],
        ["pbx", "ping", "nope"],
    ],
)
def test_every_command_says_an_unknown_project_is_not_found(
    argv: list[str], project: Any, stack_file: Path, capsys: Any
) -> None:
    assert _fails(capsys, stack_file, *argv) == "iptel: project nope not found\n"


def test_employee_set_api_without_short_number_names_the_option(project: Any, stack_file: Path, capsys: Any) -> None:
    err = _fails(
        capsys, stack_file, "employee", "set", "--project", "proj-a", "--id", "9", "--name", "A", "--method", "api"
    )
    assert "--method api needs --short-number" in err and ": :" not in err


def test_a_bad_short_number_is_named_without_pydantic_prefixes(project: Any, stack_file: Path, capsys: Any) -> None:
    argv = ["employee", "set", "--project", "proj-a", "--id", "9", "--name", "A", "--method", "app"]
    err = _fails(capsys, stack_file, *argv, "--short-number", "x")
    assert err == "iptel: short_number: short_number must be 2-8 digits, e.g. '346'\n"


def test_a_reused_secret_is_named_without_a_random_project_id(project: Any, stack_file: Path, capsys: Any) -> None:
    argv = ["project", "create", "--name", "Copy", "--server-url", "https://a00.abc.ru/b3/api/v2/start.php"]
    err = _fails(capsys, stack_file, *argv, "--secret", PBX_SECRET)
    assert "this secret cannot be used: choose another one" in err
    assert "project" not in err  # neither whose it is nor a made-up id of a project that was never created


# -- the console stays a person's --------------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable_pbx(project: Any, admin_target: Any) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/b3/api/v2/start.php"
    put_pbx_credentials(admin_target.ssm, admin_target.ssm_prefix, "proj-a", PbxCredentials(url, PBX_SECRET))


def test_pbx_ping_of_an_unreachable_pbx_prints_no_log_lines(
    unreachable_pbx: None, stack_file: Path, capsys: Any
) -> None:
    err = _fails(capsys, stack_file, "pbx", "ping", "proj-a")
    assert "PBX unreachable" in err and "service_undefined" not in err


def test_verbose_shows_the_log_lines_on_stderr(unreachable_pbx: None, stack_file: Path, capsys: Any) -> None:
    code = cli.main(["--verbose", "--stack-file", str(stack_file), "pbx", "ping", "proj-a"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [log["message"] for log in logs] == ["PBX connect failed", "PBX connect failed"]
    assert {log["service"] for log in logs} == {"iptel"}
    assert err.splitlines()[-1].startswith("iptel: PBX unreachable")
    # And the process's Logger is left as it was (the functions' service name)
    from iptelefon.platform.observability import logger

    assert logger.registered_formatter.log_format["service"] == logger.service != "iptel"


# -- the local stack is not running ----------------------------------------------------------------------------------
def test_no_stack_file_says_the_local_stack_is_not_running(aws: None, tmp_path: Path, capsys: Any) -> None:
    err = _fails(capsys, tmp_path / "stack.json", "employee", "list", "--project", "demo")
    assert "the local stack is not running (start it with `make run`" in err


def test_a_stale_stack_file_says_the_local_stack_is_not_running(aws: None, tmp_path: Path, capsys: Any) -> None:
    # Given the stack file of a stack that was killed (its moto port is dead)
    stale = tmp_path / "stack.json"
    stale.write_text(json.dumps({**IN_PROCESS_STACK, "aws_endpoint_url": f"http://127.0.0.1:{_closed_port()}"}))
    # Then the CLI says so, instead of "storage is unavailable, retry later"
    err = _fails(capsys, stale, "employee", "list", "--project", "demo")
    assert "the local stack is not running (start it with `make run`" in err and "127.0.0.1" in err


def test_a_stack_file_that_is_not_one_is_named(aws: None, tmp_path: Path, capsys: Any) -> None:
    broken = tmp_path / "stack.json"
    broken.write_text("{")
    assert str(broken) in _fails(capsys, broken, "project", "show", "demo")
