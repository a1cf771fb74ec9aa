"""Clients and the phone index (contract section 4): matching in one GetItem, creation exactly once.

The index holds ONE item per (project, phone): pk `PHONE#<project>#<phone>`, sk `INDEX`, attribute `entries`, a string
set whose members sort in matching order, so the smallest member is the match:
  `1#<created_at>#<client>#phone`        a telephony client's own phone           (rule 1: telephony clients first)
  `2#<created_at>#<client>#phone`        a messenger client's own phone           (rule 2, see below)
  `2#<created_at>#<client>#var:<name>`   a variable whose value is that phone     (rule 2)
Ties within a rank: the earliest created client wins. Rule 2 includes a messenger client's own phone, so a WhatsApp
client created for a caller is found again on the next call instead of being created again.

Why a set in one item and not one item per entry: a GetItem costs the same for 100 or 100,000 clients, in DynamoDB
and in moto alike (moto's Query walks the whole table). ADD/DELETE on a set need no read first and never clash.
The index is written in the same transaction as the client or variable it mirrors, so it never drifts. A new client
is created only while the phone's index is still empty (a condition in that transaction): concurrent webhooks for
one new phone create exactly one client.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

from iptelefon.errors import InvalidPhone, StorageUnavailable
from iptelefon.models import Channel, Client, Project, time_ordered_id
from iptelefon.phones import normalize_phone
from iptelefon.storage import Storage, is_condition_failure, key, project_pk, sdk_errors, to_item

RANK_TELEPHONY = "1"
RANK_OTHER = "2"
INDEX_SK = "INDEX"


def phone_pk(project_id: str, phone: str) -> str:
    return f"PHONE#{project_id}#{phone}"


def client_sk(client_id: str) -> str:
    return f"CLIENT#{client_id}"


def index_entry(rank: str, client: Client, source: str) -> str:
    return f"{rank}#{client.created_at.isoformat()}#{client.id}#{source}"


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
        self.client = storage.client
        self.table = storage.table

    # -- reads ---------------------------------------------------------------------------------------------------
    def get(self, project_id: str, client_id: str) -> Client | None:
        item = self.storage.get(project_pk(project_id), client_sk(client_id))
        return Client.model_validate(item) if item else None

    def match(self, project_id: str, phone: str, *, limit: int = 1) -> list[str]:
        """Client ids for a canonical phone, in matching order (the first one wins). One GetItem."""
        with sdk_errors():
            reply = self.client.get_item(
                TableName=self.table,
                Key=key(phone_pk(project_id, phone), INDEX_SK),
                ProjectionExpression="entries",
                ConsistentRead=True,
            )
        entries = sorted(reply.get("Item", {}).get("entries", {}).get("SS", []))
        return list(dict.fromkeys(entry_client_id(e) for e in entries))[:limit]  # a client may match twice

    # -- writes --------------------------------------------------------------------------------------------------
    def add(self, project: Project, client: Client, *, only_if_phone_unmatched: bool = False) -> bool:
        """Store a client and its index entries in one transaction.

        With only_if_phone_unmatched, nothing is written (False) if some client matches the client's phone by now.
        """
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(self._client_item(project.id, client)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for phone, entries in self._index_entries(project, client).items():
            update = _index_change(self.table, project.id, phone, "ADD", entries)
            if only_if_phone_unmatched and phone == client.phone:
                update["Update"]["ConditionExpression"] = "attribute_not_exists(entries)"
            items.append(update)
        try:
            with sdk_errors():
                self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if only_if_phone_unmatched and is_condition_failure(error):
                return False
            raise
        return True

    def add_many(self, project: Project, clients: list[Client]) -> list[tuple[Client, str]]:
        """Store many clients (an import) in as few transactions as possible, each client with its index entries.

        A transaction holds up to 100 items and touches each index item once, so clients sharing a phone go to
        different transactions. Returns the clients that could not be stored, with the reason.
        """
        failed: list[tuple[Client, str]] = []
        for batch in pack_transactions([(client, self._client_writes(project, client)) for client in clients]):
            try:
                with sdk_errors():
                    self.client.transact_write_items(TransactItems=[i for _, items in batch for i in items])
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
                for client, _ in batch:  # some client id exists already: store the others one by one
                    try:
                        self.add(project, client)
                    except ClientError as single:
                        if not is_condition_failure(single):
                            raise
                        failed.append((client, f"client {client.id} already exists"))
        return failed

    def _client_writes(self, project: Project, client: Client) -> list[Any]:
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(self._client_item(project.id, client)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        items += [
            _index_change(self.table, project.id, phone, "ADD", entries)
            for phone, entries in self._index_entries(project, client).items()
        ]
        return items

    def match_or_create(self, project: Project, phone: str) -> tuple[str, bool]:
        """The matching client's id, or a new client's (contract section 4). Returns (client_id, created)."""
        found = self.match(project.id, phone)
        if found:
            return found[0], False
        channel: Channel = "whatsapp" if project.has_messenger else "telephony"
        client = Client(id=time_ordered_id(), channel=channel, phone=phone, can_message=channel != "telephony")
        if self.add(project, client, only_if_phone_unmatched=True):
            return client.id, True
        # Another request created (or indexed) a client for this phone a moment ago: it matches now.
        found = self.match(project.id, phone)
        if not found:
            raise StorageUnavailable("a client for this phone is being created, retry")
        return found[0], False

    def variable_update(self, project: Project, client: Client, name: str, value: str) -> list[Any]:
        """Transaction items that set one variable and keep the phone index in step with it."""
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": key(project_pk(project.id), client_sk(client.id)),
                    "UpdateExpression": "SET variables.#name = :value",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#name": name},
                    "ExpressionAttributeValues": {":value": {"S": value}},
                }
            }
        ]
        old_phone = phone_of(client.variables.get(name), project.default_region)
        new_phone = phone_of(value, project.default_region)
        if old_phone != new_phone:
            entry = index_entry(RANK_OTHER, client, f"var:{name}")
            if old_phone:
                items.append(_index_change(self.table, project.id, old_phone, "DELETE", [entry]))
            if new_phone:
                items.append(_index_change(self.table, project.id, new_phone, "ADD", [entry]))
        return items

    def set_variable(self, project: Project, client: Client, name: str, value: str) -> None:
        with sdk_errors():
            self.client.transact_write_items(TransactItems=self.variable_update(project, client, name, value))

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


def _index_change(table: str, project_id: str, phone: str, action: str, entries: list[str]) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": key(phone_pk(project_id, phone), INDEX_SK),
            "UpdateExpression": f"{action} entries :entries",
            "ExpressionAttributeValues": {":entries": {"SS": entries}},
        }
    }


MAX_TRANSACTION_ITEMS = 100


def pack_transactions(writes: list[tuple[Client, list[Any]]]) -> list[list[tuple[Client, list[Any]]]]:
    """Greedy packing of each client's writes into transactions of at most 100 items that touch no item twice
    (two clients with the same phone update the same index item)."""
    batches: list[list[tuple[Client, list[Any]]]] = []
    batch: list[tuple[Client, list[Any]]] = []
    touched: set[tuple[str, str]] = set()
    for client, items in writes:
        keys = {written_key(i) for i in items}
        if batch and (len(touched) + len(keys) > MAX_TRANSACTION_ITEMS or touched & keys):
            batches.append(batch)
            batch, touched = [], set()
        batch.append((client, items))
        touched |= keys
    if batch:
        batches.append(batch)
    return batches


def written_key(write: dict[str, Any]) -> tuple[str, str]:
    ((action, spec),) = write.items()
    item_key = spec["Item"] if action == "Put" else spec["Key"]
    return item_key["pk"]["S"], item_key["sk"]["S"]
