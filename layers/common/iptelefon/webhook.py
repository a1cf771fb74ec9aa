"""The call-completion webhook: find the project by its secret, then record the call (contract section 2)."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field
from typing import Any

from iptelefon.errors import NotFound, NotImplementedYet
from iptelefon.project_config import get_pbx_credentials
from iptelefon.storage import get_storage, sha256_hex

UNKNOWN_SECRET = "unknown webhook secret"  # noqa: S105 - an error message


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    content_type: str | None
    query: dict[str, str] = field(default_factory=dict)
    method: str = "POST"

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WebhookRequest:
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", errors="replace")
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(
            body=body,
            content_type=headers.get("content-type"),
            query=dict(event.get("queryStringParameters") or {}),
            method=str(event.get("httpMethod") or "POST"),
        )


def find_project_id(secret: str) -> str:
    """One key lookup by sha256(secret), then a constant-time compare with the secret in SSM."""
    project_id = get_storage().find_project_id_by_webhook_secret_hash(sha256_hex(secret))
    if project_id is None:
        raise NotFound(UNKNOWN_SECRET)
    stored = get_pbx_credentials(project_id).secret
    if not hmac.compare_digest(stored.encode(), secret.encode()):
        raise NotFound(UNKNOWN_SECRET)
    return project_id


def receive_webhook(secret: str, request: WebhookRequest) -> dict[str, Any]:
    find_project_id(secret)
    raise NotImplementedYet("call recording is not implemented yet")
