"""The PBX's webhook (contract section 2): project by secret, then a completed call's effects exactly once, or a
live call's state (ZEON's `cmd=event`: ringing, answered; never a completion, see `domain.live_calls`).

Round trips for a known client, warm: the secret lookup (1), the phone index GetItem (1), one transaction (1), and
the end of the call's live state when the PBX named the call (1); the project and its SSM secret come from the warm
cache. An outgoing call adds the lookup of the bot's attempt. A live event: the secret lookup, the live state
(1), the phone index when the call is new (1), the new state (1); the call's first event of a known client also reads
the client and its last dialog lines (2) for the incoming-call card.

When storage is unavailable (after the gateway's retries) or the invocation is about to run out of time, the request
goes to the durable inbox with the sha256 of its secret, never the secret: the PBX hears
`{"result": 1, "queued": true}` and InboxFunction applies it later with `apply_queued`, checking the secret then.

Everything it talks to is handed in (`WebhookDeps`, built by `entry.dependencies`): the use case reads the
request, decides, and tells the repositories what to store.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iptelefon.domain.answers import CallRecordedAnswer, LiveEventAnswer, WebhookQueuedAnswer
from iptelefon.domain.call_aliases import CanonicalCall, canonicalize, is_live_event, read_live_event
from iptelefon.domain.call_events import (
    CallEvent,
    ClientFacts,
    completion_events,
    live_events,
    with_suggested_message,
)
from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.callbacks import CallbackChanged, OpenTask, TextedRecently
from iptelefon.domain.errors import DomainError, NotFound, StorageRejected, StorageUnavailable
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.live_calls import LiveEvent, LiveOrEnded, advance, ended_by
from iptelefon.domain.models import CallAttempt, Channel, Client, Project, time_ordered_id
from iptelefon.domain.notifications import format_call_notification
from iptelefon.domain.phones import mask_phone
from iptelefon.domain.webhook_body import WebhookRequest, extract_fields
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.settings import get_settings
from iptelefon.usecases import callbacks
from iptelefon.usecases.incoming_card import client_snapshot
from iptelefon.usecases.ports import (
    Attempts,
    CallbackTasks,
    CallRecords,
    Clients,
    Clock,
    Inbox,
    LiveCalls,
    PbxCredentialsSource,
    Projects,
    RecordingQueue,
)
from iptelefon.usecases.recordings import queue_copy, with_recording

UNKNOWN_SECRET = "unknown webhook secret"  # noqa: S105 - an error message
# Events of one call racing each other: each round reads the state the other wrote; more rounds than this is an outage.
LIVE_WRITE_ROUNDS = 5
# Webhooks of one client racing for its callback task: each round reads the task the other wrote.
CALLBACK_ROUNDS = 5


@dataclass(frozen=True)
class WebhookDeps:
    projects: Projects
    clients: Clients
    calls: CallRecords
    attempts: Attempts
    live: LiveCalls
    callbacks: CallbackTasks  # missed calls' callback tasks (issue 23)
    pbx_credentials: PbxCredentialsSource  # the PBX secret is the webhook credential of a project without a token
    inbox: Inbox
    clock: Clock
    # The same, read now (a warm Lambda's copy may predate a secret set a moment ago); None: `pbx_credentials` is.
    pbx_credentials_now: PbxCredentialsSource | None = None
    recording_queue: RecordingQueue | None = None  # the recordings' copy queue (issue 25)


def find_project(deps: WebhookDeps, secret_sha256: str) -> Project | None:
    """One key lookup by the secret's sha256. The current secret is then compared (constant time) with the project's
    webhook credential: the hash of its random webhook token, or else of the PBX secret in SSM. A rotated-out one is
    accepted until its `valid_until` (the grace period), then never again."""
    lookup = deps.projects.find_webhook_secret(secret_sha256)
    project = deps.projects.get_project_cached(str(lookup["project_id"])) if lookup else None
    if lookup is None or project is None:
        return None
    if "valid_until" in lookup:
        return project if deps.clock() < float(lookup["valid_until"]) else None
    if is_current_credential(deps, project, secret_sha256):
        return project
    # The cached settings may predate a new webhook token, the cached PBX secret a new secret: read both again. Only
    # a hash with a current lookup item gets here (an unknown one is a 404 above), so a guesser causes no re-read.
    fresh = deps.projects.get_project(project.id)
    if fresh is None:
        return None
    if is_current_credential(deps, fresh, secret_sha256):
        return fresh
    if fresh.webhook_token_sha256 is None and deps.pbx_credentials_now is not None:
        current = sha256_hex(deps.pbx_credentials_now(project.id).secret)
        return fresh if hmac.compare_digest(current.encode(), secret_sha256.encode()) else None
    return None


def is_current_credential(deps: WebhookDeps, project: Project, secret_sha256: str) -> bool:
    """Whether the hash is the project's webhook credential now: its random webhook token, else its PBX secret."""
    current = project.webhook_token_sha256 or sha256_hex(deps.pbx_credentials(project.id).secret)
    return hmac.compare_digest(current.encode(), secret_sha256.encode())


def receive_webhook(deps: WebhookDeps, secret: str, request: WebhookRequest) -> dict[str, Any]:
    """The call's effects now, or (storage away) the request queued for later. 404 for an unknown secret."""
    secret_sha256 = sha256_hex(secret)
    try:
        project = find_project(deps, secret_sha256)
        if project is None:
            raise NotFound(UNKNOWN_SECRET)
        return apply_webhook(deps, project, request).model_dump(mode="json")
    except StorageUnavailable as error:
        # StorageUnavailable (503) if SQS cannot take it either
        deps.inbox.send(request.to_message(secret_sha256, received_at=deps.clock()))
        logger.warning("storage unavailable: webhook queued in the inbox", extra={"reason": error.message})
        metrics.add_metric(name="WebhookQueued", unit="Count", value=1)
        return WebhookQueuedAnswer().model_dump(mode="json")


def apply_queued(deps: WebhookDeps, message: str) -> dict[str, Any] | None:
    """Apply one inbox message: the call's effects, or the request kept as rejected (a 4xx the PBX never heard).

    None when the secret is unknown by now (never valid, or changed since): dropped and counted, never applied.
    StorageUnavailable propagates: the message comes back later.
    """
    secret_sha256, request = WebhookRequest.from_message(message)
    project = find_project(deps, secret_sha256)
    if project is None:
        logger.warning("inbox: a queued webhook has an unknown secret; dropped")
        metrics.add_metric(name="InboxUnknownSecret", unit="Count", value=1)
        return None
    try:
        return apply_webhook(deps, project, request).model_dump(mode="json")
    except DomainError as error:
        if error.status_code >= 500:  # storage away (the message comes back) or refusing (the dead-letter queue)
            raise
        return {"result": 0, "error": error.code}  # unreadable: `apply_webhook` kept the request for the project


def apply_webhook(deps: WebhookDeps, project: Project, request: WebhookRequest) -> CallRecordedAnswer | LiveEventAnswer:
    try:
        fields = extract_fields(
            body=request.body,
            content_type=request.content_type,
            query=request.query,
            max_bytes=get_settings().max_webhook_body_bytes,
        )
        read: LiveEvent | CanonicalCall = (
            read_live_event(fields, default_region=project.default_region)
            if is_live_event(fields)
            else canonicalize(fields, default_region=project.default_region)
        )
    except DomainError as error:
        # Nothing the PBX sent is lost: the unreadable request is kept for the project before the 4xx goes out.
        deps.calls.keep_rejected(
            project.id, request, error_code=error.code, message=error.message, status=error.status_code
        )
        metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
        raise
    try:
        if isinstance(read, LiveEvent):
            return record_live_event(deps, project, read, request)
        return record_call(deps, project, read, request)
    except StorageRejected as error:  # DynamoDB refused the call's items: keep what the PBX sent for an operator
        deps.calls.keep_rejected(project.id, request, error_code=error.code, message=error.message, status=500)
        raise


def new_client(project: Project, phone: str, now: float) -> Client:
    """The client a call from an unknown phone creates (contract section 4): a WhatsApp client when the project has a
    messenger, else a telephony-only client (it cannot be messaged)."""
    channel: Channel = "whatsapp" if project.has_messenger else "telephony"
    return Client(id=time_ordered_id(now), channel=channel, phone=phone, can_message=channel != "telephony")


def record_call(
    deps: WebhookDeps, project: Project, call: CanonicalCall, request: WebhookRequest
) -> CallRecordedAnswer:
    now = deps.clock()
    client = new_client(project, call.client_phone, now)
    client_id, created = deps.clients.match_or_add(project, client)
    record = CallRecord.from_call(call, client_id=client_id, received_at=datetime.fromtimestamp(now, UTC))
    record = with_recording(record, request.api_base)  # issue 25: a recording id and our stable link
    # a bot-started call is an outgoing callback: its attempt is named in the call's events, then linked to it
    attempt = pending_attempt(deps, project, call.client_phone, call.pbx_call_id) if call.direction != "in" else None
    the_client = call_client(deps, project, client, client_id, created)  # read once: the events' facts, the task's
    events = completion_events(project.id, record, client_facts(the_client, created), attempt)
    duplicate = not store_new_call(deps, project, record, the_client, request, events)
    recorded = record
    if duplicate:
        existing = deps.calls.get(project.id, call.call_key)
        if existing is not None:
            recorded, client_id = existing, existing.client_id
            if call.record_link and not existing.record_link:
                recorded = with_recording(
                    existing.model_copy(update={"record_link": call.record_link}), request.api_base
                )
                add_record_link(deps, project, recorded)
    queue_copy(deps.recording_queue, recorded)  # issue 25: after the transaction, the recording's copy
    if attempt is not None:
        deps.attempts.link(project.id, attempt.attempt_id, call.call_key, client_id)
    if call.pbx_call_id is not None:  # the call is over: out of "now", and a late live event changes nothing
        deps.live.end(project.id, ended_by(recorded, at=datetime.fromtimestamp(now, UTC)))
    logger.info(
        "call recorded",
        extra={
            "project_id": project.id,
            "call_key": call.call_key,
            "phone": mask_phone(call.client_phone),
            "client_created": created,
            "duplicate": duplicate,
        },
    )
    metrics.add_metric(name="WebhookDuplicate" if duplicate else "CallRecorded", unit="Count", value=1)
    return CallRecordedAnswer(call_key=call.call_key, client_id=client_id, duplicate=duplicate)


def store_new_call(
    deps: WebhookDeps,
    project: Project,
    record: CallRecord,
    client: Client | None,
    request: WebhookRequest,
    events: list[CallEvent],
) -> bool:
    """The call, its notification, its events, its statistics counters and its client's callback task (with the
    missed-call text a task opens with) in ONE transaction; False: recorded before, nothing written. The first round
    guesses the client has no open task (no read); a wrong guess, or a webhook that changed the task meanwhile, makes
    the next round read it. A client texted within the day gets no second text: that round is written again without."""
    now = deps.clock()
    texting = True
    for round_ in range(CALLBACK_ROUNDS):
        change = callbacks.change_for_call(deps.callbacks, client, project, record, now, read=round_ > 0)
        if texting and isinstance(change, OpenTask):
            change = callbacks.with_missed_call_text(client, project, change, now)
        message = change.task.message if isinstance(change, OpenTask) else None
        try:
            recorded = deps.calls.add_new(
                project,
                record,
                notification=format_call_notification(record),
                request=request,
                events=with_suggested_message(events, message),
                callback=change,
            )
        except CallbackChanged:
            continue
        except TextedRecently:
            texting = False
            continue
        return recorded
    raise StorageUnavailable("the client's callback task kept changing, retry")


def record_live_event(
    deps: WebhookDeps, project: Project, event: LiveEvent, request: WebhookRequest
) -> LiveEventAnswer:
    """A live state of a call (ZEON's `cmd=event`), keyed by the PBX's call id, moved by the rules of
    `domain.live_calls.advance`. Never a notification, a client variable or a call record.

    The client is matched now, or created when the phone matches nobody (the same rules as a completed call's), so a
    call ringing now names its client and the call's `history` lands on the same one. An event that waited in the
    inbox counts from when it came (`received_at`).
    """
    at = datetime.fromtimestamp(request.received_at or deps.clock(), UTC)
    current = deps.live.get(project.id, event.call_key)
    client = new_client(project, event.client_phone, deps.clock())
    created = False
    snapshot = None
    if current is not None:
        client_id = current.client_id
    else:
        client_id, created = deps.clients.match_or_add(project, client)
        # the incoming-call card's client, kept on the live call (issue 22)
        snapshot = client_snapshot(deps.clients, deps.calls, project, client_id, event.client_phone, created=created)
    facts: ClientFacts | None = None  # read once, when an event is to be made
    attempt = None
    if event.direction == "out":
        attempt = pending_attempt(deps, project, event.client_phone, event.pbx_call_id)
    for _ in range(LIVE_WRITE_ROUNDS):
        following = advance(current, event, client_id=client_id, at=at, snapshot=snapshot)
        if following is None:
            assert current is not None  # a first event always makes a live call
            return _live_answer(project, current.client_id, event, current.state, changed=False)
        if facts is None and (current is None or current.state != following.state):
            facts = client_facts(call_client(deps, project, client, client_id, created), created)
        events = live_events(project.id, current, following, facts, attempt) if facts else []
        if deps.live.put(project.id, following, replacing=current, events=events):
            return _live_answer(project, following.client_id, event, following.state, changed=True)
        current = deps.live.get(project.id, event.call_key)  # another event, or the call's end, came meanwhile
    raise StorageUnavailable("the live call kept changing, retry")


def _live_answer(
    project: Project, client_id: str, event: LiveEvent, state: LiveOrEnded, *, changed: bool
) -> LiveEventAnswer:
    logger.info(
        "live call event",
        extra={
            "project_id": project.id,
            "call_key": event.call_key,
            "event": event.state,
            "live": state,
            "changed": changed,
        },
    )
    metrics.add_metric(name="LiveEventChanged" if changed else "LiveEventUnchanged", unit="Count", value=1)
    return LiveEventAnswer(call_key=event.call_key, client_id=client_id, live=state, changed=changed)


def add_record_link(deps: WebhookDeps, project: Project, linked: CallRecord) -> None:
    """A later webhook brought the recording of a recorded call: the call, its notification (rewritten with the link,
    no second one) and the client's `iptelefon_call_record_link` variable get it (`recording.ready` comes once the
    copy is archived)."""
    deps.calls.add_record_link(project, linked, notification=format_call_notification(linked))


def pending_attempt(deps: WebhookDeps, project: Project, phone: str, pbx_call_id: str | None) -> CallAttempt | None:
    """The bot's call attempt to this phone that this call most likely is (linked to it also on a replay:
    self-healing)."""
    return deps.attempts.latest_pending(project.id, phone, pbx_call_id=pbx_call_id, now=deps.clock())


def call_client(deps: WebhookDeps, project: Project, new: Client, client_id: str, created: bool) -> Client | None:
    """The call's client: the one this call created (`new`), else the one it matched, read (None: gone since)."""
    return new if created else deps.clients.get(project.id, client_id)


def client_facts(client: Client | None, created: bool) -> ClientFacts:
    """The call's client as its events name it: the one this call created, else the one it matched (None: gone)."""
    return ClientFacts(channel=client.channel if client else None, created_now=created)
