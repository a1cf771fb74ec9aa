"""The webhook's raw request read into one flat dict of fields (first of two steps; `call_aliases` is the second).

`WebhookRequest` is the request as the PBX sent it (from the API Gateway event, or from the inbox message it waited in
while storage was away). `extract_fields` turns it (body bytes, content type, query string) into one flat dict: JSON,
urlencoded form, multipart form or a sniffed body; query parameters merged in; one wrapper level (`data`, `json`,
`call`) merged up. Pure (no I/O). The only fatal problems here are the ones the contract names: an oversize body,
broken JSON.

ZEON's webhook carries `token`, a CRM key configured in the PBX: a credential the service never uses. It is blanked
as the request comes in (`WebhookRequest.from_event`, `blank_credentials`), so it reaches no inbox message, no kept
raw request, no log.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Any
from urllib.parse import parse_qsl

from iptelefon.domain.errors import InvalidInput, PayloadTooLarge

DEFAULT_MAX_BODY_BYTES = 64 * 1024
# An SQS message holds 256 KB: the base64 of this many bytes fits (bodies over the webhook's limit are refused anyway).
MAX_QUEUED_BODY_BYTES = 100_000
WRAPPER_KEYS = ("data", "json", "call")

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_.:\-]{1,40})""", re.IGNORECASE)
# Stripped from a multipart Content-Type before it becomes a header line of the parsed message.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# Fields that hold a credential of someone else's (ZEON's `token`: a CRM key), and what is kept of their values.
CREDENTIAL_FIELDS = frozenset({"token"})
BLANKED = "***"
# The value of a credential field in the raw bytes, whatever the body: JSON (a string, or a number/literal), JSON
# inside a JSON string (a wrapper), a form or query string, a multipart part. Everything else stays byte for byte.
_NAMES = b"(?:" + b"|".join(re.escape(name.encode()) for name in sorted(CREDENTIAL_FIELDS)) + b")"
_CREDENTIAL_VALUE = [
    (rb'("' + _NAMES + rb'"\s*:\s*)(?:"(?:[^"\\]|\\.)*"|[^\s,}\]"]+)', rb'\1"***"'),
    (rb'(\\"' + _NAMES + rb'\\"\s*:\s*)(?:\\"(?:[^"\\]|\\[^"])*\\"|[^\s,}\]"\\]+)', rb'\1\\"***\\"'),
    (rb"((?:^|&)" + _NAMES + rb"=)[^&]*", rb"\1***"),
    (rb'(name="?' + _NAMES + rb'"?\s*\r?\n(?:[^\r\n]+\r?\n)*\r?\n)[^\r\n]*', rb"\1***"),
]
_CREDENTIAL_PATTERNS = [(re.compile(pattern, re.IGNORECASE), replacement) for pattern, replacement in _CREDENTIAL_VALUE]


class InvalidJson(InvalidInput):
    code = "invalid_json"


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    content_type: str | None
    query: dict[str, Any] = field(default_factory=dict)  # a value is a list for `name[]` keys
    method: str = "POST"
    received_at: float | None = None  # set when it waited in the inbox: when the PBX sent it (epoch seconds)
    # The API's base URL as the PBX reached it (`entry.api.api_base_url`): our stable recording links start with it.
    api_base: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any], *, api_base: str | None = None) -> WebhookRequest:
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", errors="replace")
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(
            body=blank_credentials(body),
            content_type=headers.get("content-type"),
            query={k: BLANKED if k.lower() in CREDENTIAL_FIELDS else v for k, v in query_fields(event).items()},
            method=str(event.get("httpMethod") or "POST"),
            api_base=api_base,
        )

    def to_message(self, secret_sha256: str, *, received_at: float | None = None) -> str:
        """The inbox message: the exact bytes (base64) and the secret's hash, never the secret; when it came."""
        return json.dumps(
            {
                "secret_sha256": secret_sha256,
                "body": base64.b64encode(self.body[:MAX_QUEUED_BODY_BYTES]).decode(),
                "content_type": self.content_type,
                "query": self.query,
                "method": self.method,
                "received_at": received_at,
                "api_base": self.api_base,
            }
        )

    @classmethod
    def from_message(cls, message: str) -> tuple[str, WebhookRequest]:
        data = json.loads(message)
        request = cls(
            body=base64.b64decode(data["body"]),
            content_type=data.get("content_type"),
            query=dict(data.get("query") or {}),
            method=str(data.get("method") or "POST"),
            received_at=float(data["received_at"]) if data.get("received_at") else None,
            api_base=str(data["api_base"]) if data.get("api_base") else None,
        )
        return str(data["secret_sha256"]), request


def blank_credentials(body: bytes) -> bytes:
    """The body with the value of every credential field (`token`) replaced by `***`, the rest byte for byte."""
    lowered = body.lower()
    if not any(name.encode() in lowered for name in CREDENTIAL_FIELDS):
        return body
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        body = pattern.sub(replacement, body)
    return body


def query_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The query as the PBX sent it, read like a form body. API Gateway's `queryStringParameters` keeps only the last
    value of a repeated name, so `members[]=1&members[]=2` is read from `multiValueQueryStringParameters`."""
    multi = event.get("multiValueQueryStringParameters") or {
        name: [value] for name, value in (event.get("queryStringParameters") or {}).items()
    }
    return form_fields((str(name), str(value)) for name, values in multi.items() for value in values or [])


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
