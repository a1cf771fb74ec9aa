"""Make the local DynamoDB misbehave the way the real one does: a fault-injecting HTTP proxy in front of moto.

moto answers every DynamoDB request at once and never loses one; on AWS, DynamoDB can be unreachable and cancels
transactions that collide with another one. This proxy forwards everything to the moto server unchanged, except that
it can, at run time, (a) drop every request without an answer, as an unreachable endpoint does, and (b) cancel a share
of `TransactWriteItems` calls with the very `TransactionCanceledException` (`TransactionConflict`) that DynamoDB sends,
so botocore and the service see the errors in DynamoDB's own wire format. Point AWS_ENDPOINT_URL_DYNAMODB at it;
SSM and SQS go straight to moto.

Control API (JSON), on the proxy's port:
    GET /_control/faults                     {"dynamodb": "up|down", "conflict_rate": 0.0,
                                              "injected": {"conflicts": 0, "refused": 0}}
    POST /_control/faults                    {"dynamodb": "up|down", "conflict_rate": 0.25} (either key), the new state

Run: python -m devstack.dynamodb_faults --upstream http://127.0.0.1:5000 [--port 5001 --conflict-rate 0.1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import random
import signal
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

logger = logging.getLogger("devstack.dynamodb_faults")

CONTROL_PREFIX = "/_control"
FAULTS_PATH = "/_control/faults"
TRANSACT_WRITE_TARGET = "DynamoDB_20120810.TransactWriteItems"
UPSTREAM_TIMEOUT_SECONDS = 30.0
_MAX_CONTROL_BODY_BYTES = 64 * 1024
# RFC 9110 section 7.6.1: these describe one hop, not the message; Host is the upstream's own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length"}


class ControlError(ValueError):
    """A control request the proxy refuses (answered 400)."""


class FaultProxy:
    """A proxy on `host:port` (0: a free port) in front of `upstream_url`; `start()` serves in a daemon thread."""

    def __init__(
        self,
        upstream_url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        conflict_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme not in ("http", "https") or not upstream.hostname:
            raise ValueError(f"upstream_url must be an http(s) URL, not {upstream_url!r}")
        self.upstream_url = upstream_url
        self._upstream = upstream
        self.host = host
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._down = False
        self._conflict_rate = _check_rate(conflict_rate)
        self._conflicts = 0
        self._refused = 0
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="dynamodb-faults", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        # shutdown() waits for serve_forever to return: it would wait forever for a server never started.
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- faults ----------------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "dynamodb": "down" if self._down else "up",
                "conflict_rate": self._conflict_rate,
                "injected": {"conflicts": self._conflicts, "refused": self._refused},
            }

    def configure(self, changes: object) -> dict[str, Any]:
        """Apply a control body ({"dynamodb": "up|down", "conflict_rate": p}) all or nothing; the new state."""
        if not isinstance(changes, dict):
            raise ControlError("the body must be a JSON object")
        unknown = sorted(set(changes) - {"dynamodb", "conflict_rate"})
        if unknown:
            raise ControlError(f"unknown keys: {', '.join(unknown)}; expected dynamodb and/or conflict_rate")
        if "dynamodb" in changes and changes["dynamodb"] not in ("up", "down"):
            raise ControlError('dynamodb must be "up" or "down"')
        rate = _check_rate(changes["conflict_rate"]) if "conflict_rate" in changes else None
        with self._lock:
            if "dynamodb" in changes:
                self._down = changes["dynamodb"] == "down"
            if rate is not None:
                self._conflict_rate = rate
        return self.state

    def _refuse(self) -> bool:
        """True (and counted) when DynamoDB is down: the request gets no answer at all."""
        with self._lock:
            if self._down:
                self._refused += 1
            return self._down

    def _conflict_at(self, item_count: int) -> int | None:
        """Which item of a transaction of `item_count` items conflicts, or None to let the transaction through."""
        with self._lock:
            if item_count < 1 or self._conflict_rate <= 0 or self._random.random() >= self._conflict_rate:
                return None
            self._conflicts += 1
            return self._random.randrange(item_count)


def _check_rate(rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or not 0 <= rate <= 1:
        raise ControlError("conflict_rate must be a number from 0 to 1")
    return float(rate)


def transaction_conflict(item_count: int, conflicting: int) -> dict[str, Any]:
    """DynamoDB's answer body when item `conflicting` of a transaction collides with another transaction."""
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(item_count)]
    reasons[conflicting] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    codes = ", ".join(reason["Code"] for reason in reasons)
    return {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        "CancellationReasons": reasons,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request waiting on moto never holds up stop()

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        super().__init__(address, _Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    server_version = "dynamodb-faults"

    @property
    def proxy(self) -> FaultProxy:
        return cast(_Server, self.server).proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per DynamoDB call would drown the stack's log

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(path)
        else:
            self._dynamodb()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # --- control API -----------------------------------------------------------------------------------------------

    def _control(self, path: str) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True  # the unread rest of the body would be taken for the next request
            self._send_json(400, {"error": "bad_request", "message": str(exc)})
            return
        if path != FAULTS_PATH:
            self._send_json(404, {"error": "not_found", "message": f"no control route {path}; try {FAULTS_PATH}"})
        elif self.command == "GET":
            self._send_json(200, self.proxy.state)
        elif self.command == "POST":
            try:
                self._send_json(200, self.proxy.configure(json.loads(body or b"{}")))
            except ControlError as exc:
                self._send_json(400, {"error": "invalid_faults", "message": str(exc)})
            except ValueError as exc:  # JSONDecodeError and bad UTF-8 alike
                self._send_json(400, {"error": "invalid_json", "message": f"the body is not JSON: {exc}"})
        else:
            self._send_json(405, {"error": "method_not_allowed", "message": f"{self.command} {path}: use GET or POST"})

    # --- DynamoDB --------------------------------------------------------------------------------------------------

    def _dynamodb(self) -> None:
        try:
            body = self._read_body(limit=None)
        except ValueError as exc:
            self.close_connection = True
            self._send_json(400, {"error": "bad_request", "message": str(exc)})
            return
        if self.proxy._refuse():
            self.close_connection = True  # closed without a byte of answer: the client sees a dropped connection
            return
        if self.headers.get("X-Amz-Target") == TRANSACT_WRITE_TARGET:
            item_count = _transact_item_count(body)
            conflicting = self.proxy._conflict_at(item_count)
            if conflicting is not None:
                self._send_amz_json(400, transaction_conflict(item_count, conflicting))
                return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        upstream = self.proxy._upstream
        connection_class = http.client.HTTPSConnection if upstream.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(upstream.hostname or "", upstream.port, timeout=UPSTREAM_TIMEOUT_SECONDS)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _NOT_FORWARDED}
        try:
            connection.request(self.command, upstream.path.rstrip("/") + self.path, body or None, headers)
            response = connection.getresponse()
            answer = response.read()
        except OSError as exc:  # moto down or too slow: say so rather than hang up
            logger.warning("dynamodb-faults: %s %s -> upstream failed: %s", self.command, self.path, exc)
            self._send_json(502, {"error": "upstream_unreachable", "message": f"{self.proxy.upstream_url}: {exc}"})
            return
        finally:
            connection.close()
        self.send_response_only(response.status, response.reason)  # the upstream's Date and Server are relayed
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    # --- plumbing --------------------------------------------------------------------------------------------------

    def _read_body(self, limit: int | None = _MAX_CONTROL_BODY_BYTES) -> bytes:
        if self.headers.get("Transfer-Encoding"):  # botocore always sends Content-Length to DynamoDB
            raise ValueError("chunked request bodies are not supported: send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("bad Content-Length") from None
        if length < 0 or (limit is not None and length > limit):
            raise ValueError("request body too large" if length > 0 else "bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), {"Content-Type": "application/json"})

    def _send_amz_json(self, status: int, payload: Any) -> None:
        """An answer as DynamoDB sends it; botocore checks x-amz-crc32 when it is there."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": str(uuid.uuid4()),
            "x-amz-crc32": str(zlib.crc32(body)),
        }
        self._send(status, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _transact_item_count(body: bytes) -> int:
    """How many TransactItems the request holds; 0 when it is not a well-formed request (moto's to reject)."""
    try:
        items = json.loads(body).get("TransactItems")
    except (ValueError, AttributeError):
        return 0
    return len(items) if isinstance(items, list) else 0


def _rate_argument(text: str) -> float:
    try:
        return _check_rate(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.dynamodb_faults", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (the URL is printed)")
    parser.add_argument("--upstream", required=True, help="the moto server's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument(
        "--conflict-rate",
        type=_rate_argument,
        default=os.environ.get("DDB_CONFLICT_RATE") or "0",  # argparse runs `type` on a string default
        help="share of TransactWriteItems cancelled with TransactionConflict (default: $DDB_CONFLICT_RATE or 0)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with FaultProxy(args.upstream, host=args.host, port=args.port, conflict_rate=args.conflict_rate) as proxy:
        print(f"dynamodb-faults: serving {proxy.url} -> {args.upstream}", flush=True)
        while not done.wait(0.5):
            pass


if __name__ == "__main__":
    main()
