"""What the API answers, as allow-lists: each answer is a pydantic model naming every field it shows.

An answer is built from a domain object field by field, never from a database item minus a deny-list: an attribute
added to a stored item (a key, the raw payload, a PBX reply) stays out of every answer until a model names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from iptelefon.domain.call_record import CallRecord, CallStatus, Direction
from iptelefon.domain.callbacks import CallbackTask, ClosedTask
from iptelefon.domain.client_names import display_name
from iptelefon.domain.live_calls import ClientSnapshot, LiveCall, LiveOrEnded, LiveState
from iptelefon.domain.models import AttemptStatus, CallAttempt, Channel, Client
from iptelefon.domain.phones import e164
from iptelefon.domain.recordings import Recording, RecordingState


# -- callback tasks (issue 23) ---------------------------------------------------------------------------------------
class CallbackTaskAnswer(BaseModel):
    """A callback task: open (due, overdue) or just closed (how, by whom)."""

    task_id: str
    client_id: str
    client_phone: str
    client_phone_e164: str
    assignee: str | None
    opened_at: datetime
    due_at: datetime
    overdue: bool
    missed_calls: int
    last_missed_at: datetime
    message: str | None
    state: Literal["open", "closed"]
    closed_at: datetime | None = None
    closed_by: str | None = None
    reason: str | None = None
    seconds_to_callback: int | None = None
    within_sla: bool | None = None

    @classmethod
    def of(cls, task: CallbackTask, now: datetime) -> CallbackTaskAnswer:
        closed = task if isinstance(task, ClosedTask) else None
        return cls(
            task_id=task.task_id,
            client_id=task.client_id,
            client_phone=task.client_phone,
            client_phone_e164=e164(task.client_phone),
            assignee=task.assignee,
            opened_at=task.opened_at,
            due_at=task.due_at,
            overdue=(closed.closed_at if closed else now) > task.due_at,
            missed_calls=task.missed_calls,
            last_missed_at=task.last_missed_at,
            message=task.message,
            state="closed" if closed else "open",
            closed_at=closed.closed_at if closed else None,
            closed_by=closed.closed_by if closed else None,
            reason=closed.reason if closed else None,
            seconds_to_callback=closed.seconds_to_callback if closed else None,
            within_sla=closed.within_sla if closed else None,
        )


class CallbackTasksAnswer(BaseModel):
    tasks: list[CallbackTaskAnswer]


# -- webhook and reads -------------------------------------------------------------------------------------------------
class CallRecordedAnswer(BaseModel):
    """The webhook's answer to the PBX: the call's key, the client it matched (or created), whether it was a repeat."""

    result: Literal[1] = 1
    call_key: str
    client_id: str
    duplicate: bool


class LiveEventAnswer(BaseModel):
    """The webhook's answer to a live call event (`cmd=event`): the call's live state after it, whether it changed
    anything. Never `duplicate`: an event is not a completion."""

    result: Literal[1] = 1
    call_key: str
    client_id: str
    live: LiveOrEnded
    changed: bool


class WebhookQueuedAnswer(BaseModel):
    """The webhook's answer while storage is away: the request waits in the inbox."""

    result: Literal[1] = 1
    queued: Literal[True] = True


class ClientAnswer(BaseModel):
    id: str
    channel: Channel
    phone: str | None
    phone_e164: str | None
    variables: dict[str, str]
    display_name: str | None  # by the project's `name_variables`; None: no name (show the phone)
    can_message: bool
    created_at: datetime

    @classmethod
    def of(cls, client: Client, name_variables: Sequence[str]) -> ClientAnswer:
        return cls(
            id=client.id,
            channel=client.channel,
            phone=client.phone,
            phone_e164=e164(client.phone) if client.phone else None,
            variables=client.variables,
            display_name=display_name(client.variables, name_variables),
            can_message=client.can_message,
            created_at=client.created_at,
        )


class ClientsByPhoneAnswer(BaseModel):
    """The clients a webhook from this phone would match, in matching order."""

    phone: str
    phone_e164: str
    clients: list[ClientAnswer]


class PhoneSearchAnswer(ClientsByPhoneAnswer):
    query: str


class NameSearchAnswer(BaseModel):
    query: str
    clients: list[ClientAnswer]


class DialogNoteAnswer(BaseModel):
    """One line of a client's dialog (a notification item)."""

    text: str
    kind: str | None = None
    call_key: str | None = None
    created_at: str

    @classmethod
    def of(cls, item: dict[str, Any]) -> DialogNoteAnswer:
        return cls(
            text=item["text"], kind=item.get("kind"), call_key=item.get("call_key"), created_at=item["created_at"]
        )


class ClientCardAnswer(ClientAnswer):
    dialog: list[DialogNoteAnswer]


class CallRecordingAnswer(BaseModel):
    """A call's recording (issue 25): where its copy stands and the stable link that plays it (our `/r/{id}`)."""

    state: RecordingState
    reason: str | None = None
    url: str


class CallAnswer(BaseModel):
    """A completed call: `call_key` as the webhook answered it, `pbx_call_id` the PBX's own id; never the raw payload
    or the storage keys."""

    call_key: str
    pbx_call_id: str | None
    client_id: str
    direction: Direction | None
    client_phone: str
    client_phone_e164: str
    employee: str | None
    group_id: str | None
    started_at: datetime | None
    talk_seconds: int
    status: CallStatus
    record_link: str | None
    record_ref: str | None
    picked_up: bool | None
    transferred: bool | None
    received_at: datetime | None
    recording: CallRecordingAnswer | None = None

    @classmethod
    def of(cls, call: CallRecord) -> CallAnswer:
        recording = None
        if call.recording_link:
            recording = CallRecordingAnswer(
                state=call.recording_state or "pending", reason=call.recording_reason, url=call.recording_link
            )
        return cls(**call.model_dump(), client_phone_e164=e164(call.client_phone), recording=recording)


class RecordingAnswer(BaseModel):
    """GET /v1/recordings/{recording_id}: the recording's state and a URL that plays it now (a presigned S3 GET of a
    few minutes once archived, else the PBX's link)."""

    recording_id: str
    call_key: str
    state: RecordingState
    reason: str | None
    url: str

    @classmethod
    def of(cls, recording: Recording, url: str) -> RecordingAnswer:
        return cls(**recording.model_dump(include={"recording_id", "call_key", "state", "reason"}), url=url)


class CardLineAnswer(BaseModel):
    text: str
    created_at: str


class LiveClientAnswer(BaseModel):
    """The incoming-call card's client, as it was when the call began to ring."""

    display_name: str | None  # None: no name (show the phone)
    phone: str | None
    phone_e164: str | None
    is_new: bool  # created by this call or no call before: "новый клиент"
    dialog: list[CardLineAnswer]  # the last three lines, the newest first

    @classmethod
    def of(cls, snapshot: ClientSnapshot) -> LiveClientAnswer:
        return cls(
            display_name=snapshot.display_name,
            phone=snapshot.phone,
            phone_e164=e164(snapshot.phone) if snapshot.phone else None,
            is_new=snapshot.is_new,
            dialog=[CardLineAnswer(text=line.text, created_at=line.created_at) for line in snapshot.dialog],
        )


class LiveCallAnswer(BaseModel):
    """A call ringing or in talk now (no record yet: its `history` has not come)."""

    call_key: str
    record: Literal["live"] = "live"
    pbx_call_id: str | None
    client_id: str
    client_phone: str | None
    client_phone_e164: str | None
    direction: Direction | None
    employee: str | None  # the extension ringing or talking
    state: LiveState
    since: datetime  # when it started ringing, or was answered
    updated_at: datetime
    client: LiveClientAnswer | None  # the card's client (None: a call stored before the card existed)

    @classmethod
    def of(cls, live: LiveCall) -> LiveCallAnswer:
        assert live.state != "ended"
        return cls(
            call_key=live.call_key,
            pbx_call_id=live.pbx_call_id,
            client_id=live.client_id,
            client_phone=live.client_phone,
            client_phone_e164=e164(live.client_phone) if live.client_phone else None,
            direction=live.direction,
            employee=live.employee,
            state=live.state,
            since=live.since,
            updated_at=live.updated_at,
            client=LiveClientAnswer.of(live.client) if live.client is not None else None,
        )


class LiveCallsAnswer(BaseModel):
    """GET /v1/calls/live: the project's calls ringing or in talk now, the longest-standing first."""

    calls: list[LiveCallAnswer]


class CallsOfClientAnswer(BaseModel):
    client_id: str
    calls: list[CallAnswer]


class AttemptAnswer(BaseModel):
    """A bot's or the card's call attempt under the `attempt_id` its 202 gave, with the call that completed it."""

    attempt_id: str
    record: Literal["attempt"] = "attempt"
    kind: Literal["employee", "group"]
    source: Literal["bot", "client_card"]
    client_phone: str
    client_phone_e164: str
    short_number: str | None
    group_id: str | None
    employee_id: str | None
    card_client_id: str | None
    created_at: str
    status: AttemptStatus
    reason: dict[str, str] | None
    pbx_call_id: str | None
    client_id: str | None
    linked_at: str | None
    completed_by_call_key: str | None
    call: CallAnswer | None
    live: LiveState | None  # the PBX's call of this attempt is ringing or in talk now (ZEON's live events)

    @classmethod
    def of(cls, attempt: CallAttempt, completed_by: CallRecord | None, live: LiveCall | None = None) -> AttemptAnswer:
        return cls(
            **attempt.model_dump(exclude={"pbx_reply", "call_key"}),
            client_phone_e164=e164(attempt.client_phone),
            completed_by_call_key=attempt.call_key,
            call=CallAnswer.of(completed_by) if completed_by else None,
            live=live.state if live is not None and live.state != "ended" else None,
        )


# -- calls (the call-starting routes) ----------------------------------------------------------------------------------
class CallStartedAnswer(BaseModel):
    """202 of POST /v1/calls/employee and /v1/calls/group: the attempt the PBX took (`initiated`), or the attempt
    whose PBX reply could not be read (`unknown`: the call may be ringing; `message` says what to do)."""

    attempt_id: str  # look it up with GET /v1/calls/{attempt_id}
    status: Literal["initiated", "unknown"] = "initiated"
    client_phone: str
    client_phone_e164: str
    pbx_call_id: str | None = None  # the PBX's own id of the call, when its reply had one
    message: str | None = None  # `unknown` only

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class CardCallStartedAnswer(CallStartedAnswer):
    """202 of POST /v1/clients/{client_id}/call for an employee whose call method is `api`."""

    method: Literal["api"] = "api"


class AppCallAnswer(BaseModel):
    """200 of POST /v1/clients/{client_id}/call for an employee whose call method is `app`: the softphone dials."""

    method: Literal["app"] = "app"
    uri: str  # tel:+<phone>

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# The order of a call answer's fields: the idempotency store keeps JSON with sorted keys, and a repeat must be byte for
# byte the first answer.
CALL_ANSWER_ORDER = ("method", "uri", *CallStartedAnswer.model_fields)
