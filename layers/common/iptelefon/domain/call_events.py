"""Call events to a project's endpoints (issue 22): what an event is, how it is signed, when a failed delivery is tried
again. Pure: the webhook and the call use cases build events here, storage keeps them, the delivery use case sends them.

Events, in the order one call makes them (`RANK`): `call.ringing` → `call.answered` → `call.completed` or
`call.missed` → `recording.ready`; `call.attempt_failed` is a bot's call the PBX refused (no call came of it);
`callback.overdue` is a missed call's callback task past its SLA (issue 23), in an order of its own (the task's).

Signing is Standard Webhooks (https://www.standardwebhooks.com): headers `webhook-id` (the event id, the same on every
attempt and replay), `webhook-timestamp` (unix seconds of this attempt), `webhook-signature`: `v1,<base64 of
HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the base64-decoded part of the `whsec_` secret. While a
rotated-out secret is still in its grace period, the header carries one signature per secret, space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from iptelefon.domain.models import utc_stamp

if TYPE_CHECKING:
    from iptelefon.domain.call_record import CallRecord
    from iptelefon.domain.callbacks import CallbackTask
    from iptelefon.domain.live_calls import LiveCall
    from iptelefon.domain.models import CallAttempt
    from iptelefon.domain.recordings import Recording

EventType = Literal[
    "call.ringing",
    "call.answered",
    "call.completed",
    "call.missed",
    "call.attempt_failed",
    "recording.ready",
    "callback.overdue",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
# The order of one call's events: an endpoint gets a call's event only after the earlier ones (delivered or given up).
RANK: dict[str, int] = {
    "call.attempt_failed": 0,
    "call.ringing": 1,
    "call.answered": 2,
    "call.completed": 3,
    "call.missed": 3,
    "recording.ready": 4,
    "callback.overdue": 0,  # its order key is the task's id: nothing comes before it
}

SECRET_PREFIX = "whsec_"  # noqa: S105 - the secret's prefix, as Standard Webhooks writes it
SECRET_BYTES = 24
# A delivery's retries, seconds after the failed attempt (about a day and a half in all); then it is given up.
RETRY_DELAYS_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS_SECONDS)
DISABLE_AFTER_FAILING_SECONDS = 3 * 24 * 3600  # an endpoint failing this long (no success between) is disabled
DELIVERY_TIMEOUT_SECONDS = 10.0
DEFAULT_SECRET_GRACE_HOURS = 24.0
MAX_SECRET_GRACE_HOURS = 72.0


class CallEvent(BaseModel):
    """One event as kept in the outbox (`data.call_events`): one per event, whatever the number of endpoints.

    `order_key` groups the events one endpoint must get in order (the call's key; a failed attempt's own id)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: EventType
    project_id: str
    order_key: str
    occurred_at: datetime
    data: dict[str, Any]

    @property
    def rank(self) -> int:
        return RANK[self.type]

    def body(self) -> str:
        """The JSON every endpoint gets, byte for byte the same on each attempt (its signature covers it)."""
        payload = {
            "type": self.type,
            "event_id": self.event_id,
            "project_id": self.project_id,
            "occurred_at": utc_stamp(self.occurred_at),
            "data": self.data,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def event_id_for(project_id: str, order_key: str, event_type: str) -> str:
    """The same event always has the same id: a call makes each of its events once (the outbox write is conditional
    on the call's own write), and a replay keeps it."""
    digest = hashlib.sha256(f"{project_id}\n{order_key}\n{event_type}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def earlier_event_ids(project_id: str, order_key: str, rank: int) -> list[tuple[int, str]]:
    """(rank, event id) of every event of the same call that would come before one of `rank` (ids are derived)."""
    return [(RANK[t], event_id_for(project_id, order_key, t)) for t in EVENT_TYPES if 1 <= RANK[t] < rank]


def new_event(
    event_type: EventType, *, project_id: str, order_key: str, occurred_at: datetime, data: dict[str, Any]
) -> CallEvent:
    return CallEvent(
        event_id=event_id_for(project_id, order_key, event_type),
        type=event_type,
        project_id=project_id,
        order_key=order_key,
        occurred_at=occurred_at,
        data=data,
    )


def call_data(
    *,
    call_key: str,
    pbx_call_id: str | None,
    client_id: str,
    client_phone: str | None,
    client_channel: str | None,
    client_created: bool,
    employee: str | None,
    direction: str | None,
    status: str,
    ring_seconds: int | None = None,
    talk_seconds: int | None = None,
    attempt: tuple[str, str | None] | None = None,
    record_link: str | None = None,
) -> dict[str, Any]:
    """The `data` of a call's event: the names every event type shares (null when not known yet)."""
    data: dict[str, Any] = {
        "call_key": call_key,
        "pbx_call_id": pbx_call_id,
        "client": {"id": client_id, "phone": client_phone, "channel": client_channel, "created_now": client_created},
        "employee": employee,
        "direction": direction,
        "status": status,
        "durations": {"ring_seconds": ring_seconds, "talk_seconds": talk_seconds},
        "attempt": None if attempt is None else {"id": attempt[0], "reference": attempt[1]},
    }
    if record_link is not None:
        data["record_link"] = record_link
    return data


@dataclass(frozen=True)
class ClientFacts:
    """What an event says of the call's client beyond its id: the client as matched or created by this call."""

    channel: str | None
    created_now: bool


def _attempt_ref(attempt: CallAttempt | None) -> tuple[str, str | None] | None:
    return None if attempt is None else (attempt.attempt_id, attempt.reference)


def completion_events(
    project_id: str, call: CallRecord, client: ClientFacts, attempt: CallAttempt | None
) -> list[CallEvent]:
    """A completed call's events: `call.completed` (answered) or `call.missed` (missed, busy, failed). Its recording's
    `recording.ready` comes once the copy is archived (`recording_event`), not with the PBX's link."""
    assert call.received_at is not None
    data = _completed_data(call, client, attempt)
    kind: EventType = "call.completed" if call.status == "answered" else "call.missed"
    if kind == "call.missed":
        data["suggested_message"] = None  # the missed-call text, when one goes (`with_suggested_message`)
    return [new_event(kind, project_id=project_id, order_key=call.call_key, occurred_at=call.received_at, data=data)]


def with_suggested_message(events: list[CallEvent], message: str | None) -> list[CallEvent]:
    """The events with the missed-call text the client is sent (issue 23) as `call.missed`'s `suggested_message`."""
    return [
        event.model_copy(update={"data": {**event.data, "suggested_message": message}})
        if event.type == "call.missed"
        else event
        for event in events
    ]


def _completed_data(call: CallRecord, client: ClientFacts, attempt: CallAttempt | None) -> dict[str, Any]:
    return call_data(
        call_key=call.call_key,
        pbx_call_id=call.pbx_call_id,
        client_id=call.client_id,
        client_phone=call.client_phone,
        client_channel=client.channel,
        client_created=client.created_now,
        employee=call.employee,
        direction=call.direction,
        status=call.status,
        talk_seconds=call.talk_seconds,
        attempt=_attempt_ref(attempt),
    )


def recording_event(call: CallRecord, recording: Recording, archived_at: datetime) -> CallEvent:
    """`recording.ready`: the call's recording is archived. `record_link` is our stable link (`/r/{id}`, it lasts;
    the PBX's own link when the call has none), `recording` what was archived."""
    assert recording.state == "archived"
    data = _completed_data(call, ClientFacts(channel=None, created_now=False), None)
    data["record_link"] = call.recording_link or call.record_link
    data["recording"] = {
        "id": recording.recording_id,
        "content_type": recording.content_type,
        "size_bytes": recording.size_bytes,
    }
    return new_event(
        "recording.ready",
        project_id=recording.project_id,
        order_key=call.call_key,
        occurred_at=archived_at,
        data=data,
    )


def live_events(
    project_id: str,
    before: LiveCall | None,
    after: LiveCall,
    client: ClientFacts,
    attempt: CallAttempt | None,
) -> list[CallEvent]:
    """`call.ringing` when a call starts ringing, `call.answered` when it is answered; nothing for a change that is
    neither (the next extension rung). Ring time is known once it is answered after ringing."""
    if before is not None and before.state == after.state:
        return []
    kind: EventType = "call.ringing" if after.state == "ringing" else "call.answered"
    ring_seconds = None
    if kind == "call.answered" and before is not None and before.state == "ringing":
        ring_seconds = max(0, round((after.since - before.since).total_seconds()))
    data = call_data(
        call_key=after.call_key,
        pbx_call_id=after.pbx_call_id,
        client_id=after.client_id,
        client_phone=after.client_phone,
        client_channel=client.channel,
        client_created=client.created_now,
        employee=after.employee,
        direction=after.direction,
        status="ringing" if kind == "call.ringing" else "answered",
        ring_seconds=ring_seconds,
        attempt=_attempt_ref(attempt),
    )
    return [new_event(kind, project_id=project_id, order_key=after.call_key, occurred_at=after.since, data=data)]


def attempt_failed_event(project_id: str, attempt: CallAttempt, at: datetime) -> CallEvent:
    """`call.attempt_failed`: the PBX refused a bot's (or the card's) call: no call came of it."""
    data = {
        "call_key": None,
        "pbx_call_id": attempt.pbx_call_id,
        "client": {"id": attempt.card_client_id, "phone": attempt.client_phone, "channel": None, "created_now": False},
        "employee": attempt.short_number,
        "group_id": attempt.group_id,
        "direction": "out",
        "status": "failed",
        "durations": {"ring_seconds": None, "talk_seconds": None},
        "attempt": {"id": attempt.attempt_id, "reference": attempt.reference},
        "reason": attempt.reason,
    }
    return new_event(
        "call.attempt_failed", project_id=project_id, order_key=attempt.attempt_id, occurred_at=at, data=data
    )


# -- secrets and signatures -------------------------------------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """One `v1,` signature of a delivery."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"v1,{base64.b64encode(mac).decode()}"


def signature_header(signing_secrets: list[str], message_id: str, timestamp: int, body: str) -> str:
    """`webhook-signature`: one signature per secret that signs now (the current one, and a rotated-out one in its
    grace period), space-separated: a receiver that knows either accepts it."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in signing_secrets)


def delivery_headers(signing_secrets: list[str], event_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing_secrets, event_id, timestamp, body),
    }


# -- retries ----------------------------------------------------------------------------------------------------------
Outcome = Literal["delivered", "retry", "given_up", "gone"]


def outcome_of(status: int | None, attempt: int) -> Outcome:
    """What attempt `attempt` (1-based) answered with `status` (None: no answer) means for the delivery."""
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"  # the receiver says this endpoint is no more: stop, and disable it
    return "retry" if attempt < MAX_ATTEMPTS else "given_up"


def lease_held_until(delivery: dict[str, Any] | None, attempt: int, now: float) -> float | None:
    """When a claim on attempt `attempt` that another taker holds runs out (its lease: then it may be taken over);
    None when nobody holds it: that attempt was made (its outcome settled) or the delivery moved on."""
    if delivery is None or delivery.get("status") != "pending" or int(delivery.get("attempts", 0)) != attempt:
        return None
    lease = delivery.get("lease_until")  # settling an attempt removes it
    return max(float(lease), now) if lease is not None else None


def retry_delay_seconds(attempt: int, *, time_scale: float = 1.0) -> float:
    """Seconds from failed attempt `attempt` to the next one. `time_scale` > 1 shrinks the schedule (the local
    bench's simulated hours); deployed stages use 1."""
    return RETRY_DELAYS_SECONDS[attempt - 1] / time_scale


# -- endpoints --------------------------------------------------------------------------------------------------------
class Endpoint(BaseModel):
    """A project's receiver of call events (`data.call_events`); its secret lives in SSM, never here."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    endpoint_id: str
    url: str
    description: str = ""
    event_types: list[EventType] = list(EVENT_TYPES)
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None  # the first failure with no success since
    created_at: datetime

    def wants(self, event_type: str) -> bool:
        return self.enabled and event_type in self.event_types


def overdue_event(project_id: str, task: CallbackTask, at: datetime) -> CallEvent:
    """`callback.overdue`: nobody called the client back within the SLA (the task is still open at `due_at`)."""
    return new_event(
        "callback.overdue",
        project_id=project_id,
        order_key=task.task_id,
        occurred_at=at,
        data={
            "task_id": task.task_id,
            "client": {"id": task.client_id, "phone": task.client_phone},
            "employee": task.assignee,
            "opened_at": task.opened_at.isoformat(),
            "due_at": task.due_at.isoformat(),
            "missed_calls": task.missed_calls,
            "first_call_key": task.first_call_key,
            "last_call_key": task.last_call_key,
        },
    )
