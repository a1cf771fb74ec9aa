"""The one adapter for the ZEON PBX API (`start.php`) that Iptelefon runs on.

Protocol (contract section 1): `POST <server_url>`, `application/x-www-form-urlencoded`, parameters `topic`, `method`,
then the method's own parameters, then `hash = md5(<body before "&hash="> + secret)` appended last. The body is built
once, hashed as is and sent byte for byte. Some installations take `Authorization: Bearer <secret>` instead of `hash`.

Replies: one reader (`read_reply`) for every shape known (README "The PBX's replies"):
- `{"result": 1, "data": ...}` success, `{"result": 0, "text": "..."}` refusal (contract section 1);
- `{"code": "success", "callid": "..."}` success, `{"code": "error", ...}` refusal (the public integration's
  `call-me`);
- a bare JSON list (`get-points`), a `{"text": "pong"}` answer (`ping`), or any other JSON: read, but not a success
  the PBX said itself (`PbxReply.confirmed` false): a call-starting method needs one, else `PbxReplyUnreadable`.
Not JSON at all (HTML with 200, an empty body) is `PbxReplyUnreadable`.

Where requests go (issue 20, `domain.pbx_address`): only https to public addresses, or also plain http and loopback
on a `local` stage (`PBX_NETWORK`). The shared client's transport resolves the host itself, refuses it unless every
address is allowed, connects to the address it checked (no second lookup: no DNS-rebinding window) and checks the
peer it got. Callers get a short reason (`refused`, `unreachable`, `tls`, `timeout`, `not_json`, `HTTP <status>`, the
PBX's own `text`), never the PBX's body or a redirect target; the details go to the logs, redacted.

Starting a call is not idempotent on the PBX, so a request that may have reached it is never retried: only a connect
failure (nothing was sent) is retried, once. Timeouts answer 504 (`PbxTimeout`), every other failure 502 (`PbxError`).
`PbxRefused` (a `PbxError`, in the domain) marks the failures after which the PBX certainly started nothing: it said no
(`result != 1`, `code` "error", HTTP 3xx/4xx) or it was never reached. After any other failure a call may be ringing;
`PbxReplyUnreadable` (also a `PbxError`) is the one where the PBX answered, just not in words we know.
The secret and the hash never appear in an exception message or a log line; the server URL is logged without its
`user:password@` and query (`redacted_url`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

import httpcore
import httpx

from iptelefon.domain.errors import PbxError, PbxRefused, PbxReplyUnreadable, PbxTimeout
from iptelefon.domain.pbx_address import PbxNetwork, address_allowed, redacted_url
from iptelefon.domain.pbx_connection import MAX_CONNECT_TIMEOUT_SECONDS, PbxConnection, PbxReply
from iptelefon.platform.observability import logger

DEFAULT_TOPIC = "base"
# How much of the PBX's own `text` an error message quotes, and of an unexpected reply a log line keeps.
_QUOTE_CHARS = 200
_MD5_HEX = re.compile(r"\b[0-9a-fA-F]{32}\b")
# Where a reply may name the PBX's id of the call it started: the `code` reply's own fields (`callid`), or the
# classic reply's `data`.
_PBX_CALL_ID_FIELDS = ("callid", "call_id", "id", "linkedid", "uniqueid")
# Where a refusal may carry the PBX's words.
_REFUSAL_TEXT_FIELDS = ("text", "message", "error")


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

    def start_employee_call(self, conn: PbxConnection, short_number: str, phone: str) -> PbxReply:
        """Ask the PBX to ring the employee `short_number`, then connect them to `phone`."""
        params = [(conn.param_name("ext"), short_number), (conn.param_name("phone"), phone)]
        return self._start_call(conn, conn.employee_method, params)

    def start_group_call(self, conn: PbxConnection, group_id: str, phone: str) -> PbxReply:
        """Ask the PBX to ring the group `group_id`, then connect whoever answers to `phone`."""
        params = [(conn.param_name("group"), group_id), (conn.param_name("phone"), phone)]
        return self._start_call(conn, conn.group_method, params)

    def _start_call(self, conn: PbxConnection, method: str, params: list[tuple[str, str]]) -> PbxReply:
        reply = self.request(conn, method, params)
        if not reply.confirmed:
            # It answered, but not "started" nor "refused": the call may be ringing.
            _log_unexpected(conn, method, _shown(reply.data, conn))
            raise PbxReplyUnreadable(f"PBX answered {method} without saying whether the call started")
        return reply

    def ping(self, conn: PbxConnection) -> str:
        """ "pong" when the PBX answers `ping` with it (as `data` or as `text`); PbxError otherwise."""
        data = self.request(conn, "ping", ()).data
        said = data.get("text") if isinstance(data, dict) else data
        if not isinstance(said, str) or said.strip().lower() != "pong":
            _log_unexpected(conn, "ping", _shown(data, conn))
            # Only the PBX's own words (a string it sent), never the rest of what answered
            words = f": {_redact(said, conn)}" if isinstance(said, str) and said.strip() else ""
            raise PbxError(f"PBX answered ping without pong{words}")
        return "pong"

    def method_list(self, conn: PbxConnection) -> list[str]:
        """The PBX's own list of methods (`get-method-list`): how an operator finds the real names of the
        call-starting methods."""
        return method_names(self.request(conn, "get-method-list", ()).data)

    def points(self, conn: PbxConnection) -> list[str]:
        """The PBX's extensions (`get-points`): the short numbers an employee may have."""
        return point_numbers(self.request(conn, "get-points", ()).data)

    def request(
        self,
        conn: PbxConnection,
        method: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]],
        topic: str = DEFAULT_TOPIC,
    ) -> PbxReply:
        """Call one PBX method and return its reply as read (`read_reply`); `PbxError` / `PbxTimeout` otherwise."""
        pairs = [("topic", topic), ("method", method), *_pairs(params)]
        content, headers = build_request(conn, pairs)
        started = time.monotonic()
        response = self._send(conn, method, content, headers)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        logger.info(
            "PBX answered",
            extra={
                "pbx_url": redacted_url(conn.server_url),
                "pbx_method": method,
                "status": response.status_code,
                "ms": elapsed_ms,
            },
        )
        return read_reply(conn, method, response)

    def _send(self, conn: PbxConnection, method: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        timeout = httpx.Timeout(conn.timeout_seconds, connect=min(conn.timeout_seconds, MAX_CONNECT_TIMEOUT_SECONDS))
        where = {"pbx_url": redacted_url(conn.server_url), "pbx_method": method}
        for attempt in (1, 2):
            try:
                return self._http.post(conn.server_url, content=content, headers=headers, timeout=timeout)
            except PbxAddressRefused as refused:
                logger.warning("PBX request refused", extra={**where, "reason": str(refused)})
                raise PbxRefused(f"PBX request refused: {refused}") from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the PBX: safe to try once more.
                reason = _connect_failure(exc)
                logger.warning("PBX connect failed", extra={**where, "attempt": attempt, "error": str(exc)[:200]})
                if attempt == 2:
                    raise PbxRefused(f"PBX unreachable ({reason})") from exc
            except httpx.TimeoutException as exc:
                # The request may have reached the PBX (a call may be ringing): never retried.
                logger.warning("PBX timeout", extra=where)
                raise PbxTimeout(
                    f"PBX did not answer {method} within {conn.timeout_seconds:g} s (timeout; it may have received "
                    "the request)"
                ) from exc
            except (httpx.UnsupportedProtocol, httpx.InvalidURL):
                raise PbxRefused("PBX request refused: server_url is not a valid http(s) URL") from None
            except httpx.HTTPError as exc:
                # Read/write errors, resets, protocol errors: the request may have reached the PBX: never retried.
                logger.warning("PBX request failed", extra={**where, "error": _kind(exc)})
                raise PbxError(
                    f"PBX connection failed during {method} ({_kind(exc)}); the request may have reached the PBX"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _connect_failure(exc: Exception) -> str:
    """`tls` when the handshake or the certificate failed, else `unreachable` (the same for a closed port and a host
    that does not answer: the check is no port scanner)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return "tls"
        cause = cause.__cause__ or cause.__context__
    return "unreachable"


def _pairs(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(name), str(value)) for name, value in items]


def build_request(conn: PbxConnection, pairs: list[tuple[str, str]]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(pairs)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if conn.auth_mode == "bearer":
        headers["Authorization"] = f"Bearer {conn.secret}"
    else:
        body = f"{body}&hash={body_hash(body, conn.secret)}"
    # The encoded body is pure ASCII: these are exactly the bytes that were hashed.
    return body.encode("ascii"), headers


def read_reply(conn: PbxConnection, method: str, response: httpx.Response) -> PbxReply:
    """The PBX's reply to `method`, whatever its shape (see the module's docstring); `PbxRefused` when the PBX said
    no, `PbxReplyUnreadable` when it answered something that is not JSON, `PbxError` for an HTTP 5xx."""
    status = response.status_code
    if status >= 300:
        if status < 400:  # where it points stays in the log: it may be anything the PBX's host chose
            location = redacted_url(response.headers.get("location") or "")
            logger.warning("PBX redirected", extra={"pbx_url": redacted_url(conn.server_url), "location": location})
        where = " (a redirect: check server_url)" if status < 400 else ""
        # 3xx (not followed) and 4xx: the script never ran the method. 5xx: it may have, then crashed.
        error = PbxError if status >= 500 else PbxRefused
        raise error(f"PBX answered HTTP {status} to {method}{where}")
    try:
        reply = json.loads(response.content)
    except ValueError:
        _log_unexpected(conn, method, _redact(response.text, conn) or "an empty body")
        raise PbxReplyUnreadable(f"PBX answered {method} with something that is not JSON (not_json)") from None
    if not isinstance(reply, dict):
        return PbxReply(reply, confirmed=False)  # a bare list (`get-points`) or a bare value
    if "result" in reply:  # contract section 1
        result = reply["result"]
        if result in (1, "1") and result is not True:
            data = reply["data"] if "data" in reply else reply.get("text")
            return PbxReply(data, pbx_call_id=_pbx_call_id(data))
        raise PbxRefused(f"PBX error on {method}: {_refusal_text(reply, 'result', conn)}")
    if "code" in reply:  # the public integration's `call-me`
        code = str(reply["code"]).strip().lower()
        rest = {name: value for name, value in reply.items() if name != "code"}
        if code == "success":
            return PbxReply(rest, pbx_call_id=_pbx_call_id(rest))
        if code == "error":
            raise PbxRefused(f"PBX error on {method}: {_refusal_text(reply, 'code', conn)}")
        return PbxReply(reply, confirmed=False)  # a code we do not know: neither yes nor no
    return PbxReply(reply, confirmed=False)  # `ping`'s {"text": "pong"}, or a shape nobody described


def _pbx_call_id(data: Any) -> str | None:
    if isinstance(data, dict):
        for name in _PBX_CALL_ID_FIELDS:
            value = data.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()[:128]
    return None


def _refusal_text(reply: dict[str, Any], status_field: str, conn: PbxConnection) -> str:
    said = next((reply[name] for name in _REFUSAL_TEXT_FIELDS if reply.get(name)), None)
    return _redact(str(said) if said is not None else f"{status_field} {reply[status_field]!r} without text", conn)


def _shown(data: Any, conn: PbxConnection) -> str:
    return _redact(json.dumps(data, ensure_ascii=False, default=str), conn)


def _redact(text: str, conn: PbxConnection) -> str:
    # A PBX could echo what it received: neither the secret nor a hash (a replayable signature) leaves this module.
    if conn.secret:
        text = text.replace(conn.secret, "***")
    return _quote(_MD5_HEX.sub("***", text))


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "…"


def _log_unexpected(conn: PbxConnection, method: str, excerpt: str) -> None:
    # What the PBX answered is for the operator's log, not for the caller (it may be any host's page).
    logger.warning(
        "PBX reply not understood",
        extra={"pbx_url": redacted_url(conn.server_url), "pbx_method": method, "reply": excerpt},
    )


def _kind(exc: Exception) -> str:
    return type(exc).__name__


# -- where requests may go --------------------------------------------------------------------------------------------
class PbxAddressRefused(Exception):
    """The request's URL or host is not one this stage sends PBX requests to: nothing was sent."""


class _GuardedBackend(httpcore.SyncBackend):
    """Opens each connection to an address it checked: the host resolved once, every address allowed, the socket
    connected to one of them, and its peer checked again."""

    def __init__(self, network: PbxNetwork) -> None:
        self.network = network

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        found = _resolve(host, port, timeout)
        addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))
        if not addresses or not all(address_allowed(address, self.network) for address in addresses):
            raise PbxAddressRefused("server_url's host is not a public address")
        stream = super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)
        peer = stream.get_extra_info("server_addr")
        if not peer or not address_allowed(str(peer[0]).split("%")[0], self.network):
            stream.close()
            raise PbxAddressRefused("server_url's host is not a public address")
        return stream


# getaddrinfo takes no timeout (a dead resolver holds it for the OS's retries, 5 s and more per try): it runs here, and
# the connection gives up after its connect timeout while the lookup finishes on its own.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pbx-dns")


def _resolve(host: str, port: int, timeout: float | None) -> list[Any]:
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return lookup.result(timeout=timeout)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"the PBX's host did not resolve within {timeout:g} s") from exc
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve the PBX's host: {exc}") from exc


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over `_GuardedBackend`, refusing a URL with userinfo or a scheme the stage does not allow."""

    def __init__(self, network: PbxNetwork) -> None:
        super().__init__(trust_env=False)  # no proxy from the environment: every connection passes the guard
        self.network = network
        # httpx takes no network backend of its own: its pool (the `_pool` httpx 0.28 builds the same way) is
        # replaced by one over the guarded backend. Pinned httpx/httpcore; tests/integration/test_pbx_address_guard.py
        # fails if a new version stops using it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_GuardedBackend(network)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        schemes = ("https", "http") if self.network == "local" else ("https",)
        if request.url.scheme not in schemes:
            raise PbxAddressRefused("server_url must be an https URL")
        if request.url.userinfo:
            raise PbxAddressRefused("server_url must not carry a user name or password")
        return super().handle_request(request)


@lru_cache(maxsize=2)
def get_pbx_client(network: PbxNetwork = "public") -> PbxClient:
    """One `PbxClient` with one shared `httpx.Client` per warm Lambda (connection reuse across invocations), sending
    only where the stage's `network` allows."""
    # httpx logs each request's full URL (a query, a user:password@) at INFO: our own log line is the redacted one.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    http = httpx.Client(
        transport=GuardedTransport(network),
        trust_env=False,
        timeout=httpx.Timeout(10.0, connect=MAX_CONNECT_TIMEOUT_SECONDS),
        follow_redirects=False,  # a redirected POST would be replayed as GET or resent: report it instead
        headers={"User-Agent": "iptelefon-connector"},
    )
    return PbxClient(http)


def method_names(data: Any) -> list[str]:
    """Method names from a `get-method-list` reply, whatever its shape (a list of names or of objects, a map)."""
    return _names(data, containers=("methods", "list"), fields=("method", "name", "id"))


def point_numbers(data: Any) -> list[str]:
    """Extension numbers from a `get-points` reply, whatever its shape (a list of numbers or of objects, a map)."""
    return _names(
        data, containers=("points", "list", "items"), fields=("number", "exten", "point", "ext", "name", "id")
    )


def _names(data: Any, *, containers: tuple[str, ...], fields: tuple[str, ...]) -> list[str]:
    # Nothing documents these lists' shape: take names from strings, numbers, objects (by `fields`) or a map's keys.
    if isinstance(data, str):
        return [name for name in re.split(r"[\s,;]+", data) if name]
    if isinstance(data, dict):
        inner = next((data[name] for name in containers if data.get(name)), None)
        return _names(inner, containers=containers, fields=fields) if inner is not None else [str(k) for k in data]
    if isinstance(data, (list, tuple)):
        names = []
        for entry in data:
            if isinstance(entry, dict):
                entry = next((entry[name] for name in fields if entry.get(name) not in (None, "")), None)
            if entry is not None and not isinstance(entry, bool) and str(entry).strip():
                names.append(str(entry).strip())
        return names
    return []
