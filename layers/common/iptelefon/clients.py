"""Clients and the phone index (contract section 4): matching in one key lookup, creation exactly once.

Phone index items (pk `PHONE#<project>#<phone>`) sort in matching order, so the first item of one Query is the match:
  sk `1#<created_at>#<client>#phone`       a telephony client's own phone        (rule 1: telephony clients first)
  sk `2#<created_at>#<client>#phone`       a messenger client's own phone         (rule 2, see below)
  sk `2#<created_at>#<client>#var:<name>`  a client variable whose value is that phone (rule 2)
  sk `CLAIM`                               "a client was created for this phone": makes creation happen once
Rule 2 includes a messenger client's own phone: a WhatsApp client created for a caller is found again on the next
call (otherwise every call from that phone would create another client). Ties within a rank: earliest created wins.
The index is written in the same transaction as the client or variable it mirrors, so it never drifts.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from iptelefon.errors import InvalidPhone, StorageUnavailable
from iptelefon.models import Channel, Client, Project, utc_now
from iptelefon.phones import normalize_phone
from iptelefon.storage import (
    Storage,
    from_item,
    get_storage,
    is_condition_failure,
    key,
    project_pk,
    sdk_errors,
    to_item,
)

RANK_TELEPHONY = "1"
RANK_OTHER = "2"
_INDEX_END = "3"  # every rank sorts below this; CLAIM sorts above


def phone_pk(project_id: str, phone: str) -> str:
    return f"PHONE#{project_id}#{phone}"


def client_sk(client_id: str) -> str:
    return f"CLIENT#{client_id}"


def index_sk(rank: str, client: Client, source: str) -> str:
    return f"{rank}#{client.created_at.isoformat()}#{client.id}#{source}"


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
        """Client ids for a canonical phone, in matching order. One Query on one partition: O(1) in clients."""
        with sdk_errors():
            reply = self.client.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND sk < :end",
                ExpressionAttributeValues={":pk": {"S": phone_pk(project_id, phone)}, ":end": {"S": _INDEX_END}},
                ConsistentRead=True,
                Limit=limit,
            )
        return [str(from_item(i)["client_id"]) for i in reply.get("Items", [])]

    # -- writes --------------------------------------------------------------------------------------------------
    def add(self, project: Project, client: Client, *, claim_phone: bool = False) -> bool:
        """Store a client and its index entries in one transaction.

        With claim_phone, the write succeeds only if no client was created for that phone before (False if one was).
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
        items += [{"Put": {"TableName": self.table, "Item": to_item(i)}} for i in self._index_items(project, client)]
        if claim_phone and client.phone:
            claim = {"pk": phone_pk(project.id, client.phone), "sk": "CLAIM", "client_id": client.id}
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(claim),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            with sdk_errors():
                self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if claim_phone and is_condition_failure(error):
                return False
            raise
        return True

    def match_or_create(self, project: Project, phone: str) -> tuple[str, bool]:
        """The matching client's id, or a new client's (contract section 4). Returns (client_id, created)."""
        found = self.match(project.id, phone)
        if found:
            return found[0], False
        channel: Channel = "whatsapp" if project.has_messenger else "telephony"
        client = Client(id=new_client_id(), channel=channel, phone=phone, can_message=channel != "telephony")
        if self.add(project, client, claim_phone=True):
            return client.id, True
        # Another request created the client for this phone a moment ago: it is in the index now.
        found = self.match(project.id, phone)
        if not found:
            raise StorageUnavailable("client creation raced and the winner is not visible yet")
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
            sk = index_sk(RANK_OTHER, client, f"var:{name}")
            if old_phone:
                items.append({"Delete": {"TableName": self.table, "Key": key(phone_pk(project.id, old_phone), sk)}})
            if new_phone:
                entry = {"pk": phone_pk(project.id, new_phone), "sk": sk, "client_id": client.id}
                items.append({"Put": {"TableName": self.table, "Item": to_item(entry)}})
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

    def _index_items(self, project: Project, client: Client) -> list[dict[str, Any]]:
        entries = []
        if client.phone:
            rank = RANK_TELEPHONY if client.channel == "telephony" else RANK_OTHER
            entries.append((client.phone, index_sk(rank, client, "phone")))
        for name, value in client.variables.items():
            phone = phone_of(value, project.default_region)
            if phone:
                entries.append((phone, index_sk(RANK_OTHER, client, f"var:{name}")))
        return [{"pk": phone_pk(project.id, phone), "sk": sk, "client_id": client.id} for phone, sk in entries]


def new_client_id() -> str:
    # Time-ordered prefix (ms since epoch, hex) keeps ids roughly in creation order for people reading them.
    return f"{int(utc_now().timestamp() * 1000):x}{uuid.uuid4().hex[:10]}"


def get_client_store() -> ClientStore:
    return ClientStore(get_storage())
