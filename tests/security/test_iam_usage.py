"""Least privilege, proven by use: each function's IAM grants are exactly the AWS calls its handler makes.

For every function of template.yaml, its handler (the module the template names) serves a representative set of
requests: every route, success and failure paths, Idempotency-Key first use / repeat / refusal, a webhook that links a
bot's call attempt, an unreadable webhook that is kept. Every AWS call made while the handler runs is recorded (a patch
of `BaseClient._make_api_call`) and turned into the IAM (action, resource ARN) pairs it needs:
- a DynamoDB call needs `dynamodb:<Operation>` on its table (or `<table>/index/<name>` for an index query);
  a `TransactWriteItems` needs, per item, `PutItem` / `UpdateItem` / `DeleteItem` / `ConditionCheckItem` on that
  item's table: "Permissions for Put, Update, Delete, and Get actions are governed by the permissions used for the
  underlying PutItem, UpdateItem, DeleteItem, and GetItem operations" (DynamoDB Developer Guide, "Using IAM with
  DynamoDB transactions"); there is no IAM action named after the transaction call itself;
- an SSM call needs `ssm:<Operation>` on `parameter/<name or path>`.
Then (a) every needed pair is granted (else the deployed function gets AccessDenied) and (b) every granted pair was
needed by some request (else the grant is excess). Caches (SSM parameters, projects) are cleared before each request,
so every request takes its cold-start path.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from unittest.mock import patch

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from fixtures.aws import TEST_TEMPLATE
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, inbox_message, sqs_event
from wire import Injector, dynamodb_error

from devstack.pbx_simulator import RECORDING_MP3
from devstack.template import LOCAL_ACCOUNT
from iptelefon.adapters.recording_download import RecordingFetcher
from iptelefon.data.attempts import AttemptStore
from iptelefon.data.call_events import CallEventStore
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage, project_pk, update
from iptelefon.data.projects import get_project_store, project_store
from iptelefon.data.recording_archive import S3Archive
from iptelefon.data.recording_items import recording_pk
from iptelefon.data.tokens import TokenStore
from iptelefon.domain.models import Client, utc_stamp
from iptelefon.platform.settings import get_settings

FUNCTIONS = TEST_TEMPLATE.functions()
REGION = TEST_TEMPLATE.region
PHONE = "79004443322"
OTHER_PHONE = "79005556677"
TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}

S3_ACTIONS = {"CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject"}


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{LOCAL_ACCOUNT}:table/{name}"


IDEMPOTENCY_TABLE_ARN = table_arn(TEST_TEMPLATE.physical_name("IdempotencyTable"))
# Granted for a library, not exercised by any request: Powertools Idempotency documents dynamodb:GetItem on its table
# as required; DynamoDBPersistenceLayer reads the record with GetItem when a conditional PutItem fails without
# returning the old item (boto3 < 1.26.164, or a record deleted in between). Nothing else may stay unexercised.
LIBRARY_GRANTS = {
    "EmployeeCallFunction": {("dynamodb:GetItem", IDEMPOTENCY_TABLE_ARN)},
    "GroupCallFunction": {("dynamodb:GetItem", IDEMPOTENCY_TABLE_ARN)},
}


# -- what the template grants ------------------------------------------------------------------------------------------
def granted(logical_id: str) -> set[tuple[str, str]]:
    """(action, resource pattern) pairs of the function's inline Allow statements, intrinsics resolved."""
    pairs: set[tuple[str, str]] = set()
    for policy in TEST_TEMPLATE.doc["Resources"][logical_id]["Properties"].get("Policies", []):
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            pairs |= {(str(a), str(TEST_TEMPLATE.resolve(r))) for a in actions for r in resources}
    return pairs


def allows(grant: tuple[str, str], need: tuple[str, str]) -> bool:
    # IAM: action names are case-insensitive; `*` and `?` in a resource match any characters (`/` included).
    return grant[0].lower() == need[0].lower() and fnmatchcase(need[1], grant[1])


# -- what the handler uses ---------------------------------------------------------------------------------------------
def needed(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The IAM (action, resource ARN) pairs one AWS API call needs."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return [
                (f"dynamodb:{TRANSACT_WRITE_ACTIONS[kind]}", table_arn(spec["TableName"]))
                for item in params["TransactItems"]
                for kind, spec in item.items()
            ]
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", table_arn(item["Get"]["TableName"])) for item in params["TransactItems"]]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table_arn(name)) for name in params["RequestItems"]]
        index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
        return [(f"dynamodb:{operation}", table_arn(params["TableName"]) + index)]
    if service == "ssm":
        names = [params["Path"]] if operation == "GetParametersByPath" else params.get("Names") or [params.get("Name")]
        return [
            (f"ssm:{operation}", f"arn:aws:ssm:{REGION}:{LOCAL_ACCOUNT}:parameter/{str(name).lstrip('/')}")
            for name in names
        ]
    if service == "sqs":
        account, name = str(params["QueueUrl"]).rstrip("/").split("/")[-2:]
        # "The permissions for SendMessageBatch, DeleteMessageBatch, and ChangeMessageVisibilityBatch are the same as
        # for SendMessage, DeleteMessage, and ChangeMessageVisibility" (SQS API Reference): no IAM action of their own
        action = operation.removesuffix("Batch")
        return [(f"sqs:{action}", f"arn:aws:sqs:{REGION}:{account}:{name}")]
    if service == "s3":  # a multipart upload's every step is authorized as s3:PutObject (S3 User Guide)
        action = S3_ACTIONS.get(operation, operation)
        return [(f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
    return [(f"{service}:{operation}", "*")]  # any other service: nothing in the template grants it


@dataclass
class Usage:
    """The AWS calls each function's handler made, as IAM needs, and the request that made each first."""

    needs: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict, repr=False)
    _current: tuple[str, str] | None = None

    @contextmanager
    def running(self, logical_id: str, request: str) -> Iterator[None]:
        self._current = (logical_id, request)
        try:
            yield
        finally:
            self._current = None

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if self._current is not None:
            logical_id, request = self._current
            for need in needed(service, operation, params):
                self.needs.setdefault(logical_id, {}).setdefault(need, f"{request} ({operation})")


@pytest.fixture
def usage(monkeypatch: pytest.MonkeyPatch) -> Usage:
    seen = Usage()
    original = BaseClient._make_api_call

    def recorded(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        seen.record(client.meta.service_model.service_name, operation_name, api_params)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    # A presigned GET makes no call now: the role's s3:GetObject is what S3 checks when the URL is opened
    original_url = S3Archive.url

    def presigned(archive: S3Archive, key: str) -> str:
        seen.record("s3", "GetObject", {"Bucket": archive.bucket, "Key": key})
        return original_url(archive, key)

    monkeypatch.setattr(S3Archive, "url", presigned)
    return seen


@dataclass
class Scenario:
    usage: Usage
    project: Any
    other_project: Any
    fake_pbx: Any
    context: Any

    def invoke(self, logical_id: str, event: dict[str, Any], *, recorded: bool = True) -> dict[str, Any]:
        """Run the function's handler (the one template.yaml names) on an event, as a cold Lambda would."""
        from iptelefon.data.pbx_settings import ssm_provider

        module_name, _, attribute = FUNCTIONS[logical_id].handler.rpartition(".")
        handler = getattr(importlib.import_module(module_name), attribute)
        ssm_provider().clear_cache()
        project_store.cache_clear()
        if not recorded:
            return handler(event, self.context)  # type: ignore[no-any-return]
        request = f"{event['httpMethod']} {event['resource']}" if "httpMethod" in event else "an SQS batch or schedule"
        with self.usage.running(logical_id, request):
            return handler(event, self.context)  # type: ignore[no-any-return]

    def expect(self, status: int, logical_id: str, event: dict[str, Any], *, recorded: bool = True) -> Any:
        answer = self.invoke(logical_id, event, recorded=recorded)
        assert answer["statusCode"] == status, (event["httpMethod"], event["path"], answer)
        return answer_json(answer)


# -- representative requests, per function -----------------------------------------------------------------------------
def webhook_event(payload: dict[str, Any], *, secret: str = PBX_SECRET, method: str = "POST") -> dict[str, Any]:
    if method == "GET":
        return api_event(
            "GET",
            "/iptelefon_webhook/{secret}",
            f"/iptelefon_webhook/{secret}",
            query={k: str(v) for k, v in payload.items()},
            path_params={"secret": secret},
        )
    return api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{secret}",
        body=payload,
        path_params={"secret": secret},
    )


def call_event(
    route: str, body: dict[str, Any], token: str | None, *, key: str | None = None, client_id: str = "c-card"
) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    if route == "card":
        path = f"/v1/clients/{client_id}/call"
        return api_event(
            "POST",
            "/v1/clients/{client_id}/call",
            path,
            body=body,
            headers=headers,
            token=token,
            path_params={"client_id": client_id},
        )
    return api_event("POST", f"/v1/calls/{route}", f"/v1/calls/{route}", body=body, headers=headers, token=token)


def read_event(
    resource: str, path: str, token: str | None, *, query: dict[str, str] | None = None, params: Any = None
) -> dict[str, Any]:
    return api_event("GET", resource, path, query=query, path_params=params, token=token)


def refuse_next_pbx_request(fake_pbx: Any) -> None:
    fake_pbx.reply = httpx.Response(200, json={"result": 0, "text": "Абонент недоступен"})


def accept_pbx_requests(fake_pbx: Any) -> None:
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-1"}})


def limit_project_calls_per_minute(project: Any, limit: int) -> None:
    get_project_store().update_project(project.project.model_copy(update={"calls_per_project_per_minute": limit}))


def start_bot_call(s: Scenario) -> tuple[dict[str, Any], dict[str, str]]:
    """A bot's call to OTHER_PHONE (not recorded as the function under test's use), and the PBX's completion of it."""
    started = s.expect(
        202,
        "EmployeeCallFunction",
        call_event("employee", {"client_phone": OTHER_PHONE, "short_employee_phone": "346"}, s.project.token),
        recorded=False,
    )
    outgoing = {"id": "pbx-1", "calltype": "OUT", "dst": OTHER_PHONE, "exten": "346", "talktime": "12"}
    return started, outgoing


def webhook_requests(s: Scenario) -> None:
    first = {"id": "wh-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "00:02:35"}
    linked = {**first, "link": "https://pbx.test/records/wh-1.mp3"}
    # a new phone: client + phone index, then the call with its notification and record-link variable
    created = s.expect(200, "WebhookFunction", webhook_event(linked))
    assert created["duplicate"] is False
    s.expect(200, "WebhookFunction", webhook_event(linked))  # a replay
    # a call without a recording, then the same call again bringing it (updates the call, dialog and variable)
    s.expect(200, "WebhookFunction", webhook_event({**first, "id": "wh-2"}))
    s.expect(200, "WebhookFunction", webhook_event({**linked, "id": "wh-2"}))
    # the completion of a bot's call (an outgoing call): links the pending call attempt
    started, outgoing = start_bot_call(s)
    s.expect(200, "WebhookFunction", webhook_event(outgoing))
    assert AttemptStore(get_storage()).get("proj-a", started["attempt_id"]).status == "completed"  # type: ignore[union-attr]
    # GET with query parameters; a messenger project (a WhatsApp client is created)
    s.expect(200, "WebhookFunction", webhook_event({**first, "id": "wh-3"}, method="GET"))
    s.expect(200, "WebhookFunction", webhook_event(first, secret="pbx-secret-of-project-b"))
    # a missed call opens a callback task and texts the client (a messenger project); a later answered call closes it
    project_b = get_project_store().get_project("proj-b")
    assert project_b is not None
    get_project_store().update_project(project_b.model_copy(update={"missed_call_text": "Перезвоним"}))
    missed = {**first, "id": "wh-7", "disposition": "NO ANSWER", "talktime": "0"}
    s.expect(200, "WebhookFunction", webhook_event(missed, secret="pbx-secret-of-project-b"))
    answered = {**first, "id": "wh-8"}
    s.expect(200, "WebhookFunction", webhook_event(answered, secret="pbx-secret-of-project-b"))
    # an unreadable payload (400, kept) and an unknown secret (404)
    s.expect(400, "WebhookFunction", webhook_event({"id": "wh-4", "calltype": "IN", "exten": "346"}))
    s.expect(404, "WebhookFunction", webhook_event(first, secret="not-a-known-secret-000"))
    # DynamoDB unavailable: the call waits in the inbox
    outage = Injector([get_storage().client], "GetItem", dynamodb_error("InternalServerError", status=500))
    assert s.expect(200, "WebhookFunction", webhook_event({**first, "id": "wh-5"}))["queued"] is True
    outage.remove()


def inbox_requests(s: Scenario) -> None:
    def queued(payload: dict[str, str], secret: str = PBX_SECRET) -> str:
        return inbox_message(payload, secret)

    first = {"id": "in-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "35"}
    linked = {**first, "link": "https://pbx.test/records/in-1.mp3"}
    started, outgoing = start_bot_call(s)
    batch = [
        queued(first),  # a new phone: client, index, call
        queued(first),  # applied twice: a duplicate
        queued(linked),  # the recording comes later: call, dialog, variable updated
        queued(outgoing),  # a bot's call completes: its attempt is linked, its pointer deleted
        queued({"id": "in-2", "calltype": "IN"}),  # unreadable: kept as rejected
        queued(first, secret="not-a-known-secret-000"),  # unknown secret: dropped
    ]
    answer = s.invoke("InboxFunction", sqs_event(batch))
    assert answer == {"batchItemFailures": []}, answer
    assert AttemptStore(get_storage()).get("proj-a", started["attempt_id"]).status == "completed"  # type: ignore[union-attr]


def employee_call_requests(s: Scenario) -> None:
    token = s.project.token
    get_project_store().update_project(s.project.project.model_copy(update={"calls_per_phone_per_hour": 100}))
    bot = {"client_phone": PHONE, "short_employee_phone": "346"}
    s.expect(202, "EmployeeCallFunction", call_event("employee", bot, token))
    # Idempotency-Key: first use, a repeat (the first answer), a PBX refusal (the record is dropped: try again)
    first = s.expect(202, "EmployeeCallFunction", call_event("employee", bot, token, key="k-1"))
    assert s.expect(202, "EmployeeCallFunction", call_event("employee", bot, token, key="k-1")) == first
    refuse_next_pbx_request(s.fake_pbx)
    s.expect(502, "EmployeeCallFunction", call_event("employee", bot, token, key="k-2"))
    accept_pbx_requests(s.fake_pbx)
    # the client card: api (a PBX call), app (a tel: link), disabled, an unknown client; a key reused for another body
    s.expect(202, "EmployeeCallFunction", call_event("card", {"employee_id": "346"}, token, key="k-3"))
    s.expect(409, "EmployeeCallFunction", call_event("card", {"employee_id": "soft"}, token, key="k-3"))
    s.expect(200, "EmployeeCallFunction", call_event("card", {"employee_id": "soft"}, token))
    s.expect(403, "EmployeeCallFunction", call_event("card", {"employee_id": "off"}, token))
    s.expect(404, "EmployeeCallFunction", call_event("card", {"employee_id": "346"}, token, client_id="nobody"))
    # no token; the project's per-minute limit reached (the phone's count is given back)
    s.expect(401, "EmployeeCallFunction", call_event("employee", bot, None))
    limit_project_calls_per_minute(s.project, 1)
    s.expect(429, "EmployeeCallFunction", call_event("employee", bot, token))


def group_call_requests(s: Scenario) -> None:
    token = s.project.token
    group = {"client_phone": PHONE, "group_id": "3"}
    s.expect(202, "GroupCallFunction", call_event("group", group, token))
    first = s.expect(202, "GroupCallFunction", call_event("group", group, token, key="g-1"))
    assert s.expect(202, "GroupCallFunction", call_event("group", group, token, key="g-1")) == first
    refuse_next_pbx_request(s.fake_pbx)
    s.expect(502, "GroupCallFunction", call_event("group", group, token, key="g-2"))
    accept_pbx_requests(s.fake_pbx)
    s.expect(401, "GroupCallFunction", call_event("group", group, "iptb_not-a-token"))
    limit_project_calls_per_minute(s.project, 1)
    s.expect(429, "GroupCallFunction", call_event("group", group, token))


def read_api_requests(s: Scenario) -> None:
    token = s.project.token
    call = {"id": "r-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "35"}
    client_id = s.expect(200, "WebhookFunction", webhook_event(call), recorded=False)["client_id"]
    attempt = s.expect(
        202,
        "GroupCallFunction",
        call_event("group", {"client_phone": PHONE, "group_id": "3"}, token),
        recorded=False,
    )["attempt_id"]
    found = s.expect(200, "ReadApiFunction", read_event("/v1/clients", "/v1/clients", token, query={"phone": PHONE}))
    assert [c["id"] for c in found["clients"]] == [client_id]
    card = s.expect(
        200,
        "ReadApiFunction",
        read_event("/v1/clients/{client_id}", f"/v1/clients/{client_id}", token, params={"client_id": client_id}),
    )
    assert card["dialog"]
    calls = s.expect(
        200, "ReadApiFunction", read_event("/v1/calls", "/v1/calls", token, query={"client_id": client_id})
    )
    assert [c["call_key"] for c in calls["calls"]] == ["r-1"]
    for call_id in ("r-1", attempt):
        s.expect(
            200,
            "ReadApiFunction",
            read_event("/v1/calls/{call_id}", f"/v1/calls/{call_id}", token, params={"call_id": call_id}),
        )
    s.expect(
        404,
        "ReadApiFunction",
        read_event("/v1/clients/{client_id}", "/v1/clients/nobody", token, params={"client_id": "nobody"}),
    )
    s.expect(401, "ReadApiFunction", read_event("/v1/clients", "/v1/clients", None, query={"phone": PHONE}))
    # a recording, archived: its presigned URL (issue 25)
    recording_id = archived_recording(s)
    path = f"/v1/recordings/{recording_id}"
    s.expect(
        200,
        "ReadApiFunction",
        read_event("/v1/recordings/{recording_id}", path, token, params={"recording_id": recording_id}),
    )


# -- recordings (issue 25) ---------------------------------------------------------------------------------------------
def recording_of(s: Scenario, call_id: str, link: str) -> str:
    """The recording id of a call that brought `link` (stored through the webhook, not recorded)."""
    form = {"id": call_id, "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "5", "link": link}
    s.expect(200, "WebhookFunction", webhook_event(form), recorded=False)
    call = get_storage().get(project_pk("proj-a"), f"CALL#{call_id}")
    assert call is not None
    return str(call["recording_id"])


@contextmanager
def recordings_served(answer: Callable[[httpx.Request], httpx.Response], max_bytes: int = 100 << 20) -> Iterator[None]:
    """The copier's downloads answered by `answer` (never the network)."""
    fetcher = RecordingFetcher(httpx.Client(transport=httpx.MockTransport(answer)), max_bytes=max_bytes)
    with patch("iptelefon.adapters.recording_download.get_recording_fetcher", lambda *_: fetcher):
        yield


def serve_recordings(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/records/gone.mp3":
        return httpx.Response(404)
    if request.url.path == "/b3/api/v2/start.php":  # the project's get-file method: a link to the file
        return httpx.Response(200, json={"result": 1, "data": {"link": "https://pbx.test/records/ok.mp3"}})
    if request.url.path == "/records/huge.mp3":  # 12 MB streamed without Content-Length: cut at the cap
        return httpx.Response(200, headers={"Content-Type": "audio/mpeg"}, content=(bytes(1 << 20) for _ in range(12)))
    return httpx.Response(200, headers={"Content-Type": "audio/mpeg"}, content=RECORDING_MP3)


def archived_recording(s: Scenario) -> str:
    recording_id = recording_of(s, "rec-ok", "https://pbx.test/records/ok.mp3")
    with recordings_served(serve_recordings):
        assert s.invoke("RecordingFunction", copy_event(recording_id), recorded=False) == {"batchItemFailures": []}
    return recording_id


def copy_event(recording_id: str) -> dict[str, Any]:
    return sqs_event([json.dumps({"recording_id": recording_id})])


def recording_requests(s: Scenario) -> None:
    get_project_store().update_project(s.project.project.model_copy(update={"recording_fallback_method": "get-mp3"}))
    ok = recording_of(s, "rec-1", "https://pbx.test/records/ok.mp3")
    gone = recording_of(s, "rec-2", "https://pbx.test/records/gone.mp3")  # the fallback: SSM, then the PBX
    huge = recording_of(s, "rec-3", "https://pbx.test/records/huge.mp3")  # a multipart upload cut off: aborted
    with recordings_served(serve_recordings, max_bytes=10 << 20):
        for recording_id in (ok, gone, huge):
            assert s.invoke("RecordingFunction", copy_event(recording_id)) == {"batchItemFailures": []}
    # the schedule: a recording pending for an hour is queued again
    old = recording_of(s, "rec-4", "https://pbx.test/records/ok.mp3")
    hour_ago = utc_stamp(datetime.now(UTC) - timedelta(hours=1))
    get_storage().write(update(recording_pk(old), "RECORDING", "SET gsi1sk = :s", values={":s": f"{hour_ago}#{old}"}))
    assert s.invoke("RecordingFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})["queued"] == 1


def recording_link_requests(s: Scenario) -> None:
    recording_id = archived_recording(s)
    path = f"/r/{recording_id}"
    s.expect(
        302,
        "RecordingLinkFunction",
        api_event("GET", "/r/{recording_id}", path, path_params={"recording_id": recording_id}),
    )
    unknown = "u" * 24
    s.expect(
        404,
        "RecordingLinkFunction",
        api_event("GET", "/r/{recording_id}", f"/r/{unknown}", path_params={"recording_id": unknown}),
    )


def admin_api_requests(s: Scenario) -> None:
    from iptelefon.usecases.auth import issue_token

    admin = issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]

    def admin_event(method: str, resource: str, path: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return api_event(method, resource, path or resource, token=kwargs.pop("token", admin), **kwargs)

    def employee_event(method: str, employee_id: str, suffix: str = "", **kwargs: Any) -> dict[str, Any]:
        resource, path = f"/v1/employees/{{employee_id}}{suffix}", f"/v1/employees/{employee_id}{suffix}"
        return admin_event(method, resource, path, path_params={"employee_id": employee_id}, **kwargs)

    fn = "AdminApiFunction"
    s.expect(200, fn, admin_event("GET", "/v1/me"))
    s.expect(200, fn, admin_event("GET", "/v1/settings"))
    # a new secret: SSM written, the webhook lookup rotated (the old one kept for the grace period)
    s.expect(
        200, fn, admin_event("PUT", "/v1/settings", body={"secret": "pbx-secret-rotated-by-admin", "group_method": "g"})
    )
    s.fake_pbx.reply = lambda request: httpx.Response(
        200, json=["346"] if b"method=get-points" in request.content else {"result": 1, "data": "pong"}
    )
    s.expect(200, fn, admin_event("POST", "/v1/settings/check"))
    s.expect(200, fn, admin_event("GET", "/v1/pbx/points"))
    s.expect(200, fn, employee_event("PUT", "anna", body={"name": "Анна", "call_method": "app"}))
    issued = s.expect(201, fn, employee_event("POST", "anna", "/operator-token"))
    s.expect(200, fn, admin_event("GET", "/v1/employees"))
    s.expect(200, fn, admin_event("GET", "/v1/tokens"))
    s.expect(201, fn, admin_event("POST", "/v1/settings/webhook-token", body={"grace_hours": 1}))
    s.expect(200, fn, admin_event("DELETE", "/v1/tokens/{token_id}", f"/v1/tokens/{issued['token_id']}",
                                  path_params={"token_id": issued["token_id"]}))  # fmt: skip
    s.expect(200, fn, employee_event("DELETE", "anna"))
    # call events: an endpoint (its secret put in SSM), rotated (the old one read), its log, replays, deleted
    endpoint = s.expect(201, fn, admin_event("POST", "/v1/endpoints", body={"url": "https://crm.example.com/h"}))
    s.expect(200, fn, admin_event("GET", "/v1/endpoints"))
    eid = endpoint["endpoint_id"]

    def endpoint_event(method: str, suffix: str = "", **kwargs: Any) -> dict[str, Any]:
        resource, path = f"/v1/endpoints/{{endpoint_id}}{suffix}", f"/v1/endpoints/{eid}{suffix}"
        return admin_event(method, resource, path, path_params={"endpoint_id": eid}, **kwargs)

    s.expect(200, fn, endpoint_event("POST", "/rotate-secret", body={"grace_hours": 1}))
    s.expect(200, fn, endpoint_event("GET", "/deliveries"))
    s.invoke("WebhookFunction", webhook_event({"id": "ev-1", "calltype": "IN", "src": PHONE}), recorded=False)
    event_id = next(iter(CallEventStore(get_storage()).unrelayed(datetime.now(UTC) + timedelta(seconds=1)))).event_id
    s.expect(200, fn, admin_event("POST", "/v1/events/{event_id}/replay", f"/v1/events/{event_id}/replay",
                                  path_params={"event_id": event_id}))  # fmt: skip
    s.expect(200, fn, endpoint_event("POST", "/replay", body={"since": "2024-01-01T00:00:00+00:00"}))
    s.expect(200, fn, endpoint_event("DELETE"))
    # missed calls: the statistics, the queue, a task closed by hand
    s.expect(200, fn, admin_event("GET", "/v1/stats", query={"from": "2026-12-01", "to": "2026-12-30"}))
    missed = {"id": "iam-missed", "calltype": "IN", "src": PHONE, "exten": "346", "disposition": "NO ANSWER"}
    s.expect(200, "WebhookFunction", webhook_event(missed), recorded=False)
    (task,) = s.expect(200, fn, admin_event("GET", "/v1/callbacks"))["tasks"]
    close = f"/v1/callbacks/{task['task_id']}/close"
    params, reason = {"task_id": task["task_id"]}, {"reason": "дозвонились"}
    s.expect(200, fn, admin_event("POST", "/v1/callbacks/{task_id}/close", close, path_params=params, body=reason))
    s.expect(403, fn, admin_event("GET", "/v1/settings", token=s.project.token))
    s.expect(401, fn, admin_event("GET", "/v1/me", token=None))


SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event"}


def events_requests(s: Scenario) -> None:
    """Relay (the stream's records, the sweep) and one delivery that fails (logged, retried) and one that succeeds."""
    from iptelefon.adapters import event_sender
    from iptelefon.usecases import call_events

    statuses = [500, 204]
    sender = event_sender.EventSender(
        httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(statuses.pop(0))))
    )
    original = event_sender.get_event_sender
    event_sender.get_event_sender = lambda network="public": sender  # type: ignore[assignment]
    try:
        admin = issue_admin(s)
        s.expect(201, "AdminApiFunction", api_event("POST", "/v1/endpoints", "/v1/endpoints",
                                                    body={"url": "https://crm.example.com/h"}, token=admin),
                 recorded=False)  # fmt: skip
        for call_id in ("ev-1", "ev-2"):
            s.invoke("WebhookFunction", webhook_event({"id": call_id, "calltype": "IN", "src": PHONE}), recorded=False)
        first, _ = CallEventStore(get_storage()).unrelayed(datetime.now(UTC) + timedelta(seconds=1))
        image = {"type": {"S": "call_event"}, "pk": {"S": "PROJECT#proj-a"}, "sk": {"S": f"EVENT#{first.event_id}"}}
        stream = {"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"NewImage": image}}]}
        assert s.invoke("EventsFunction", stream) == {"relayed": 1}
        original_after = call_events.SWEEP_AFTER_SECONDS
        call_events.SWEEP_AFTER_SECONDS = -60.0  # the second event counts as one the stream missed
        try:
            assert s.invoke("EventsFunction", SCHEDULED) == {"swept": 1, "overdue": 0}
        finally:
            call_events.SWEEP_AFTER_SECONDS = original_after
        reply = boto3.client("sqs").receive_message(QueueUrl=get_settings().event_queue_url, MaxNumberOfMessages=10)
        bodies = [m["Body"] for m in reply["Messages"]]
        assert s.invoke("EventsFunction", sqs_event(bodies)) == {"batchItemFailures": []}
        assert statuses == []  # one failed (retried: a new message), one delivered
        # a missed call nobody called back for a month: the schedule announces its task (callback.overdue)
        late = {"id": "ev-late", "calltype": "IN", "src": "79007770000", "disposition": "NO ANSWER",
                "calldate": "2026-11-02 12:00:00"}  # fmt: skip
        s.invoke("WebhookFunction", webhook_event(late), recorded=False)
        assert s.invoke("EventsFunction", SCHEDULED)["overdue"] == 1
    finally:
        event_sender.get_event_sender = original  # type: ignore[assignment]


def issue_admin(s: Scenario) -> str:
    from iptelefon.usecases.auth import issue_token

    return issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]


def console_requests(s: Scenario) -> None:
    # the console's files: no AWS call at all (its role has no grant)
    page = s.invoke("ConsoleFunction", api_event("GET", "/console", "/console"))
    asset = api_event("GET", "/console/{asset}", "/console/app.js", path_params={"asset": "app.js"})
    assert (page["statusCode"], s.invoke("ConsoleFunction", asset)["statusCode"]) == (200, 200)


SCENARIOS: dict[str, Callable[[Scenario], None]] = {
    "ConsoleFunction": console_requests,
    "AdminApiFunction": admin_api_requests,
    "WebhookFunction": webhook_requests,
    "InboxFunction": inbox_requests,
    "EmployeeCallFunction": employee_call_requests,
    "GroupCallFunction": group_call_requests,
    "ReadApiFunction": read_api_requests,
    "EventsFunction": events_requests,
    "RecordingFunction": recording_requests,
    "RecordingLinkFunction": recording_link_requests,
}


# -- the checks --------------------------------------------------------------------------------------------------------
def test_every_function_of_the_template_has_representative_requests() -> None:
    assert sorted(SCENARIOS) == sorted(FUNCTIONS)


@pytest.mark.parametrize("logical_id", sorted(SCENARIOS))
def test_function_role_grants_exactly_the_aws_calls_its_handler_makes(
    logical_id: str,
    usage: Usage,
    project: Any,
    other_project: Any,
    fake_pbx: Any,
    lambda_context: Any,
    atomic_dynamodb: None,  # EventsFunction delivers a batch's messages in threads: moto must be safe for them
) -> None:
    # Given the function's grants in template.yaml and a client for the client-card route
    grants = granted(logical_id)
    ClientStore(get_storage()).add(
        project.project, Client(id="c-card", channel="telephony", phone=PHONE, can_message=False)
    )

    # When its handler serves the representative requests
    SCENARIOS[logical_id](Scenario(usage, project, other_project, fake_pbx, lambda_context))
    needs = usage.needs.get(logical_id, {})

    # Then (a) every AWS call it made is granted (else AccessDenied once deployed)
    missing = {need: request for need, request in needs.items() if not any(allows(g, need) for g in grants)}
    # And (b) every grant was needed by some request (else it is excess), documented library needs aside
    unused = {g for g in grants if not any(allows(g, need) for need in needs)}
    excess = unused - LIBRARY_GRANTS.get(logical_id, set())
    assert LIBRARY_GRANTS.get(logical_id, set()) <= grants
    report = [f"{logical_id}: used but not granted (AccessDenied in AWS):"]
    report += [f"  {action} on {arn}  <- {request}" for (action, arn), request in sorted(missing.items())]
    report += [f"{logical_id}: granted but never used (excess):"]
    report += [f"  {action} on {arn}" for action, arn in sorted(excess)]
    assert not missing and not excess, "\n".join(report)
