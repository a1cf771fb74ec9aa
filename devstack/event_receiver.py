"""A sample receiver of call events (issue 22): what a bot or a CRM runs. It verifies each delivery's signature with the
`standardwebhooks` package (as a receiver should: not with the sender's own code) and prints each event.

`make run` starts it on 127.0.0.1:8790 (`RECEIVER_PORT`) and registers it as an endpoint of the demo project; the
secret it verifies with is read from `--secret-file` at each request (written when the endpoint is registered).

    POST /                  a delivery: 204 when its signature verifies, 401 when not (the service then retries)
    GET  /_events           what came: [{"webhook_id", "type", "verified", "received_at", "status", "event", "body",
                            "headers"}], oldest first
    DELETE /_events         forget them
    POST /_config           {"status": 503}: answer every delivery with this (a receiver that is down); {"status": 204}
                            back to normal
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

DEFAULT_PORT = 8790


class Receiver:
    def __init__(self, secret_file: Path, *, quiet: bool = False) -> None:
        self.secret_file = secret_file
        self.quiet = quiet
        self.events: list[dict[str, Any]] = []
        self.status = 204
        self.lock = threading.Lock()

    def secret(self) -> str | None:
        try:
            return self.secret_file.read_text().strip() or None
        except OSError:
            return None

    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        """The answer to one delivery: the configured status when verified, 401 when the signature does not verify."""
        secret = self.secret()
        try:
            event = Webhook(secret).verify(body, headers) if secret else None
            verified = event is not None
        except WebhookVerificationError:
            event, verified = json.loads(body or b"null"), False
        status = self.status if verified else 401
        entry = {
            "webhook_id": headers.get("webhook-id"),
            "type": (event or {}).get("type"),
            "verified": verified,
            "received_at": time.time(),
            "status": status,
            "event": event,
            # as it came, for a test that checks the signature itself
            "body": body.decode("utf-8", errors="replace"),
            "headers": {name: value for name, value in headers.items() if name.startswith("webhook-")},
        }
        with self.lock:
            self.events.append(entry)
        if not self.quiet:
            data = (event or {}).get("data") or {}
            mark = "verified" if verified else "SIGNATURE INVALID"
            print(
                f"receiver: {entry['type']} {data.get('call_key')} {entry['webhook_id']} ({mark}) -> {status}",
                flush=True,
            )
        return status


def serve(receiver: Receiver, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/_config":
                receiver.status = int(json.loads(body or b"{}").get("status", 204))
                self._reply(200, {"status": receiver.status})
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._reply(receiver.receive(body, headers), None)

        def do_GET(self) -> None:
            if self.path != "/_events":
                self._reply(404, {"error": "not_found"})
                return
            with receiver.lock:
                self._reply(200, list(receiver.events))

        def do_DELETE(self) -> None:
            with receiver.lock:
                receiver.events.clear()
            self._reply(200, {"events": 0})

        def _reply(self, status: int, payload: Any) -> None:
            data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # the receiver prints its own line per event
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="event-receiver", daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="a sample receiver of call events (standardwebhooks-verified)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("RECEIVER_PORT") or DEFAULT_PORT))
    parser.add_argument("--secret-file", type=Path, required=True, help="holds the endpoint's whsec_ secret")
    parser.add_argument("--quiet", action="store_true", help="print nothing per event (the bench)")
    args = parser.parse_args()
    server = serve(Receiver(args.secret_file, quiet=args.quiet), args.port)
    print(f"receiver: listening on http://127.0.0.1:{args.port}/", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        sys.exit(0)


if __name__ == "__main__":
    main()
