"""A ZEON PBX (`start.php`) simulator for the local stack and the integration tests. Standard library only.

Requests follow contract section 1: `POST <path>` with a form body whose last parameter is
`hash = md5(<body before "&hash="> + secret)` (checked on the raw bytes received), or `Authorization: Bearer <secret>`.
Every request is recorded (without its hash) and faults can be switched on at run time. Replies and webhooks come in
one of two dialects (`--dialect`, `POST /_sim/config {"dialect": ...}`):

- `zeon` (the default: what the public Webasyst CRM plugin for IPtelefon shows, contract section 7):
  `call-me` with `src` (an extension, or a group's number: it rings src first, then dst) and `dst` (the client)
  answers `{"code": "success", "callid": "<id>"}`, a refusal `{"code": "error", "text": "..."}`; `ping` answers
  `{"text": "pong"}`; `get-points` a bare JSON list of extensions. Each call posts JSON webhooks in turn:
  `cmd=event` RINGING (once per extension rung), ACCEPTED when answered, then `cmd=history` when it ends.
- `classic` (contract section 1, what the connector was first built against): `call-employee` (`ext`, `phone`) and
  `call-group` (`group`, `phone`) answer `{"result": 1, "data": {"call_id": "<id>"}}`, a refusal
  `{"result": 0, "text": "..."}`; the call is completed after `webhook_delay_seconds` by one form-encoded webhook
  with the get-calls fields (`id`, `calltype`, `talktime`, `link`, ...).

A group call is answered by a simulated member (`group_member`, default "346"): its webhooks name that member in
`exten` (and the queue in `group`, classic), as a PBX reports who talked, not the group id.

Control API (JSON), next to the PBX endpoint:
    GET /_sim/requests, DELETE /_sim/requests      the recorded start.php requests
    GET /_sim/fault, POST /_sim/fault              {"mode": "none|timeout|http_500|result_0|garbage|unknown_json|reset",
                                                    "text": "...", "seconds": 30}
    GET /_sim/config, POST /_sim/config            {"dialect": "zeon|classic", "webhook_url": "...",
                                                    "webhook_delay_seconds": 1.0, "ring_seconds": null,
                                                    "talk_seconds": null, "group_member": "346",
                                                    "points": ["346", "347", "348"], "crm_token": "...",
                                                    "answer": "answered|no_answer|busy", "transfered": false,
                                                    "pickedup": false, "recordings_gone": false}
    POST /_sim/incoming                            {"phone": "79001234567", "exten": "346", "answer": "..."}
                                                    -> {"callid": "..."}: a client calls in
    GET /_sim/webhooks, DELETE /_sim/webhooks      the webhooks posted, each with `sent_at` (unix seconds) and the
                                                    connector's answer
    GET /_sim/calls                                the finished calls (what get-calls returns, classic)
    GET /records/<call id>.mp3                     the call's recording: a real MP3 of 2 s of silence (404 while
                                                    `recordings_gone` is true: the PBX's links have died)

Run: python -m devstack.pbx_simulator --port 8085 --secret s3cr3t [--dialect zeon|classic] [--webhook-url URL
     --webhook-delay 1.0] [--group-member 346] [--points 346,347,348] [--crm-token TOKEN]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import logging
import random
import re
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

logger = logging.getLogger("devstack.pbx_simulator")

DIALECTS = ("zeon", "classic")
DEFAULT_DIALECT = "zeon"  # the public integration's
FAULT_MODES = ("none", "timeout", "http_500", "result_0", "garbage", "unknown_json", "reset")
DEFAULT_FAULT_TEXT = "Номер занят"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_GROUP_MEMBER = "346"  # the short number that "answers" a simulated group call
DEFAULT_POINTS = ("346", "347", "348")  # the extensions `get-points` lists
DEFAULT_CRM_TOKEN = "demo-crm-token"  # the `token` a ZEON PBX puts in every webhook (set in its CRM settings)
ANSWERS = ("answered", "no_answer", "busy")
_SHORT_NUMBER = re.compile(r"^\d{2,8}$")
_PHONE = re.compile(r"^\d{5,15}$")
CLASSIC_METHODS = (
    "ping",
    "get-method-list",
    "get-points",
    "call-employee",
    "call-group",
    "get-calls",
    "get-calls-last-id",
    "get-mp3",
)
ZEON_METHODS = ("ping", "get-method-list", "get-points", "call-me")
# Moscow has been UTC+3 all year since 2014; a fixed offset needs no tzdata on the developer's machine.
MOSCOW = timezone(timedelta(hours=3), "MSK")
SIMULATED_TALKTIME = "00:01:23"
SIMULATED_TALK_SECONDS = 83  # what an answered call reports, whatever the (scaled-down) real gap was
# Without ring_seconds / talk_seconds, a zeon call rings a third of webhook_delay_seconds and talks the rest: its
# history arrives when a classic completion would.
_RING_SHARE = 1 / 3
# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono; a frame with all-zero side information and main data decodes as
# silence. 1,152 samples a frame: 417 bytes each (no padding).
_MP3_FRAME_HEADER = b"\xff\xfb\x90\xc0"
_MP3_FRAME_BYTES = 144 * 128_000 // 44_100
_MP3_FRAMES_PER_SECOND = 44_100 / 1152


def silent_mp3(seconds: float) -> bytes:
    """A valid MP3 of `seconds` of silence (pure Python, nothing to install: players and browsers play it)."""
    frame = _MP3_FRAME_HEADER + bytes(_MP3_FRAME_BYTES - len(_MP3_FRAME_HEADER))
    return frame * max(1, round(seconds * _MP3_FRAMES_PER_SECOND))


RECORDING_SECONDS = 2.0
RECORDING_MP3 = silent_mp3(RECORDING_SECONDS)
_RECORD_PATH = re.compile(r"^/records/([A-Za-z0-9_.-]+)\.mp3$")
_MAX_BODY_BYTES = 1024 * 1024
_ZEON_STATUS = {"answered": "ANSWERED", "no_answer": "NO ANSWER", "busy": "BUSY"}


@dataclass(frozen=True)
class _Call:
    """One simulated call, as its webhooks will tell it."""

    call_id: str
    direction: str  # "IN" | "OUT"
    phone: str  # the client: the called number (OUT) or the caller (IN)
    rings: tuple[str, ...]  # the extensions rung in turn; the last one answers
    answer: str  # one of ANSWERS
    transfered: bool
    pickedup: bool
    started: str  # "YYYY-MM-DD HH:MM:SS", Moscow
    group: str | None = None  # the classic group id of a call-group

    @property
    def exten(self) -> str:
        return self.rings[-1]


class PbxSimulator:
    """One simulated PBX on 127.0.0.1. `start()` serves in a daemon thread; `port=0` picks a free port."""

    def __init__(
        self,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/b3/api/v2/start.php",
        *,
        dialect: str = DEFAULT_DIALECT,
        webhook_url: str | None = None,
        webhook_delay_seconds: float = 1.0,
        ring_seconds: float | None = None,
        talk_seconds: float | None = None,
        group_member: str = DEFAULT_GROUP_MEMBER,
        points: Sequence[str] = DEFAULT_POINTS,
        crm_token: str = DEFAULT_CRM_TOKEN,
    ) -> None:
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
        self._config: dict[str, Any] = {
            "dialect": DEFAULT_DIALECT,
            "webhook_url": None,
            "webhook_delay_seconds": 1.0,
            "ring_seconds": None,
            "talk_seconds": None,
            "group_member": DEFAULT_GROUP_MEMBER,
            "points": list(DEFAULT_POINTS),
            "crm_token": DEFAULT_CRM_TOKEN,
            "answer": "answered",
            "transfered": False,
            "pickedup": False,
            # Seconds between clients calling in by themselves (about: 0.5-1.5x), some answered, some not, some busy;
            # null: only when asked (`/_sim/incoming`). `make run` sets it so the missed-call queue lives.
            "traffic_seconds": None,
            "recordings_gone": False,
        }
        self.configure(
            dialect=dialect,
            webhook_url=webhook_url,
            webhook_delay_seconds=webhook_delay_seconds,
            ring_seconds=ring_seconds,
            talk_seconds=talk_seconds,
            group_member=group_member,
            points=list(points),
            crm_token=crm_token,
        )

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
        threading.Thread(target=self._traffic, name="pbx-simulator-traffic", daemon=True).start()
        logger.info("PBX simulator listening on %s (%s dialect)", self.url, self.dialect)
        return self

    def _traffic(self) -> None:
        """Clients calling in by themselves every `traffic_seconds`: a few regular callers, answered 60 %, not
        answered 25 %, busy 15 %, so missed calls keep coming and a callback finds a task to close."""
        rng = random.Random()
        next_at = 0.0
        while not self._stopping.wait(0.5):
            every = self.config["traffic_seconds"]
            if every is None or not self.config["webhook_url"] or time.monotonic() < next_at:
                continue
            next_at = time.monotonic() + every * rng.uniform(0.5, 1.5)
            answer = rng.choices(ANSWERS, weights=(60, 25, 15))[0]
            phone = f"7900444{rng.randrange(20):04d}"
            try:
                self.start_incoming_call(phone, rng.choice(self.config["points"]), answer)
            except ValueError:  # a point changed meanwhile: the next round picks again
                continue

    def stop(self) -> None:
        """Stop serving, promptly: sleeping `timeout` faults and pending webhooks are woken up and dropped."""
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
        """The finished calls, as their last webhook told them (classic: what `get-calls` returns)."""
        with self._lock:
            return [dict(c) for c in self._calls]

    @property
    def fault(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._fault)

    def set_fault(self, mode: str, text: str | None = None, seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {', '.join(FAULT_MODES)}")
        if not _is_seconds(seconds):
            raise ValueError("seconds must be a non-negative number")
        with self._lock:
            self._fault = {"mode": mode, "text": text, "seconds": float(seconds)}

    @property
    def config(self) -> dict[str, Any]:
        with self._lock:
            return {**self._config, "points": list(self._config["points"])}

    @property
    def dialect(self) -> str:
        return str(self.config["dialect"])

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings (the keys of `config`): all are checked before any applies. Returns the new config."""
        checked = {name: _check_setting(name, value) for name, value in changes.items()}
        with self._lock:
            self._config.update(checked)
        return self.config

    def configure_group_member(self, group_member: str) -> None:
        """The short number that answers group calls from now on (reported as `exten`)."""
        self.configure(group_member=group_member)

    def configure_webhook(self, webhook_url: str | None, webhook_delay_seconds: float | None = None) -> None:
        changes: dict[str, Any] = {"webhook_url": webhook_url}
        if webhook_delay_seconds is not None:
            changes["webhook_delay_seconds"] = webhook_delay_seconds
        self.configure(**changes)

    def start_incoming_call(self, phone: str, exten: str | None = None, answer: str | None = None) -> str:
        """A client `phone` calls in and extension `exten` (default: the first point) rings: the webhooks of the
        current dialect follow, with the current call settings. Returns the call id."""
        if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
            raise ValueError("phone must be 5-15 digits, e.g. '79001234567'")
        config = self.config
        exten = exten if exten is not None else config["points"][0]
        _check_setting("group_member", exten, name="exten")
        answer = _check_setting("answer", answer if answer is not None else config["answer"])
        call = self._new_call("IN", phone, (exten,), config, answer=answer)
        self._begin(call, config)
        return call.call_id

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

    def _refusal(self, dialect: str, text: str) -> dict[str, Any]:
        """A clear "no" in the dialect's words."""
        return {"code": "error", "text": text} if dialect == "zeon" else {"result": 0, "text": text}

    def _answer(self, dialect: str, method: str, params: dict[str, str]) -> Any:
        """The JSON reply of a valid request when no fault is on."""
        if dialect == "zeon":
            return self._answer_zeon(method, params)
        return self._answer_classic(method, params)

    def _answer_zeon(self, method: str, params: dict[str, str]) -> Any:
        if method == "ping":
            return {"text": "pong"}
        if method == "get-method-list":
            return {"result": 1, "data": list(ZEON_METHODS)}
        if method == "get-points":
            return self.config["points"]
        if method == "call-me":
            missing = [name for name in ("src", "dst") if not params.get(name)]
            if missing:
                return self._refusal("zeon", f"missing parameter: {', '.join(missing)}")
            config = self.config
            src = params["src"]
            # src is an extension, or a group's number: then other members ring before the one who answers.
            rings = (src,) if src in config["points"] else _group_rings(config)
            call = self._new_call("OUT", params["dst"], rings, config)
            self._begin(call, config)
            return {"code": "success", "callid": call.call_id}
        return self._refusal("zeon", "unknown method")

    def _answer_classic(self, method: str, params: dict[str, str]) -> Any:
        if method == "ping":
            return {"result": 1, "data": "pong"}
        if method == "get-method-list":
            return {"result": 1, "data": list(CLASSIC_METHODS)}
        if method == "get-points":
            return {"result": 1, "data": self.config["points"]}
        if method in ("call-employee", "call-group"):
            target = "ext" if method == "call-employee" else "group"
            missing = [name for name in (target, "phone") if not params.get(name)]
            if missing:
                return self._refusal("classic", f"missing parameter: {', '.join(missing)}")
            config = self.config
            # An employee call is answered by that employee; a group call by one of the group's members.
            exten = params["ext"] if target == "ext" else config["group_member"]
            call = self._new_call("OUT", params["phone"], (exten,), config, group=params.get("group"))
            self._begin(call, config)
            return {"result": 1, "data": {"call_id": call.call_id}}
        if method == "get-calls":
            return {"result": 1, "data": self.calls}
        if method == "get-calls-last-id":
            calls = self.calls
            return {"result": 1, "data": calls[-1]["id"] if calls else 0}
        if method == "get-mp3":
            call_id = params.get("id") or params.get("link") or ""
            if not any(c.get("id") == call_id for c in self.calls):
                return {"result": 0, "text": "call not found"}
            return {"result": 1, "data": {"link": self._record_link(call_id)}}
        return self._refusal("classic", "unknown method")

    def _new_call(
        self,
        direction: str,
        phone: str,
        rings: tuple[str, ...],
        config: dict[str, Any],
        *,
        answer: str | None = None,
        group: str | None = None,
    ) -> _Call:
        return _Call(
            call_id=f"{int(time.time())}.{next(self._call_ids)}",
            direction=direction,
            phone=phone,
            rings=rings,
            answer=answer or config["answer"],
            transfered=config["transfered"],
            pickedup=config["pickedup"],
            started=datetime.now(MOSCOW).strftime("%Y-%m-%d %H:%M:%S"),
            group=group,
        )

    def _begin(self, call: _Call, config: dict[str, Any]) -> None:
        """One thread per call posts its webhooks in order, so a call's webhooks never overtake each other. The
        dialect and the gaps are the ones of the call's start."""
        run = self._run_zeon_call if config["dialect"] == "zeon" else self._run_classic_call
        threading.Thread(target=run, args=(call, config), name=f"pbx-sim-call-{call.call_id}", daemon=True).start()

    def _record_link(self, call_id: str) -> str:
        return f"{self.base_url}/records/{call_id}.mp3"

    def _run_classic_call(self, call: _Call, config: dict[str, Any]) -> None:
        if self._stopping.wait(config["webhook_delay_seconds"]):
            return
        completion = self._classic_completion(call)
        with self._lock:
            self._calls.append(completion)
        self._post(call.call_id, "completion", completion)

    def _classic_completion(self, call: _Call) -> dict[str, str]:
        answered = call.answer == "answered"
        completion = {
            "id": call.call_id,
            "linkedid": call.call_id,
            "calldate": call.started,
            "calltype": call.direction,
            "src": call.exten if call.direction == "OUT" else call.phone,
            "dst": call.phone if call.direction == "OUT" else call.exten,
            "client": call.phone,
            "exten": call.exten,
            "members": call.exten,
            "talktime": SIMULATED_TALKTIME if answered else "00:00:00",
            "lost": "0" if answered else "1",
            "waiting": "0",
        }
        if answered:
            completion["link"] = self._record_link(call.call_id)
        else:
            completion["disposition"] = _ZEON_STATUS[call.answer]
        if call.group is not None:
            completion["group"] = call.group
        return completion

    def _run_zeon_call(self, call: _Call, config: dict[str, Any]) -> None:
        ring, talk = _gaps(config)
        event = {"cmd": "event", "callid": call.call_id, "call-type": call.direction}
        for exten in call.rings:  # a call routed to several extensions rings each in turn, one callid
            self._post(call.call_id, "event", {**event, "call-status": "RINGING", **_who(call, exten)})
            if self._stopping.wait(ring):
                return
        answered = call.answer == "answered"
        if answered:
            self._post(call.call_id, "event", {**event, "call-status": "ACCEPTED", **_who(call)})
            if self._stopping.wait(talk):
                return
        history = self._zeon_history(call)
        with self._lock:
            self._calls.append(history)
        self._post(call.call_id, "history", history)

    def _zeon_history(self, call: _Call) -> dict[str, Any]:
        answered = call.answer == "answered"
        history: dict[str, Any] = {
            "cmd": "history",
            "calldate": call.started,
            "callid": call.call_id,
            "call-type": call.direction,
            "call-status": _ZEON_STATUS[call.answer],
            "exten": call.exten,
            "phone": call.phone,
        }
        if answered:
            history["link"] = self._record_link(call.call_id)
        history |= {
            "duration": SIMULATED_TALK_SECONDS if answered else 0,
            # Missed is the CRM's word for an incoming call nobody took; an unanswered outgoing call is not.
            "missed": _flag(not answered and call.direction == "IN"),
            "pickedup": _flag(call.pickedup),
            "transfered": _flag(call.transfered),
        }
        return history

    def _post(self, call_id: str, cmd: str, payload: dict[str, Any]) -> None:
        """POST one webhook (zeon: JSON with the token; classic: a form) and record the outcome with the connector's
        answer. The URL and token are read now, as a PBX reads its settings when it posts; no URL, no post."""
        config = self.config
        url = config["webhook_url"]
        if not url:
            return
        if cmd == "completion":
            body, content_type = urlencode(payload).encode("ascii"), "application/x-www-form-urlencoded"
        else:
            payload = {**payload, "token": config["crm_token"]}  # the CRM key set in the PBX: on every zeon webhook
            body, content_type = json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"
        outcome: dict[str, Any] = {
            "call_id": call_id,
            "cmd": cmd,
            "call_status": payload.get("call-status"),  # zeon only
            "url": url,
            "payload": payload,
            "status": None,
            "answer": None,
            "error": None,
        }
        # The URL is set by the developer and checked to be http(s) in configure.
        request = urllib.request.Request(  # noqa: S310
            url,
            data=body,
            headers={"Content-Type": content_type, "User-Agent": "ZEON-PBX-simulator"},
            method="POST",
        )
        outcome["sent_at"] = time.time()  # unix seconds as it went out (`make bench-card` measures from it)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                outcome["status"], outcome["answer"] = response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as exc:
            outcome["status"], outcome["answer"] = exc.code, _json_or_text(exc.read())
        except (OSError, ValueError) as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        outcome["time"] = _now()
        logger.info("%s webhook for %s -> %s", cmd, call_id, outcome["status"] or outcome["error"])
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
        elif path == "/_sim/incoming":
            self._control(self._incoming)
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
        elif record and self.sim.config["recordings_gone"]:
            self._send_json(404, {"error": "recording gone"})
        elif record:
            self._send(200, RECORDING_MP3, "audio/mpeg")
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
        dialect = self.sim.dialect  # one request, one dialect, even if it is switched meanwhile
        self.sim._record(
            {
                "topic": topic,
                "method": method,
                "params": params,
                "auth": auth_mode,
                "valid": valid,
                "fault": fault["mode"],
                "dialect": dialect,
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
        elif mode == "unknown_json":
            # Valid JSON of no shape either dialect knows: the connector cannot tell whether a call started.
            self._send_json(200, {"status": "queued"})
        elif mode == "result_0":
            self._send_json(200, self.sim._refusal(dialect, fault["text"] or DEFAULT_FAULT_TEXT))
        elif not valid:
            text = "invalid token" if auth_mode == "bearer" else "invalid hash"
            self._send_json(200, self.sim._refusal(dialect, text))
        else:
            self._send_json(200, self.sim._answer(dialect, method, params))

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
        if "webhook_url" in body:
            body = {**body, "webhook_url": body["webhook_url"] or None}  # "" switches the webhooks off
        return self.sim.configure(**body)

    def _incoming(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"phone", "exten", "answer"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        phone = str(body.get("phone") or "")
        return {"callid": self.sim.start_incoming_call(phone, body.get("exten"), body.get("answer"))}

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


# --- settings ----------------------------------------------------------------------------------------------------


def _check_setting(setting: str, value: Any, *, name: str | None = None) -> Any:
    """The setting's value as stored, or ValueError naming what is wrong (under `name` when given)."""
    name = name or setting
    if setting == "dialect":
        if value not in DIALECTS:
            raise ValueError(f"{name} must be one of {', '.join(DIALECTS)}")
        return value
    if setting == "webhook_url":
        if value is not None and (not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https")):
            raise ValueError(f"{name} must be an http(s) URL")
        return value
    if setting == "webhook_delay_seconds":
        if not _is_seconds(value):
            raise ValueError(f"{name} must be a non-negative number")
        return float(value)
    if setting in ("ring_seconds", "talk_seconds"):  # null: derived from webhook_delay_seconds
        if value is not None and not _is_seconds(value):
            raise ValueError(f"{name} must be a non-negative number or null")
        return None if value is None else float(value)
    if setting == "group_member":
        if not isinstance(value, str) or not _SHORT_NUMBER.fullmatch(value):
            raise ValueError(f"{name} must be a short number of 2-8 digits, e.g. '346'")
        return value
    if setting == "points":
        if not isinstance(value, list) or not value:
            raise ValueError(f"{name} must be a non-empty list of short numbers")
        return [_check_setting("group_member", point, name="each of points") for point in value]
    if setting == "crm_token":
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
        return value
    if setting == "answer":
        if value not in ANSWERS:
            raise ValueError(f"{name} must be one of {', '.join(ANSWERS)}")
        return value
    if setting == "traffic_seconds":
        if value is not None and (not _is_seconds(value) or value < 1):
            raise ValueError(f"{name} must be at least 1 second, or null (no calls by themselves)")
        return None if value is None else float(value)
    if setting in ("transfered", "pickedup", "recordings_gone"):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    raise ValueError(f"unknown setting {setting!r}")


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _gaps(config: dict[str, Any]) -> tuple[float, float]:
    """(seconds each extension rings, seconds of talk) of a zeon call."""
    delay = config["webhook_delay_seconds"]
    ring = config["ring_seconds"] if config["ring_seconds"] is not None else delay * _RING_SHARE
    talk = config["talk_seconds"] if config["talk_seconds"] is not None else delay - delay * _RING_SHARE
    return ring, talk


def _group_rings(config: dict[str, Any]) -> tuple[str, ...]:
    """A group rings one member who does not pick up, then the one who answers (one callid, two RINGING events)."""
    member = config["group_member"]
    others = [point for point in config["points"] if point != member]
    return (*others[:1], member)


def _who(call: _Call, exten: str | None = None) -> dict[str, str]:
    return {"exten": exten or call.exten, "phone": call.phone}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")[:500]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.pbx_simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--secret", required=True, help="the project's PBX secret (md5 salt / bearer token)")
    parser.add_argument("--path", default="/b3/api/v2/start.php")
    parser.add_argument("--dialect", choices=DIALECTS, default=DEFAULT_DIALECT, help="the replies and webhooks spoken")
    parser.add_argument("--webhook-url", default=None, help="where to POST call webhooks (the connector webhook)")
    parser.add_argument("--webhook-delay", type=float, default=1.0, help="seconds from a call start to its end")
    parser.add_argument("--ring-seconds", type=float, default=None, help="zeon: seconds each extension rings")
    parser.add_argument("--talk-seconds", type=float, default=None, help="zeon: seconds from ACCEPTED to history")
    parser.add_argument(
        "--group-member", default=DEFAULT_GROUP_MEMBER, help="short number that answers group calls (exten)"
    )
    parser.add_argument("--points", default=",".join(DEFAULT_POINTS), help="the extensions, comma-separated")
    parser.add_argument("--crm-token", default=DEFAULT_CRM_TOKEN, help="zeon: the `token` of every webhook")
    parser.add_argument(
        "--traffic-seconds", type=float, default=None, help="clients call in by themselves about this often"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pbx-simulator %(message)s")
    try:
        simulator = PbxSimulator(
            args.secret,
            host=args.host,
            port=args.port,
            path=args.path,
            dialect=args.dialect,
            webhook_url=args.webhook_url,
            webhook_delay_seconds=args.webhook_delay,
            ring_seconds=args.ring_seconds,
            talk_seconds=args.talk_seconds,
            group_member=args.group_member,
            points=[point.strip() for point in args.points.split(",")],
            crm_token=args.crm_token,
        )
        simulator.configure(traffic_seconds=args.traffic_seconds)
    except ValueError as exc:
        parser.error(str(exc))
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with simulator:
        print(
            f"PBX simulator ({simulator.dialect} dialect): {simulator.url} "
            f"(control: {simulator.base_url}/_sim/requests); Ctrl-C to stop",
            flush=True,
        )
        while not done.wait(0.5):
            pass
    logger.info("PBX simulator stopped")


if __name__ == "__main__":
    main()
