"""A completed call as the service keeps it: what the webhook hands the call-record repository, and what reads get.

Built by the webhook from a `CanonicalCall` (`from_call`); the repository (`data.call_records`) stores its fields as
they are, next to the raw request, and reads them back into it. No parsing happens in storage.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from iptelefon.domain.recordings import RecordingState

if TYPE_CHECKING:
    from iptelefon.domain.call_aliases import CanonicalCall

Direction = Literal["in", "out"]
CallStatus = Literal["answered", "missed", "busy", "failed"]


class CallRecord(BaseModel):
    """One completed call of a client, keyed by `call_key` (see `CanonicalCall.call_key`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    call_key: str
    # Items stored before the vocabulary was fixed hold the PBX's id under `call_id`.
    pbx_call_id: str | None = Field(default=None, validation_alias=AliasChoices("pbx_call_id", "call_id"))
    client_id: str
    direction: Direction | None = None
    client_phone: str
    employee: str | None = None
    group_id: str | None = None
    started_at: datetime | None = None
    talk_seconds: int = 0
    status: CallStatus
    record_link: str | None = None
    record_ref: str | None = None
    # The archived copy of `record_link` (issue 25, `domain.recordings`): its random id, our stable link to it (what
    # the client variable holds) and where the copy stands; the copier keeps the state here too, for the reads.
    recording_id: str | None = None
    recording_link: str | None = None
    recording_state: RecordingState | None = None
    recording_reason: str | None = None
    # ZEON's `pickedup` / `transfered` flags of a `history` (None: the PBX did not say).
    picked_up: bool | None = None
    transferred: bool | None = None
    received_at: datetime | None = None

    @classmethod
    def from_call(cls, call: CanonicalCall, *, client_id: str, received_at: datetime) -> CallRecord:
        return cls(
            **call.model_dump(exclude={"call_key"}),
            call_key=call.call_key,
            client_id=client_id,
            received_at=received_at,
        )


# `scheme://user:password@` in a raw request as sent: plain or JSON-escaped (`:\/\/`), or form-encoded (`%3A%2F%2F`).
_USERINFO_PLAIN = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*:(?:\\?/){2})[^\s/\\?#@\"'<>]+@")
_USERINFO_ENCODED = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*%3A(?:%2F){2})(?:(?!%2F|%40)[^&\s/?#@\"'])+%40")


def without_url_userinfo(text: str) -> str:
    """A raw request's text with every URL's `user:password@` dropped (issue 20: a recording link's password would
    sit in the stored payload), whether the URL is written plain, JSON-escaped or form-encoded."""
    return _USERINFO_ENCODED.sub(r"\1", _USERINFO_PLAIN.sub(r"\1", text))
