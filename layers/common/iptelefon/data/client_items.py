"""The client item and its phone-index entries: how they are laid out and written (no reads, no storage calls).

Both repositories that write a client's variables build their writes here: `data.clients` (a client, an import, a
variable) and `data.call_records` (the recording link, in the call's own transaction). See `data.clients` for the
index and the matching rules it serves.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from iptelefon.data.gateway import ConditionFailed, Write, project_pk, update
from iptelefon.domain.errors import PhoneShared
from iptelefon.domain.models import Client, Project, utc_stamp
from iptelefon.domain.phones import mask_phone, phone_of

RANK_TELEPHONY = "1"
RANK_OTHER = "2"
INDEX_SK = "INDEX"
# ~120 bytes an entry: a thousand entries stay far below the 400 KB item limit.
MAX_CLIENTS_PER_PHONE = 1000
# What a failed condition of a write means (storage.ConditionFailed names these).
CLIENT_EXISTS = "client exists"
PHONE_MATCHED = "phone matched"
PHONE_FULL = "phone index full: "  # + the phone
CLIENT_GONE = "client missing"


def dialog_pk(project_id: str, client_id: str) -> str:
    return f"DIALOG#{project_id}#{client_id}"


def dialog_sk(received_at: datetime, call_key: str) -> str:
    """A notification (a call's, by its key): in the dialog in the order they came in."""
    return f"{utc_stamp(received_at)}#{call_key}"


def phone_pk(project_id: str, phone: str) -> str:
    return f"PHONE#{project_id}#{phone}"


def client_sk(client_id: str) -> str:
    return f"CLIENT#{client_id}"


def index_entry(rank: str, client: Client, source: str) -> str:
    return f"{rank}#{utc_stamp(client.created_at)}#{client.id}#{source}"


def entry_client_id(entry: str) -> str:
    return entry.split("#")[2]


def client_item(project_id: str, client: Client) -> dict[str, Any]:
    return {
        "pk": project_pk(project_id),
        "sk": client_sk(client.id),
        "type": "client",
        **client.model_dump(mode="json"),
    }


def index_entries(project: Project, client: Client) -> dict[str, list[str]]:
    """Phone -> the client's entries under it (one transaction may touch an index item only once)."""
    entries: dict[str, list[str]] = defaultdict(list)
    if client.phone:
        rank = RANK_TELEPHONY if client.channel == "telephony" else RANK_OTHER
        entries[client.phone].append(index_entry(rank, client, "phone"))
    for name, value in client.variables.items():
        phone = phone_of(value, project.default_region)
        if phone:
            entries[phone].append(index_entry(RANK_OTHER, client, f"var:{name}"))
    return entries


def index_add(project_id: str, phone: str, entries: list[str], *, only_if_empty: bool = False) -> Write:
    values: dict[str, Any] = {":e": set(entries)}
    if only_if_empty:
        condition, label = "attribute_not_exists(entries)", PHONE_MATCHED
    else:
        condition, label = "attribute_not_exists(entries) OR size(entries) < :cap", PHONE_FULL + phone
        values[":cap"] = MAX_CLIENTS_PER_PHONE
    return update(
        phone_pk(project_id, phone), INDEX_SK, "ADD entries :e", only_if=condition, values=values, label=label
    )


def variable_writes(project: Project, client: Client, name: str, value: str) -> list[Write]:
    """Writes that set one variable and keep the phone index in step with it."""
    writes = [
        update(
            project_pk(project.id),
            client_sk(client.id),
            "SET variables.#name = :value",
            only_if="attribute_exists(pk)",
            names={"#name": name},
            values={":value": value},
            label=CLIENT_GONE,
        )
    ]
    old_phone = phone_of(client.variables.get(name), project.default_region)
    new_phone = phone_of(value, project.default_region)
    if old_phone != new_phone:
        entry = index_entry(RANK_OTHER, client, f"var:{name}")
        if old_phone:
            writes.append(
                update(phone_pk(project.id, old_phone), INDEX_SK, "DELETE entries :e", values={":e": {entry}})
            )
        if new_phone:
            writes.append(index_add(project.id, new_phone, [entry]))
    return writes


def raise_if_phone_full(failed: ConditionFailed) -> None:
    for label in sorted(failed.failed):
        if label.startswith(PHONE_FULL):
            phone = mask_phone(label.removeprefix(PHONE_FULL))
            raise PhoneShared(
                f"phone {phone} already stands for {MAX_CLIENTS_PER_PHONE} clients, the most one phone may: "
                "remove duplicates or that phone from some clients first"
            ) from None
