"""Call events to a project's endpoints (issue 22): the endpoints an admin manages, the relay from the outbox to the
delivery queue, one delivery attempt, and replays.

The outbox item of an event is written in the same DynamoDB transaction as the call write that makes it (the webhook,
the live state, a refused bot call): no event without its call, no call without its event. EventsFunction relays it
(a DynamoDB Stream on the table, a sweep every minute as the safety net) to the delivery queue: one message per
(event, endpoint), so no endpoint waits for another. A delivery attempt (`deliver`):

1. a message not due yet hops again (SQS delays 15 minutes at most);
2. a disabled or deleted endpoint stops the delivery;
3. an earlier event of the same call to the same endpoint still pending: this one waits (in order per call);
4. the attempt is claimed (each attempt of each (event, endpoint) once, whatever SQS delivers twice);
5. POST, signed (`domain.call_events`), 10 s at most; the attempt is logged (kept 30 days);
6. 2xx delivered; 410 stops and disables the endpoint; else the next attempt on the schedule, or given up after the
   last; an endpoint failing with no success for 3 days is disabled (a log line and the `EndpointDisabled` metric).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from iptelefon.domain.call_events import (
    DISABLE_AFTER_FAILING_SECONDS,
    EVENT_TYPES,
    CallEvent,
    Endpoint,
    delivery_headers,
    earlier_event_ids,
    lease_held_until,
    new_secret,
    outcome_of,
    retry_delay_seconds,
)
from iptelefon.domain.errors import InvalidInput, NotFound, StorageUnavailable
from iptelefon.domain.models import Project, time_ordered_id
from iptelefon.domain.pbx_address import PbxNetwork, check_url
from iptelefon.domain.requests import EndpointCreate
from iptelefon.platform.observability import logger, metrics
from iptelefon.usecases.ports import CallEvents, Clock, DeliveryQueue, EndpointSecrets, EventSender

# An event waits this long (before scaling) while an earlier event of its call to the same endpoint is pending.
DEFER_SECONDS = 1.0
# The sweep relays what the stream has not relayed after this long.
SWEEP_AFTER_SECONDS = 30.0
MAX_LOG_ENTRIES = 100
STORAGE_RETRY_SECONDS = 5.0  # a delivery whose storage was away comes again after this


def one_by_one(calls: list[Callable[[], None]]) -> None:
    for call in calls:
        call()


@dataclass(frozen=True)
class EventDeps:
    events: CallEvents
    secrets: EndpointSecrets
    queue: DeliveryQueue
    sender: EventSender | None = None  # only the delivery sends
    clock: Clock = time.time
    network: PbxNetwork = "public"
    time_scale: float = 1.0  # > 1 shrinks every wait (retries, deferrals, disabling): the local bench only
    # Runs independent writes (an event's deliveries), side by side where the caller can; one by one by default.
    run_all: Callable[[list[Callable[[], None]]], None] = field(default_factory=lambda: one_by_one)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


# -- endpoints (admin) -------------------------------------------------------------------------------------------------
def check_endpoint_url(url: str, network: PbxNetwork) -> None:
    check_url(
        url,
        network,
        field="url",
        shape="must be the full https URL of the receiver, e.g. https://crm.example.com/hooks/iptelefon",
        userinfo="must not carry a user name or password (user:password@): the signature authenticates",
    )


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    """What the API shows of an endpoint (never its secret)."""
    return endpoint.model_dump(mode="json")


def add_endpoint(deps: EventDeps, project: Project, request: EndpointCreate) -> dict[str, Any]:
    """A new endpoint and its secret: the secret is in this answer only (SSM keeps it, encrypted)."""
    check_endpoint_url(request.url, deps.network)
    endpoint = Endpoint(
        endpoint_id=f"ep_{time_ordered_id(deps.clock())}",
        url=request.url,
        description=request.description,
        event_types=list(dict.fromkeys(request.event_types or EVENT_TYPES)),
        enabled=request.enabled,
        created_at=deps.now(),
    )
    secret = new_secret()
    deps.secrets.put(project.id, endpoint.endpoint_id, secret, previous=None, valid_until=0)
    deps.events.add_endpoint(project.id, endpoint)  # after its secret: a listed endpoint can always sign
    return {**endpoint_view(endpoint), "secret": secret}


def endpoints_view(deps: EventDeps, project: Project) -> dict[str, Any]:
    return {"endpoints": [endpoint_view(e) for e in deps.events.endpoints(project.id)]}


def endpoint_or_404(deps: EventDeps, project: Project, endpoint_id: str) -> Endpoint:
    endpoint = deps.events.get_endpoint(project.id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"endpoint {endpoint_id} not found")
    return endpoint


def delete_endpoint(deps: EventDeps, project: Project, endpoint_id: str) -> None:
    """The endpoint and its secret (the secret too when a concurrent delete took the endpoint first: none is left)."""
    endpoint = endpoint_or_404(deps, project, endpoint_id)
    deps.events.delete_endpoint(project.id, endpoint.endpoint_id)
    deps.secrets.delete(project.id, endpoint.endpoint_id)


def rotate_secret(deps: EventDeps, project: Project, endpoint_id: str, *, grace_hours: float) -> dict[str, Any]:
    """A new secret, shown this once; the old one keeps signing beside it until `previous_valid_until` (0 hours: it
    stops at once)."""
    endpoint = endpoint_or_404(deps, project, endpoint_id)
    stored = deps.secrets.get(project.id, endpoint.endpoint_id) or {}
    secret = new_secret()
    valid_until = int(deps.clock() + grace_hours * 3600)
    previous = stored.get("current") if grace_hours > 0 else None
    deps.secrets.put(project.id, endpoint.endpoint_id, secret, previous=previous, valid_until=valid_until)
    until = datetime.fromtimestamp(valid_until, UTC).isoformat() if previous else None
    return {"endpoint_id": endpoint.endpoint_id, "secret": secret, "previous_valid_until": until}


def signing_secrets(deps: EventDeps, project_id: str, endpoint_id: str) -> list[str]:
    """The secrets that sign now: the current one, and a rotated-out one within its grace period."""
    stored = deps.secrets.get(project_id, endpoint_id) or {}
    found = [str(stored["current"])] if stored.get("current") else []
    if stored.get("previous") and float(stored.get("previous_valid_until", 0)) > deps.clock():
        found.append(str(stored["previous"]))
    return found


def deliveries_view(deps: EventDeps, project: Project, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's latest attempts (kept 30 days), newest first."""
    endpoint = endpoint_or_404(deps, project, endpoint_id)
    fields = ("at", "event_id", "event_type", "attempt", "status_code", "error", "latency_ms", "outcome")
    entries = deps.events.attempts_log(project.id, endpoint.endpoint_id, limit=MAX_LOG_ENTRIES)
    return {
        "endpoint_id": endpoint.endpoint_id,
        "deliveries": [{name: entry.get(name) for name in fields} for entry in entries],
    }


# -- replays -----------------------------------------------------------------------------------------------------------
def replay_event(deps: EventDeps, project: Project, event_id: str) -> dict[str, Any]:
    """The event again, with its id, to each enabled endpoint that takes its type (one still being delivered is
    left to finish)."""
    found = deps.events.get_event(project.id, event_id)
    if found is None:
        raise NotFound(f"event {event_id} not found (events are kept 30 days)")
    event, _ = found
    targets = [e.endpoint_id for e in deps.events.endpoints(project.id) if e.wants(event.type)]
    queued = _reopen(deps, [(event, endpoint_id) for endpoint_id in targets])
    return {"event_id": event.event_id, "queued": queued}


def replay_failed(deps: EventDeps, project: Project, endpoint_id: str, since: datetime) -> dict[str, Any]:
    """Every delivery to the endpoint that ended without success since `since`, again; the endpoint is enabled again
    (an admin replaying to it says it is back)."""
    endpoint = endpoint_or_404(deps, project, endpoint_id)
    if since > deps.now():
        raise InvalidInput.for_field("since", "must not be in the future")
    if not endpoint.enabled:
        deps.events.enable_endpoint(project.id, endpoint.endpoint_id)
    pairs = []
    for event_id, _ in deps.events.failed_since(project.id, endpoint.endpoint_id, since):
        found = deps.events.get_event(project.id, event_id)
        if found is not None:
            pairs.append((found[0], endpoint.endpoint_id))
    queued = _reopen(deps, pairs)
    return {"endpoint_id": endpoint.endpoint_id, "enabled": True, "queued": len(queued)}


def _reopen(deps: EventDeps, pairs: list[tuple[CallEvent, str]]) -> list[str]:
    now, at = deps.clock(), deps.now()
    messages = [
        _message(event, endpoint_id, attempt=1, due=now)
        for event, endpoint_id in pairs
        if deps.events.reopen(event, endpoint_id, at)
    ]
    deps.queue.send(messages, now)
    return [str(m["endpoint_id"]) for m in messages]


# -- relay: outbox -> delivery queue -----------------------------------------------------------------------------------
def _message(event: CallEvent, endpoint_id: str, *, attempt: int, due: float) -> dict[str, Any]:
    return {
        "project_id": event.project_id,
        "endpoint_id": endpoint_id,
        "event_id": event.event_id,
        "attempt": attempt,
        "due": due,
        "order_key": event.order_key,  # a batch delivers one call's events to one endpoint in order (`rank`)
        "rank": event.rank,
    }


def relay(deps: EventDeps, events: list[CallEvent]) -> int:
    """Fan each event out to its project's endpoints that take it: a pending delivery and a queue message each, then
    the event is marked relayed. Repeatable: a second relay of an event sends messages the deliveries ignore."""
    now, at = deps.clock(), deps.now()
    endpoints: dict[str, list[Endpoint]] = {}
    sent = 0
    for event in events:
        if event.project_id not in endpoints:
            endpoints[event.project_id] = deps.events.endpoints(event.project_id)
        targets = [e.endpoint_id for e in endpoints[event.project_id] if e.wants(event.type)]
        # every delivery of the event is pending before any of its messages goes: the order checks can see it
        deps.run_all([partial(deps.events.open_delivery, event, endpoint_id, at) for endpoint_id in targets])
        deps.queue.send([_message(event, endpoint_id, attempt=1, due=now) for endpoint_id in targets], now)
        deps.events.mark_relayed(event, at)
        sent += len(targets)
    return sent


def relay_stored(deps: EventDeps, keys: list[tuple[str, str]]) -> int:
    """Relay the outbox items named by (project id, event id) (the stream's records) that are still to relay: a record
    of a write that did not last, or of an event the sweep relayed, is skipped."""
    events = []
    for project_id, event_id in keys:
        found = deps.events.get_event(project_id, event_id)
        if found is not None and not found[1]:
            events.append(found[0])
    return relay(deps, events)


def sweep(deps: EventDeps) -> int:
    """The safety net: events the stream has not relayed within SWEEP_AFTER_SECONDS."""
    older_than = deps.now() - timedelta(seconds=SWEEP_AFTER_SECONDS / deps.time_scale)
    events = deps.events.unrelayed(older_than)
    if events:
        logger.warning("sweep relays events the stream did not", extra={"events": len(events)})
        metrics.add_metric(name="EventsSwept", unit="Count", value=len(events))
    return relay(deps, events)


# -- one delivery attempt ----------------------------------------------------------------------------------------------
def deliver(deps: EventDeps, message: dict[str, Any]) -> str:
    """One message of the delivery queue; returns what became of it (for the logs and the tests).

    Storage away for a moment: the message comes again in a few seconds (SQS would bring it back only after its
    visibility timeout, minutes); when SQS cannot take it either, the failure goes up and SQS brings it back."""
    try:
        return _attempt(deps, message)
    except StorageUnavailable as error:
        logger.warning("delivery postponed: storage unavailable", extra={"reason": error.message})
        metrics.add_metric(name="EventDeliveryPostponed", unit="Count", value=1)
        deps.queue.send([{**message, "due": deps.clock() + STORAGE_RETRY_SECONDS}], deps.clock())
        return "postponed"


def _attempt(deps: EventDeps, message: dict[str, Any]) -> str:
    now = deps.clock()
    if float(message["due"]) > now + 1:
        deps.queue.send([message], now)  # another hop towards its due time
        return "hop"
    project_id, endpoint_id = str(message["project_id"]), str(message["endpoint_id"])
    attempt = int(message["attempt"])
    order_key, rank = str(message["order_key"]), int(message["rank"])
    event, endpoint, earlier_pending = deps.events.attempt_context(
        project_id,
        str(message["event_id"]),
        endpoint_id,
        order_key=order_key,
        earlier=earlier_event_ids(project_id, order_key, rank),
    )
    if event is None or endpoint is None:
        return "dropped"  # the event expired or the endpoint was deleted
    at = deps.now()
    if not endpoint.enabled:
        state = deps.events.delivery(event, endpoint_id)
        if state is not None and state.get("status") == "pending":
            deps.events.settle(event, endpoint_id, status="stopped", now=at)
        return "stopped"
    if earlier_pending:
        deps.queue.send([{**message, "due": now + DEFER_SECONDS / deps.time_scale}], now)
        return "deferred"
    if not deps.events.claim(event, endpoint_id, attempt, now):
        held = lease_held_until(deps.events.delivery(event, endpoint_id), attempt, now)
        if held is None:
            return "duplicate"  # this attempt was made
        # another taker holds it (a message received twice, or a taker that died): once its lease runs out, this
        # message finds the attempt made, or takes it over
        deps.queue.send([{**message, "due": held + 1}], now)
        return "leased"
    assert deps.sender is not None
    body = event.body()
    headers = delivery_headers(signing_secrets(deps, project_id, endpoint_id), event.event_id, int(now), body)
    status, error, latency_ms = deps.sender.post(endpoint.url, body, headers)
    outcome = outcome_of(status, attempt)
    entry = {"attempt": attempt, "status_code": status, "error": error, "latency_ms": latency_ms, "outcome": outcome}
    log = {"project_id": project_id, "endpoint_id": endpoint_id, "event_id": event.event_id, **entry}
    if outcome == "delivered":
        deps.events.settle(event, endpoint_id, status="delivered", now=at, log=entry)
        if endpoint.failing_since is not None:  # it had been failing: no more
            deps.events.endpoint_succeeded(project_id, endpoint_id)
        logger.info("event delivered", extra=log)
        metrics.add_metric(name="EventDelivered", unit="Count", value=1)
        return outcome
    logger.warning("event delivery failed", extra=log)
    metrics.add_metric(name="EventDeliveryFailed", unit="Count", value=1)
    if outcome == "gone":
        deps.events.settle(event, endpoint_id, status="stopped", now=at, log=entry)
        _disable(deps, project_id, endpoint_id, "the endpoint answered 410 Gone", at)
        return outcome
    # failing since the first failure with no success since: noted once (the endpoint as read says whether it is)
    failing_since = endpoint.failing_since or deps.events.endpoint_failed(project_id, endpoint_id, at)
    if failing_since is not None and now - failing_since.timestamp() >= DISABLE_AFTER_FAILING_SECONDS / deps.time_scale:
        deps.events.settle(event, endpoint_id, status="stopped", now=at, log={**entry, "outcome": "disabled"})
        _disable(deps, project_id, endpoint_id, "failing for 3 days with no success", at)
        return "disabled"
    if outcome == "given_up":
        deps.events.settle(event, endpoint_id, status="given_up", now=at, log=entry)
        return outcome
    due = now + retry_delay_seconds(attempt, time_scale=deps.time_scale)
    deps.events.settle(event, endpoint_id, status="pending", now=at, next_due=due, log=entry)
    deps.queue.send([_message(event, endpoint_id, attempt=attempt + 1, due=due)], now)
    return outcome


def _disable(deps: EventDeps, project_id: str, endpoint_id: str, reason: str, at: datetime) -> None:
    deps.events.disable_endpoint(project_id, endpoint_id, reason, at)
    logger.error("endpoint disabled", extra={"project_id": project_id, "endpoint_id": endpoint_id, "reason": reason})
    metrics.add_metric(name="EndpointDisabled", unit="Count", value=1)
