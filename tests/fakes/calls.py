"""In-memory fakes of what the call use case talks to (`usecases.ports`, `domain.rate_limits.RateCounters`), for
unit tests without moto or a network. `call_deps()` builds a `CallDeps` over a fresh set of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fakes.admin import FakeEmployees
from fakes.webhook import FakeClients
from iptelefon.domain.call_events import CallEvent
from iptelefon.domain.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotencyStoreFailed,
)
from iptelefon.domain.models import CallAttempt, PbxCredentials
from iptelefon.domain.pbx_connection import PbxConnection, PbxReply
from iptelefon.usecases.calls import CallDeps

PBX_URL = "http://pbx.test/start.php"
PBX_SECRET = "fake-secret"


class FakeAttempts:
    """`ports.Attempts`: attempts, "may be ringing" pointers and Idempotency-Key markers in dicts."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], CallAttempt] = {}
        self.pending: dict[tuple[str, str], str | None] = {}  # (project, attempt) → the PBX's call id
        self.key_markers: set[tuple[str, str]] = set()
        self.fail_finish = False
        self.outbox: list[CallEvent] = []  # events written with the attempts' failures

    def start(self, project_id: str, attempt: CallAttempt, *, now: float, key_scope: str | None) -> bool:
        if key_scope is not None and (project_id, key_scope) in self.key_markers:
            return False
        self.items[(project_id, attempt.attempt_id)] = attempt
        self.pending[(project_id, attempt.attempt_id)] = attempt.pbx_call_id
        if key_scope is not None:
            self.key_markers.add((project_id, key_scope))
        return True

    def finish(
        self,
        project_id: str,
        attempt: CallAttempt,
        *,
        pending: bool,
        key_scope: str | None,
        now: float,
        events: Sequence[CallEvent] = (),
    ) -> None:
        if self.fail_finish:
            raise RuntimeError("table gone")
        if self.items[(project_id, attempt.attempt_id)].status != "starting":
            return
        self.items[(project_id, attempt.attempt_id)] = attempt
        self.outbox.extend(events)
        if pending:
            self.pending[(project_id, attempt.attempt_id)] = attempt.pbx_call_id
        else:
            self.pending.pop((project_id, attempt.attempt_id), None)
            self.key_markers.discard((project_id, key_scope or ""))

    def get(self, project_id: str, attempt_id: str) -> CallAttempt | None:
        return self.items.get((project_id, attempt_id))

    def latest_pending(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> CallAttempt | None:
        candidates = sorted(
            (self.items[key] for key in self.pending if key[0] == project_id),
            key=lambda a: a.created_at,
            reverse=True,
        )
        candidates = [a for a in candidates if a.client_phone == phone]
        chosen = [a for a in candidates if pbx_call_id and a.pbx_call_id == pbx_call_id]
        return (chosen or candidates or [None])[0]

    def link(self, project_id: str, attempt_id: str, call_key: str, client_id: str) -> None:
        attempt = self.items.get((project_id, attempt_id))
        if attempt is None or attempt.status == "completed":
            return
        self.items[(project_id, attempt_id)] = attempt.model_copy(
            update={"status": "completed", "call_key": call_key, "client_id": client_id}
        )
        self.pending.pop((project_id, attempt_id), None)

    def of(self, project_id: str) -> list[CallAttempt]:
        return [a for (pid, _), a in self.items.items() if pid == project_id]


class FakeCounters:
    """`RateCounters`: fixed windows in a dict, as `data.rate_counters` keeps them in DynamoDB."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, int], int] = {}

    def count(self, project_id: str, counter: str, *, limit: int, window_seconds: int, now: float) -> int:
        start = int(now) // window_seconds * window_seconds
        key = (project_id, counter, start)
        if self.calls.get(key, 0) >= limit:
            return max(1, int(start + window_seconds - now + 0.999))
        self.calls[key] = self.calls.get(key, 0) + 1
        return 0

    def uncount(self, project_id: str, counter: str, *, window_seconds: int, now: float) -> None:
        key = (project_id, counter, int(now) // window_seconds * window_seconds)
        if self.calls.get(key, 0) > 0:
            self.calls[key] -= 1

    def counted(self, project_id: str, counter: str, *, window_seconds: int, now: float) -> int:
        return self.calls.get((project_id, counter, int(now) // window_seconds * window_seconds), 0)


@dataclass
class PbxRequest:
    kind: str  # "employee" or "group"
    conn: PbxConnection
    number: str  # the short number or the group id
    phone: str


def started(pbx_call_id: str | None) -> PbxReply:
    """The PBX's "call started" reply, with its id of the call (or none)."""
    return PbxReply({"callid": pbx_call_id} if pbx_call_id else {}, pbx_call_id=pbx_call_id)


class FakePbxCalls:
    """`ports.PbxCalls`: records each request; `reply` is the `PbxReply`, an exception to raise, or a function of the
    request returning either."""

    def __init__(self) -> None:
        self.requests: list[PbxRequest] = []
        self.reply: Any = started("pbx-1")

    def start_employee_call(self, conn: PbxConnection, short_number: str, phone: str) -> PbxReply:
        return self._answer(PbxRequest("employee", conn, short_number, phone))

    def start_group_call(self, conn: PbxConnection, group_id: str, phone: str) -> PbxReply:
        return self._answer(PbxRequest("group", conn, group_id, phone))

    def _answer(self, request: PbxRequest) -> Any:
        self.requests.append(request)
        reply = self.reply(request) if callable(self.reply) else self.reply
        if isinstance(reply, BaseException):
            raise reply
        return reply


IN_PROGRESS = object()


class FakeIdempotency:
    """`ports.IdempotentRunner` as Powertools behaves: a record per (project, route, key) holds the request and the
    outcome (or "in progress"); a work that raises leaves no record; another request with the key is a validation
    error. `fail_before` / `fail_after` make the store fail before the work runs / when it saves the outcome."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, str], tuple[dict[str, Any], Any]] = {}
        self.contexts: list[Any] = []
        self.fail_before = False
        self.fail_after = False

    def run_once(
        self, scope: dict[str, Any], work: Callable[[], dict[str, Any]], *, lambda_context: Any | None
    ) -> dict[str, Any]:
        self.contexts.append(lambda_context)
        if self.fail_before:
            raise IdempotencyStoreFailed("unreachable")
        key = (scope["project_id"], scope["route"], scope["key"])
        if key in self.records:
            request, outcome = self.records[key]
            if request != scope["request"]:
                raise IdempotencyKeyReused()
            if outcome is IN_PROGRESS:
                raise IdempotencyKeyInProgress()
            return outcome  # type: ignore[no-any-return]
        self.records[key] = (scope["request"], IN_PROGRESS)
        try:
            outcome = work()
        except BaseException:
            del self.records[key]
            raise
        if self.fail_after:
            raise IdempotencyStoreFailed("throttled")
        self.records[key] = (scope["request"], outcome)
        return outcome


@dataclass
class Fakes:
    attempts: FakeAttempts = field(default_factory=FakeAttempts)
    counters: FakeCounters = field(default_factory=FakeCounters)
    clients: FakeClients = field(default_factory=FakeClients)
    employees: FakeEmployees = field(default_factory=FakeEmployees)
    pbx: FakePbxCalls = field(default_factory=FakePbxCalls)
    idempotency: FakeIdempotency = field(default_factory=FakeIdempotency)
    credentials_asked: list[str] = field(default_factory=list)
    now: float = 1_700_000_000.0
    spare_seconds: float = float("inf")
    pbx_timeout_seconds: float = 10.0

    def credentials(self, project_id: str) -> PbxCredentials:
        self.credentials_asked.append(project_id)
        return PbxCredentials(server_url=PBX_URL, secret=PBX_SECRET)

    def deps(self) -> CallDeps:
        return CallDeps(
            attempts=self.attempts,
            counters=self.counters,
            clients=self.clients,
            employees=self.employees,
            pbx=self.pbx,
            pbx_credentials=self.credentials,
            idempotency=self.idempotency,
            pbx_timeout_seconds=self.pbx_timeout_seconds,
            spare_seconds=lambda: self.spare_seconds,
            clock=lambda: self.now,
        )
