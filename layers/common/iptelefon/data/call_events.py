"""Call events in DynamoDB: the outbox, the endpoints, each (event, endpoint) delivery and its attempts' log.

PROJECT#<pid> / EVENT#<event id>         an event (the outbox: one item per event, whatever the endpoints): its
                                         type, `order_key`, `body` (the JSON sent), `occurred_at`; until it is
                                         relayed to the delivery queue also in gsi1 under OUTBOX / <occurred>#<id>
                                         (the sweep's sparse list). Written in the SAME transaction as the call
                                         write that makes it (`outbox_write`). TTL 30 days (a replay needs it).
PROJECT#<pid> / ENDPOINT#<endpoint id>   an endpoint (`Endpoint`); its secret is in SSM (`EndpointSecretStore`)
DELIVERY#<pid>#<endpoint id> / <order key>#<rank>#<event id>
                                         one event to one endpoint: `status` pending / delivered / given_up /
                                         stopped, `attempts` (started), `lease_until`, `next_due`; a call's
                                         deliveries sort together, in the call's order. TTL 30 days.
DELIVERYLOG#<pid>#<endpoint id> / <time>#<event id>#<attempt>
                                         one attempt: the HTTP status or the error, latency; TTL 30 days.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from iptelefon.data.event_items import (
    ENDPOINT_PREFIX,
    GIVEN_UP,
    KEEP,
    LEASE_SECONDS,
    MAX_SWEPT,
    OUTBOX_INDEX_PK,
    PENDING,
    STOPPED,
    delivery_pk,
    delivery_sk,
    event_from_item,
    event_sk,
)
from iptelefon.data.gateway import ConditionFailed, Storage, Write, delete, project_pk, put, update
from iptelefon.domain.call_events import CallEvent, Endpoint
from iptelefon.domain.models import is_valid_id, utc_stamp


class CallEventStore:
    """The outbox, the endpoints, the deliveries and their log (`usecases.ports.CallEvents`)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    # -- the outbox ----------------------------------------------------------------------------------------------
    def get_event(self, project_id: str, event_id: str) -> tuple[CallEvent, bool] | None:
        """The event and whether it was relayed already."""
        if not is_valid_id(event_id):
            return None
        item = self._storage.get(project_pk(project_id), event_sk(event_id))
        if item is None or item.get("type") != "call_event":
            return None
        return event_from_item(item), "gsi1pk" not in item

    def unrelayed(self, older_than: datetime) -> list[CallEvent]:
        """Events not relayed yet that occurred before `older_than` (the sweep), oldest first."""
        items = self._storage.query(OUTBOX_INDEX_PK, limit=MAX_SWEPT, index="gsi1", sk_before=utc_stamp(older_than))
        return [event_from_item(item) for item in items]

    def mark_relayed(self, event: CallEvent, now: datetime) -> None:
        with contextlib.suppress(ConditionFailed):  # relayed meanwhile (the stream and the sweep both came)
            self._storage.write(
                update(
                    project_pk(event.project_id),
                    event_sk(event.event_id),
                    "SET relayed_at = :at REMOVE gsi1pk, gsi1sk",
                    only_if="attribute_exists(gsi1pk)",
                    values={":at": utc_stamp(now)},
                )
            )

    def attempt_context(
        self, project_id: str, event_id: str, endpoint_id: str, *, order_key: str, earlier: list[tuple[int, str]]
    ) -> tuple[CallEvent | None, Endpoint | None, bool]:
        """What one delivery attempt needs, in one request of key reads (never a query): the event, the endpoint, and
        whether a delivery of an `earlier` event (rank, id) of the same call to this endpoint is still pending."""
        if not (is_valid_id(event_id) and is_valid_id(endpoint_id)):
            return None, None, False
        keys = [
            (project_pk(project_id), event_sk(event_id)),
            (project_pk(project_id), f"{ENDPOINT_PREFIX}{endpoint_id}"),
        ]
        keys += [(delivery_pk(project_id, endpoint_id), delivery_sk(order_key, rank, eid)) for rank, eid in earlier]
        event, endpoint, *deliveries = self._storage.get_all(keys)
        return (
            event_from_item(event) if event and event.get("type") == "call_event" else None,
            Endpoint.model_validate(endpoint) if endpoint else None,
            any(d is not None and d.get("status") == PENDING for d in deliveries),
        )

    # -- endpoints -----------------------------------------------------------------------------------------------
    def add_endpoint(self, project_id: str, endpoint: Endpoint) -> None:
        """A new endpoint, never over another with its id; the SDK's repeat of this very put (its answer lost) finds
        its own item by the put's token."""
        token = uuid.uuid4().hex
        item = {
            "pk": project_pk(project_id),
            "sk": f"{ENDPOINT_PREFIX}{endpoint.endpoint_id}",
            "type": "endpoint",
            **endpoint.model_dump(mode="json"),
            "create_token": token,
        }
        self._storage.write(
            put(item, only_if="attribute_not_exists(pk) OR create_token = :token", values={":token": token})
        )

    def get_endpoint(self, project_id: str, endpoint_id: str) -> Endpoint | None:
        if not is_valid_id(endpoint_id):
            return None
        item = self._storage.get(project_pk(project_id), f"{ENDPOINT_PREFIX}{endpoint_id}")
        return Endpoint.model_validate(item) if item else None

    def endpoints(self, project_id: str) -> list[Endpoint]:
        items = self._storage.query(project_pk(project_id), ENDPOINT_PREFIX)
        return [Endpoint.model_validate(item) for item in items]

    def delete_endpoint(self, project_id: str, endpoint_id: str) -> None:
        """Gone afterwards, whether this delete, a concurrent one or the SDK's repeat of this one removed it."""
        self._storage.write(delete(project_pk(project_id), f"{ENDPOINT_PREFIX}{endpoint_id}"))

    def endpoint_failed(self, project_id: str, endpoint_id: str, now: datetime) -> datetime | None:
        """Note a failed attempt: the endpoint has been failing since the first failure with no success since.
        Returns that moment (None: the endpoint is gone)."""
        try:
            reply = self._storage.write(
                Write(
                    "Update",
                    {
                        **update(
                            project_pk(project_id),
                            f"{ENDPOINT_PREFIX}{endpoint_id}",
                            "SET failing_since = if_not_exists(failing_since, :now)",
                            only_if="attribute_exists(pk)",
                            values={":now": now.isoformat()},
                        ).request,
                        "ReturnValues": "ALL_NEW",
                    },
                )
            )
        except ConditionFailed:
            return None
        since = reply.get("Attributes", {}).get("failing_since", {}).get("S")
        return datetime.fromisoformat(since) if since else None

    def endpoint_succeeded(self, project_id: str, endpoint_id: str) -> None:
        with contextlib.suppress(ConditionFailed):
            self._storage.write(
                update(
                    project_pk(project_id),
                    f"{ENDPOINT_PREFIX}{endpoint_id}",
                    "REMOVE failing_since",
                    only_if="attribute_exists(failing_since)",
                )
            )

    def disable_endpoint(self, project_id: str, endpoint_id: str, reason: str, now: datetime) -> None:
        with contextlib.suppress(ConditionFailed):
            self._storage.write(
                update(
                    project_pk(project_id),
                    f"{ENDPOINT_PREFIX}{endpoint_id}",
                    "SET enabled = :no, disabled_reason = :why, disabled_at = :at",
                    only_if="attribute_exists(pk)",
                    values={":no": False, ":why": reason, ":at": now.isoformat()},
                )
            )

    def enable_endpoint(self, project_id: str, endpoint_id: str) -> None:
        with contextlib.suppress(ConditionFailed):
            self._storage.write(
                update(
                    project_pk(project_id),
                    f"{ENDPOINT_PREFIX}{endpoint_id}",
                    "SET enabled = :yes REMOVE disabled_reason, disabled_at, failing_since",
                    only_if="attribute_exists(pk)",
                    values={":yes": True},
                )
            )

    # -- deliveries ----------------------------------------------------------------------------------------------
    def open_delivery(self, event: CallEvent, endpoint_id: str, now: datetime) -> None:
        """The (event, endpoint) delivery, pending; kept as it is if it exists (a second relay changes nothing)."""
        item = {
            "pk": delivery_pk(event.project_id, endpoint_id),
            "sk": delivery_sk(event.order_key, event.rank, event.event_id),
            "type": "delivery",
            "event_id": event.event_id,
            "event_type": event.type,
            "status": PENDING,
            "attempts": 0,
            "created_at": utc_stamp(now),
            "updated_at": utc_stamp(now),
            "expires_at": int((now + KEEP).timestamp()),
        }
        with contextlib.suppress(ConditionFailed):
            self._storage.write(put(item, only_if="attribute_not_exists(pk)"))

    def delivery(self, event: CallEvent, endpoint_id: str) -> dict[str, Any] | None:
        return self._storage.get(
            delivery_pk(event.project_id, endpoint_id), delivery_sk(event.order_key, event.rank, event.event_id)
        )

    def claim(self, event: CallEvent, endpoint_id: str, attempt: int, now: float) -> bool:
        """Take attempt `attempt` of a pending delivery: only one taker per attempt (a message received twice is sent
        once), and an attempt whose taker died is taken over after its lease. The claim's own token lets the SDK's
        retry of this very request (its first answer lost, the write landed) find the claim its own."""
        try:
            self._storage.write(
                update(
                    delivery_pk(event.project_id, endpoint_id),
                    delivery_sk(event.order_key, event.rank, event.event_id),
                    "SET attempts = :n, lease_until = :lease, claim_token = :token",
                    only_if="#status = :pending AND (attempts = :before OR (attempts = :n AND "
                    "(lease_until < :now OR claim_token = :token)))",
                    names={"#status": "status"},
                    values={
                        ":n": attempt,
                        ":before": attempt - 1,
                        ":lease": int(now) + LEASE_SECONDS,
                        ":now": int(now),
                        ":pending": PENDING,
                        ":token": uuid.uuid4().hex,
                    },
                )
            )
        except ConditionFailed:
            return False
        return True

    def settle(
        self,
        event: CallEvent,
        endpoint_id: str,
        *,
        status: str,
        now: datetime,
        next_due: float | None = None,
        log: dict[str, Any] | None = None,
    ) -> None:
        """The delivery after an attempt: still pending (due again at `next_due`) or final; with `log`, the attempt's
        log entry written in the same request."""
        expression = "SET #status = :status, updated_at = :at REMOVE lease_until, claim_token"
        values: dict[str, Any] = {":status": status, ":at": utc_stamp(now)}
        if next_due is not None:
            expression = "SET #status = :status, updated_at = :at, next_due = :due REMOVE lease_until, claim_token"
            values[":due"] = int(next_due)
        write = update(
            delivery_pk(event.project_id, endpoint_id),
            delivery_sk(event.order_key, event.rank, event.event_id),
            expression,
            names={"#status": "status"},
            values=values,
        )
        if log is None:
            self._storage.write(write)
        else:
            self._storage.transact([write, _log_write(event, endpoint_id, log, now)])

    def reopen(self, event: CallEvent, endpoint_id: str, now: datetime) -> bool:
        """A replay: the delivery pending again from its first attempt (one that is pending now is left alone).
        False when it is pending already."""
        self.open_delivery(event, endpoint_id, now)
        try:
            self._storage.write(
                update(
                    delivery_pk(event.project_id, endpoint_id),
                    delivery_sk(event.order_key, event.rank, event.event_id),
                    "SET #status = :pending, attempts = :zero, updated_at = :at, replays = if_not_exists(replays, "
                    ":zero) + :one REMOVE lease_until, next_due",
                    only_if="#status <> :pending OR attempts = :zero",
                    names={"#status": "status"},
                    values={":pending": PENDING, ":zero": 0, ":one": 1, ":at": utc_stamp(now)},
                )
            )
        except ConditionFailed:
            return False
        return True

    def failed_since(self, project_id: str, endpoint_id: str, since: datetime) -> list[tuple[str, str]]:
        """(event id, status) of the endpoint's deliveries that ended without success at or after `since`."""
        stamp = utc_stamp(since)
        return [
            (str(item["event_id"]), str(item["status"]))
            for item in self._storage.query(delivery_pk(project_id, endpoint_id))
            if item.get("status") in (GIVEN_UP, STOPPED) and str(item.get("updated_at", "")) >= stamp
        ]

    # -- the attempts' log ---------------------------------------------------------------------------------------
    def attempts_log(self, project_id: str, endpoint_id: str, *, limit: int) -> list[dict[str, Any]]:
        items = self._storage.query(f"DELIVERYLOG#{project_id}#{endpoint_id}", limit=limit, newest_first=True)
        now = datetime.now(UTC).timestamp()
        return [item for item in items if item.get("expires_at", now + 1) > now]  # TTL deletes lazily


def _log_write(event: CallEvent, endpoint_id: str, entry: dict[str, Any], now: datetime) -> Write:
    """One attempt in the endpoint's delivery log (kept 30 days)."""
    item = {
        "pk": f"DELIVERYLOG#{event.project_id}#{endpoint_id}",
        "sk": f"{utc_stamp(now)}#{event.event_id}#{entry['attempt']}",
        "type": "delivery_attempt",
        "event_id": event.event_id,
        "event_type": event.type,
        "at": utc_stamp(now),
        **entry,
        "expires_at": int((now + KEEP).timestamp()),
    }
    return put(item)
