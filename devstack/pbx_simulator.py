"""A ZEON PBX (`start.php`) simulator for the local stack and the integration tests. Standard library only.

It speaks the protocol of contract section 1: `POST <path>` with a form body whose last parameter is
`hash = md5(<body before "&hash="> + secret)` (checked on the raw bytes received), or `Authorization: Bearer <secret>`.
Every request is recorded (without its hash), faults can be switched on at run time, and a successful call-employee /
call-group is "completed" after a delay by posting a ZEON-style completion webhook back to the connector. A group
call is answered by a simulated member (`group_member`, default "346"): its completion names that member in `exten` /
`members` and the queue in `group`, as a PBX reports who talked, not the group id.

Control API (JSON), next to the PBX endpoint:
    GET /_sim/requests, DELETE /_sim/requests      the recorded start.php requests
    GET /_sim/fault, POST /_sim/fault              {"mode": "none|timeout|http_500|result_0|garbage|reset",
                                                    "text": "...", "seconds": 30}
    GET /_sim/config, POST /_sim/config            {"webhook_url": "...", "webhook_delay_seconds": 1.0,
                                                    "group_member": "346"}
    GET /_sim/webhooks, DELETE /_sim/webhooks      the completion webhooks posted and their outcome
    GET /records/<call id>.mp3                     a few bytes of "recording"

Run: python -m devstack.pbx_simulator --port 8085 --secret s3cr3t [--webhook-url URL --webhook-delay 1.0]
     [--group-member 346]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import logging
import re
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

logger = logging.getLogger("devstack.pbx_simulator")

FAULT_MODES = ("none", "timeout", "http_500", "result_0", "garbage", "reset")
DEFAULT_FAULT_TEXT = "Номер занят"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_GROUP_MEMBER = "346"  # the short number that "answers" a simulated group call
_SHORT_NUMBER = re.compile(r"^\d{2,8}$")
METHODS = ("ping", "get-method-list", "call-employee", "call-group", "get-calls", "get-calls-last-id", "get-mp3")
# Moscow has been UTC+3 all year since 2014; a fixed offset needs no tzdata on the developer's machine.
MOSCOW = timezone(timedelta(hours=3), "MSK")
SIMULATED_TALKTIME = "00:01:23"
FAKE_MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 8
_RECORD_PATH = re.compile(r"^/records/([A-Za-z0-9_.-]+)\.mp3$")
_MAX_BODY_BYTES = 1024 * 1024


class PbxSimulator:
    """One simulated PBX on 127.0.0.1. `start()` serves in a daemon thread; `port=0` picks a free port."""

    def __init__(
        self,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/b3/api/v2/start.php",
        *,
        webhook_url: str | None = None,
        webhook_delay_seconds: float = 1.0,
        group_member: str = DEFAULT_GROUP_MEMBER,
    ) -> None:
        _check_group_member(group_member)
        self.secret = secret
        self.host = host
        self.path = path
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._webhooks: list[dict[str, Any]] = []
        self._calls: list[dict[str, Any]] = []
        self._call_ids = itertools.count(1)
        self._fault: dict[str, Any] = {"mode": "none", "text": None, "seconds": DEFAULT_TIMEOUT_SECONDS}
        self._webhook_url = webhook_url
        self._webhook_delay_seconds = webhook_delay_seconds
        self._group_member = group_member

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        server = _Server((self.host, self._requested_port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="pbx-simulator", daemon=True
        )
        self._thread.start()
        logger.info("PBX simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, promptly: sleeping `timeout` faults and pending completions are woken up and dropped."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The full start.php URL: what a project's `server_url` is set to."""
        return self.base_url + self.path

    # --- state, also reachable over HTTP ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def webhooks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(w) for w in self._webhooks]

    def clear_webhooks(self) -> None:
        with self._lock:
            self._webhooks.clear()

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The completed calls, as `get-calls` returns them."""
        with self._lock:
            return [dict(c) for c in self._calls]

    @property
    def fault(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._fault)

    def set_fault(self, mode: str, text: str | None = None, seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {', '.join(FAULT_MODES)}")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        with self._lock:
            self._fault = {"mode": mode, "text": text, "seconds": float(seconds)}

    @property
    def config(self) -> dict[str, Any]:
        with self._lock:
            return {
                "webhook_url": self._webhook_url,
                "webhook_delay_seconds": self._webhook_delay_seconds,
                "group_member": self._group_member,
            }

    def configure_group_member(self, group_member: str) -> None:
        """The short number that answers group calls from now on (reported as `exten` / `members`)."""
        _check_group_member(group_member)
        with self._lock:
            self._group_member = group_member

    def configure_webhook(self, webhook_url: str | None, webhook_delay_seconds: float | None = None) -> None:
        if webhook_url is not None and urlsplit(webhook_url).scheme not in ("http", "https"):
            raise ValueError("webhook_url must be an http(s) URL")
        if webhook_delay_seconds is not None and (
            not isinstance(webhook_delay_seconds, (int, float))
            or isinstance(webhook_delay_seconds, bool)
            or webhook_delay_seconds < 0
        ):
            raise ValueError("webhook_delay_seconds must be a non-negative number")
        with self._lock:
            self._webhook_url = webhook_url
            if webhook_delay_seconds is not None:
                self._webhook_delay_seconds = float(webhook_delay_seconds)

    # --- the PBX ---------------------------------------------------------------------------------------------------

    def _check_auth(self, raw: bytes, authorization: str | None) -> tuple[str, bool]:
        """(auth mode, valid). Bearer when the header is there; otherwise the hash over the raw bytes before it."""
        secret = self.secret.encode("utf-8")
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip().encode("utf-8")
            return "bearer", hmac.compare_digest(token, secret)
        head, sep, given = raw.rpartition(b"&hash=")
        if not sep:
            return "hash", False
        expected = hashlib.md5(head + secret, usedforsecurity=False).hexdigest().encode("ascii")
        return "hash", hmac.compare_digest(given.strip().lower(), expected)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def _answer(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        """The JSON reply of a valid request when no fault is on."""
        if method == "ping":
            return {"result": 1, "data": "pong"}
        if method == "get-method-list":
            return {"result": 1, "data": list(METHODS)}
        if method == "call-employee":
            return self._start_call(params, "ext")
        if method == "call-group":
            return self._start_call(params, "group")
        if method == "get-calls":
            return {"result": 1, "data": self.calls}
        if method == "get-calls-last-id":
            calls = self.calls
            return {"result": 1, "data": calls[-1]["id"] if calls else 0}
        if method == "get-mp3":
            call_id = params.get("id") or params.get("link") or ""
            if not any(c["id"] == call_id for c in self.calls):
                return {"result": 0, "text": "call not found"}
            return {"result": 1, "data": {"link": self._record_link(call_id)}}
        return {"result": 0, "text": "unknown method"}

    def _start_call(self, params: dict[str, str], target: str) -> dict[str, Any]:
        missing = [name for name in (target, "phone") if not params.get(name)]
        if missing:
            return {"result": 0, "text": f"missing parameter: {', '.join(missing)}"}
        call_id = f"{int(time.time())}.{next(self._call_ids)}"
        started = datetime.now(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")
        phone = params["phone"]
        with self._lock:
            # An employee call is answered by that employee; a group call by one of the group's members.
            ext = params[target] if target == "ext" else self._group_member
        completion = {
            "id": call_id,
            "linkedid": call_id,
            "calldate": started,
            "calltype": "OUT",
            "src": ext,
            "dst": phone,
            "client": phone,
            "exten": ext,
            "members": ext,
            "talktime": SIMULATED_TALKTIME,
            "lost": "0",
            "waiting": "0",
            "link": self._record_link(call_id),
        }
        if target == "group":
            completion["group"] = params["group"]
        with self._lock:
            delay = self._webhook_delay_seconds
        threading.Thread(target=self._complete_call, args=(completion, delay), name="pbx-sim-call", daemon=True).start()
        return {"result": 1, "data": {"call_id": call_id}}

    def _record_link(self, call_id: str) -> str:
        return f"{self.base_url}/records/{call_id}.mp3"

    def _complete_call(self, completion: dict[str, str], delay: float) -> None:
        if self._stopping.wait(delay):
            return
        with self._lock:
            self._calls.append(completion)
            url = self._webhook_url
        if url:
            self._post_webhook(url, completion)

    def _post_webhook(self, url: str, completion: dict[str, str]) -> None:
        outcome: dict[str, Any] = {"call_id": completion["id"], "url": url, "status": None, "error": None}
        # The URL is set by the developer and checked to be http(s) in configure_webhook.
        request = urllib.request.Request(  # noqa: S310
            url,
            data=urlencode(completion).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "ZEON-PBX-simulator"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                outcome["status"] = response.status
        except urllib.error.HTTPError as exc:
            outcome["status"] = exc.code
        except (OSError, ValueError) as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        outcome["time"] = _now()
        logger.info("completion webhook for %s -> %s: %s", completion["id"], url, outcome["status"] or outcome["error"])
        with self._lock:
            self._webhooks.append(outcome)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping in a `timeout` fault never holds up stop()

    def __init__(self, address: tuple[str, int], simulator: PbxSimulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    server_version = "ZEON-PBX-simulator"

    @property
    def sim(self) -> PbxSimulator:
        return cast(_Server, self.server).simulator

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    # --- routing ---------------------------------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == self.sim.path:
            self._start_php()
        elif path == "/_sim/fault":
            self._control(self._set_fault)
        elif path == "/_sim/config":
            self._control(self._set_config)
        else:
            self._read_body()
            self._send_json(404, {"error": "not found"})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        record = _RECORD_PATH.match(path)
        if path == "/_sim/requests":
            self._send_json(200, self.sim.requests)
        elif path == "/_sim/fault":
            self._send_json(200, self.sim.fault)
        elif path == "/_sim/config":
            self._send_json(200, self.sim.config)
        elif path == "/_sim/webhooks":
            self._send_json(200, self.sim.webhooks)
        elif path == "/_sim/calls":
            self._send_json(200, self.sim.calls)
        elif record:
            self._send(200, FAKE_MP3, "audio/mpeg")
        else:
            self._send_json(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_sim/requests":
            self.sim.clear_requests()
            self._send_json(200, {"cleared": True})
        elif path == "/_sim/webhooks":
            self.sim.clear_webhooks()
            self._send_json(200, {"cleared": True})
        else:
            self._send_json(404, {"error": "not found"})

    # --- start.php -------------------------------------------------------------------------------------------------

    def _start_php(self) -> None:
        try:
            raw = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send_json(413, {"result": 0, "text": str(exc)})
            return
        auth_mode, valid = self.sim._check_auth(raw, self.headers.get("Authorization"))
        params = dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
        params.pop("hash", None)
        topic, method = params.pop("topic", ""), params.pop("method", "")
        fault = self.sim.fault
        self.sim._record(
            {
                "topic": topic,
                "method": method,
                "params": params,
                "auth": auth_mode,
                "valid": valid,
                "fault": fault["mode"],
                "content_type": self.headers.get("Content-Type"),
                "time": _now(),
            }
        )
        mode = fault["mode"]
        if mode == "timeout":
            # Read and recorded, never answered: the client times out. Woken up early by stop().
            self.sim._stopping.wait(fault["seconds"])
            self.close_connection = True
        elif mode == "reset":
            self._reset_connection()
        elif mode == "http_500":
            page = (
                b"<html><head><title>500 Internal Server Error</title></head><body>Internal Server Error</body></html>"
            )
            self._send(500, page, "text/html; charset=utf-8")
        elif mode == "garbage":
            page = b"<br />\n<b>Warning</b>:  mysqli_connect(): (HY000/2002): Connection refused in start.php<br />\n"
            self._send(200, page, "text/html; charset=utf-8")
        elif mode == "result_0":
            self._send_json(200, {"result": 0, "text": fault["text"] or DEFAULT_FAULT_TEXT})
        elif not valid:
            self._send_json(200, {"result": 0, "text": "invalid token" if auth_mode == "bearer" else "invalid hash"})
        else:
            self._send_json(200, self.sim._answer(method, params))

    def _reset_connection(self) -> None:
        """Close abruptly without a byte of answer: SO_LINGER 0 makes close() send a TCP RST."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    # --- control API -----------------------------------------------------------------------------------------------

    def _control(self, apply: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        try:
            body = json.loads(self._read_body() or b"{}")
            answer = apply(body) if isinstance(body, dict) else None
        except ValueError as exc:
            self._send_json(400, {"error": str(exc)})
            return
        if answer is None:
            self._send_json(400, {"error": "the body must be a JSON object"})
            return
        self._send_json(200, answer)

    def _set_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sim.set_fault(
            str(body.get("mode", "none")), body.get("text"), body.get("seconds", DEFAULT_TIMEOUT_SECONDS)
        )
        return self.sim.fault

    def _set_config(self, body: dict[str, Any]) -> dict[str, Any]:
        if "group_member" in body:
            _check_group_member(body["group_member"])  # before anything changes: all or nothing
        url = body.get("webhook_url", self.sim.config["webhook_url"])
        self.sim.configure_webhook(url or None, body.get("webhook_delay_seconds"))
        if "group_member" in body:
            self.sim.configure_group_member(body["group_member"])
        return self.sim.config

    # --- plumbing --------------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            self.close_connection = True
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _check_group_member(group_member: object) -> None:
    if not isinstance(group_member, str) or not _SHORT_NUMBER.fullmatch(group_member):
        raise ValueError("group_member must be a short number of 2-8 digits, e.g. '346'")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.pbx_simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--secret", required=True, help="the project's PBX secret (md5 salt / bearer token)")
    parser.add_argument("--path", default="/b3/api/v2/start.php")
    parser.add_argument("--webhook-url", default=None, help="where to POST call completions (the connector webhook)")
    parser.add_argument("--webhook-delay", type=float, default=1.0, help="seconds from a call start to its completion")
    parser.add_argument(
        "--group-member", default=DEFAULT_GROUP_MEMBER, help="short number that answers group calls (exten/members)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pbx-simulator %(message)s")
    simulator = PbxSimulator(
        args.secret,
        host=args.host,
        port=args.port,
        path=args.path,
        webhook_url=args.webhook_url,
        webhook_delay_seconds=args.webhook_delay,
        group_member=args.group_member,
    )
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with simulator:
        print(
            f"PBX simulator: {simulator.url} (control: {simulator.base_url}/_sim/requests); Ctrl-C to stop", flush=True
        )
        while not done.wait(0.5):
            pass
    logger.info("PBX simulator stopped")


if __name__ == "__main__":
    main()
