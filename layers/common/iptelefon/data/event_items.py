"""The item layouts of call events that more than one repository writes: the outbox item of an event goes into the
transaction of the call write that makes it (`call_records`, `live_calls`, `attempts`), and `call_events` reads and
relays it. Layouts only: no I/O here (see `call_events` for the keys).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from iptelefon.data.gateway import Write, project_pk, put
from iptelefon.domain.call_events import CallEvent
from iptelefon.domain.models import utc_stamp

EVENT_PREFIX = "EVENT#"
ENDPOINT_PREFIX = "ENDPOINT#"
OUTBOX_INDEX_PK = "OUTBOX"
KEEP = timedelta(days=30)
LEASE_SECONDS = 30  # one attempt's claim: longer than the 10 s request; a crashed attempt is taken over after it
MAX_SWEPT = 500

PENDING, DELIVERED, GIVEN_UP, STOPPED = "pending", "delivered", "given_up", "stopped"
FINAL = (DELIVERED, GIVEN_UP, STOPPED)


def event_sk(event_id: str) -> str:
    return f"{EVENT_PREFIX}{event_id}"


def outbox_write(event: CallEvent) -> Write:
    """The outbox item of `event`, for the transaction of the call write that makes it."""
    item = {
        "pk": project_pk(event.project_id),
        "sk": event_sk(event.event_id),
        "type": "call_event",
        "event_id": event.event_id,
        "event_type": event.type,
        "order_key": event.order_key,
        "occurred_at": utc_stamp(event.occurred_at),
        "data": json.dumps(event.data, ensure_ascii=False),
        "gsi1pk": OUTBOX_INDEX_PK,
        "gsi1sk": f"{utc_stamp(event.occurred_at)}#{event.event_id}",
        "expires_at": int((event.occurred_at + KEEP).timestamp()),
    }
    return put(item)


def event_from_item(item: dict[str, Any]) -> CallEvent:
    return CallEvent(
        event_id=item["event_id"],
        type=item["event_type"],
        project_id=str(item["pk"]).removeprefix("PROJECT#"),
        order_key=item["order_key"],
        occurred_at=datetime.fromisoformat(item["occurred_at"]),
        data=json.loads(item["data"]),
    )


def delivery_pk(project_id: str, endpoint_id: str) -> str:
    return f"DELIVERY#{project_id}#{endpoint_id}"


def delivery_sk(order_key: str, rank: int, event_id: str) -> str:
    return f"{order_key}#{rank}#{event_id}"
