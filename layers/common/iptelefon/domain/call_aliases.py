"""The webhook's flat fields read into one `CanonicalCall` through the contract's alias table (section 2).

The first step, from the raw request to flat fields, is `webhook_body`. Pure (no I/O).

Tolerance rule used for every field: aliases are tried in the table's order (keys are case-insensitive, and `-` reads
as `_`: ZEON's `call-type` is `call_type`) and the first alias whose value is present, non-empty and usable for that
field wins. A value that cannot be used (an extension where a phone is expected, a date that does not parse, an event
name in `type`) is skipped, never fatal: the only fatal problem here is the one the contract names (no phone that
normalizes).

ZEON's JSON webhooks say what they are in `cmd`: `history` is a completed call (read here like any completion, with
its `call-status` as the last word, see `_status`), `event` is a live state of a call (`read_live_event`).

Vocabulary: `pbx_call_id` is the PBX's id of the call (when it sent one); `call_key` is the service's own key of the
call (that id when it fits a key, else a hash), the key every effect of the call is stored under.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator

from iptelefon.domain.call_record import CallStatus, Direction
from iptelefon.domain.errors import InvalidInput, InvalidPhone
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.live_calls import LiveEvent, LiveState
from iptelefon.domain.models import call_key_for
from iptelefon.domain.phones import normalize_phone

_T = TypeVar("_T")


# The alias table of contract section 2, in its order.
PBX_CALL_ID_ALIASES = ("id", "linkedid", "call_id", "callid", "uniqueid", "pbx_call_id", "entry_id", "call_session_id")
DIRECTION_ALIASES = ("calltype", "call_type", "direction", "type", "call_direction")
CLIENT_PHONE_ALIASES = ("client", "phone", "client_phone", "number", "telnum", "caller_id", "callerid")
CALLER_ALIASES = ("from", "caller", "a_number", "callfrom")
CALLEE_ALIASES = ("to", "b_number", "destination", "callto")
EMPLOYEE_ALIASES = ("exten", "ext", "user", "internal", "employee", "operator", "extension")
GROUP_ID_ALIASES = ("group", "queue", "group_id")
STARTED_AT_ALIASES = ("calldate", "start", "start_time", "call_start", "timestart", "date")
TALK_SECONDS_ALIASES = ("talktime", "duration", "billsec", "talk_duration")
STATUS_ALIASES = ("disposition", "status", "result", "call_status", "entry_result")
# ZEON's flags of a `history` ('true'|'false'); `missed` decides the status, the others are kept on the call.
MISSED_FLAG, PICKED_UP_FLAG, TRANSFERRED_FLAG = "missed", "pickedup", "transfered"  # sic: ZEON's spelling
# ZEON's kind of webhook: `event` (a live state) or `history` (a completed call); absent in other dialects.
KIND_FIELD = "cmd"
RECORD_ALIASES = (
    "record_link",
    "call_record_link",
    "record",
    "recording",
    "record_url",
    "recording_url",
    "link",
    "url",
    "file",
)

_DIRECTIONS: dict[str, Direction] = {
    "in": "in",
    "incoming": "in",
    "inbound": "in",
    "входящий": "in",
    "входящая": "in",
    "out": "out",
    "outgoing": "out",
    "outbound": "out",
    "исходящий": "out",
    "исходящая": "out",
}
# ZEON's `call-status` of a `cmd=event`.
_LIVE_STATES: dict[str, LiveState] = {
    "ringing": "ringing",
    "ring": "ringing",
    "accepted": "answered",
    "answered": "answered",
}
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_STATUSES: dict[str, CallStatus] = {
    "answered": "answered",
    "answer": "answered",
    "success": "answered",
    "successful": "answered",
    "ok": "answered",
    "отвечен": "answered",
    "no answer": "missed",
    "noanswer": "missed",
    "not answered": "missed",
    "unanswered": "missed",
    "missed": "missed",
    "lost": "missed",
    "cancel": "missed",
    "canceled": "missed",
    "cancelled": "missed",
    "пропущен": "missed",
    "busy": "busy",
    "занято": "busy",
    "failed": "failed",
    "fail": "failed",
    "congestion": "failed",
    "chanunavail": "failed",
    "error": "failed",
}

# Text fields longer than this are not an id, a short number or a group: skipped like any unusable value.
MAX_ID_CHARS = 256
MAX_RECORD_LINK_CHARS = 2048
# A call longer than a week is a broken counter, not a call: read as "bad" (0).
MAX_TALK_SECONDS = 7 * 24 * 3600
# Unix timestamps above this are milliseconds.
_UNIX_MILLIS_THRESHOLD = 1e12

_CLIENT_PHONE_PATTERN = r"^\d{11,15}$"
_CLOCK = re.compile(r"^(\d{1,6}):(\d{1,2})(?::(\d{1,2}))?(?:[.,]\d+)?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_RU_DATETIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# Characters that only steer how text is shown: C0/C1 controls, bidi embeddings/overrides/isolates (U+202A-202E,
# U+2066-2069), marks and zero-width characters. PBX text is data: none of them reaches a notification or a variable.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# A call time outside this window is not a call of this PBX (a year 9999 would sort first forever): a 400, kept.
EARLIEST_CALL = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_CALL_AHEAD = timedelta(days=1)
# Flags some PBXs put in `record` ("was it recorded?"): not a recording id.
_NOT_A_RECORD_REF = frozenset({"0", "1", "true", "false", "yes", "no", "none", "null"})


def _moscow() -> tzinfo:
    # Lambda images may ship without the system tz database; Moscow is UTC+3 all year since 2014-10-26.
    try:
        return ZoneInfo("Europe/Moscow")
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=3), "MSK")


PBX_LOCAL_TIMEZONE = _moscow()


class CanonicalCall(BaseModel):
    """One completed call, as the rest of the service sees it, whatever the PBX sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pbx_call_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    direction: Direction | None = None
    client_phone: str = Field(pattern=_CLIENT_PHONE_PATTERN)
    employee: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    group_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    started_at: datetime | None = None
    talk_seconds: int = Field(default=0, ge=0, le=MAX_TALK_SECONDS)
    status: CallStatus
    record_link: str | None = Field(default=None, max_length=MAX_RECORD_LINK_CHARS)
    record_ref: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    picked_up: bool | None = None
    transferred: bool | None = None

    @field_validator("started_at")
    @classmethod
    def _started_at_in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        if not EARLIEST_CALL <= value <= datetime.now(UTC) + LATEST_CALL_AHEAD:
            raise ValueError(f"must be between {EARLIEST_CALL:%Y-%m-%d} and tomorrow, not {value:%Y-%m-%d}")
        return value.astimezone(UTC)

    @field_validator("record_link")
    @classmethod
    def _record_link_is_http_url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError("must be an http or https URL")
        return value

    @field_validator("record_ref")
    @classmethod
    def _record_ref_is_bare_id(cls, value: str | None) -> str | None:
        if value is not None and not _is_bare_record_ref(value):
            raise ValueError("must be a bare recording id (no scheme, no spaces)")
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def call_key(self) -> str:
        """The call id when the PBX sent one; else sha256 of the call's identity (sorted, compact JSON).

        The identity leaves out `record_link`/`record_ref`: a later webhook that only adds the recording is the same
        call, not a new one.
        """
        if self.pbx_call_id is not None:
            return call_key_for(self.pbx_call_id)
        # The identity is the same as before the fields were renamed or the flags came: call keys stored before stay
        # the call's keys.
        identity = self.model_dump(mode="json", exclude=_NOT_IDENTITY)
        return sha256_hex(json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


_NOT_IDENTITY = {"pbx_call_id", "record_link", "record_ref", "call_key", "picked_up", "transferred"}


def is_live_event(fields: Mapping[str, Any]) -> bool:
    """ZEON's `cmd=event`: a live state of a call (ringing, answered), never a completion."""
    return _FieldsByAlias(fields).first((KIND_FIELD,), _parse_kind) == "event"


def read_live_event(fields: Mapping[str, Any], *, default_region: str = "RU") -> LiveEvent:
    """A `cmd=event` through the same aliases as a completion. Without a call id, a known state or a phone it cannot
    be kept as a live state: InvalidInput / InvalidPhone naming the field (the request is kept like any unreadable
    one)."""
    by_alias = _FieldsByAlias(fields)
    direction: Direction | None = by_alias.first(DIRECTION_ALIASES, _parse_direction)
    pbx_call_id = by_alias.first(PBX_CALL_ID_ALIASES, _parse_id)
    if pbx_call_id is None:
        raise InvalidInput.for_field("callid", "a live call event (cmd=event) needs the PBX's call id (`callid`)")
    state = by_alias.first(STATUS_ALIASES, _parse_live_state)
    if state is None:
        sent = ", ".join(by_alias.texts(STATUS_ALIASES))[:100] or "nothing"
        raise InvalidInput.for_field("call-status", f"a live call event is RINGING or ACCEPTED, not {sent}")
    return LiveEvent(
        pbx_call_id=pbx_call_id,
        state=state,
        client_phone=_client_phone(by_alias, direction, default_region),
        direction=direction,
        employee=by_alias.first(EMPLOYEE_ALIASES, _parse_id) or by_alias.first(("members",), _first_member),
    )


def _parse_live_state(value: Any) -> LiveState | None:
    text = _text(value)
    return _LIVE_STATES.get(text.lower()) if text else None


def _parse_kind(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text else None


def canonicalize(fields: Mapping[str, Any], *, default_region: str = "RU") -> CanonicalCall:
    """Read the webhook fields through the contract's alias table. Raises InvalidPhone (field `client_phone`)."""
    by_alias = _FieldsByAlias(fields)
    direction: Direction | None = by_alias.first(DIRECTION_ALIASES, _parse_direction)
    talk_seconds = by_alias.first(TALK_SECONDS_ALIASES, _parse_talk_seconds) or 0
    status = _status(by_alias, talk_seconds)
    values = {
        "pbx_call_id": by_alias.first(PBX_CALL_ID_ALIASES, _parse_id),
        "direction": direction,
        "client_phone": _client_phone(by_alias, direction, default_region),
        "employee": by_alias.first(EMPLOYEE_ALIASES, _parse_id) or by_alias.first(("members",), _first_member),
        "group_id": by_alias.first(GROUP_ID_ALIASES, _parse_id),
        "started_at": by_alias.first(STARTED_AT_ALIASES, _parse_started_at),
        # An unanswered call had no talk: ZEON's `duration` of a NO ANSWER is how long it rang (kept in the raw body).
        "talk_seconds": talk_seconds if status == "answered" else 0,
        "status": status,
        "record_link": by_alias.first(RECORD_ALIASES, _parse_record_link),
        "record_ref": by_alias.first(RECORD_ALIASES, _parse_record_ref),
        "picked_up": by_alias.first((PICKED_UP_FLAG,), _parse_flag),
        "transferred": by_alias.first((TRANSFERRED_FLAG,), _parse_flag),
    }
    try:
        return CanonicalCall.model_validate(values)
    except ValidationError as exc:  # a parser above let through what the model refuses: still a 400, never a 500
        details = [{"field": ".".join(map(str, err["loc"])), "message": err["msg"]} for err in exc.errors()]
        raise InvalidInput("the call could not be read from the payload", details=details) from None


class _FieldsByAlias:
    """Case-insensitive view of the fields; for a key sent in several cases, the first one sent wins."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._values: dict[str, Any] = {}
        for key, value in fields.items():
            self._values.setdefault(str(key).strip().lower().replace("-", "_"), value)

    def first(self, aliases: Iterable[str], parse: Callable[[Any], _T | None]) -> _T | None:
        for alias in aliases:
            value = self._values.get(alias)
            if value is None:
                continue
            parsed = parse(value)
            if parsed is not None:
                return parsed
        return None

    def texts(self, aliases: Iterable[str]) -> list[str]:
        return [text for alias in aliases if (text := _text(self._values.get(alias))) is not None]


def _text(value: Any) -> str | None:
    """A scalar as stripped text without invisible characters; None for absent, empty, non-finite, lists and objects."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**100 else ""
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)
    elif isinstance(value, str):
        text = _INVISIBLE.sub("", value).strip()
    else:
        return None
    return text or None


def _parse_id(value: Any) -> str | None:
    text = _text(value)
    if text is None or len(text) > MAX_ID_CHARS:
        return None
    return text


def _first_member(value: Any) -> str | None:
    if isinstance(value, list):
        candidates = [_parse_id(item) for item in value]
    else:
        text = _text(value)
        candidates = [_parse_id(item) for item in re.split(r"[,;\s]+", text)] if text else []
    return next((candidate for candidate in candidates if candidate is not None), None)


def _parse_direction(value: Any) -> Direction | None:
    text = _text(value)
    return _DIRECTIONS.get(text.lower()) if text else None


def _client_phone(by_alias: _FieldsByAlias, direction: Direction | None, default_region: str) -> str:
    """The first candidate that normalizes: client aliases; `src` (in) / `dst` (out); caller; callee aliases.

    With an unknown direction, `src` then `dst` are tried last, so a payload without `calltype` is not lost.
    """
    by_direction = {"in": ("src",), "out": ("dst",), None: ()}[direction]
    last_resort = ("src", "dst") if direction is None else ()
    aliases = (*CLIENT_PHONE_ALIASES, *by_direction, *CALLER_ALIASES, *CALLEE_ALIASES, *last_resort)
    for candidate in by_alias.texts(aliases):
        try:
            return normalize_phone(candidate, default_region=default_region, field="client_phone")
        except InvalidPhone:
            continue
    looked_at = ", ".join(dict.fromkeys(aliases))
    raise InvalidPhone.for_field(
        "client_phone", f"no phone number that normalizes was found in the payload (looked at: {looked_at})"
    )


def _parse_started_at(value: Any) -> datetime | None:
    """Unix seconds (or milliseconds), ISO 8601 or `DD.MM.YYYY HH:MM:SS`; no zone means Moscow. Bad -> None."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return _from_unix(float(value))
        if not isinstance(value, str):
            return None
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return _from_unix(float(text))
        parsed = _parse_datetime_text(text)
        if parsed is None:
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            parsed = parsed.replace(tzinfo=PBX_LOCAL_TIMEZONE)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _from_unix(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds > _UNIX_MILLIS_THRESHOLD:
        seconds /= 1000
    return datetime.fromtimestamp(seconds, tz=UTC)


def _parse_datetime_text(text: str) -> datetime | None:
    if len(text) > 64:
        return None
    try:
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        pass
    for pattern in _RU_DATETIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _parse_talk_seconds(value: Any) -> int | None:
    """`HH:MM:SS`, `MM:SS` or whole seconds (also `155.0`); negative, huge or garbage -> None (skipped)."""
    seconds: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        seconds = int(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        seconds = _seconds_from_text(value.strip())
    if seconds is None or not 0 <= seconds <= MAX_TALK_SECONDS:
        return None
    return seconds


def _seconds_from_text(text: str) -> int | None:
    if len(text) > 32:
        return None
    if _NUMBER.fullmatch(text):
        return int(float(text))
    clock = _CLOCK.fullmatch(text)
    if clock is None:
        return None
    first, second, third = clock.groups()
    if third is None:  # MM:SS
        minutes, secs = int(first), int(second)
        return minutes * 60 + secs if secs < 60 else None
    hours, minutes, secs = int(first), int(second), int(third)
    if minutes >= 60 or secs >= 60:
        return None
    return hours * 3600 + minutes * 60 + secs


def _status(by_alias: _FieldsByAlias, talk_seconds: int) -> CallStatus:
    """The sent status when it is one we know, but any talk time means answered; except where the PBX says more.

    - `missed=true` (ZEON's flag) is missed, whatever the time: the PBX says so in so many words;
    - in a ZEON `cmd=history`, `duration` is the whole call's (ringing too), so its known `call-status` decides:
      a NO ANSWER that rang 20 s is missed;
    - elsewhere (the contract's dialect) the contract's rule holds: any talk time means answered. Without a known
      status: answered when there was talk time, else missed (this is also where `lost=1` lands).
    """
    sent: CallStatus | None = by_alias.first(STATUS_ALIASES, _parse_status)
    if by_alias.first((MISSED_FLAG,), _parse_flag):
        return "missed"
    if sent is not None and by_alias.first((KIND_FIELD,), _parse_kind) == "history":
        return sent
    if talk_seconds > 0:
        return "answered"
    return sent or "missed"


def _parse_flag(value: Any) -> bool | None:
    """'true'|'false' as ZEON sends them; also 1/0, yes/no and JSON booleans. Anything else: not said (None)."""
    text = _text(value)
    return _FLAGS.get(text.lower()) if text else None


def _parse_status(value: Any) -> CallStatus | None:
    text = _text(value)
    if text is None:
        return None
    key = " ".join(text.lower().replace("_", " ").replace("-", " ").split())
    return _STATUSES.get(key)


def _parse_record_link(value: Any) -> str | None:
    text = _text(value)
    return _without_credentials(text) if text is not None and _is_http_url(text) else None


def _without_credentials(url: str) -> str:
    """A recording link as operators may see it: `user:password@` is dropped (it would sit in a client variable)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _parse_record_ref(value: Any) -> str | None:
    text = _text(value)
    return text if text is not None and _is_bare_record_ref(text) else None


def _is_http_url(text: str) -> bool:
    if len(text) > MAX_RECORD_LINK_CHARS or _SPACE_OR_CONTROL.search(text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _is_bare_record_ref(text: str) -> bool:
    return (
        0 < len(text) <= MAX_ID_CHARS
        and _URL_SCHEME.match(text) is None
        and "://" not in text
        and _SPACE_OR_CONTROL.search(text) is None
        and text.lower() not in _NOT_A_RECORD_REF
    )
