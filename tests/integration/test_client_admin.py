"""`iptel client add / import` and `calls list`: clients written with their phone index, bad rows reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import IN_PROCESS_STACK

from iptel_admin import cli
from iptelefon.data.clients import ClientStore, pack_transactions
from iptelefon.data.gateway import Storage
from iptelefon.domain.models import Client

STACK = IN_PROCESS_STACK


@pytest.fixture
def stack_file(project: Any, tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(STACK))
    return path


def _run(stack_file: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = cli.main(["--stack-file", str(stack_file), *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_client_add_with_variables_is_matched_by_a_variable_phone(
    stack_file: Path, admin_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an operator adds a Telegram client whose variable holds a phone
    added = _run(
        stack_file,
        capsys,
        "client",
        "add",
        "--project",
        "proj-a",
        "--channel",
        "telegram",
        "--var",
        "phone=+7 (900) 444-33-22",
        "--var",
        "name=Ivan",
    )
    # Then the client is stored and the webhook's matching finds it by that phone
    assert added["variables"] == {"phone": "+7 (900) 444-33-22", "name": "Ivan"}
    assert ClientStore(admin_target.storage).match("proj-a", "79004443322") == [added["id"]]


def test_client_add_refuses_a_telephony_client_without_a_valid_phone(
    stack_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--stack-file", str(stack_file), "client", "add", "--project", "proj-a", "--phone", "12"]) == 2
    assert "phone" in capsys.readouterr().err


def test_import_writes_clients_with_index_and_reports_bad_rows_by_line(
    stack_file: Path, admin_target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a CSV with good rows, a bad phone, an unknown channel and two clients sharing one phone
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text(
        "id,channel,phone,created_at,email,contact_phone\n"
        "a1,telephony,8 900 444 33 22,2023-01-01T00:00:00+00:00,a@x.ru,\n"
        "a2,telephony,not a phone,,,\n"
        "a3,fax,79001112233,,,\n"
        "a4,telegram,,2022-01-01T00:00:00+00:00,,+7 900 444-33-22\n"
        "a5,whatsapp,79005556677,,,\n",
        encoding="utf-8",
    )
    # When imported
    report = _run(stack_file, capsys, "client", "import", "--project", "proj-a", str(csv_file))
    # Then three clients are stored, and the two bad rows are named by their line numbers
    assert report["created"] == 3
    assert [s["line"] for s in report["skipped"]] == [3, 4]
    assert "phone" in report["skipped"][0]["error"] and "fax" in report["skipped"][1]["error"]
    # And matching follows the rules: the telephony client wins over the older variable match
    store = ClientStore(admin_target.storage)
    assert store.match("proj-a", "79004443322", limit=5) == ["a1", "a4"]
    assert store.match("proj-a", "79005556677") == ["a5"]


def test_importing_the_same_file_again_reports_existing_ids(
    stack_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("id,phone\nb1,79001234567\nb2,79007654321\n", encoding="utf-8")
    _run(stack_file, capsys, "client", "import", "--project", "proj-a", str(csv_file))
    again = _run(stack_file, capsys, "client", "import", "--project", "proj-a", str(csv_file))
    assert again["created"] == 0
    assert [s["error"] for s in again["skipped"]] == ["client b1 already exists", "client b2 already exists"]


# -- what a CRM's export looks like (issue 21) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("Телефон;Имя;Город", "8 900 444-33-22;Иван;Москва"),
        ("тел.;ФИО;Город", "8 900 444-33-22;Иван;Москва"),
        ("Phone Number,Full Name,Город", "8 900 444-33-22,Иван,Москва"),
        ("PHONE\tNAME\tГород", "8 900 444-33-22\tИван\tМосква"),
    ],
)
def test_import_reads_the_usual_names_of_the_phone_and_name_columns(
    header: str, row: str, stack_file: Path, admin_target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _import(stack_file, capsys, tmp_path / "clients.csv", f"{header}\n{row}\n")["created"] == 1
    store = ClientStore(admin_target.storage)
    [found] = store.match("proj-a", "79004443322")
    client = store.get("proj-a", found)
    assert client is not None and client.variables == {"name": "Иван", "Город": "Москва"}


def test_two_columns_meaning_one_field_are_refused(
    stack_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("Телефон;phone;Имя\n79004443322;79004443323;Иван\n", encoding="utf-8")
    assert cli.main(["--stack-file", str(stack_file), "client", "import", "proj-a", str(csv_file)]) == 2
    assert "the columns 'Телефон' and 'phone' all mean phone: keep one" in capsys.readouterr().err


def _import(stack_file: Path, capsys: pytest.CaptureFixture[str], csv_file: Path, text: str, *options: str) -> Any:
    csv_file.write_text(text, encoding="utf-8")
    return _run(stack_file, capsys, "client", "import", "proj-a", str(csv_file), *options)


def _clients_of(admin_target: Any, phone: str) -> list[Any]:
    store = ClientStore(admin_target.storage)
    return [store.get("proj-a", client_id) for client_id in store.match("proj-a", phone, limit=10)]


def test_update_merges_by_phone_and_reports_created_updated_unchanged(
    stack_file: Path, admin_target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two clients imported once
    csv_file = tmp_path / "clients.csv"
    _import(stack_file, capsys, csv_file, "Телефон;Имя;Город\n79004443322;Иван;Москва\n79001112233;Ольга;Тверь\n")
    # When the CRM's next export is imported with --update: Ivan moved, Olga is as she was, Anna is new, and a second
    # row for Anna's phone adds her email
    next_export = (
        "Телефон;Имя;Город;email\n"
        "8 900 444-33-22;Иван;Казань;\n"
        "79001112233;Ольга;Тверь;\n"
        "79005556677;Анна;Сочи;\n"
        "+7 900 555-66-77;Анна;Сочи;anna@example.ru\n"
    )
    report = _import(stack_file, capsys, csv_file, next_export, "--update")
    # Then one client per phone, merged, and the report says which was which
    assert report == {"created": 1, "updated": 2, "unchanged": 1, "imported": 3, "skipped": []}
    [ivan] = _clients_of(admin_target, "79004443322")
    assert ivan.variables == {"name": "Иван", "Город": "Казань"}
    [olga] = _clients_of(admin_target, "79001112233")
    assert olga.variables == {"name": "Ольга", "Город": "Тверь"}
    [anna] = _clients_of(admin_target, "79005556677")
    assert anna.variables == {"name": "Анна", "Город": "Сочи", "email": "anna@example.ru"}


def test_without_update_the_same_phone_is_another_client(
    stack_file: Path, admin_target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import(stack_file, capsys, tmp_path / "clients.csv", "phone,name\n79004443322,Иван\n")
    _import(stack_file, capsys, tmp_path / "clients.csv", "phone,name\n79004443322,Иван\n")
    assert len(_clients_of(admin_target, "79004443322")) == 2


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(
    stack_file: Path, admin_target: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Ivan stored
    csv_file = tmp_path / "clients.csv"
    _import(stack_file, capsys, csv_file, "Телефон;Имя\n79004443322;Иван\n")
    # When a file that renames him, adds Olga twice and has a bad phone is tried with --dry-run
    tried = "Телефон;Имя\n79004443322;Иван Петров\n79001112233;Ольга\n79001112233;Ольга\nnot a phone;Х\n"
    report = _import(stack_file, capsys, csv_file, tried, "--update", "--dry-run")
    # Then the report is what the import would do
    assert report["dry_run"] is True and "nothing was written" in report["note"]
    assert (report["created"], report["updated"], report["unchanged"]) == (1, 1, 1)
    assert [s["line"] for s in report["skipped"]] == [5]
    # And nothing changed
    [ivan] = _clients_of(admin_target, "79004443322")
    assert ivan.variables == {"name": "Иван"}
    assert _clients_of(admin_target, "79001112233") == []


def test_transactions_never_touch_one_item_twice_and_stay_under_100_items(project: Any) -> None:
    # Given 150 clients where every two share a phone (the same index item)
    store = ClientStore(Storage(None, "t"))  # type: ignore[arg-type]  # writes are only built here, never sent
    clients = [Client(id=f"c{n}", channel="telephony", phone=f"7900{n // 2:07d}") for n in range(150)]
    # When packed into transactions
    batches = pack_transactions([(c, store.client_writes(project.project, c)) for c in clients])
    # Then no transaction is over 100 items or writes one item twice, and every client is in one
    for batch in batches:
        keys = [write.key for _, writes in batch for write in writes]
        assert len(keys) <= 100
        assert len(keys) == len(set(keys))
    assert sorted(c.id for batch in batches for c, _ in batch) == sorted(c.id for c in clients)


def test_calls_list_shows_a_clients_calls(
    stack_file: Path, capsys: pytest.CaptureFixture[str], lambda_context: Any
) -> None:
    from fixtures.projects import PBX_SECRET
    from support import webhook_event

    from webhook.handler import lambda_handler

    event = webhook_event(PBX_SECRET, {"id": "call-1", "calltype": "IN", "src": "79004443322", "talktime": "5"})
    client_id = json.loads(lambda_handler(event, lambda_context)["body"])["client_id"]
    listed = _run(stack_file, capsys, "calls", "list", "--project", "proj-a", "--client", client_id)
    assert [c["call_key"] for c in listed] == ["call-1"]
    assert [c["call_key"] for c in _run(stack_file, capsys, "calls", "list", "--project", "proj-a")] == ["call-1"]
