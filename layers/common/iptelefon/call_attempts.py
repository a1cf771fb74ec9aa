"""Call attempts (what a bot or the client card asked the PBX to do) and the toll-fraud rate-limit counters.

Items in the main table:
  PROJECT#<pid> / ATTEMPT#<attempt_id>              the attempt: kind, client phone, employee or group, status
                                                    (`initiated` / `failed` with `reason` / `completed`), PBX reply
  ATTEMPTPHONE#<pid>#<phone> / <created_at>#<id>    "a call to this phone may be ringing": written with an attempt
                                                    whose call may have started, deleted when the webhook links it,
                                                    `expires_at` = created + 1 day (TTL)
  RATE#<pid> / <counter>#<window start>             a fixed-window counter (`calls`), `expires_at` = window end (TTL)

The webhook finds the attempt of a completed call with `latest_pending_attempt` (one Query on the phone's pointer
partition, newest first) and marks it with `link_attempt`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from iptelefon.storage import Storage, is_condition_failure, key, project_pk, sdk_errors, to_item

ATTEMPT_PREFIX = "ATTEMPT#"
POINTER_TTL_SECONDS = 24 * 3600
# How many pending attempts of one phone the webhook looks at (the per-phone rate limit keeps this small anyway).
MAX_POINTERS = 25

STATUS_INITIATED = "initiated"
STATUS_FAILED = "failed"
STATUS_COMPLETED = "completed"


def attempt_sk(attempt_id: str) -> str:
    return f"{ATTEMPT_PREFIX}{attempt_id}"


def pointer_pk(project_id: str, phone: str) -> str:
    return f"ATTEMPTPHONE#{project_id}#{phone}"


def pointer_sk(created_at: str, attempt_id: str) -> str:
    return f"{created_at}#{attempt_id}"


def timestamp(moment: datetime) -> str:
    """UTC ISO time with a fixed width (microseconds always present): sorts as text in time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# -- attempts ----------------------------------------------------------------------------------------------------------
def save_attempt(storage: Storage, project_id: str, attempt: dict[str, Any], *, pending: bool, now: float) -> None:
    """Store an attempt; with `pending` (its call may be ringing) also the phone pointer the webhook looks up.

    `attempt` needs `attempt_id`, `client_phone` and `created_at` (see `timestamp`).
    """
    attempt_id = attempt["attempt_id"]
    item = {"pk": project_pk(project_id), "sk": attempt_sk(attempt_id), "type": "call_attempt", **attempt}
    writes: list[Any] = [{"Put": {"TableName": storage.table, "Item": to_item(item)}}]
    if pending:
        pointer = {
            "pk": pointer_pk(project_id, attempt["client_phone"]),
            "sk": pointer_sk(attempt["created_at"], attempt_id),
            "attempt_id": attempt_id,
            "pbx_call_id": attempt.get("pbx_call_id"),
            "expires_at": int(now) + POINTER_TTL_SECONDS,
        }
        writes.append({"Put": {"TableName": storage.table, "Item": to_item(pointer)}})
    with sdk_errors():
        storage.client.transact_write_items(TransactItems=writes)


def get_attempt(storage: Storage, project_id: str, attempt_id: str) -> dict[str, Any] | None:
    return storage.get(project_pk(project_id), attempt_sk(attempt_id))


def attempt_answer(attempt: dict[str, Any]) -> dict[str, Any]:
    """An attempt as the read API shows it: under the `call_id` the bot got in its 202 answer."""
    hidden = {"pk", "sk", "type", "attempt_id", "call_id", "pbx_reply"}
    return {
        "call_id": attempt["attempt_id"],
        "record": "attempt",
        **{k: v for k, v in attempt.items() if k not in hidden},
        "completed_by_call_id": attempt.get("call_id"),
    }


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
    writes: list[Any] = [
        {
            "Update": {
                "TableName": storage.table,
                "Key": key(project_pk(project_id), attempt_sk(attempt_id)),
                "UpdateExpression": "SET #status = :completed, call_id = :call, client_id = :client, linked_at = :at",
                "ConditionExpression": "attribute_exists(pk) AND #status <> :completed",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":completed": {"S": STATUS_COMPLETED},
                    ":call": {"S": call_id},
                    ":client": {"S": client_id},
                    ":at": {"S": timestamp(datetime.now(UTC))},
                },
            }
        },
        {
            "Delete": {
                "TableName": storage.table,
                "Key": key(
                    pointer_pk(project_id, str(attempt["client_phone"])),
                    pointer_sk(str(attempt["created_at"]), attempt_id),
                ),
            }
        },
    ]
    try:
        with sdk_errors():
            storage.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        # A concurrent webhook linked it a moment ago: nothing left to do.


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
        with sdk_errors():
            storage.client.update_item(
                TableName=storage.table,
                Key=key(rate_pk(project_id), f"{counter}#{start}"),
                UpdateExpression="SET expires_at = :end ADD calls :one",
                ConditionExpression="attribute_not_exists(calls) OR calls < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":end": {"N": str(end)},
                },
            )
    except ClientError as error:
        if is_condition_failure(error):
            return max(1, math.ceil(end - now))
        raise
    return 0


def uncount_call(storage: Storage, project_id: str, counter: str, *, window_seconds: int, now: float) -> None:
    """Give back a call counted by `count_call` in the same window (another limit refused the call)."""
    start = window_start(now, window_seconds)
    try:
        with sdk_errors():
            storage.client.update_item(
                TableName=storage.table,
                Key=key(rate_pk(project_id), f"{counter}#{start}"),
                UpdateExpression="ADD calls :minus_one",
                ConditionExpression="calls > :zero",
                ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
            )
    except ClientError as error:
        if not is_condition_failure(error):
            raise


def calls_counted(storage: Storage, project_id: str, counter: str, *, window_seconds: int, now: float) -> int:
    item = storage.get(rate_pk(project_id), f"{counter}#{window_start(now, window_seconds)}")
    return int(item.get("calls", 0)) if item else 0
