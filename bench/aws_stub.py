"""A tiny local HTTP server answering DynamoDB, SSM and the PBX as fast as it can, for the cold-start bench.

It knows a fixed set of items and parameters (seeded with the project's own admin code against moto) and never
changes them: every GetItem finds the same item, every write succeeds (its condition holds), GetParametersByPath
answers the project's PBX settings, `POST /start.php` is a PBX that started the call. So each request of a bench
takes the same path, a known client and a new call, however often it is sent. Anything else is a 400, which fails the
request and the bench loudly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
PBX_PATH = "/start.php"
PBX_REPLY = {"result": 1, "data": {"call_id": "bench-pbx-call"}}


@dataclass
class StubData:
    # (table, pk, sk) -> item in DynamoDB JSON
    items: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    # GetParametersByPath answers: the parameters under each path
    parameters: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def answer(self, target: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        service, _, operation = target.partition(".")
        if service.startswith("DynamoDB_") and operation == "GetItem":
            key = request["Key"]
            item = self.items.get((request["TableName"], key["pk"]["S"], key["sk"]["S"]))
            return 200, {"Item": item} if item else {}
        if service.startswith("DynamoDB_") and operation in DYNAMODB_WRITES:
            return 200, {}
        if service == "AmazonSSM" and operation == "GetParametersByPath":
            return 200, {"Parameters": self.parameters.get(request["Path"].rstrip("/"), [])}
        message = f"the bench stub does not answer {target}"
        return 400, {"__type": "com.amazon.coral.validate#ValidationException", "message": message}


@contextmanager
def running_stub(data: StubData) -> Iterator[str]:
    """Serve `data` on a free loopback port; yields the endpoint URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore and httpx use AWS and the PBX
        disable_nagle_algorithm = True  # headers and body in two writes: no 40 ms delayed-ACK stall

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == PBX_PATH:
                self._reply(200, PBX_REPLY, "application/json")
                return
            target = self.headers.get("X-Amz-Target") or ""
            status, payload = data.answer(target, json.loads(body or b"{}"))
            self._reply(status, payload, "application/x-amz-json-1.0")

        def _reply(self, status: int, payload: dict[str, Any], content_type: str) -> None:
            encoded = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
