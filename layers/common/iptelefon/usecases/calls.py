"""Starting calls on the PBX for bots and from the client card (contract sections 1 and 3).

A call-starting request: the client phone is normalized (400) → the toll-fraud guard: the phone's country must be
allowed (403, `domain.toll_fraud`) → the rate limits per client phone and per project (429 + Retry-After,
`domain.rate_limits`) → one PBX request (502 / 504) → an attempt record (`ports.Attempts`) whatever the outcome →
202 `{"attempt_id": ..., "status": "initiated", ...}` (`domain.answers.CallStartedAnswer`), or 202 with status
`unknown` when the PBX answered in words nobody knows (`PbxReplyUnreadable`: the call may be ringing).

`Idempotency-Key` (optional): `usecases.idempotency` says what a repeat gets. Everything the use case talks to comes
in a `CallDeps` (built by `entry.dependencies.call_deps`; in-memory fakes in the unit tests), with the Lambda context.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from iptelefon.domain.answers import AppCallAnswer, CallStartedAnswer, CardCallStartedAnswer
from iptelefon.domain.call_events import CallEvent, attempt_failed_event
from iptelefon.domain.errors import (
    CallsDisabled,
    Forbidden,
    InvalidInput,
    NotFound,
    PbxError,
    PbxRefused,
    PbxReplyUnreadable,
    PbxTimeout,
    PhoneNotOfClient,
    StorageUnavailable,
)
from iptelefon.domain.models import (
    CallAttempt,
    Client,
    PbxCredentials,
    Project,
    time_ordered_id,
    utc_stamp,
)
from iptelefon.domain.pbx_connection import MAX_CONNECT_TIMEOUT_SECONDS, PbxConnection
from iptelefon.domain.phones import e164, mask_phone, phone_of
from iptelefon.domain.rate_limits import RateCounters, check_rate_limits
from iptelefon.domain.requests import ClientCardCallRequest, EmployeeCallRequest, GroupCallRequest
from iptelefon.domain.toll_fraud import callable_phone
from iptelefon.platform.observability import logger
from iptelefon.usecases import idempotency
from iptelefon.usecases.auth import Caller
from iptelefon.usecases.ports import (
    Attempts,
    ClientLookup,
    Clock,
    EmployeeLookup,
    IdempotentRunner,
    Outcome,
    PbxCalls,
    PbxCredentialsSource,
)

ROUTE_EMPLOYEE = "POST /v1/calls/employee"
ROUTE_GROUP = "POST /v1/calls/group"
ROUTE_CLIENT_CARD = "POST /v1/clients/{client_id}/call"

# How much of the PBX's reply data an attempt keeps.
_REPLY_CHARS = 2000

# The PBX client may try to connect twice, up to 2 s each (MAX_CONNECT_TIMEOUT_SECONDS), before its read timeout.
PBX_CONNECT_WORST = 2 * MAX_CONNECT_TIMEOUT_SECONDS
MIN_PBX_SECONDS = 1.0
KEY_MAY_HAVE_RUNG = (
    "an earlier request with this Idempotency-Key may have started the call (it did not finish): "
    "look at the call's record, or use a new key to call again"
)
MAY_HAVE_STARTED = (
    "the PBX may have started the call: its reply could not be read. Do not call again: wait for the completion "
    "webhook or look at the attempt (GET /v1/calls/{attempt_id})"
)


@dataclass(frozen=True)
class CallDeps:
    """What starting a call talks to."""

    attempts: Attempts
    counters: RateCounters
    clients: ClientLookup
    employees: EmployeeLookup
    pbx: PbxCalls
    pbx_credentials: PbxCredentialsSource
    idempotency: IdempotentRunner
    pbx_timeout_seconds: float  # the most a PBX request may take (settings)
    # Seconds the invocation can give the PBX: what is left, less the worst time of recording the PBX's answer.
    spare_seconds: Callable[[], float]
    clock: Clock = field(default=time.time)


@dataclass(frozen=True)
class _Target:
    kind: Literal["employee", "group"]
    number: str  # the employee's short number or the group id
    source: Literal["bot", "client_card"] = "bot"
    employee_id: str | None = None
    client_id: str | None = None
    reference: str | None = None  # the bot's own reference (its events name it)


# -- the three operations ----------------------------------------------------------------------------------------------
def start_employee_call(
    deps: CallDeps,
    lambda_context: Any | None,
    project: Project,
    request: EmployeeCallRequest,
    *,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """The PBX rings the employee's short number, then connects the client. Returns the 202 body."""
    target = _Target("employee", request.short_employee_phone, reference=request.reference)
    return _bot_call(deps, lambda_context, project, ROUTE_EMPLOYEE, target, request, idempotency_key)


def start_group_call(
    deps: CallDeps,
    lambda_context: Any | None,
    project: Project,
    request: GroupCallRequest,
    *,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """The PBX rings the group (queue), then connects whoever answers to the client. Returns the 202 body."""
    target = _Target("group", request.group_id, reference=request.reference)
    return _bot_call(deps, lambda_context, project, ROUTE_GROUP, target, request, idempotency_key)


def _bot_call(
    deps: CallDeps,
    lambda_context: Any | None,
    project: Project,
    route: str,
    target: _Target,
    request: EmployeeCallRequest | GroupCallRequest,
    idempotency_key: str | None,
) -> dict[str, Any]:
    def start(key_scope: str | None) -> Outcome:
        phone = callable_phone(project, request.client_phone, field="client_phone")
        return _start_on_pbx(deps, project, target, phone, key_scope)

    _, body = idempotency.once(
        deps.idempotency,
        lambda_context,
        project_id=project.id,
        route=route,
        idempotency_key=idempotency_key,
        request=request.model_dump(mode="json"),
        work=start,
    )
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
    deps: CallDeps,
    lambda_context: Any | None,
    project: Project,
    client_id: str,
    request: ClientCardCallRequest,
    *,
    idempotency_key: str | None,
) -> tuple[int, dict[str, Any]]:
    """A call to a client of the project by the employee's call method: (status, body).

    `disabled` → 403 calls_disabled; `app` → 200 with a `tel:` URI for the employee's softphone (no PBX request, no
    rate limit); `api` → 202, a PBX employee call to the employee's short number.
    """

    def start(key_scope: str | None) -> Outcome:
        client = deps.clients.get(project.id, client_id)
        if client is None:
            raise NotFound(f"client {client_id} not found")
        employee = deps.employees.get_employee(project.id, str(request.employee_id))
        if employee is None:
            raise NotFound(f"employee {request.employee_id} not found")
        raw_phone = request.phone or client.phone
        if not raw_phone:
            raise InvalidInput.for_field("phone", "the client has no phone on record: pass the number to call")
        phone = callable_phone(project, raw_phone, field="phone")
        if phone not in client_phones(project, client):
            raise PhoneNotOfClient(f"phone: not a phone of client {client.id} (a card call dials one of them)")
        if employee.call_method == "disabled":
            raise CallsDisabled(f"employee {employee.id} does not make calls from the client card")
        if employee.call_method == "app":
            return {"status": 200, "body": AppCallAnswer(uri=f"tel:+{phone}").body()}
        if not employee.short_number:  # the model requires one for `api`; an old record might lack it
            raise CallsDisabled(f"employee {employee.id} has no short number for PBX calls")
        target = _Target("employee", employee.short_number, "client_card", employee.id, client.id)
        return _start_on_pbx(deps, project, target, phone, key_scope, answer=CardCallStartedAnswer)

    return idempotency.once(
        deps.idempotency,
        lambda_context,
        project_id=project.id,
        route=ROUTE_CLIENT_CARD,
        idempotency_key=idempotency_key,
        request={"client_id": client_id, **request.model_dump(mode="json")},
        work=start,
    )


def client_phones(project: Project, client: Client) -> set[str]:
    """The client's phones: its own and every variable that is one (matching rule 2's)."""
    found = {phone_of(value, project.default_region) for value in client.variables.values()}
    return {phone for phone in (client.phone, *found) if phone}


# -- the project's PBX -------------------------------------------------------------------------------------------------
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


def pbx_connection(project: Project, deps: CallDeps) -> PbxConnection:
    """The project's PBX, with a read timeout that leaves the invocation the time to record the PBX's answer."""
    available = deps.spare_seconds() - PBX_CONNECT_WORST
    if available < MIN_PBX_SECONDS:
        raise StorageUnavailable("not enough time left in this request to start a call safely, retry")
    timeout = min(deps.pbx_timeout_seconds, available)
    return connection_for(project, deps.pbx_credentials(project.id), timeout_seconds=timeout)


# -- the PBX request and its attempt -----------------------------------------------------------------------------------
def _start_on_pbx(
    deps: CallDeps,
    project: Project,
    target: _Target,
    phone: str,
    key_scope: str | None,
    *,
    answer: type[CallStartedAnswer] = CallStartedAnswer,
) -> Outcome:
    """The attempt is stored before the PBX is asked: a request that dies mid-call leaves a `starting` attempt, and
    a repeat with its Idempotency-Key finds the key's marker and answers 504 instead of ringing the client again."""
    conn = pbx_connection(project, deps)
    now = deps.clock()
    check_rate_limits(deps.counters, project, phone, now)
    attempt_id = time_ordered_id(now)
    attempt = CallAttempt(
        attempt_id=attempt_id,
        kind=target.kind,
        source=target.source,
        client_phone=phone,
        **{"short_number" if target.kind == "employee" else "group_id": target.number},
        employee_id=target.employee_id,
        card_client_id=target.client_id,
        reference=target.reference,
        created_at=utc_stamp(datetime.fromtimestamp(now, UTC)),
        status="starting",
    )
    log = {"project_id": project.id, "attempt_id": attempt_id, "kind": target.kind, "client_phone": mask_phone(phone)}
    if not deps.attempts.start(project.id, attempt, now=now, key_scope=key_scope):
        logger.warning("idempotency key reused after an unfinished call", extra=log)
        return idempotency.failure(PbxTimeout(KEY_MAY_HAVE_RUNG))
    logger.info("starting call", extra={**log, "target": target.number, "source": target.source})
    try:
        if target.kind == "employee":
            reply = deps.pbx.start_employee_call(conn, target.number, phone)
        else:
            reply = deps.pbx.start_group_call(conn, target.number, phone)
    except PbxReplyUnreadable as error:
        # The PBX got the request and may be ringing: an answer the bot must not retry (202, remembered under the
        # Idempotency-Key like a success), and an attempt its completion webhook can still find (pending).
        unknown = attempt.model_copy(
            update={"status": "unknown", "reason": {"error": error.code, "message": error.message}}
        )
        _finish_attempt(deps, project, unknown, pending=True, key_scope=key_scope, now=now)
        logger.warning("call may have started: PBX reply unreadable", extra={**log, "error": error.code})
        message = MAY_HAVE_STARTED.replace("{attempt_id}", attempt_id)
        maybe = answer(
            attempt_id=attempt_id, status="unknown", client_phone=phone, client_phone_e164=e164(phone), message=message
        )
        return {"status": 202, "body": maybe.body()}
    except (PbxError, PbxTimeout) as error:
        started_nothing = isinstance(error, PbxRefused)
        failed = attempt.model_copy(
            update={"status": "failed", "reason": {"error": error.code, "message": error.message}}
        )
        # When a call may be ringing anyway, its webhook may still come: keep the attempt findable (pending). When
        # certainly nothing rang, the bot hears it as `call.attempt_failed` (stored with the failure, at once).
        at = datetime.fromtimestamp(now, UTC)
        events = [attempt_failed_event(project.id, failed, at)] if started_nothing else []
        _finish_attempt(deps, project, failed, pending=not started_nothing, key_scope=key_scope, now=now, events=events)
        logger.warning("call not started", extra={**log, "error": error.code, "may_have_started": not started_nothing})
        if started_nothing:
            raise
        return idempotency.failure(error)
    pbx_call_id = reply.pbx_call_id
    initiated = attempt.model_copy(
        update={"status": "initiated", "pbx_call_id": pbx_call_id, "pbx_reply": _reply_text(reply.data, conn)}
    )
    _finish_attempt(deps, project, initiated, pending=True, key_scope=key_scope, now=now)
    logger.info("call initiated", extra={**log, "pbx_call_id": pbx_call_id})
    started = answer(attempt_id=attempt_id, client_phone=phone, client_phone_e164=e164(phone), pbx_call_id=pbx_call_id)
    return {"status": 202, "body": started.body()}


def _finish_attempt(
    deps: CallDeps,
    project: Project,
    attempt: CallAttempt,
    *,
    pending: bool,
    key_scope: str | None,
    now: float,
    events: Sequence[CallEvent] = (),
) -> None:
    # The PBX request is done: its answer matters more than its record, so a storage failure here is logged only
    # (the `starting` attempt and the key's marker stay: a repeat with the same key still never rings twice).
    try:
        deps.attempts.finish(project.id, attempt, pending=pending, key_scope=key_scope, now=now, events=events)
    except Exception:
        logger.exception("could not record the PBX's answer on the attempt", extra={"attempt_id": attempt.attempt_id})


def _reply_text(data: Any, conn: PbxConnection) -> str:
    text = json.dumps(data, ensure_ascii=False, default=str)
    if conn.secret:
        text = text.replace(conn.secret, "***")
    return text[:_REPLY_CHARS]
