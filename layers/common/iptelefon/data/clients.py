"""Clients and the phone index (contract section 4): matching in one GetItem, creation exactly once.

The index holds ONE item per (project, phone): pk `PHONE#<project>#<phone>`, sk `INDEX`, attribute `entries`, a string
set whose members sort in matching order, so the smallest member is the match:
  `1#<created_at>#<client>#phone`        a telephony client's own phone           (rule 1: telephony clients first)
  `2#<created_at>#<client>#phone`        a messenger client's own phone           (rule 2, see below)
  `2#<created_at>#<client>#var:<name>`   a variable whose value is that phone     (rule 2)
Ties within a rank: the earliest created client wins (`<created_at>` is fixed-width UTC, so text order is time order,
whatever offset a client was imported with). Rule 2 includes a messenger client's own phone, so a WhatsApp
client created for a caller is found again on the next call instead of being created again.

Why a set in one item and not one item per entry: a GetItem costs the same for 100 or 100,000 clients, in DynamoDB
and in moto alike (moto's Query walks the whole table). ADD/DELETE on a set need no read first and never clash.
The index is written in the same transaction as the client or variable it mirrors, so it never drifts. A new client
is created only while the phone's index is still empty (a condition in that transaction): concurrent webhooks for
one new phone create exactly one client.

One item must stay under DynamoDB's 400 KB: a phone may stand for at most MAX_CLIENTS_PER_PHONE clients (a condition
on every ADD). One more is refused with a clear 409 (`PhoneShared`): a phone shared by more than a thousand clients is
a data problem (a switchboard number in a CRM field, say) that matching cannot answer well anyway, and a cap keeps
matching at one GetItem. Overflow items would keep every entry but cost a read per thousand entries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from iptelefon.data.gateway import ConditionFailed, Storage, Write, project_pk, put, update
from iptelefon.domain.errors import InvalidPhone, PhoneShared, StorageUnavailable
from iptelefon.domain.models import Client, Project, is_valid_id, utc_stamp
from iptelefon.domain.phones import mask_phone, normalize_phone

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


def phone_pk(project_id: str, phone: str) -> str:
    return f"PHONE#{project_id}#{phone}"


def client_sk(client_id: str) -> str:
    return f"CLIENT#{client_id}"


def index_entry(rank: str, client: Client, source: str) -> str:
    return f"{rank}#{utc_stamp(client.created_at)}#{client.id}#{source}"


def entry_client_id(entry: str) -> str:
    return entry.split("#")[2]


def phone_of(value: object, region: str) -> str | None:
    """The canonical phone a variable value stands for, or None when it is not a phone."""
    try:
        return normalize_phone(value, default_region=region)
    except InvalidPhone:
        return None


class ClientStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -- reads ---------------------------------------------------------------------------------------------------
    def first(self, project_id: str, count: int) -> list[Client]:
        """The project's first `count` clients, in id order (a console search reads these, never the whole table)."""
        items = self.storage.query(project_pk(project_id), "CLIENT#", limit=count)
        return [Client.model_validate(item) for item in items]

    def get(self, project_id: str, client_id: str) -> Client | None:
        if not is_valid_id(client_id):  # no such key can exist (and an overlong one would break DynamoDB's limit)
            return None
        item = self.storage.get(project_pk(project_id), client_sk(client_id))
        return Client.model_validate(item) if item else None

    def match(self, project_id: str, phone: str, *, limit: int = 1) -> list[str]:
        """Client ids for a canonical phone, in matching order (the first one wins). One GetItem."""
        item = self.storage.get(phone_pk(project_id, phone), INDEX_SK, attributes="entries") or {}
        entries = sorted(item.get("entries", ()))
        return list(dict.fromkeys(entry_client_id(e) for e in entries))[:limit]  # a client may match twice

    # -- writes --------------------------------------------------------------------------------------------------
    def add(self, project: Project, client: Client, *, only_if_phone_unmatched: bool = False) -> bool:
        """Store a client and its index entries in one transaction.

        With only_if_phone_unmatched, nothing is written (False) if some client matches the client's phone by now.
        Raises PhoneShared when a phone stands for too many clients, ConditionFailed(CLIENT_EXISTS) if the id exists.
        """
        writes = self.client_writes(project, client, only_if_phone_unmatched=only_if_phone_unmatched)
        try:
            self.storage.transact(writes)
        except ConditionFailed as failed:
            if PHONE_MATCHED in failed.failed:
                return False
            raise_if_phone_full(failed)
            raise
        return True

    def add_many(self, project: Project, clients: list[Client]) -> list[tuple[Client, str]]:
        """Store many clients (an import) in as few transactions as possible, each client with its index entries.

        A transaction holds up to 100 items and touches each index item once, so clients sharing a phone go to
        different transactions. Contention and throttling are retried by the storage gateway; a batch refused by a
        condition is stored client by client, so only the clients that really exist (or overfill a phone) fail.
        Returns the clients that could not be stored, with the reason.
        """
        failed: list[tuple[Client, str]] = []
        for batch in pack_transactions([(client, self.client_writes(project, client)) for client in clients]):
            try:
                self.storage.transact([w for _, writes in batch for w in writes])
            except ConditionFailed:
                for client, _ in batch:
                    try:
                        self.add(project, client)
                    except ConditionFailed:
                        failed.append((client, f"client {client.id} already exists"))
                    except PhoneShared as error:
                        failed.append((client, error.message))
        return failed

    def client_writes(self, project: Project, client: Client, *, only_if_phone_unmatched: bool = False) -> list[Write]:
        writes = [put(self._client_item(project.id, client), only_if="attribute_not_exists(pk)", label=CLIENT_EXISTS)]
        for phone, entries in self._index_entries(project, client).items():
            if only_if_phone_unmatched and phone == client.phone:
                writes.append(_index_add(project.id, phone, entries, only_if_empty=True))
            else:
                writes.append(_index_add(project.id, phone, entries))
        return writes

    def match_or_add(self, project: Project, client: Client) -> tuple[str, bool]:
        """The id of the first client matching `client.phone`, or `client` stored when none matches (contract section
        4; the webhook chooses the new client's channel). Returns (client_id, created)."""
        assert client.phone
        found = self.match(project.id, client.phone)
        if found:
            return found[0], False
        if self.add(project, client, only_if_phone_unmatched=True):
            return client.id, True
        # Another request created (or indexed) a client for this phone a moment ago: it matches now.
        found = self.match(project.id, client.phone)
        if not found:  # it matched a moment ago and was removed since: the next try starts over
            raise StorageUnavailable("a client for this phone is being changed, retry")
        return found[0], False

    def variable_update(self, project: Project, client: Client, name: str, value: str) -> list[Write]:
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
                writes.append(_index_add(project.id, new_phone, [entry]))
        return writes

    def set_variable(self, project: Project, client: Client, name: str, value: str) -> None:
        try:
            self.storage.transact(self.variable_update(project, client, name, value))
        except ConditionFailed as failed:
            raise_if_phone_full(failed)
            raise

    # -- items ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _client_item(project_id: str, client: Client) -> dict[str, Any]:
        return {
            "pk": project_pk(project_id),
            "sk": client_sk(client.id),
            "type": "client",
            **client.model_dump(mode="json"),
        }

    @staticmethod
    def _index_entries(project: Project, client: Client) -> dict[str, list[str]]:
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


def _index_add(project_id: str, phone: str, entries: list[str], *, only_if_empty: bool = False) -> Write:
    values: dict[str, Any] = {":e": set(entries)}
    if only_if_empty:
        condition, label = "attribute_not_exists(entries)", PHONE_MATCHED
    else:
        condition, label = "attribute_not_exists(entries) OR size(entries) < :cap", PHONE_FULL + phone
        values[":cap"] = MAX_CLIENTS_PER_PHONE
    return update(
        phone_pk(project_id, phone), INDEX_SK, "ADD entries :e", only_if=condition, values=values, label=label
    )


def raise_if_phone_full(failed: ConditionFailed) -> None:
    for label in sorted(failed.failed):
        if label.startswith(PHONE_FULL):
            phone = mask_phone(label.removeprefix(PHONE_FULL))
            raise PhoneShared(
                f"phone {phone} already stands for {MAX_CLIENTS_PER_PHONE} clients, the most one phone may: "
                "remove duplicates or that phone from some clients first"
            ) from None


MAX_TRANSACTION_ITEMS = 100


def pack_transactions(writes: list[tuple[Client, list[Write]]]) -> list[list[tuple[Client, list[Write]]]]:
    """Greedy packing of each client's writes into transactions of at most 100 items that touch no item twice
    (two clients with the same phone update the same index item)."""
    batches: list[list[tuple[Client, list[Write]]]] = []
    batch: list[tuple[Client, list[Write]]] = []
    touched: set[tuple[str, str]] = set()
    for client, items in writes:
        keys = {w.key for w in items}
        if batch and (len(touched) + len(keys) > MAX_TRANSACTION_ITEMS or touched & keys):
            batches.append(batch)
            batch, touched = [], set()
        batch.append((client, items))
        touched |= keys
    if batch:
        batches.append(batch)
    return batches
