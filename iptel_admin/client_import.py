"""`iptel client import <csv>`: clients from a CSV file, in batches, the phone index written with each client.

Columns: `phone`, `channel` (default `telephony`), `id`, `created_at` (ISO 8601) are the client's own (their names in
any case); every other column is a client variable (empty cells are skipped). A bad row is reported with its line
number and skipped; nothing else is lost. The file may be UTF-8 (with or without BOM) or cp1251 (Excel's "CSV" on a
Russian Windows), separated by `,`, `;` (Excel again) or tabs.
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
DELIMITERS = (",", ";", "\t")
BATCH_ROWS = 500  # rows parsed per round of transactions (each transaction packs up to 100 writes)


@dataclass
class ImportReport:
    imported: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"line", "error"}


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
    store: ClientStore, project: Project, path: Path, progress: Callable[[int, int], None] | None = None
) -> ImportReport:
    report = ImportReport()
    text = read_text(path)
    total = max(text.count("\n") - 1, 0)
    done = 0
    for rows in _batches(_read_rows(path, text), BATCH_ROWS):
        clients: list[tuple[int, Client]] = []
        for line, row in rows:
            try:
                clients.append((line, client_from_row(row, project)))
            except (ValueError, InvalidInput) as error:
                report.skipped.append({"line": line, "error": _reason(error)})
        failed = store.add_many(project, [client for _, client in clients])
        lines = {id(client): line for line, client in clients}
        report.skipped += [{"line": lines[id(client)], "error": reason} for client, reason in failed]
        report.imported += len(clients) - len(failed)
        done += len(rows)
        if progress:
            progress(done, total)
    report.skipped.sort(key=lambda s: int(s["line"]))
    return report


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
    # The client's own columns in any case (`Phone`, `PHONE`); a variable keeps its name as written.
    name = name.strip()
    return name.lower() if name.lower() in OWN_COLUMNS else name


def _read_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, str]]]:
    delimiter = delimiter_of(text.partition("\n")[0])
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [_column(name) for name in reader.fieldnames or []]
    if "phone" not in columns and "channel" not in columns:
        # Every row would be a telephony client without a phone: say what was read instead of failing each row.
        found = ", ".join(repr(name) for name in columns) or "none"
        shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
        raise InvalidInput(
            f"{path} has no phone column (columns found, separated by {shown}: {found}); "
            "name the column with the clients' phones `phone` (and `channel` for messenger clients)"
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
