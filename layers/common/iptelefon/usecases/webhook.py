"""The call-completion webhook (contract section 2): project by secret, then the call's effects exactly once.

Round trips for a known client, warm: the secret lookup (1), the phone index GetItem (1), one transaction (1);
the project and its SSM secret come from the warm cache. An outgoing call adds the lookup of the bot's attempt.

When storage is unavailable (after the gateway's retries) or the invocation is about to run out of time, the request
goes to the durable inbox (`inbox`) with the sha256 of its secret, never the secret: the PBX hears
`{"result": 1, "queued": true}` and InboxFunction applies it later with `apply_queued`, checking the secret then.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from iptelefon.data import inbox
from iptelefon.data.attempts import latest_pending_attempt, link_attempt
from iptelefon.data.call_records import MAX_KEPT_BODY_BYTES, CallRecordStore, kept_request
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import Storage, get_storage
from iptelefon.data.pbx_settings import get_pbx_credentials
from iptelefon.data.projects import get_project_store
from iptelefon.domain.errors import DomainError, NotFound, StorageRejected, StorageUnavailable
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import Project
from iptelefon.domain.phones import mask_phone
from iptelefon.domain.webhook_payload import CanonicalCall, canonicalize, extract_fields, form_fields
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.settings import get_settings

UNKNOWN_SECRET = "unknown webhook secret"  # noqa: S105 - an error message


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    content_type: str | None
    query: dict[str, Any] = field(default_factory=dict)  # a value is a list for `name[]` keys
    method: str = "POST"

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WebhookRequest:
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", errors="replace")
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(
            body=body,
            content_type=headers.get("content-type"),
            query=query_fields(event),
            method=str(event.get("httpMethod") or "POST"),
        )

    def raw(self) -> dict[str, Any]:
        """What the PBX sent, as stored next to the call or kept when refused."""
        return kept_request(body=self.body, content_type=self.content_type, query=self.query, method=self.method)

    def to_message(self, secret_sha256: str) -> str:
        """The inbox message: the exact bytes (base64; an SQS message holds 256 KB, bodies over the webhook's limit are
        refused anyway) and the secret's hash."""
        return json.dumps(
            {
                "secret_sha256": secret_sha256,
                "body": base64.b64encode(self.body[:MAX_KEPT_BODY_BYTES]).decode(),
                "content_type": self.content_type,
                "query": self.query,
                "method": self.method,
            }
        )

    @classmethod
    def from_message(cls, message: str) -> tuple[str, WebhookRequest]:
        data = json.loads(message)
        request = cls(
            body=base64.b64decode(data["body"]),
            content_type=data.get("content_type"),
            query=dict(data.get("query") or {}),
            method=str(data.get("method") or "POST"),
        )
        return str(data["secret_sha256"]), request


def query_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The query as the PBX sent it, read like a form body. API Gateway's `queryStringParameters` keeps only the last
    value of a repeated name, so `members[]=1&members[]=2` is read from `multiValueQueryStringParameters`."""
    multi = event.get("multiValueQueryStringParameters") or {
        name: [value] for name, value in (event.get("queryStringParameters") or {}).items()
    }
    return form_fields((str(name), str(value)) for name, values in multi.items() for value in values or [])


def find_project(secret_sha256: str) -> Project | None:
    """One key lookup by the secret's sha256. The current secret is then compared (constant time) with the project's
    webhook credential: the hash of its random webhook token, or else of the PBX secret in SSM. A rotated-out one is
    accepted until its `valid_until` (the grace period), then never again."""
    projects = get_project_store()
    lookup = projects.find_webhook_secret(secret_sha256)
    project = projects.get_project_cached(str(lookup["project_id"])) if lookup else None
    if lookup is None or project is None:
        return None
    if "valid_until" in lookup:
        return project if time.time() < float(lookup["valid_until"]) else None
    if is_current_credential(project, secret_sha256):
        return project
    fresh = projects.get_project(project.id)  # the cached settings may predate a new webhook token
    return fresh if fresh is not None and is_current_credential(fresh, secret_sha256) else None


def is_current_credential(project: Project, secret_sha256: str) -> bool:
    """Whether the hash is the project's webhook credential now: its random webhook token, else its PBX secret."""
    current = project.webhook_token_sha256 or sha256_hex(get_pbx_credentials(project.id).secret)
    return hmac.compare_digest(current.encode(), secret_sha256.encode())


def receive_webhook(secret: str, request: WebhookRequest) -> dict[str, Any]:
    """The call's effects now, or (storage away) the request queued for later. 404 for an unknown secret."""
    secret_sha256 = sha256_hex(secret)
    try:
        project = find_project(secret_sha256)
        if project is None:
            raise NotFound(UNKNOWN_SECRET)
        return apply_webhook(project, request)
    except StorageUnavailable as error:
        inbox.send(request.to_message(secret_sha256))  # StorageUnavailable (503) if SQS cannot take it either
        logger.warning("storage unavailable: webhook queued in the inbox", extra={"reason": error.message})
        metrics.add_metric(name="WebhookQueued", unit="Count", value=1)
        return {"result": 1, "queued": True}


def apply_queued(message: str) -> dict[str, Any] | None:
    """Apply one inbox message: the call's effects, or the request kept as rejected (a 4xx the PBX never heard).

    None when the secret is unknown by now (never valid, or changed since): dropped and counted, never applied.
    StorageUnavailable propagates: the message comes back later.
    """
    secret_sha256, request = WebhookRequest.from_message(message)
    project = find_project(secret_sha256)
    if project is None:
        logger.warning("inbox: a queued webhook has an unknown secret; dropped")
        metrics.add_metric(name="InboxUnknownSecret", unit="Count", value=1)
        return None
    try:
        return apply_webhook(project, request)
    except DomainError as error:
        if error.status_code >= 500:  # storage away (the message comes back) or refusing (the dead-letter queue)
            raise
        return {"result": 0, "error": error.code}  # unreadable: `apply_webhook` kept the request for the project


def apply_webhook(project: Project, request: WebhookRequest) -> dict[str, Any]:
    records = CallRecordStore(get_storage())
    try:
        fields = extract_fields(
            body=request.body,
            content_type=request.content_type,
            query=request.query,
            max_bytes=get_settings().max_webhook_body_bytes,
        )
        call = canonicalize(fields, default_region=project.default_region)
    except DomainError as error:
        # Nothing the PBX sent is lost: the unreadable request is kept for the project before the 4xx goes out.
        records.keep_rejected(
            project.id, request.raw(), error_code=error.code, message=error.message, status=error.status_code
        )
        metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
        raise
    try:
        return record_call(project, call, request.raw(), records)
    except StorageRejected as error:  # DynamoDB refused the call's items: keep what the PBX sent for an operator
        records.keep_rejected(project.id, request.raw(), error_code=error.code, message=error.message, status=500)
        raise


def record_call(project: Project, call: CanonicalCall, raw: dict[str, Any], records: CallRecordStore) -> dict[str, Any]:
    client_id, created = ClientStore(records.storage).match_or_create(project, call.client_phone)
    duplicate = not records.add_new(project, client_id, call, raw)
    if duplicate:
        existing = records.get(project.id, call.idempotency_key) or {}
        client_id = str(existing.get("client_id", client_id))
        if call.record_link and not existing.get("record_link"):
            records.add_record_link(project, existing, call)
    if call.direction != "in":  # a bot-started call is an outgoing callback: link it to its attempt
        link_to_attempt(records.storage, project, call, client_id)
    logger.info(
        "call recorded",
        extra={
            "project_id": project.id,
            "call_key": call.idempotency_key,
            "phone": mask_phone(call.client_phone),
            "client_created": created,
            "duplicate": duplicate,
        },
    )
    metrics.add_metric(name="WebhookDuplicate" if duplicate else "CallRecorded", unit="Count", value=1)
    return {"result": 1, "call_id": call.idempotency_key, "client_id": client_id, "duplicate": duplicate}


def link_to_attempt(storage: Storage, project: Project, call: CanonicalCall, client_id: str) -> None:
    """Mark the bot's call attempt to this phone as completed by this call (also on a replay: self-healing)."""
    attempt = latest_pending_attempt(storage, project.id, call.client_phone, pbx_call_id=call.call_id)
    if attempt is not None:
        link_attempt(storage, project.id, str(attempt["attempt_id"]), call.idempotency_key, client_id)
