"""Call attempts (what a bot or the client card asked the PBX to do) and the toll-fraud rate-limit counters.

Items in the main table:
  PROJECT#<pid> / ATTEMPT#<attempt_id>              the attempt: kind, client phone, employee or group, status
                                                    (`starting` / `initiated` / `failed` with `reason` /
                                                    `completed`), PBX reply
  ATTEMPTPHONE#<pid>#<phone> / <created_at>#<id>    "a call to this phone may be ringing": written with an attempt
                                                    before its PBX request, deleted when the webhook links it or the
                                                    PBX refused, `expires_at` = created + 1 day (TTL)
  ATTEMPTKEY#<pid> / <sha256(route, Idempotency-Key)>  this key started a call (TTL 1 day): a repeat whose first request
                                                    died mid-call gets a 504, never a second ring
  RATE#<pid> / <counter>#<window start>             a fixed-window counter (`calls`), `expires_at` = window end (TTL)

The webhook finds the attempt of a completed call with `latest_pending_attempt` (one Query on the phone's pointer
partition, newest first) and marks it with `link_attempt`.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime
from typing import Any

from iptelefon.data.gateway import ConditionFailed, Storage, delete, project_pk, put, update
from iptelefon.domain.models import is_valid_id, utc_stamp

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


# -- attempts ----------------------------------------------------------------------------------------------------------
def start_attempt(
    storage: Storage, project_id: str, attempt: dict[str, Any], *, now: float, key_scope: str | None = None
) -> None:
    """Store an attempt BEFORE its PBX request (`status` = `starting`), with the phone pointer the webhook looks up.

    With `key_scope` (a hash of the route and the bot's Idempotency-Key), also a marker that this key started a call:
    if it exists already, an earlier request with this key may have rung the client (its invocation died before its
    answer was remembered), and ConditionFailed(KEY_USED) is raised instead: nothing is written, no PBX request.
    `attempt` needs `attempt_id`, `client_phone` and `created_at` (see `models.utc_stamp`).
    """
    writes = [put(_attempt_item(project_id, attempt)), put(_pointer_item(project_id, attempt, now))]
    if key_scope is not None:
        marker = {
            "pk": key_marker_pk(project_id),
            "sk": key_scope,
            "attempt_id": attempt["attempt_id"],
            "expires_at": int(now) + KEY_MARKER_TTL_SECONDS,
        }
        writes.append(put(marker, only_if="attribute_not_exists(pk)", label=KEY_USED))
    storage.transact(writes)


def finish_attempt(
    storage: Storage, project_id: str, attempt: dict[str, Any], *, pending: bool, key_scope: str | None, now: float
) -> None:
    """Record the PBX's answer on a `starting` attempt. `pending`: the call may be ringing, so the webhook may still
    link it (the pointer stays, now with the PBX's call id); else the pointer goes, and so does the key marker (the
    PBX started nothing: the same Idempotency-Key may try again). An attempt the webhook completed meanwhile stays."""
    writes = [
        put(
            _attempt_item(project_id, attempt),
            only_if="#status = :starting",
            names={"#status": "status"},
            values={":starting": STATUS_STARTING},
        )
    ]
    if pending:
        writes.append(put(_pointer_item(project_id, attempt, now)))
    else:
        writes.append(delete(*_pointer_key(project_id, attempt)))
        if key_scope is not None:
            writes.append(delete(key_marker_pk(project_id), key_scope))
    with contextlib.suppress(ConditionFailed):  # linked by a fast webhook already: its `completed` stays
        storage.transact(writes)


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


def key_marker_pk(project_id: str) -> str:
    return f"ATTEMPTKEY#{project_id}"


def get_attempt(storage: Storage, project_id: str, attempt_id: str) -> dict[str, Any] | None:
    if not is_valid_id(attempt_id):
        return None
    return storage.get(project_pk(project_id), attempt_sk(attempt_id))


def latest_pending_attempt(
    storage: Storage, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
) -> dict[str, Any] | None:
    """The attempt a completed call to `phone` most likely belongs to, or None.

    An attempt is pending while its call may be ringing and no webhook has linked it (up to a day). With `pbx_call_id`
    (the PBX's id of the completed call), the attempt whose start reply carried that id wins; otherwise the newest.
    """
    moment = datetime.now(UTC).timestamp() if now is None else now
    newest = storage.query(pointer_pk(project_id, phone), limit=MAX_POINTERS, newest_first=True)
    # TTL deletes lazily (up to days later): an expired pointer is ignored here.
    pointers = [p for p in newest if p.get("expires_at", 0) > moment]
    chosen = next((p for p in pointers if pbx_call_id and p.get("pbx_call_id") == pbx_call_id), None)
    for pointer in [chosen] if chosen else pointers:
        attempt = get_attempt(storage, project_id, str(pointer["attempt_id"]))
        if attempt is not None and attempt.get("status") != STATUS_COMPLETED:
            return attempt
    return None


def link_attempt(storage: Storage, project_id: str, attempt_id: str, call_id: str, client_id: str) -> None:
    """Mark the attempt `completed` by the PBX call `call_id` of client `client_id`; drop its pointer.

    Idempotent: an attempt already completed (by this or another call) stays as it is; an unknown attempt is ignored.
    """
    attempt = get_attempt(storage, project_id, attempt_id)
    if attempt is None or attempt.get("status") == STATUS_COMPLETED:
        return
    writes = [
        update(
            project_pk(project_id),
            attempt_sk(attempt_id),
            "SET #status = :completed, call_id = :call, client_id = :client, linked_at = :at",
            only_if="attribute_exists(pk) AND #status <> :completed",
            names={"#status": "status"},
            values={
                ":completed": STATUS_COMPLETED,
                ":call": call_id,
                ":client": client_id,
                ":at": utc_stamp(datetime.now(UTC)),
            },
            label=ATTEMPT_COMPLETED,
        ),
        delete(*_pointer_key(project_id, attempt)),
    ]
    # Contention and throttling are retried by the gateway, then raise StorageUnavailable: the webhook answers 503 (or
    # queues the request) and its replay links again. Only "a concurrent webhook completed it a moment ago" is ignored.
    with contextlib.suppress(ConditionFailed):
        storage.transact(writes)


# -- rate limits -------------------------------------------------------------------------------------------------------
def rate_pk(project_id: str) -> str:
    return f"RATE#{project_id}"


def window_start(now: float, window_seconds: int) -> int:
    return int(now) // window_seconds * window_seconds


def count_call(storage: Storage, project_id: str, counter: str, *, limit: int, window_seconds: int, now: float) -> int:
    """Count one call in the current fixed window of `counter`.

    Returns 0 when counted, else (the window is full, nothing counted) the seconds until the window ends (>= 1).
    One conditional UpdateItem: concurrent callers can never push the count above `limit`.
    """
    start = window_start(now, window_seconds)
    end = start + window_seconds
    try:
        storage.write(
            update(
                rate_pk(project_id),
                f"{counter}#{start}",
                "SET expires_at = :end ADD calls :one",
                only_if="attribute_not_exists(calls) OR calls < :limit",
                values={":one": 1, ":limit": limit, ":end": end},
            )
        )
    except ConditionFailed:
        return max(1, math.ceil(end - now))
    return 0


def uncount_call(storage: Storage, project_id: str, counter: str, *, window_seconds: int, now: float) -> None:
    """Give back a call counted by `count_call` in the same window (another limit refused the call)."""
    start = window_start(now, window_seconds)
    with contextlib.suppress(ConditionFailed):  # the window is gone or empty: nothing to give back
        storage.write(
            update(
                rate_pk(project_id),
                f"{counter}#{start}",
                "ADD calls :minus_one",
                only_if="calls > :zero",
                values={":minus_one": -1, ":zero": 0},
            )
        )


def calls_counted(storage: Storage, project_id: str, counter: str, *, window_seconds: int, now: float) -> int:
    item = storage.get(rate_pk(project_id), f"{counter}#{window_start(now, window_seconds)}")
    return int(item.get("calls", 0)) if item else 0
