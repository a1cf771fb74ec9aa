"""`iptel client import <csv>`: clients from a CSV file, in batches, the phone index written with each client.

Columns: `phone`, `channel` (default `telephony`), `id`, `created_at` (ISO 8601) are the client's own (their names in
any case); every other column is a client variable (empty cells are skipped). A CRM's usual names for the phone and
the client's name count too (`HEADER_SYNONYMS`: `Телефон`, `тел.`, `ФИО`, `Имя`, …): the phone is the client's own,
the name becomes the variable `name`. A bad row is reported with its line number and skipped; nothing else is lost.
The file may be UTF-8 (with or without BOM) or cp1251 (Excel's "CSV" on a Russian Windows), separated by `,`, `;`
(Excel again) or tabs.

With `update`, a row whose phone is already a client's (the client it matches, as a webhook would) merges its
variables into that client instead of adding another: the report counts created, updated and unchanged clients.
A dry run reads and checks everything, looks the phones up, and writes nothing.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from iptelefon.data.clients import ClientStore
from iptelefon.domain.errors import InvalidInput
from iptelefon.domain.models import Channel, Client, Project, time_ordered_id
from iptelefon.domain.phones import normalize_phone

OWN_COLUMNS = {"id", "channel", "phone", "created_at"}
# What CRMs and people name the phone and name columns (compared in lower case, without a trailing `.` or `:`):
# the column becomes the client's `phone`, or the variable `name`.
HEADER_SYNONYMS = {
    "phone": (
        "phone", "phone number", "phone_number", "mobile", "mobile phone", "tel", "telephone", "cell",
        "телефон", "тел", "номер телефона", "мобильный", "мобильный телефон", "моб. телефон", "сотовый",
    ),
    "name": ("name", "full name", "full_name", "fio", "имя", "фио", "ф.и.о", "клиент", "контакт", "имя клиента"),
}  # fmt: skip
_CANONICAL = {synonym: field for field, synonyms in HEADER_SYNONYMS.items() for synonym in synonyms}
DELIMITERS = (",", ";", "\t")
BATCH_ROWS = 500  # rows parsed per round of transactions (each transaction packs up to 100 writes)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0  # a client whose phone the row named, its variables merged (with `update`)
    unchanged: int = 0  # a client the row named that already had every variable as the row has it
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"line", "error"}
    dry_run: bool = False

    def answer(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "imported": self.created + self.updated,  # the old name of what was written, kept for scripts
            "skipped": self.skipped,
        }
        if self.dry_run:
            answer = {"dry_run": True, **answer, "note": "nothing was written: these are what the import would do"}
        return answer


def client_from_row(row: dict[str, str], project: Project) -> Client:
    """One CSV row -> a Client, or InvalidInput/ValueError naming what is wrong."""
    values = {_column(k): (v or "").strip() for k, v in row.items() if k}
    return build_client(
        project,
        channel=values.get("channel") or "telephony",
        phone=values.get("phone") or None,
        variables={k: v for k, v in values.items() if k not in OWN_COLUMNS and v},
        client_id=values.get("id") or None,
        created_at=values.get("created_at") or None,
    )


def build_client(
    project: Project,
    *,
    channel: str,
    phone: str | None,
    variables: dict[str, str],
    client_id: str | None = None,
    created_at: str | None = None,
) -> Client:
    """A new client as an operator describes it; InvalidInput (or pydantic's ValueError) naming what is wrong."""
    if channel not in get_args(Channel):
        raise InvalidInput.for_field("channel", f"{channel!r} is not one of {', '.join(get_args(Channel))}")
    canonical = normalize_phone(phone, default_region=project.default_region) if phone else None
    if channel == "telephony" and not canonical:
        raise InvalidInput.for_field(
            "phone", "a telephony client needs a phone (or give the client a messenger channel)"
        )
    data: dict[str, Any] = {
        "id": client_id or time_ordered_id(),
        "channel": channel,
        "phone": canonical,
        "variables": variables,
        "can_message": channel != "telephony",
    }
    if created_at:
        data["created_at"] = created_at
    return Client.model_validate(data)


def import_clients(
    store: ClientStore,
    project: Project,
    path: Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    update: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    report = ImportReport(dry_run=dry_run)
    text = read_text(path)
    total = max(text.count("\n") - 1, 0)
    done = 0
    # With `update`, the clients this import made or changed, by phone: a later row with the same phone merges into
    # one of them (a dry run writes none, and the earlier rows of a batch are not written yet when it is read).
    known: dict[str, Client] = {}
    for rows in _batches(_read_rows(path, text), BATCH_ROWS):
        clients: list[tuple[int, Client]] = []
        for line, row in rows:
            try:
                client = client_from_row(row, project)
            except (ValueError, InvalidInput) as error:
                report.skipped.append({"line": line, "error": _reason(error)})
                continue
            existing = _existing(store, project, client, known) if update and client.phone else None
            if existing is None:
                clients.append((line, client))
                if client.phone:
                    known[client.phone] = client
                continue
            changed = {k: v for k, v in client.variables.items() if existing.variables.get(k) != v}
            if not changed:
                report.unchanged += 1
                continue
            if not dry_run and all(existing is not new for _, new in clients):  # a stored client: write it now
                for name, value in changed.items():
                    store.set_variable(project, existing, name, value)
            existing.variables.update(changed)  # a client of this batch is written below with the merged variables
            report.updated += 1
        failed = [] if dry_run else store.add_many(project, [client for _, client in clients])
        for client, _ in failed:  # not stored: a later row with its phone must not update it
            if client.phone and known.get(client.phone) is client:
                del known[client.phone]
        lines = {id(client): line for line, client in clients}
        report.skipped += [{"line": lines[id(client)], "error": reason} for client, reason in failed]
        report.created += len(clients) - len(failed)
        done += len(rows)
        if progress:
            progress(done, total)
    report.skipped.sort(key=lambda s: int(s["line"]))
    return report


def _existing(store: ClientStore, project: Project, client: Client, known: dict[str, Client]) -> Client | None:
    """The client a row's phone names: one this import made or changed, else the stored client the phone matches."""
    assert client.phone
    if client.phone in known:
        return known[client.phone]
    found = store.match(project.id, client.phone)
    existing = store.get(project.id, found[0]) if found else None
    if existing is not None:
        known[client.phone] = existing
    return existing


def _reason(error: Exception) -> str:
    if isinstance(error, InvalidInput):
        return error.message
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return str(error)


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (a BOM dropped) when it decodes as such, else cp1251 (a Russian Excel's CSV)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is neither UTF-8 nor cp1251 text: save it as CSV UTF-8") from None


def delimiter_of(header: str) -> str:
    """The separator the header line uses most: `,`, `;` (Excel in a Russian locale) or a tab."""
    return max(DELIMITERS, key=header.count)  # a one-column header counts 0 for each: `,`


def _column(name: str) -> str:
    # The client's own columns and the synonyms in any case (`Phone`, `ТЕЛЕФОН`); a variable keeps its name as written.
    name = name.strip()
    folded = " ".join(name.lower().rstrip(".:").split())
    return _CANONICAL.get(folded) or (folded if folded in OWN_COLUMNS else name)


def _read_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, str]]]:
    delimiter = delimiter_of(text.partition("\n")[0])
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [_column(name) for name in reader.fieldnames or []]
    for column in set(columns):
        named = [repr(name.strip()) for name in reader.fieldnames or [] if _column(name) == column]
        if len(named) > 1:  # which one's value would win is a guess: say so instead of guessing
            raise InvalidInput(f"{path}: the columns {' and '.join(named)} all mean {column}: keep one")
    if "phone" not in columns and "channel" not in columns:
        # Every row would be a telephony client without a phone: say what was read instead of failing each row.
        found = ", ".join(repr(name.strip()) for name in reader.fieldnames or []) or "none"  # as written
        shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
        raise InvalidInput(
            f"{path} has no phone column (columns found, separated by {shown}: {found}); "
            "name the column with the clients' phones `phone` or `Телефон` (and `channel` for messenger clients)"
        )
    for row in reader:
        yield reader.line_num, row


def _batches(rows: Iterator[tuple[int, dict[str, str]]], size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    batch: list[tuple[int, dict[str, str]]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def progress_bar(done: int, total: int) -> None:
    """A one-line progress bar on stderr (stdout carries the JSON report)."""
    width = 30
    filled = width * done // total if total else width
    sys.stderr.write(f"\rimporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
