"""Helpers for tests: API Gateway proxy events and answers, the real local stack as a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devstack.run import free_ports

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def api_event(
    method: str,
    resource: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (what the local gateway and API Gateway send)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "test",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def answer_json(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"]) if answer.get("body") else None


def webhook_event(secret: str, form: dict[str, str]) -> dict[str, Any]:
    """A ZEON-style form-encoded call completion for POST /iptelefon_webhook/{secret}."""
    return api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{secret}",
        body=urllib.parse.urlencode(form),
        path_params={"secret": secret},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


# A stack file like the one `make run` writes, for the admin CLI against the in-process moto (endpoint null).
IN_PROCESS_STACK: dict[str, Any] = {
    "aws_endpoint_url": None,
    "region": "us-east-1",
    "table_name": "local-MainTable",
    "ssm_prefix": "/iptelefon-connector/test",
    "api_url": None,
}


def inbox_message(form: dict[str, str], secret: str) -> str:
    """A webhook as the webhook function puts it into the inbox: the form-encoded body and the secret's hash."""
    from iptelefon.domain.hashes import sha256_hex
    from iptelefon.domain.webhook_body import WebhookRequest

    body = urllib.parse.urlencode(form).encode()
    request = WebhookRequest(body=body, content_type="application/x-www-form-urlencoded")
    return request.to_message(sha256_hex(secret))


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it from the local WebhookInbox."""
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"r-{n}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-WebhookInbox",
                "awsRegion": "us-east-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


def eventually(probe: Callable[[], T | None], within: float = 3.0) -> T:
    """The probe's first answer that is not None, polled every 10 ms; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while (value := probe()) is None:
        assert time.monotonic() < deadline, "not there in time"
        time.sleep(0.01)
    return value


# -- the real local stack (`python -m devstack.run`) as a subprocess on free ports -----------------------------------
@dataclass
class LocalStackProcess:
    """`python -m devstack.run` on 127.0.0.1; its output in <state>/stack.log (a pipe nobody reads would block it)."""

    state: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, state: Path, *options: str, ports: dict[str, int] | None = None) -> LocalStackProcess:
        ports = ports or free_ports(("api", "moto", "pbx", "faults", "receiver"))
        command = [sys.executable, "-m", "devstack.run", "--state-dir", str(state), *options]
        for name, port in ports.items():
            command += [f"--{name}-port", str(port)]
        state.mkdir(parents=True, exist_ok=True)
        with (state / "stack.log").open("ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        return cls(state, ports, process)

    @property
    def stack_file(self) -> Path:
        return self.state / "stack.json"

    @property
    def log(self) -> str:
        return (self.state / "stack.log").read_text(errors="replace")

    def wait_until_running(self, timeout: float = 90) -> dict[str, Any]:
        """The stack.json it wrote once everything is up; fails with the stack's log if it stopped or took too long."""
        deadline = time.monotonic() + timeout
        while not self.stack_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the local stack did not start:\n{self.log[-5000:]}")
            time.sleep(0.2)
        return dict(json.loads(self.stack_file.read_text()))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def answer_lost_once(monkeypatch: pytest.MonkeyPatch, chosen: Any) -> list[Any]:
    """The storage's first single write that `chosen` picks is sent twice, as botocore does after a read timeout: the
    request landed, its answer was lost, the same request goes again. Returns the writes sent twice."""
    from iptelefon.data.gateway import get_storage

    storage = get_storage()
    write = storage.write
    sent_twice: list[Any] = []

    def answer_lost_then_sent_again(one: Any) -> Any:
        if not sent_twice and chosen(one):
            sent_twice.append(one)
            write(one)
        return write(one)

    monkeypatch.setattr(storage, "write", answer_lost_then_sent_again)
    return sent_twice
