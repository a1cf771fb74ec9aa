"""Call attempts (what a bot or the client card asked the PBX to do): `AttemptStore`, the `ports.Attempts` of the
call use case, the webhook and the reads.

Items in the main table:
  PROJECT#<pid> / ATTEMPT#<attempt_id>              the attempt: kind, client phone, employee or group, status
                                                    (`starting` / `initiated` / `failed` with `reason` /
                                                    `unknown` with `reason` / `completed`), PBX reply
  ATTEMPTPHONE#<pid>#<phone> / <created_at>#<id>    "a call to this phone may be ringing": written with an attempt
                                                    before its PBX request, deleted when the webhook links it or the
                                                    PBX refused (kept for `initiated`, `unknown` and a `failed` that
                                                    may have rung), `expires_at` = created + 1 day (TTL)
  ATTEMPTKEY#<pid> / <sha256(route, Idempotency-Key)>  this key started a call (TTL 1 day): a repeat whose first request
                                                    died mid-call gets a 504, never a second ring
  (RATE#<pid> / ...: the rate-limit counters, `data.rate_counters`)

The webhook finds the attempt of a completed call with `latest_pending` (one Query on the phone's pointer partition,
newest first) and marks it with `link`. A completed attempt names its call `call_key` (items completed before the
vocabulary was fixed: `call_id`; `CallAttempt` reads both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from iptelefon.data.event_items import outbox_write
from iptelefon.data.gateway import ConditionFailed, Storage, delete, project_pk, put, update
from iptelefon.domain.models import CallAttempt, is_valid_id, utc_stamp

if TYPE_CHECKING:
    from iptelefon.domain.call_events import CallEvent

ATTEMPT_PREFIX = "ATTEMPT#"
POINTER_TTL_SECONDS = 24 * 3600
# How many pending attempts of one phone the webhook looks at (the per-phone rate limit keeps this small anyway).
MAX_POINTERS = 25

STATUS_STARTING = "starting"  # stored before the PBX request; what a request that died mid-call leaves
STATUS_INITIATED = "initiated"
STATUS_FAILED = "failed"
STATUS_COMPLETED = "completed"
ATTEMPT_COMPLETED = "attempt completed"
KEY_USED = "idempotency key started a call"
KEY_MARKER_TTL_SECONDS = 24 * 3600  # as long as Powertools remembers the key's answer


def attempt_sk(attempt_id: str) -> str:
    return f"{ATTEMPT_PREFIX}{attempt_id}"


def pointer_pk(project_id: str, phone: str) -> str:
    return f"ATTEMPTPHONE#{project_id}#{phone}"


def pointer_sk(created_at: str, attempt_id: str) -> str:
    return f"{created_at}#{attempt_id}"


def key_marker_pk(project_id: str) -> str:
    return f"ATTEMPTKEY#{project_id}"


class AttemptStore:
    """The attempts of every project in the main table (`ports.Attempts`)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def start(self, project_id: str, attempt: CallAttempt, *, now: float, key_scope: str | None) -> bool:
        """Store an attempt BEFORE its PBX request (`status` = `starting`), with the phone pointer the webhook looks
        up.

        With `key_scope` (a hash of the route and the bot's Idempotency-Key), also a marker that this key started a
        call: if it exists already, an earlier request with this key may have rung the client (its invocation died
        before its answer was remembered): nothing is written and False is returned (no PBX request).
        """
        item = _item(attempt)
        writes = [put(_attempt_item(project_id, item)), put(_pointer_item(project_id, item, now))]
        if key_scope is not None:
            marker = {
                "pk": key_marker_pk(project_id),
                "sk": key_scope,
                "attempt_id": attempt.attempt_id,
                "expires_at": int(now) + KEY_MARKER_TTL_SECONDS,
            }
            writes.append(put(marker, only_if="attribute_not_exists(pk)", label=KEY_USED))
        try:
            self._storage.transact(writes)
        except ConditionFailed:
            return False
        return True

    def finish(
        self,
        project_id: str,
        attempt: CallAttempt,
        *,
        pending: bool,
        key_scope: str | None,
        now: float,
        events: Sequence[CallEvent] = (),
    ) -> None:
        """Record the PBX's answer on a `starting` attempt. `pending`: the call may be ringing, so the webhook may
        still link it (the pointer stays, now with the PBX's call id); else the pointer goes, and so does the key
        marker (the PBX started nothing: the same Idempotency-Key may try again). An attempt the webhook completed
        meanwhile stays."""
        item = _item(attempt)
        writes = [
            put(
                _attempt_item(project_id, item),
                only_if="#status = :starting",
                names={"#status": "status"},
                values={":starting": STATUS_STARTING},
            )
        ]
        if pending:
            writes.append(put(_pointer_item(project_id, item, now)))
        else:
            writes.append(delete(*_pointer_key(project_id, item)))
            if key_scope is not None:
                writes.append(delete(key_marker_pk(project_id), key_scope))
        writes.extend(outbox_write(event) for event in events)  # `call.attempt_failed`: with the attempt's failure
        with contextlib.suppress(ConditionFailed):  # linked by a fast webhook already: its `completed` stays
            self._storage.transact(writes)

    def get(self, project_id: str, attempt_id: str) -> CallAttempt | None:
        item = self.get_item(project_id, attempt_id)
        return None if item is None else CallAttempt.model_validate(item)

    def get_item(self, project_id: str, attempt_id: str) -> dict[str, Any] | None:
        """The attempt as stored (until the reads answer from `CallAttempt`)."""
        if not is_valid_id(attempt_id):
            return None
        return self._storage.get(project_pk(project_id), attempt_sk(attempt_id))

    def latest_pending(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> CallAttempt | None:
        """The attempt a completed call to `phone` most likely belongs to, or None.

        An attempt is pending while its call may be ringing and no webhook has linked it (up to a day). With
        `pbx_call_id` (the PBX's id of the completed call), the attempt whose start reply carried that id wins;
        otherwise the newest.
        """
        item = self.latest_pending_item(project_id, phone, pbx_call_id=pbx_call_id, now=now)
        return None if item is None else CallAttempt.model_validate(item)

    def latest_pending_item(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> dict[str, Any] | None:
        moment = datetime.now(UTC).timestamp() if now is None else now
        newest = self._storage.query(pointer_pk(project_id, phone), limit=MAX_POINTERS, newest_first=True)
        # TTL deletes lazily (up to days later): an expired pointer is ignored here.
        pointers = [p for p in newest if p.get("expires_at", 0) > moment]
        chosen = next((p for p in pointers if pbx_call_id and p.get("pbx_call_id") == pbx_call_id), None)
        for pointer in [chosen] if chosen else pointers:
            attempt = self.get_item(project_id, str(pointer["attempt_id"]))
            if attempt is not None and attempt.get("status") != STATUS_COMPLETED:
                return attempt
        return None

    def link(self, project_id: str, attempt_id: str, call_key: str, client_id: str) -> None:
        """Mark the attempt `completed` by the call `call_key` of client `client_id`; drop its pointer.

        Idempotent: an attempt already completed (by this or another call) stays as it is; an unknown attempt is
        ignored.
        """
        attempt = self.get_item(project_id, attempt_id)
        if attempt is None or attempt.get("status") == STATUS_COMPLETED:
            return
        writes = [
            update(
                project_pk(project_id),
                attempt_sk(attempt_id),
                "SET #status = :completed, call_key = :call, client_id = :client, linked_at = :at",
                only_if="attribute_exists(pk) AND #status <> :completed",
                names={"#status": "status"},
                values={
                    ":completed": STATUS_COMPLETED,
                    ":call": call_key,
                    ":client": client_id,
                    ":at": utc_stamp(datetime.now(UTC)),
                },
                label=ATTEMPT_COMPLETED,
            ),
            delete(*_pointer_key(project_id, attempt)),
        ]
        # Contention and throttling are retried by the gateway, then raise StorageUnavailable: the webhook answers 503
        # (or queues the request) and its replay links again. Only "a concurrent webhook completed it a moment ago" is
        # ignored.
        with contextlib.suppress(ConditionFailed):
            self._storage.transact(writes)


def _item(attempt: CallAttempt) -> dict[str, Any]:
    # Every field with a value (defaults included), and the empty ones the use case named (stored as null, as always).
    fields = attempt.model_dump(mode="json")
    return {name: value for name, value in fields.items() if value is not None or name in attempt.model_fields_set}


def _attempt_item(project_id: str, attempt: dict[str, Any]) -> dict[str, Any]:
    return {"pk": project_pk(project_id), "sk": attempt_sk(attempt["attempt_id"]), "type": "call_attempt", **attempt}


def _pointer_item(project_id: str, attempt: dict[str, Any], now: float) -> dict[str, Any]:
    pk, sk = _pointer_key(project_id, attempt)
    return {
        "pk": pk,
        "sk": sk,
        "attempt_id": attempt["attempt_id"],
        "pbx_call_id": attempt.get("pbx_call_id"),
        "expires_at": int(now) + POINTER_TTL_SECONDS,
    }


def _pointer_key(project_id: str, attempt: dict[str, Any]) -> tuple[str, str]:
    """The key of an attempt's "may be ringing" pointer."""
    return (
        pointer_pk(project_id, str(attempt["client_phone"])),
        pointer_sk(str(attempt["created_at"]), str(attempt["attempt_id"])),
    )
