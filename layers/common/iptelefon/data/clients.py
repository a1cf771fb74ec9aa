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

from iptelefon.data.client_items import (
    CLIENT_EXISTS,
    INDEX_SK,
    PHONE_MATCHED,
    client_item,
    client_sk,
    entry_client_id,
    index_add,
    index_entries,
    phone_pk,
    raise_if_phone_full,
    variable_writes,
)
from iptelefon.data.gateway import ConditionFailed, Storage, Write, project_pk, put
from iptelefon.domain.errors import PhoneShared, StorageUnavailable
from iptelefon.domain.models import Client, Project, is_valid_id


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
        writes = [put(client_item(project.id, client), only_if="attribute_not_exists(pk)", label=CLIENT_EXISTS)]
        for phone, entries in index_entries(project, client).items():
            if only_if_phone_unmatched and phone == client.phone:
                writes.append(index_add(project.id, phone, entries, only_if_empty=True))
            else:
                writes.append(index_add(project.id, phone, entries))
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

    def set_variable(self, project: Project, client: Client, name: str, value: str) -> None:
        try:
            self.storage.transact(variable_writes(project, client, name, value))
        except ConditionFailed as failed:
            raise_if_phone_full(failed)
            raise


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
