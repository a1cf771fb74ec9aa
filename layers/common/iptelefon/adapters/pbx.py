"""The one adapter for the ZEON PBX API (`start.php`) that Iptelefon runs on.

Protocol (contract section 1): `POST <server_url>`, `application/x-www-form-urlencoded`, parameters `topic`, `method`,
then the method's own parameters, then `hash = md5(<body before "&hash="> + secret)` appended last. The body is built
once, hashed as is and sent byte for byte. Some installations take `Authorization: Bearer <secret>` instead of `hash`.
Replies are JSON `{"result": 1, "data": ...}`; any other `result` is an error whose message is in `text`.

Starting a call is not idempotent on the PBX, so a request that may have reached it is never retried: only a connect
failure (nothing was sent) is retried, once. Timeouts answer 504 (`PbxTimeout`), every other failure 502 (`PbxError`).
`PbxRefused` (a `PbxError`, in the domain) marks the failures after which the PBX certainly started nothing: it said no
(`result != 1`, HTTP 3xx/4xx) or it was never reached. After any other failure a call may be ringing.
The secret and the hash never appear in an exception message or a log line; the server URL may.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

import httpx

from iptelefon.domain.errors import PbxError, PbxRefused, PbxTimeout
from iptelefon.domain.pbx_connection import MAX_CONNECT_TIMEOUT_SECONDS, PbxConnection
from iptelefon.platform.observability import logger

DEFAULT_TOPIC = "base"
# How much of an unexpected reply is quoted in an error message.
_QUOTE_CHARS = 200
_MD5_HEX = re.compile(r"\b[0-9a-fA-F]{32}\b")


def encode_body(pairs: Sequence[tuple[str, str]]) -> str:
    """Form-encode like PHP `http_build_query` (RFC 1738: space as `+`, UTF-8, only `A-Za-z0-9_.-` left as is)."""
    return "&".join(f"{_php_urlencode(name)}={_php_urlencode(value)}" for name, value in pairs)


def _php_urlencode(text: str) -> str:
    # PHP's urlencode() escapes `~`, Python's quote_plus() does not: the PBX recomputes the hash PHP's way.
    return quote_plus(text, safe="").replace("~", "%7E")


def body_hash(body: str, secret: str) -> str:
    """`md5(<urlencoded body before "&hash="> + secret)` as lowercase hex."""
    return hashlib.md5((body + secret).encode("utf-8"), usedforsecurity=False).hexdigest()


class PbxClient:
    """Calls `start.php` methods over one injected `httpx.Client` (shared per warm Lambda, see `get_pbx_client`)."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def start_employee_call(self, conn: PbxConnection, short_number: str, phone: str) -> Any:
        """Ask the PBX to ring the employee `short_number`, then connect them to `phone`. Returns the reply's `data`."""
        params = [(conn.param_name("ext"), short_number), (conn.param_name("phone"), phone)]
        return self.request(conn, conn.employee_method, params)

    def start_group_call(self, conn: PbxConnection, group_id: str, phone: str) -> Any:
        """Ask the PBX to ring the group `group_id`, then connect whoever answers to `phone`."""
        params = [(conn.param_name("group"), group_id), (conn.param_name("phone"), phone)]
        return self.request(conn, conn.group_method, params)

    def ping(self, conn: PbxConnection) -> Any:
        return self.request(conn, "ping", ())

    def method_list(self, conn: PbxConnection) -> Any:
        """The PBX's own list of methods: how an operator finds the real names of the call-starting methods."""
        return self.request(conn, "get-method-list", ())

    def request(
        self,
        conn: PbxConnection,
        method: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]],
        topic: str = DEFAULT_TOPIC,
    ) -> Any:
        """Call one PBX method and return the reply's `data`; raise `PbxError` / `PbxTimeout` otherwise."""
        pairs = [("topic", topic), ("method", method), *_pairs(params)]
        content, headers = _build_request(conn, pairs)
        started = time.monotonic()
        response = self._send(conn, method, content, headers)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        logger.info(
            "PBX answered",
            extra={"pbx_url": conn.server_url, "pbx_method": method, "status": response.status_code, "ms": elapsed_ms},
        )
        return _parse_reply(conn, method, response)

    def _send(self, conn: PbxConnection, method: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        timeout = httpx.Timeout(conn.timeout_seconds, connect=min(conn.timeout_seconds, MAX_CONNECT_TIMEOUT_SECONDS))
        for attempt in (1, 2):
            try:
                return self._http.post(conn.server_url, content=content, headers=headers, timeout=timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the PBX: safe to try once more.
                logger.warning(
                    "PBX connect failed",
                    extra={"pbx_url": conn.server_url, "pbx_method": method, "attempt": attempt, "error": _kind(exc)},
                )
                if attempt == 2:
                    raise PbxRefused(f"PBX unreachable at {conn.server_url} ({_kind(exc)})") from exc
            except httpx.TimeoutException as exc:
                # The request may have reached the PBX (a call may be ringing): never retried.
                logger.warning("PBX timeout", extra={"pbx_url": conn.server_url, "pbx_method": method})
                raise PbxTimeout(
                    f"PBX did not answer {method} within {conn.timeout_seconds:g} s (it may have received the request)"
                ) from exc
            except httpx.UnsupportedProtocol:
                raise PbxRefused(f"PBX server_url must be an http(s) URL: {conn.server_url!r}") from None
            except httpx.HTTPError as exc:
                # Read/write errors, resets, protocol errors: the request may have reached the PBX: never retried.
                logger.warning(
                    "PBX request failed",
                    extra={"pbx_url": conn.server_url, "pbx_method": method, "error": _kind(exc)},
                )
                raise PbxError(
                    f"PBX connection failed during {method} ({_kind(exc)}); the request may have reached the PBX"
                ) from exc
            except httpx.InvalidURL:
                raise PbxRefused(f"PBX server_url is not a valid URL: {conn.server_url!r}") from None
        raise AssertionError("unreachable")  # pragma: no cover


def _pairs(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(name), str(value)) for name, value in items]


def _build_request(conn: PbxConnection, pairs: list[tuple[str, str]]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(pairs)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if conn.auth_mode == "bearer":
        headers["Authorization"] = f"Bearer {conn.secret}"
    else:
        body = f"{body}&hash={body_hash(body, conn.secret)}"
    # The encoded body is pure ASCII: these are exactly the bytes that were hashed.
    return body.encode("ascii"), headers


def _parse_reply(conn: PbxConnection, method: str, response: httpx.Response) -> Any:
    status = response.status_code
    if status >= 300:
        where = f" (redirect to {response.headers.get('location')}: check server_url)" if status < 400 else ""
        # 3xx (not followed) and 4xx: the script never ran the method. 5xx: it may have, then crashed.
        error = PbxError if status >= 500 else PbxRefused
        raise error(f"PBX answered HTTP {status} to {method}{where}")
    try:
        reply = json.loads(response.content)
    except ValueError:
        raise PbxError(
            f"PBX answered {method} with something that is not JSON: {_redact(response.text, conn)}"
        ) from None
    if not isinstance(reply, dict) or "result" not in reply:
        raise PbxError(f"PBX answered {method} with JSON without `result`: {_redact(response.text, conn)}")
    result = reply["result"]
    if result in (1, "1") and result is not True:
        return reply.get("data")
    text = _redact(str(reply.get("text") or reply.get("error") or f"result {result!r} without text"), conn)
    raise PbxRefused(f"PBX error on {method}: {text}")


def _redact(text: str, conn: PbxConnection) -> str:
    # A PBX could echo what it received: neither the secret nor a hash (a replayable signature) leaves this module.
    if conn.secret:
        text = text.replace(conn.secret, "***")
    return _quote(_MD5_HEX.sub("***", text))


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "…"


def _kind(exc: Exception) -> str:
    return type(exc).__name__


@lru_cache(maxsize=1)
def get_pbx_client() -> PbxClient:
    """One `PbxClient` with one shared `httpx.Client` per warm Lambda (connection reuse across invocations)."""
    http = httpx.Client(
        timeout=httpx.Timeout(10.0, connect=MAX_CONNECT_TIMEOUT_SECONDS),
        follow_redirects=False,  # a redirected POST would be replayed as GET or resent: report it instead
        headers={"User-Agent": "iptelefon-connector"},
    )
    return PbxClient(http)


def method_names(data: Any) -> list[str]:
    """Method names from a `get-method-list` reply, whatever its shape (a list of names or of objects, a map)."""
    if isinstance(data, str):
        return [name for name in re.split(r"[\s,;]+", data) if name]
    if isinstance(data, dict):
        inner = data.get("methods") or data.get("list")
        return method_names(inner) if inner is not None else [str(name) for name in data]
    if isinstance(data, (list, tuple)):
        names = []
        for entry in data:
            if isinstance(entry, dict):
                entry = entry.get("method") or entry.get("name") or entry.get("id")
            if entry is not None and str(entry).strip():
                names.append(str(entry).strip())
        return names
    return []
