"""The PBX call-completion webhook: from whatever the PBX posted to one `CanonicalCall`.

Two steps, both pure (no I/O), so the handler stays thin and the rules are tested here:
1. `extract_fields` turns the raw request (body bytes, content type, query string) into one flat dict of fields:
   JSON, urlencoded form, multipart form or a sniffed body; query parameters merged in; one wrapper level
   (`data`, `json`, `call`) merged up.
2. `canonicalize` reads that dict through the alias table of the contract (section 2) into a `CanonicalCall`.

Tolerance rule used for every field: aliases are tried in the table's order (keys are case-insensitive) and the first
alias whose value is present, non-empty and usable for that field wins. A value that cannot be used (an extension
where a phone is expected, a date that does not parse, an event name in `type`) is skipped, never fatal: the only
fatal problems are the ones the contract names (no phone that normalizes, oversize body, broken JSON).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.message import EmailMessage, Message
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator

from iptelefon.domain.errors import InvalidInput, InvalidPhone, PayloadTooLarge
from iptelefon.domain.models import is_valid_id
from iptelefon.domain.phones import normalize_phone

_T = TypeVar("_T")

Direction = Literal["in", "out"]
CallStatus = Literal["answered", "missed", "busy", "failed"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024
WRAPPER_KEYS = ("data", "json", "call")

# The alias table of contract section 2, in its order.
CALL_ID_ALIASES = ("id", "linkedid", "call_id", "callid", "uniqueid", "pbx_call_id", "entry_id", "call_session_id")
DIRECTION_ALIASES = ("calltype", "direction", "type", "call_direction")
CLIENT_PHONE_ALIASES = ("client", "phone", "client_phone", "number", "telnum", "caller_id", "callerid")
CALLER_ALIASES = ("from", "caller", "a_number", "callfrom")
CALLEE_ALIASES = ("to", "b_number", "destination", "callto")
EMPLOYEE_ALIASES = ("exten", "ext", "user", "internal", "employee", "operator", "extension")
GROUP_ID_ALIASES = ("group", "queue", "group_id")
STARTED_AT_ALIASES = ("calldate", "start", "start_time", "call_start", "timestart", "date")
TALK_SECONDS_ALIASES = ("talktime", "duration", "billsec", "talk_duration")
STATUS_ALIASES = ("disposition", "status", "result", "call_status", "entry_result")
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
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_.:\-]{1,40})""", re.IGNORECASE)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# Characters that only steer how text is shown: C0/C1 controls, bidi embeddings/overrides/isolates (U+202A-202E,
# U+2066-2069), marks and zero-width characters. PBX text is data: none of them reaches a notification or a variable.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# A call time outside this window is not a call of this PBX (a year 9999 would sort first forever): a 400, kept.
EARLIEST_CALL = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_CALL_AHEAD = timedelta(days=1)
# Flags some PBXs put in `record` ("was it recorded?"): not a recording id.
_NOT_A_RECORD_REF = frozenset({"0", "1", "true", "false", "yes", "no", "none", "null"})
_TRUTHY = frozenset({"1", "true", "yes", "y", "on"})


def _moscow() -> tzinfo:
    # Lambda images may ship without the system tz database; Moscow is UTC+3 all year since 2014-10-26.
    try:
        return ZoneInfo("Europe/Moscow")
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=3), "MSK")


PBX_LOCAL_TIMEZONE = _moscow()


class InvalidJson(InvalidInput):
    code = "invalid_json"


# --------------------------------------------------------------------------------------------------------------------
# Step 1: raw request -> flat fields


def extract_fields(
    *,
    body: bytes,
    content_type: str | None,
    query: Mapping[str, Any] | None,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> dict[str, Any]:
    """Return the webhook's fields as one flat dict (values as sent: strings from forms, any JSON type from JSON).

    Body fields win over query parameters; the fields of one wrapper object (`data`, `json` or `call`, an object or a
    string holding a JSON object) win over the fields around it. Raises PayloadTooLarge, InvalidJson, InvalidInput.
    """
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {max_bytes} bytes")
    body_fields = _parse_body(body, content_type)
    query_fields = {str(key): value for key, value in (query or {}).items()}
    return _unwrap(_merge(query_fields, body_fields))


def _parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    if not body.strip():
        return {}
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    charset = _charset(content_type or "")
    if media_type == "application/json" or media_type == "text/json" or media_type.endswith("+json"):
        return _parse_json_object(body, charset)
    if media_type == "application/x-www-form-urlencoded":
        return _parse_form(body, charset)
    if media_type.startswith("multipart/"):
        return _parse_multipart(body, content_type or "")
    # Missing or unknown content type (text/plain, application/octet-stream...): sniff.
    if _decode(body, charset).lstrip().startswith("{"):
        return _parse_json_object(body, charset)
    return _parse_form(body, charset)


def _charset(content_type: str) -> str:
    """The `charset` parameter when Python knows it as a text encoding (a PBX may send windows-1251), else UTF-8."""
    match = _CHARSET_PARAM.search(content_type)
    if match is None:
        return "utf-8"
    try:
        b"\xff probe".decode(match.group(1), errors="replace")
    except (LookupError, UnicodeError, ValueError):
        return "utf-8"
    return match.group(1)


def _decode(raw: bytes, charset: str = "utf-8") -> str:
    try:
        text = raw.decode(charset, errors="replace")
    except (LookupError, UnicodeError, ValueError):
        text = raw.decode("utf-8", errors="replace")
    return text.lstrip("\ufeff")


def _parse_json_object(body: bytes, charset: str) -> dict[str, Any]:
    try:
        value = json.loads(_decode(body, charset))
    except RecursionError:
        raise InvalidJson("the JSON body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and ints over Python's digit limit
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidJson(f"the JSON body must be an object, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _parse_form(body: bytes, charset: str) -> dict[str, Any]:
    """`a=1&b=2`; the last of repeated keys wins; `members[]=1&members[]=2` collects a list under `members`.

    Raw bytes and %XX escapes are both read in the declared charset (UTF-8 by default), bad bytes replaced.
    """
    try:
        pairs = parse_qsl(_decode(body, charset), keep_blank_values=True, encoding=charset, errors="replace")
    except (LookupError, UnicodeError, ValueError):
        pairs = parse_qsl(_decode(body), keep_blank_values=True, errors="replace")
    return form_fields(pairs)


def form_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Name/value pairs read as a form: the last of repeated keys wins, `members[]` values are collected in a list.
    The query string is read the same way (from API Gateway's `multiValueQueryStringParameters`)."""
    fields: dict[str, Any] = {}
    for key, value in pairs:
        _put_form_value(fields, key, value)
    return fields


def _put_form_value(fields: dict[str, Any], key: str, value: str) -> None:
    if key.endswith("[]") and len(key) > 2:
        existing = fields.get(key[:-2])
        if isinstance(existing, list):
            existing.append(value)
        else:
            fields[key[:-2]] = [value]
    else:
        fields[key] = value


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """`multipart/form-data` with the stdlib email parser; text parts only (file uploads are skipped)."""
    header = _SPACE_OR_CONTROL.sub(" ", content_type).strip().encode("utf-8", errors="replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + header + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    if not message.is_multipart():
        return fields
    for part in _form_parts(message):
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name or part.get_filename():
            continue
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        _put_form_value(fields, name, _part_text(part))
    return fields


def _form_parts(message: Message) -> list[Message]:
    if isinstance(message, EmailMessage):
        return list(message.iter_parts())
    payload = message.get_payload()
    return [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    raw = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return _decode(raw)


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`base` updated by `top`, keys compared case-insensitively (a body `ID` replaces a query `id`)."""
    top_keys = {key.lower() for key in top}
    merged = {key: value for key, value in base.items() if key.lower() not in top_keys}
    merged.update(top)
    return merged


def _unwrap(fields: dict[str, Any]) -> dict[str, Any]:
    """Merge up the first wrapper (`data`, then `json`, then `call`) that holds an object; one level only."""
    by_lower = {key.lower(): key for key in reversed(list(fields))}
    for wrapper in WRAPPER_KEYS:
        key = by_lower.get(wrapper)
        if key is None:
            continue
        inner = _as_object(fields[key])
        if inner is None:
            continue
        outer = {name: value for name, value in fields.items() if name != key}
        return _merge(outer, inner)
    return fields


def _as_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


# --------------------------------------------------------------------------------------------------------------------
# Step 2: fields -> CanonicalCall


class CanonicalCall(BaseModel):
    """One completed call, as the rest of the service sees it, whatever the PBX sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    direction: Direction | None = None
    client_phone: str = Field(pattern=_CLIENT_PHONE_PATTERN)
    employee: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    group_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    started_at: datetime | None = None
    talk_seconds: int = Field(default=0, ge=0, le=MAX_TALK_SECONDS)
    status: CallStatus
    record_link: str | None = Field(default=None, max_length=MAX_RECORD_LINK_CHARS)
    record_ref: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)

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
    def idempotency_key(self) -> str:
        """The call id when the PBX sent one; else sha256 of the call's identity (sorted, compact JSON).

        The identity leaves out `record_link`/`record_ref`: a later webhook that only adds the recording is the same
        call, not a new one.
        """
        if self.call_id is not None:
            # An id that fits a key as it is stays readable; any other (long, non-ASCII, `#`, `/`) is hashed, and the
            # PBX's own id stays in the record as `call_id`.
            return self.call_id if is_valid_id(self.call_id) else sha256_text(self.call_id)
        identity = self.model_dump(mode="json", exclude={"call_id", "record_link", "record_ref", "idempotency_key"})
        return sha256_text(json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonicalize(fields: Mapping[str, Any], *, default_region: str = "RU") -> CanonicalCall:
    """Read the webhook fields through the contract's alias table. Raises InvalidPhone (field `client_phone`)."""
    by_alias = _FieldsByAlias(fields)
    direction: Direction | None = by_alias.first(DIRECTION_ALIASES, _parse_direction)
    talk_seconds = by_alias.first(TALK_SECONDS_ALIASES, _parse_talk_seconds) or 0
    values = {
        "call_id": by_alias.first(CALL_ID_ALIASES, _parse_id),
        "direction": direction,
        "client_phone": _client_phone(by_alias, direction, default_region),
        "employee": by_alias.first(EMPLOYEE_ALIASES, _parse_id) or by_alias.first(("members",), _first_member),
        "group_id": by_alias.first(GROUP_ID_ALIASES, _parse_id),
        "started_at": by_alias.first(STARTED_AT_ALIASES, _parse_started_at),
        "talk_seconds": talk_seconds,
        "status": _status(by_alias, talk_seconds),
        "record_link": by_alias.first(RECORD_ALIASES, _parse_record_link),
        "record_ref": by_alias.first(RECORD_ALIASES, _parse_record_ref),
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
            self._values.setdefault(str(key).strip().lower(), value)

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
    """The sent status when it is one we know, but any talk time means answered.

    Without a known status: answered when there was talk time, else missed (this is also where `lost=1` lands).
    """
    if talk_seconds > 0:
        return "answered"
    return by_alias.first(STATUS_ALIASES, _parse_status) or "missed"


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
