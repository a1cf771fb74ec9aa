"""Helpers for tests: API Gateway proxy events and answers."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Any


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
    from iptelefon.storage import sha256_hex
    from iptelefon.webhook import WebhookRequest

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
