"""Call records, dialog notifications and kept raw requests in DynamoDB (contract section 2).

  PROJECT#<pid> / CALL#<call key>          the call (`CallRecord`: its canonical fields, `pbx_call_id`, client) + the
                                           raw payload; gsi1 lists a client's calls. Items stored before the
                                           vocabulary was fixed hold the PBX's id as `call_id`.
  DIALOG#<pid>#<client> / <time>#<call key> one notification in the client's dialog
  PROJECT#<pid> / REJECTED#<time>#<id>     a request that could not be read (kept 90 days: nothing the PBX sent is lost)

The webhook builds what is stored (the call, its notification's text); nothing is parsed here. A new call's record,
its notification and the record-link variable are written in ONE transaction whose first item is conditional on the
call being new: every effect happens exactly once per (project, call key), or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from iptelefon.data.call_effects import ALREADY_TEXTED, CALLBACK_CHANGED, recorded_call_writes
from iptelefon.data.client_items import client_sk, dialog_pk, dialog_sk, variable_writes
from iptelefon.data.gateway import ConditionFailed, Storage, Write, project_pk, put, update
from iptelefon.data.recording_items import recording_writes
from iptelefon.domain.call_record import CallRecord, without_url_userinfo
from iptelefon.domain.callbacks import CallbackChange, CallbackChanged, TextedRecently
from iptelefon.domain.errors import StorageUnavailable
from iptelefon.domain.models import Client, Project, is_valid_id, utc_now, utc_stamp
from iptelefon.domain.webhook_body import WebhookRequest

if TYPE_CHECKING:
    from iptelefon.domain.call_events import CallEvent

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


def client_calls_pk(project_id: str, client_id: str) -> str:
    return f"CLIENT#{project_id}#{client_id}"


class CallRecordStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, project_id: str, call_key: str) -> CallRecord | None:
        if not is_valid_id(call_key):  # every call key is one (see CanonicalCall.call_key)
            return None
        item = self.storage.get(project_pk(project_id), call_sk(call_key))
        return CallRecord.model_validate(item) if item else None

    def of_client(self, project_id: str, client_id: str, *, limit: int = 50) -> list[CallRecord]:
        items = self.storage.query(
            client_calls_pk(project_id, client_id), "CALL#", limit=limit, newest_first=True, index="gsi1"
        )
        return [CallRecord.model_validate(item) for item in items]

    def of_project(self, project_id: str, *, limit: int) -> list[CallRecord]:
        """The project's calls, newest received first (the admin CLI: every call item is read)."""
        items = sorted(
            self.storage.query(project_pk(project_id), "CALL#"), key=lambda r: r["received_at"], reverse=True
        )
        return [CallRecord.model_validate(item) for item in items[:limit]]

    def dialog(self, project_id: str, client_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
        return self.storage.query(dialog_pk(project_id, client_id), "", limit=limit, newest_first=True)

    def add_new(
        self,
        project: Project,
        call: CallRecord,
        *,
        notification: str,
        request: WebhookRequest,
        events: Sequence[CallEvent] = (),
        callback: CallbackChange | None = None,
    ) -> bool:
        """Record a new call with its notification and record-link variable (what the PBX sent kept next to it), and
        in the same transaction what a new call adds (`call_effects.recorded_call_writes`): its `events` (the outbox),
        its statistics counters and its client's callback task (`callback`). So a call and its events are stored
        together or not at all. False if the call was recorded before (nothing written, no event); CallbackChanged
        when the task is not as it was read (read it again)."""
        assert call.received_at is not None
        note_sk = dialog_sk(call.received_at, call.call_key)
        record = {
            "pk": project_pk(project.id),
            "sk": call_sk(call.call_key),
            "type": "call",
            **call.model_dump(mode="json"),
            "raw": kept_request(request),
            "dialog_sk": note_sk,
            "gsi1pk": client_calls_pk(project.id, call.client_id),
            "gsi1sk": f"CALL#{utc_stamp(call.started_at or call.received_at)}#{call.call_key}",
        }
        note = {
            "pk": dialog_pk(project.id, call.client_id),
            "sk": note_sk,
            "type": "notification",
            "kind": "call",
            "text": notification,
            "call_key": call.call_key,
            "created_at": call.received_at.isoformat(),
        }
        writes = [put(record, only_if="attribute_not_exists(pk)", label=CALL_RECORDED), put(note)]
        writes += recorded_call_writes(project, call, callback, events)  # recording, events, counters, task
        variable_link = call.recording_link or call.record_link  # our stable link when there is one
        link: list[Write] = []
        if variable_link:
            link = [self._record_link_fast_update(project.id, call.client_id, variable_link)]
        recorded = self._write_new_call([*writes, *link])
        if recorded is None and variable_link:
            # The variable held something that is not a URL (maybe a phone): take the path that maintains the index.
            link = self._record_link_indexed_update(project, call.client_id, variable_link)
            recorded = self._write_new_call([*writes, *link])
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
            if CALLBACK_CHANGED in failed.failed:
                raise CallbackChanged() from None
            if ALREADY_TEXTED in failed.failed:
                raise TextedRecently() from None
            raise StorageUnavailable("the call could not be recorded, retry") from None

    def add_record_link(self, project: Project, call: CallRecord, *, notification: str) -> bool:
        """A later webhook brought the recording (`call.record_link`) of the recorded `call`: store it on the call,
        rewrite the call's notification (`notification`, not a second one) and set the variable.

        False if the call has a link by now; StorageUnavailable (the PBX sends it again) when it could not be stored:
        a link is never dropped.
        """
        assert call.record_link and call.received_at is not None
        recording = {":rid": call.recording_id, ":rlink": call.recording_link, ":rstate": call.recording_state}
        writes = [
            update(
                project_pk(project.id),
                call_sk(call.call_key),
                "SET record_link = :link, recording_id = :rid, recording_link = :rlink, recording_state = :rstate",
                only_if="attribute_exists(pk) AND attribute_not_exists(record_link)",
                values={":link": call.record_link, **recording},
                label=LINK_SET,
            ),
            *recording_writes(project.id, call),  # issue 25: the recording's item
            update(
                dialog_pk(project.id, call.client_id),
                dialog_sk(call.received_at, call.call_key),
                "SET #text = :text",
                names={"#text": "text"},
                values={":text": notification},
            ),
            *self._record_link_indexed_update(project, call.client_id, call.recording_link or call.record_link),
        ]
        try:
            self.storage.transact(writes)
        except ConditionFailed as failed:
            if LINK_SET in failed.failed:
                return False  # a concurrent delivery stored it a moment ago
            raise StorageUnavailable("the recording link could not be stored, retry") from None
        return True

    def keep_rejected(
        self, project_id: str, request: WebhookRequest, *, error_code: str, message: str, status: int
    ) -> None:
        """Keep a request that could not be read (see `kept_request`), with why it was refused."""
        now = utc_now()
        item = {
            "pk": project_pk(project_id),
            "sk": f"REJECTED#{utc_stamp(now)}#{uuid.uuid4().hex[:8]}",
            "type": "rejected_request",
            **kept_request(request),
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
        item = self.storage.get(project_pk(project.id), client_sk(client_id))
        if item is None:
            raise StorageUnavailable("the matched client is not readable yet, retry")
        return variable_writes(project, Client.model_validate(item), RECORD_LINK_VARIABLE, link)


def kept_request(request: WebhookRequest) -> dict[str, Any]:
    """What the PBX sent, in a form DynamoDB always accepts: the query as JSON text (its names are the sender's
    and may be empty, which a map cannot hold), the body as text up to MAX_KEPT_BODY_BYTES. Every part is bounded so
    the item stays under DynamoDB's 400 KB whatever was sent; the real sizes are kept beside them."""
    body, query = request.body, request.query
    query_text = without_url_userinfo(json.dumps(query, ensure_ascii=False)) if query else None
    # A URL's user:password@ goes before the cut, so that the cut cannot leave half of one behind
    kept_body = without_url_userinfo(body.decode("utf-8", errors="replace")).encode("utf-8")
    return {
        "method": request.method[:MAX_KEPT_HEADER_CHARS],
        "content_type": request.content_type[:MAX_KEPT_HEADER_CHARS] if request.content_type else None,
        "query": query_text[:MAX_KEPT_QUERY_CHARS] if query_text else None,
        "query_chars": len(query_text) if query_text else 0,
        "body": kept_body[:MAX_KEPT_BODY_BYTES].decode("utf-8", errors="ignore"),
        "body_bytes": len(body),
        "truncated": len(body) > MAX_KEPT_BODY_BYTES or len(query_text or "") > MAX_KEPT_QUERY_CHARS,
    }
