"""Starting calls on the PBX for bots and from the client card (contract sections 1 and 3).

A call-starting request: the client phone is normalized (400) → the toll-fraud guard: the phone's country must be
allowed (403) → the rate limits per client phone and per project (429 + Retry-After) → one PBX request (502 / 504) →
an attempt record (`call_attempts`) whatever the outcome → 202 `{"call_id": <attempt id>, "status": "initiated", ...}`.

`Idempotency-Key` (optional; Powertools Idempotency on the idempotency table). The record's key is a hash of
(project id, route, key): two projects or two routes never share a key. The request itself is checked too: the same
key with another request is a 409. A repeat within 24 h gets:
- the first answer when it was a success (202, or 200 for the `app` method);
- the same 504 / 502, without a PBX request, when the first request may have started a call (timeout, connection
  broken after sending, HTTP 5xx, an unreadable reply): retrying it could ring the client twice, so that takes a new
  key (a deliberate "call again");
- a fresh try when nothing was started: the PBX refused (`result != 1`, HTTP 4xx) or was unreachable, or the request
  was refused before the PBX (400, 403, 404, 429): Powertools deletes the record of a function that raised;
- 409 while the first request is still in flight: retry after a few seconds to get its answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.adapters.pbx import MAX_CONNECT_TIMEOUT_SECONDS, PbxConnection, PbxRefused, get_pbx_client
from iptelefon.data import attempts as call_attempts
from iptelefon.data.clients import ClientStore
from iptelefon.data.employees import EmployeeStore
from iptelefon.data.gateway import WORST_CALL_SECONDS, ConditionFailed, Storage, dynamodb_client, get_storage
from iptelefon.data.pbx_settings import PbxCredentials, get_pbx_credentials
from iptelefon.domain.errors import (
    CallsDisabled,
    Conflict,
    CountryNotAllowed,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    NumberNotAllowed,
    PbxError,
    PbxTimeout,
    RateLimited,
    StorageUnavailable,
)
from iptelefon.domain.models import Project, time_ordered_id, utc_stamp
from iptelefon.domain.phones import e164, mask_phone, normalize_phone, number_region_and_type, regions_of_country_code
from iptelefon.domain.requests import ClientCardCallRequest, EmployeeCallRequest, GroupCallRequest
from iptelefon.platform import budget
from iptelefon.platform.observability import logger
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.auth import Caller

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

ROUTE_EMPLOYEE = "POST /v1/calls/employee"
ROUTE_GROUP = "POST /v1/calls/group"
ROUTE_CLIENT_CARD = "POST /v1/clients/{client_id}/call"

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_PREFIX = "calls"
# Printable ASCII (space included), 1-200 characters: a UUID, a bot's message id, an order number.
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,200}")
IDEMPOTENCY_HEADER = "Idempotency-Key"

PHONE_WINDOW_SECONDS = 3600  # Project.calls_per_phone_per_hour
PROJECT_WINDOW_SECONDS = 60  # Project.calls_per_project_per_minute
PROJECT_COUNTER = "PROJECT"

# How much of the PBX's reply data an attempt keeps.
_REPLY_CHARS = 2000
# Where a PBX may put its own id of the started call in the reply's `data`.
_PBX_CALL_ID_FIELDS = ("call_id", "callid", "id", "linkedid", "uniqueid")
# PBX failures after which a call may be ringing: a repeat with the same key gets the same answer.
_CACHED_FAILURES: dict[str, type[DomainError]] = {PbxTimeout.code: PbxTimeout, PbxError.code: PbxError}

_ANSWER_ORDER = ("method", "uri", "call_id", "status", "client_phone", "client_phone_e164", "pbx_call_id")

# The PBX client may try to connect twice, up to 2 s each (pbx.MAX_CONNECT_TIMEOUT_SECONDS), before its read timeout.
PBX_CONNECT_WORST = 2 * MAX_CONNECT_TIMEOUT_SECONDS
MIN_PBX_SECONDS = 1.0
KEY_MAY_HAVE_RUNG = (
    "an earlier request with this Idempotency-Key may have started the call (it did not finish): "
    "look at the call's record, or use a new key to call again"
)

Outcome = dict[str, Any]  # {"status", "body"} or {"status", "error", "message"}: what the idempotency record keeps


@dataclass(frozen=True)
class _Target:
    kind: Literal["employee", "group"]
    number: str  # the employee's short number or the group id
    source: Literal["bot", "client_card"] = "bot"
    employee_id: str | None = None
    client_id: str | None = None


# -- the three operations ----------------------------------------------------------------------------------------------
def start_employee_call(
    project: Project, request: EmployeeCallRequest, *, idempotency_key: str | None
) -> dict[str, Any]:
    """The PBX rings the employee's short number, then connects the client. Returns the 202 body."""

    def start(key_scope: str | None) -> Outcome:
        phone = callable_phone(project, request.client_phone, field="client_phone")
        return _start_on_pbx(project, _Target("employee", request.short_employee_phone), phone, key_scope)

    _, body = _once(project, ROUTE_EMPLOYEE, idempotency_key, request.model_dump(mode="json"), start)
    return body


def start_group_call(project: Project, request: GroupCallRequest, *, idempotency_key: str | None) -> dict[str, Any]:
    """The PBX rings the group (queue), then connects whoever answers to the client. Returns the 202 body."""

    def start(key_scope: str | None) -> Outcome:
        phone = callable_phone(project, request.client_phone, field="client_phone")
        return _start_on_pbx(project, _Target("group", request.group_id), phone, key_scope)

    _, body = _once(project, ROUTE_GROUP, idempotency_key, request.model_dump(mode="json"), start)
    return body


def card_call_as(caller: Caller, request: ClientCardCallRequest) -> ClientCardCallRequest:
    """The card call with its employee: an operator token calls as its own employee (naming another is a 403); a bot
    names the employee who calls."""
    if caller.role == "operator":
        if request.employee_id not in (None, caller.employee_id):
            raise Forbidden("an operator token calls as its own employee only")
        return request.model_copy(update={"employee_id": caller.employee_id})
    if request.employee_id is None:
        raise InvalidInput.for_field("employee_id", "name the employee who calls (an operator token is one)")
    return request


def call_from_client_card(
    project: Project, client_id: str, request: ClientCardCallRequest, *, idempotency_key: str | None
) -> tuple[int, dict[str, Any]]:
    """A call to a client of the project by the employee's call method: (status, body).

    `disabled` → 403 calls_disabled; `app` → 200 with a `tel:` URI for the employee's softphone (no PBX request, no
    rate limit); `api` → 202, a PBX employee call to the employee's short number.
    """

    def start(key_scope: str | None) -> Outcome:
        storage = get_storage()
        client = ClientStore(storage).get(project.id, client_id)
        if client is None:
            raise NotFound(f"client {client_id} not found")
        employee = EmployeeStore(storage).get_employee(project.id, str(request.employee_id))
        if employee is None:
            raise NotFound(f"employee {request.employee_id} not found")
        raw_phone = request.phone or client.phone
        if not raw_phone:
            raise InvalidInput.for_field("phone", "the client has no phone on record: pass the number to call")
        phone = callable_phone(project, raw_phone, field="phone")
        if employee.call_method == "disabled":
            raise CallsDisabled(f"employee {employee.id} does not make calls from the client card")
        if employee.call_method == "app":
            return {"status": 200, "body": {"method": "app", "uri": f"tel:+{phone}"}}
        if not employee.short_number:  # the model requires one for `api`; an old record might lack it
            raise CallsDisabled(f"employee {employee.id} has no short number for PBX calls")
        target = _Target("employee", employee.short_number, "client_card", employee.id, client.id)
        outcome = _start_on_pbx(project, target, phone, key_scope)
        if "body" in outcome:
            outcome["body"] = {"method": "api", **outcome["body"]}
        return outcome

    payload = {"client_id": client_id, **request.model_dump(mode="json")}
    return _once(project, ROUTE_CLIENT_CARD, idempotency_key, payload, start)


# -- rules -------------------------------------------------------------------------------------------------------------
def callable_phone(project: Project, raw: str, *, field: str) -> str:
    """The canonical phone, if the project may call it, else InvalidPhone / CountryNotAllowed / NumberNotAllowed.

    The toll-fraud guard reads the numbering plan: the number's region (Kazakhstan is not Russia, though both are +7)
    must be the project's own or one of its allowed country codes' regions, and its kind of line one the project
    allows (fixed line and mobile by default: never premium rate, shared cost, personal, UAN, VoIP, …).
    """
    phone = normalize_phone(raw, default_region=project.default_region, field=field)
    region, kind = number_region_and_type(phone)
    extra = [r for code in project.allowed_country_codes for r in regions_of_country_code(code)]
    regions = list(dict.fromkeys([project.default_region, *extra]))
    if region not in regions:
        message = f"calls to numbers of {region} are not allowed in this project (allowed: {', '.join(regions)})"
        raise CountryNotAllowed(f"{field}: {message}", details=[{"field": field, "message": message}])
    allowed = set(project.allowed_number_types)
    if kind not in allowed and not (kind == "fixed_line_or_mobile" and allowed & {"fixed_line", "mobile"}):
        listed = ", ".join(t.replace("_", " ") for t in project.allowed_number_types)
        message = f"{kind.replace('_', ' ')} numbers are not called in this project (allowed: {listed})"
        raise NumberNotAllowed(f"{field}: {message}", details=[{"field": field, "message": message}])
    return phone


def check_rate_limits(storage: Storage, project: Project, phone: str, now: float) -> None:
    """Count the call against the per-phone (hour) and per-project (minute) windows, or raise RateLimited."""
    phone_counter = f"PHONE#{phone}"
    wait = call_attempts.count_call(
        storage,
        project.id,
        phone_counter,
        limit=project.calls_per_phone_per_hour,
        window_seconds=PHONE_WINDOW_SECONDS,
        now=now,
    )
    if wait:
        raise RateLimited(
            f"too many calls to this client phone: at most {project.calls_per_phone_per_hour} an hour; "
            f"retry in {wait} s",
            retry_after_seconds=wait,
        )
    wait = call_attempts.count_call(
        storage,
        project.id,
        PROJECT_COUNTER,
        limit=project.calls_per_project_per_minute,
        window_seconds=PROJECT_WINDOW_SECONDS,
        now=now,
    )
    if wait:
        # This call is not made: give its slot back to the phone.
        call_attempts.uncount_call(storage, project.id, phone_counter, window_seconds=PHONE_WINDOW_SECONDS, now=now)
        raise RateLimited(
            f"too many calls in this project: at most {project.calls_per_project_per_minute} a minute; "
            f"retry in {wait} s",
            retry_after_seconds=wait,
        )


def connection_for(project: Project, credentials: PbxCredentials, *, timeout_seconds: float) -> PbxConnection:
    """How to talk to the project's PBX: credentials from SSM, method and parameter names from the project."""
    return PbxConnection(
        server_url=credentials.server_url,
        secret=credentials.secret,
        auth_mode=project.auth_mode,
        employee_method=project.employee_method,
        group_method=project.group_method,
        param_names=MappingProxyType({str(name): value for name, value in project.param_names.items()}),
        timeout_seconds=timeout_seconds,
    )


def pbx_connection(project: Project) -> PbxConnection:
    """The project's PBX, with a read timeout that leaves the invocation the time to record the PBX's answer."""
    available = budget.spare_seconds() - PBX_CONNECT_WORST - WORST_CALL_SECONDS
    if available < MIN_PBX_SECONDS:
        raise StorageUnavailable("not enough time left in this request to start a call safely, retry")
    timeout = min(get_settings().pbx_timeout_seconds, available)
    return connection_for(project, get_pbx_credentials(project.id), timeout_seconds=timeout)


# -- the PBX request and its attempt -----------------------------------------------------------------------------------
def _start_on_pbx(project: Project, target: _Target, phone: str, key_scope: str | None) -> Outcome:
    """The attempt is stored before the PBX is asked: a request that dies mid-call leaves a `starting` attempt, and
    a repeat with its Idempotency-Key finds the key's marker and answers 504 instead of ringing the client again."""
    storage = get_storage()
    conn = pbx_connection(project)
    now = time.time()
    check_rate_limits(storage, project, phone, now)
    attempt_id = time_ordered_id(now)
    attempt: dict[str, Any] = {
        "attempt_id": attempt_id,
        "kind": target.kind,
        "source": target.source,
        "client_phone": phone,
        "short_number" if target.kind == "employee" else "group_id": target.number,
        "employee_id": target.employee_id,
        "card_client_id": target.client_id,
        "created_at": utc_stamp(datetime.fromtimestamp(now, UTC)),
        "status": call_attempts.STATUS_STARTING,
    }
    log = {"project_id": project.id, "attempt_id": attempt_id, "kind": target.kind, "client_phone": mask_phone(phone)}
    try:
        call_attempts.start_attempt(storage, project.id, attempt, now=now, key_scope=key_scope)
    except ConditionFailed:
        logger.warning("idempotency key reused after an unfinished call", extra=log)
        return {"status": PbxTimeout.status_code, "error": PbxTimeout.code, "message": KEY_MAY_HAVE_RUNG}
    logger.info("starting call", extra={**log, "target": target.number, "source": target.source})
    pbx = get_pbx_client()
    try:
        if target.kind == "employee":
            data = pbx.start_employee_call(conn, target.number, phone)
        else:
            data = pbx.start_group_call(conn, target.number, phone)
    except (PbxError, PbxTimeout) as error:
        started_nothing = isinstance(error, PbxRefused)
        attempt.update(status=call_attempts.STATUS_FAILED, reason={"error": error.code, "message": error.message})
        # When a call may be ringing anyway, its webhook may still come: keep the attempt findable (pending).
        _finish_attempt(storage, project, attempt, pending=not started_nothing, key_scope=key_scope, now=now)
        logger.warning("call not started", extra={**log, "error": error.code, "may_have_started": not started_nothing})
        if started_nothing:
            raise
        return {"status": error.status_code, "error": error.code, "message": error.message}
    pbx_call_id = _pbx_call_id(data)
    attempt.update(status=call_attempts.STATUS_INITIATED, pbx_call_id=pbx_call_id, pbx_reply=_reply_text(data, conn))
    _finish_attempt(storage, project, attempt, pending=True, key_scope=key_scope, now=now)
    logger.info("call initiated", extra={**log, "pbx_call_id": pbx_call_id})
    body: dict[str, Any] = {
        "call_id": attempt_id,
        "status": "initiated",
        "client_phone": phone,
        "client_phone_e164": e164(phone),
    }
    if pbx_call_id:
        body["pbx_call_id"] = pbx_call_id
    return {"status": 202, "body": body}


def _finish_attempt(
    storage: Storage, project: Project, attempt: dict[str, Any], *, pending: bool, key_scope: str | None, now: float
) -> None:
    # The PBX request is done: its answer matters more than its record, so a storage failure here is logged only
    # (the `starting` attempt and the key's marker stay: a repeat with the same key still never rings twice).
    try:
        call_attempts.finish_attempt(storage, project.id, attempt, pending=pending, key_scope=key_scope, now=now)
    except Exception:
        logger.exception(
            "could not record the PBX's answer on the attempt", extra={"attempt_id": attempt["attempt_id"]}
        )


def _pbx_call_id(data: Any) -> str | None:
    if isinstance(data, dict):
        for name in _PBX_CALL_ID_FIELDS:
            value = data.get(name)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()[:128]
    return None


def _reply_text(data: Any, conn: PbxConnection) -> str:
    text = json.dumps(data, ensure_ascii=False, default=str)
    if conn.secret:
        text = text.replace(conn.secret, "***")
    return text[:_REPLY_CHARS]


# -- idempotency -------------------------------------------------------------------------------------------------------
_invocation: dict[str, LambdaContext] = {}


def register_lambda_context(context: LambdaContext) -> None:
    """Call once per invocation: an in-flight record expires with the invocation (a crashed one does not block).

    Powertools Idempotency is imported only when a request carries an Idempotency-Key (~40 ms of cold start saved
    for the others), so the context is kept here until then.
    """
    _invocation["context"] = context


def checked_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value) or not value.strip():
        raise InvalidInput.for_field(IDEMPOTENCY_HEADER, "must be 1-200 printable ASCII characters, e.g. a UUID")
    return value


def _once(
    project: Project,
    route: str,
    idempotency_key: str | None,
    request: dict[str, Any],
    work: Callable[[str | None], Outcome],
) -> tuple[int, dict[str, Any]]:
    """Run `work` (once per Idempotency-Key, when there is one) and turn its outcome into (status, body).

    `work` gets the key's scope (a hash of route and key) to mark the key as having started a call."""
    key = checked_idempotency_key(idempotency_key)
    if key is None:
        return _answer(work(None))
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # on first use: see register_lambda_context
        IdempotencyAlreadyInProgressError,
        IdempotencyInconsistentStateError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    if "context" in _invocation:
        _idempotency_config().register_lambda_context(_invocation["context"])
    scope = {"project_id": project.id, "route": route, "key": key, "request": request}
    produced: list[Outcome] = []

    key_scope = hashlib.sha256(f"{route}\n{key}".encode()).hexdigest()

    def run() -> Outcome:
        produced.append(work(key_scope))
        return produced[-1]

    try:
        outcome = _idempotent_runner()(scope=scope, work=run)
    except IdempotencyAlreadyInProgressError:
        raise Conflict(
            "a request with this Idempotency-Key is still in progress: retry in a few seconds to get its answer",
            retry_after_seconds=2,
        ) from None
    except IdempotencyValidationError:
        raise Conflict(
            "this Idempotency-Key was already used with a different request: use a new key for a new call"
        ) from None
    except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as error:
        logger.warning("idempotency store failed", extra={"error": type(error).__name__, "after_work": bool(produced)})
        if produced:
            # The work ran (a call may be ringing) and only remembering its answer failed: the answer is still true.
            return _answer(produced[-1])
        raise StorageUnavailable() from error
    return _answer(outcome)


def _answer(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    if "error" in outcome:
        raise _CACHED_FAILURES[str(outcome["error"])](str(outcome["message"]))
    # The idempotency store keeps JSON with sorted keys: one fixed order makes a repeat byte for byte the first answer.
    body: dict[str, Any] = outcome["body"]
    rank = {name: i for i, name in enumerate(_ANSWER_ORDER)}
    return int(outcome["status"]), {name: body[name] for name in sorted(body, key=lambda n: (rank.get(n, 99), n))}


def _run_once(*, scope: dict[str, Any], work: Callable[[], Outcome]) -> Outcome:
    """What Powertools runs at most once per `scope` key; `scope` itself is only hashed."""
    return work()


@lru_cache(maxsize=1)
def _idempotency_config() -> IdempotencyConfig:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="[project_id, route, key]",
        payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        hash_function="sha256",
    )


@lru_cache(maxsize=1)
def _idempotent_runner() -> Callable[..., Outcome]:
    """Built on first use (settings and the boto3 client are not touched at import)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().idempotency_table_name, boto3_client=dynamodb_client()
    )
    runner: Callable[..., Outcome] = idempotent_function(
        _run_once,
        data_keyword_argument="scope",
        persistence_store=persistence,
        config=_idempotency_config(),
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )
    return runner
