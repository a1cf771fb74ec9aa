"""Call records, dialog notifications and kept raw requests in DynamoDB (contract section 2).

  PROJECT#<pid> / CALL#<call key>          the call: canonical fields + the raw payload; gsi1 lists a client's calls
  DIALOG#<pid>#<client> / <time>#<call key> one notification in the client's dialog
  PROJECT#<pid> / REJECTED#<time>#<id>     a request that could not be read (kept 90 days: nothing the PBX sent is lost)

A new call's record, its notification and the record-link variable are written in ONE transaction whose first item
is conditional on the call being new: every effect happens exactly once per (project, call key), or not at all.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from iptelefon.data.clients import ClientStore, client_sk
from iptelefon.data.gateway import ConditionFailed, Storage, Write, project_pk, put, update
from iptelefon.domain.errors import StorageUnavailable
from iptelefon.domain.models import Project, is_valid_id, utc_now, utc_stamp
from iptelefon.domain.notifications import format_call_notification
from iptelefon.domain.phones import e164
from iptelefon.domain.webhook_payload import CanonicalCall

RECORD_LINK_VARIABLE = "iptelefon_call_record_link"
REJECTED_KEEP = timedelta(days=90)
# DynamoDB items stop at 400 KB: a body is kept up to 100,000 bytes, which stays under that even when every byte is
# invalid UTF-8 and becomes a 3-byte replacement character (bodies over 64 KiB are refused with 413 anyway).
MAX_KEPT_BODY_BYTES = 100_000
MAX_KEPT_QUERY_CHARS = 10_000  # up to 4 bytes a character: 40 KB at most
MAX_KEPT_HEADER_CHARS = 1_000
# What a failed condition means (storage.ConditionFailed names these).
CALL_RECORDED = "call recorded before"
LINK_SET = "call has a record link"
LINK_NEEDS_INDEX = "record-link variable is not a URL"


def call_sk(call_key: str) -> str:
    return f"CALL#{call_key}"


def dialog_pk(project_id: str, client_id: str) -> str:
    return f"DIALOG#{project_id}#{client_id}"


def client_calls_pk(project_id: str, client_id: str) -> str:
    return f"CLIENT#{project_id}#{client_id}"


class CallRecordStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.clients = ClientStore(storage)

    def get(self, project_id: str, call_key: str) -> dict[str, Any] | None:
        if not is_valid_id(call_key):  # every call key is one (see CanonicalCall.idempotency_key)
            return None
        return self.storage.get(project_pk(project_id), call_sk(call_key))

    def of_client(self, project_id: str, client_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        return self.storage.query(
            client_calls_pk(project_id, client_id), "CALL#", limit=limit, newest_first=True, index="gsi1"
        )

    def dialog(self, project_id: str, client_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
        return self.storage.query(dialog_pk(project_id, client_id), "", limit=limit, newest_first=True)

    def add_new(self, project: Project, client_id: str, call: CanonicalCall, raw: dict[str, Any]) -> bool:
        """Record a new call with its notification and record-link variable. False if the call was recorded before."""
        now = utc_now()
        call_key = call.idempotency_key
        dialog_sk = f"{utc_stamp(now)}#{call_key}"
        record = {
            "pk": project_pk(project.id),
            "sk": call_sk(call_key),
            "type": "call",
            **call.model_dump(mode="json"),
            "call_key": call_key,
            "client_id": client_id,
            "received_at": now.isoformat(),
            "raw": raw,
            "dialog_sk": dialog_sk,
            "gsi1pk": client_calls_pk(project.id, client_id),
            "gsi1sk": f"CALL#{utc_stamp(call.started_at or now)}#{call_key}",
        }
        note = {
            "pk": dialog_pk(project.id, client_id),
            "sk": dialog_sk,
            "type": "notification",
            "kind": "call",
            "text": format_call_notification(call),
            "call_key": call_key,
            "created_at": now.isoformat(),
        }
        writes = [put(record, only_if="attribute_not_exists(pk)", label=CALL_RECORDED), put(note)]
        if call.record_link:
            writes.append(self._record_link_fast_update(project.id, client_id, call.record_link))
        recorded = self._write_new_call(writes)
        if recorded is None and call.record_link:
            # The variable held something that is not a URL (maybe a phone): take the path that maintains the index.
            writes[2:] = self._record_link_indexed_update(project, client_id, call.record_link)
            recorded = self._write_new_call(writes)
        if recorded is None:
            raise StorageUnavailable("the call could not be recorded, retry")
        return recorded

    def _write_new_call(self, writes: list[Write]) -> bool | None:
        """True when written, False when the call was recorded before, None when the record-link variable was not
        a URL; StorageUnavailable for any other failed condition (the client vanished meanwhile)."""
        try:
            self.storage.transact(writes)
            return True
        except ConditionFailed as failed:
            if CALL_RECORDED in failed.failed:
                return False
            if LINK_NEEDS_INDEX in failed.failed:
                return None
            raise StorageUnavailable("the call could not be recorded, retry") from None

    def add_record_link(self, project: Project, existing: dict[str, Any], call: CanonicalCall) -> bool:
        """A later webhook brought the recording of a recorded call: update the call, its notification, the variable.

        No second notification: the first one is rewritten with the link. False if the call has a link by now;
        StorageUnavailable (the PBX sends it again) when it could not be stored: a link is never dropped.
        """
        assert call.record_link
        client_id = str(existing["client_id"])
        updated = CanonicalCall.model_validate(
            {**{k: existing.get(k) for k in CanonicalCall.model_fields}, "record_link": call.record_link}
        )
        writes = [
            update(
                project_pk(project.id),
                call_sk(existing["call_key"]),
                "SET record_link = :link",
                only_if="attribute_exists(pk) AND attribute_not_exists(record_link)",
                values={":link": call.record_link},
                label=LINK_SET,
            ),
            update(
                dialog_pk(project.id, client_id),
                existing["dialog_sk"],
                "SET #text = :text",
                names={"#text": "text"},
                values={":text": format_call_notification(updated)},
            ),
            *self._record_link_indexed_update(project, client_id, call.record_link),
        ]
        try:
            self.storage.transact(writes)
        except ConditionFailed as failed:
            if LINK_SET in failed.failed:
                return False  # a concurrent delivery stored it a moment ago
            raise StorageUnavailable("the recording link could not be stored, retry") from None
        return True

    def keep_rejected(
        self, project_id: str, raw: dict[str, Any], *, error_code: str, message: str, status: int
    ) -> None:
        """Keep a request that could not be read (see `kept_request`), with why it was refused."""
        now = utc_now()
        item = {
            "pk": project_pk(project_id),
            "sk": f"REJECTED#{utc_stamp(now)}#{uuid.uuid4().hex[:8]}",
            "type": "rejected_request",
            **raw,
            "error": error_code,
            "message": message,
            "status": status,
            "received_at": now.isoformat(),
            "expires_at": int((now + REJECTED_KEEP).timestamp()),
        }
        self.storage.write(put(item))

    def rejected(self, project_id: str) -> list[dict[str, Any]]:
        return self.storage.query(project_pk(project_id), "REJECTED#")

    # -- helpers -------------------------------------------------------------------------------------------------
    @staticmethod
    def _record_link_fast_update(project_id: str, client_id: str, link: str) -> Write:
        # A URL never normalizes to a phone: when the old value is absent or a URL too, the phone index is unchanged.
        return update(
            project_pk(project_id),
            client_sk(client_id),
            "SET variables.#name = :value",
            only_if="attribute_exists(pk) AND (attribute_not_exists(variables.#name) "
            "OR begins_with(variables.#name, :http))",
            names={"#name": RECORD_LINK_VARIABLE},
            values={":value": link, ":http": "http"},
            label=LINK_NEEDS_INDEX,
        )

    def _record_link_indexed_update(self, project: Project, client_id: str, link: str) -> list[Write]:
        client = self.clients.get(project.id, client_id)
        if client is None:
            raise StorageUnavailable("the matched client is not readable yet, retry")
        return self.clients.variable_update(project, client, RECORD_LINK_VARIABLE, link)


def kept_request(*, body: bytes, content_type: str | None, query: dict[str, Any], method: str) -> dict[str, Any]:
    """What the PBX sent, in a form DynamoDB always accepts: the query as JSON text (its names are the sender's
    and may be empty, which a map cannot hold), the body as text up to MAX_KEPT_BODY_BYTES. Every part is bounded so
    the item stays under DynamoDB's 400 KB whatever was sent; the real sizes are kept beside them."""
    query_text = json.dumps(query, ensure_ascii=False) if query else None
    return {
        "method": method[:MAX_KEPT_HEADER_CHARS],
        "content_type": content_type[:MAX_KEPT_HEADER_CHARS] if content_type else None,
        "query": query_text[:MAX_KEPT_QUERY_CHARS] if query_text else None,
        "query_chars": len(query_text) if query_text else 0,
        "body": body[:MAX_KEPT_BODY_BYTES].decode("utf-8", errors="replace"),
        "body_bytes": len(body),
        "truncated": len(body) > MAX_KEPT_BODY_BYTES or len(query_text or "") > MAX_KEPT_QUERY_CHARS,
    }


def call_answer(record: dict[str, Any]) -> dict[str, Any]:
    """A call record as the read API shows it: `call_id` is the id the webhook answered with (the PBX's call id, or
    the hash for a PBX that sent none), the PBX's own id is `pbx_call_id`; the raw payload stays in storage."""
    hidden = {"pk", "sk", "type", "gsi1pk", "gsi1sk", "dialog_sk", "raw", "call_key", "idempotency_key", "call_id"}
    return {
        "call_id": record["call_key"],
        "pbx_call_id": record.get("call_id"),
        **{k: v for k, v in record.items() if k not in hidden},
        "client_phone_e164": e164(record["client_phone"]),
    }
