"""A call while it is live: ZEON's `cmd=event` webhooks (RINGING, ACCEPTED) move it, its `history` ends it. Pure.

    nothing --RINGING--> ringing --ACCEPTED--> answered      (ACCEPTED first: answered at once)
    anything --the call's history--> ended                    (kept until it expires: a late event changes nothing)

The rules, in `advance`, are the whole of it (the webhook use case applies them; storage keeps what it is handed):
- an event is never a completion: it changes the live state only;
- a repeat changes nothing; RINGING after ACCEPTED does not go back; a call rung at several extensions in turn keeps
  the latest extension while ringing; the first ACCEPTED names who answered;
- after the `history` (`ended`), no event changes anything.
A live call expires LIVE_SECONDS after its last event: a call whose `history` never came leaves "now" by itself.

The incoming-call card: the first event also keeps a `ClientSnapshot` (who calls: name, phone, new or not, the last
dialog lines) on the live call, so the list of the project's calls now stays one Query, with no read per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from iptelefon.domain.call_record import CallRecord, Direction
from iptelefon.domain.client_names import display_name
from iptelefon.domain.models import Client, call_key_for

LiveState = Literal["ringing", "answered"]
LiveOrEnded = Literal["ringing", "answered", "ended"]
# How long a live call stays "now" after its last event (a real call's history comes at once when it ends).
LIVE_SECONDS = 4 * 3600
LIVE_FOR = timedelta(seconds=LIVE_SECONDS)
# The card shows the client's last three dialog lines, each cut short: the snapshot stays a few hundred bytes.
CARD_DIALOG_LINES = 3
CARD_LINE_CHARS = 200
CARD_NAME_CHARS = 100


class LiveEvent(BaseModel):
    """One `cmd=event` as read from the webhook (`call_aliases.read_live_event`)."""

    model_config = ConfigDict(frozen=True)

    pbx_call_id: str = Field(min_length=1)
    state: LiveState
    client_phone: str
    direction: Direction | None = None
    employee: str | None = None  # the extension that rings or answered (`exten`)

    @property
    def call_key(self) -> str:
        return call_key_for(self.pbx_call_id)


class CardLine(BaseModel):
    """One dialog line as the card shows it."""

    model_config = ConfigDict(frozen=True)

    text: str
    created_at: str


class ClientSnapshot(BaseModel):
    """Who calls, as the incoming-call card shows it, taken when the call's first event is stored (`snapshot_of`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    display_name: str | None = None  # by the project's `name_variables`; None: the card shows the phone
    phone: str | None = None
    is_new: bool  # created by this call, or no call of theirs before (the card says "новый клиент")
    dialog: tuple[CardLine, ...] = ()  # the newest first, at most CARD_DIALOG_LINES


def snapshot_of(
    client: Client | None,
    dialog: Sequence[Mapping[str, Any]],
    *,
    phone: str,
    created: bool,
    name_variables: Sequence[str],
) -> ClientSnapshot:
    """The card's client: `dialog` is the client's latest notifications, the newest first. Every completed call
    leaves one line in the dialog, so a client without a line has had no call before: new, like one made now."""
    name = display_name(client.variables, name_variables) if client is not None else None
    lines = tuple(
        CardLine(text=_cut(str(note["text"]), CARD_LINE_CHARS), created_at=str(note["created_at"]))
        for note in dialog[:CARD_DIALOG_LINES]
    )
    return ClientSnapshot(
        display_name=_cut(name, CARD_NAME_CHARS) if name else None,
        phone=(client.phone if client is not None and client.phone else phone),
        is_new=created or not lines,
        dialog=lines,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LiveCall(BaseModel):
    """A call's live state as kept, under the `call_key` its completed call will have. `version` counts the writes:
    a write names the version it read, so two events of one call never overwrite each other unseen."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    call_key: str
    pbx_call_id: str | None = None
    client_id: str
    client_phone: str | None = None  # an `ended` call whose `history` came before any event has only its client
    direction: Direction | None = None
    employee: str | None = None
    state: LiveOrEnded
    since: datetime  # when it entered `state`
    updated_at: datetime  # its last event (or its end)
    version: int = 0
    client: ClientSnapshot | None = None  # the card's client, from the first event (None: stored before issue 22)

    @property
    def expires_at(self) -> datetime:
        return self.updated_at + LIVE_FOR

    def is_live(self, now: datetime) -> bool:
        return self.state != "ended" and now < self.expires_at


def advance(
    current: LiveCall | None,
    event: LiveEvent,
    *,
    client_id: str,
    at: datetime,
    snapshot: ClientSnapshot | None = None,
) -> LiveCall | None:
    """The live call after `event` came at `at`, or None when the event changes nothing. A new live call keeps
    `snapshot` (the card's client); later events keep the one it has."""
    if current is None:
        return LiveCall(
            call_key=event.call_key,
            pbx_call_id=event.pbx_call_id,
            client_id=client_id,
            client_phone=event.client_phone,
            direction=event.direction,
            employee=event.employee,
            state=event.state,
            since=at,
            updated_at=at,
            client=snapshot,
        )
    if current.state == "ended" or current.state == "answered":  # over, or answered: no event moves it back
        return None
    if event.state == "answered":
        return current.model_copy(
            update={"state": "answered", "employee": event.employee or current.employee, "since": at, "updated_at": at}
        )
    if event.employee is None or event.employee == current.employee:  # the same ring again
        return None
    return current.model_copy(update={"employee": event.employee, "updated_at": at})  # rung at the next extension


def ended_by(call: CallRecord, *, at: datetime) -> LiveCall:
    """What a completed call (its `history`, or any completion with the PBX's call id) leaves of its live state."""
    return LiveCall(
        call_key=call.call_key,
        pbx_call_id=call.pbx_call_id,
        client_id=call.client_id,
        client_phone=call.client_phone,
        direction=call.direction,
        employee=call.employee,
        state="ended",
        since=at,
        updated_at=at,
    )
