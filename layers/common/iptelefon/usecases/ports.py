"""What the use cases talk to, as they see it: structural Protocols, so the data access and the adapters implement
them without importing this module (the import-linter contract in pyproject.toml forbids use cases to import `data`
or `adapters`). A handler hands the real ones in (`entry.dependencies`); a unit test hands in-memory fakes
(`tests/fakes/`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # only named in annotations: a function imports none of these for the ports
    from datetime import date, datetime

    from iptelefon.domain.call_events import CallEvent, Endpoint
    from iptelefon.domain.call_record import CallRecord
    from iptelefon.domain.callbacks import CallbackChange, CallbackTask, ClosedTask, CloseTask
    from iptelefon.domain.live_calls import LiveCall
    from iptelefon.domain.models import CallAttempt, Client, Employee, PbxCredentials, Project, TokenRecord
    from iptelefon.domain.pbx_connection import PbxConnection, PbxReply
    from iptelefon.domain.recordings import Recording
    from iptelefon.domain.webhook_body import WebhookRequest


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch (`time.time`)."""
        ...


class Projects(Protocol):
    """Projects and the webhook-secret lookup (`data.projects`)."""

    def get_project(self, project_id: str) -> Project | None: ...

    def get_project_cached(self, project_id: str) -> Project | None: ...

    def find_webhook_secret(self, secret_sha256: str) -> dict[str, Any] | None: ...


class Attempts(Protocol):
    """Call attempts (`data.attempts`): stored before the PBX request, completed by the webhook."""

    def start(self, project_id: str, attempt: CallAttempt, *, now: float, key_scope: str | None) -> bool:
        """Store a `starting` attempt; False (nothing stored) when `key_scope`'s Idempotency-Key started a call
        before."""
        ...

    def finish(
        self,
        project_id: str,
        attempt: CallAttempt,
        *,
        pending: bool,
        key_scope: str | None,
        now: float,
        events: Sequence[CallEvent] = (),
    ) -> None: ...

    def get(self, project_id: str, attempt_id: str) -> CallAttempt | None: ...

    def latest_pending(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> CallAttempt | None: ...

    def link(self, project_id: str, attempt_id: str, call_key: str, client_id: str) -> None: ...


# -- webhook and reads -------------------------------------------------------------------------------------------------
class Clients(Protocol):
    """Clients and their phone index (`data.clients`)."""

    def get(self, project_id: str, client_id: str) -> Client | None: ...

    def first(self, project_id: str, count: int) -> list[Client]: ...

    def match(self, project_id: str, phone: str, *, limit: int = 1) -> list[str]:
        """Client ids for a canonical phone, in matching order (the first one wins)."""
        ...

    def match_or_add(self, project: Project, client: Client) -> tuple[str, bool]:
        """The first matching client's id for `client.phone`, else `client` stored (only while the phone matches
        nobody: concurrent webhooks create one client). Returns (client_id, created)."""
        ...


class CallRecords(Protocol):
    """Call records, the dialog and kept requests (`data.call_records`)."""

    def get(self, project_id: str, call_key: str) -> CallRecord | None: ...

    def of_client(self, project_id: str, client_id: str, *, limit: int = 50) -> list[CallRecord]: ...

    def dialog(self, project_id: str, client_id: str, *, limit: int = 20) -> list[dict[str, Any]]: ...

    def add_new(
        self,
        project: Project,
        call: CallRecord,
        *,
        notification: str,
        request: WebhookRequest,
        events: Sequence[CallEvent] = (),
        callback: CallbackChange | None = None,
    ) -> bool:
        """Record a new call, its notification, its record-link variable, its events (the outbox), its statistics
        counters and its client's callback task change at once; False if recorded before (and no event);
        CallbackChanged if the task is not as read."""
        ...

    def add_record_link(self, project: Project, call: CallRecord, *, notification: str) -> bool:
        """Store `call.record_link` on the recorded call, its notification rewritten, the variable set."""
        ...

    def keep_rejected(
        self, project_id: str, request: WebhookRequest, *, error_code: str, message: str, status: int
    ) -> None: ...


class LiveCalls(Protocol):
    """Calls while they are live, by `call_key` (`data.live_calls`)."""

    def get(self, project_id: str, call_key: str) -> LiveCall | None: ...

    def put(
        self, project_id: str, live: LiveCall, *, replacing: LiveCall | None, events: Sequence[CallEvent] = ()
    ) -> bool:
        """Store `live` in place of `replacing` (None: nothing was stored) with its events (the outbox), at once;
        False when it changed meanwhile (nothing stored)."""
        ...

    def end(self, project_id: str, ended: LiveCall) -> None:
        """The call completed: `ended` replaces any live state, whatever it was."""
        ...

    def of_project(self, project_id: str) -> list[LiveCall]:
        """The project's ringing and answered calls (expired ones too until they are deleted)."""
        ...


class CallbackTasks(Protocol):
    """Callback tasks for missed calls (`data.callbacks`)."""

    def open_of_client(self, project_id: str, client_id: str) -> CallbackTask | None: ...

    def open_tasks(self, project_id: str) -> list[CallbackTask]: ...

    def closed(self, project_id: str, task_id: str) -> ClosedTask | None: ...

    def close(self, project_id: str, change: CloseTask) -> None:
        """Close with the task's counters; CallbackChanged when it closed or changed meanwhile."""
        ...

    def overdue(self, now: datetime, *, limit: int = 100) -> list[tuple[str, CallbackTask]]:
        """(project id, task) of open tasks past their due time, not announced yet."""
        ...

    def announce_overdue(self, project_id: str, task: CallbackTask, event: CallEvent) -> bool:
        """The task's `callback.overdue` event stored, once; False when it closed or was announced meanwhile."""
        ...


class StatsRows(Protocol):
    """The statistics' per-day counter rows (`data.call_stats`)."""

    def rows(self, project_id: str, first: date, last: date) -> tuple[list[dict[str, Any]], int]:
        """The rows of [first, last] and how many reads that took."""
        ...


class PbxCredentialsSource(Protocol):
    def __call__(self, project_id: str) -> PbxCredentials:
        """The project's PBX URL and secret (`data.pbx_settings`)."""
        ...


class Inbox(Protocol):
    """The webhook's durable inbox (`data.inbox`): StorageUnavailable when it cannot take the message either."""

    def send(self, message: str) -> None: ...


# -- admin and auth ----------------------------------------------------------------------------------------------------
class ProjectSettings(Projects, Protocol):
    """Projects as the admin changes them (`data.projects.ProjectStore`)."""

    def create_project(self, project: Project, webhook_secret: str) -> None: ...

    def update_project(self, project: Project) -> None: ...

    def rotate_webhook_secret(
        self,
        project_id: str,
        old_hash: str,
        new_hash: str,
        *,
        old_valid_until: int,
        new_is_token: bool = False,
        cut_earlier: bool = False,
    ) -> None: ...


class Tokens(Protocol):
    """API tokens by their sha256 (`data.tokens.TokenStore`)."""

    def put_token(self, token_hash: str, record: TokenRecord) -> None: ...

    def find_token(self, token_hash: str) -> TokenRecord | None: ...

    def list_tokens(self, project_id: str) -> list[dict[str, Any]]: ...

    def revoke_token(self, project_id: str, token_id: str) -> bool: ...


class Employees(Protocol):
    """A project's employees (`data.employees.EmployeeStore`)."""

    def get_employee(self, project_id: str, employee_id: str) -> Employee | None: ...

    def put_employee(self, project_id: str, employee: Employee) -> None: ...

    def list_employees(self, project_id: str) -> list[Employee]: ...

    def delete_employee(self, project_id: str, employee_id: str) -> None: ...


class PbxSettings(Protocol):
    """A project's PBX connection in SSM, read now (not from a warm Lambda's cache) (`data.pbx_settings`)."""

    def read(self, project_id: str) -> PbxCredentials:
        """Both parameters with one request; NotFound when the project has none."""
        ...

    def write(self, project_id: str, credentials: PbxCredentials) -> None: ...


class PbxCheck(Protocol):
    """The project's PBX as the settings check asks it (`entry.dependencies.PbxProbe`). Each raises `PbxError` /
    `PbxTimeout` when the PBX does not answer it."""

    def ping(self) -> str: ...

    def method_names(self) -> list[str]: ...

    def points(self) -> list[str]:
        """The PBX's extensions (`get-points`)."""
        ...


# -- calls (`usecases.calls`) ------------------------------------------------------------------------------------------
# The rate-limit counters' port (`RateCounters`) is the domain rule's own: `domain.rate_limits`.

Outcome = dict[str, Any]  # what the idempotency store remembers: {"status", "body"} or {"status", "error", "message"}


class ClientLookup(Protocol):
    """A client by id (`data.clients.ClientStore`)."""

    def get(self, project_id: str, client_id: str) -> Client | None: ...


class EmployeeLookup(Protocol):
    """An employee by id (`data.employees.EmployeeStore`)."""

    def get_employee(self, project_id: str, employee_id: str) -> Employee | None: ...


class PbxCalls(Protocol):
    """The PBX's call-starting methods (`adapters.pbx.PbxClient`). Each returns the PBX's "started" reply, or raises
    `PbxTimeout` / `PbxError` (`PbxRefused` when the PBX certainly started nothing, `PbxReplyUnreadable` when it
    answered in words nobody knows: the call may be ringing)."""

    def start_employee_call(self, conn: PbxConnection, short_number: str, phone: str) -> PbxReply: ...

    def start_group_call(self, conn: PbxConnection, group_id: str, phone: str) -> PbxReply: ...


class IdempotentRunner(Protocol):
    """Runs `work` at most once per `scope`'s key (`data.idempotency_store`): a repeat gets the remembered outcome.

    Raises the domain's `IdempotencyKeyInProgress`, `IdempotencyKeyReused` or `IdempotencyStoreFailed`; an error of
    `work` itself passes through (and the key is forgotten)."""

    def run_once(self, scope: dict[str, Any], work: Callable[[], Outcome], *, lambda_context: Any | None) -> Outcome:
        """`lambda_context`: an in-flight record expires with this invocation (a crashed one does not block)."""
        ...


# -- call events (`usecases.call_events`) ------------------------------------------------------------------------------
class CallEvents(Protocol):
    """The outbox, endpoints, deliveries and their log (`data.call_events.CallEventStore`)."""

    def get_event(self, project_id: str, event_id: str) -> tuple[CallEvent, bool] | None: ...

    def attempt_context(
        self, project_id: str, event_id: str, endpoint_id: str, *, order_key: str, earlier: list[tuple[int, str]]
    ) -> tuple[CallEvent | None, Endpoint | None, bool]: ...

    def unrelayed(self, older_than: datetime) -> list[CallEvent]: ...

    def mark_relayed(self, event: CallEvent, now: datetime) -> None: ...

    def add_endpoint(self, project_id: str, endpoint: Endpoint) -> None: ...

    def get_endpoint(self, project_id: str, endpoint_id: str) -> Endpoint | None: ...

    def endpoints(self, project_id: str) -> list[Endpoint]: ...

    def delete_endpoint(self, project_id: str, endpoint_id: str) -> None: ...

    def endpoint_failed(self, project_id: str, endpoint_id: str, now: datetime) -> datetime | None: ...

    def endpoint_succeeded(self, project_id: str, endpoint_id: str) -> None: ...

    def disable_endpoint(self, project_id: str, endpoint_id: str, reason: str, now: datetime) -> None: ...

    def enable_endpoint(self, project_id: str, endpoint_id: str) -> None: ...

    def open_delivery(self, event: CallEvent, endpoint_id: str, now: datetime) -> None: ...

    def delivery(self, event: CallEvent, endpoint_id: str) -> dict[str, Any] | None: ...

    def claim(self, event: CallEvent, endpoint_id: str, attempt: int, now: float) -> bool: ...

    def settle(
        self,
        event: CallEvent,
        endpoint_id: str,
        *,
        status: str,
        now: datetime,
        next_due: float | None = None,
        log: dict[str, Any] | None = None,
    ) -> None: ...

    def reopen(self, event: CallEvent, endpoint_id: str, now: datetime) -> bool: ...

    def failed_since(self, project_id: str, endpoint_id: str, since: datetime) -> list[tuple[str, str]]: ...

    def attempts_log(self, project_id: str, endpoint_id: str, *, limit: int) -> list[dict[str, Any]]: ...


class EndpointSecrets(Protocol):
    """Endpoint signing secrets (`data.endpoint_secrets`): {"current", "previous"?, "previous_valid_until"?}."""

    def put(
        self, project_id: str, endpoint_id: str, current: str, *, previous: str | None, valid_until: int
    ) -> None: ...

    def get(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None: ...

    def delete(self, project_id: str, endpoint_id: str) -> None: ...


class DeliveryQueue(Protocol):
    """The delivery queue (`data.delivery_queue`): each message delayed until its `due` (15 minutes at most)."""

    def send(self, messages: list[dict[str, Any]], now: float) -> None: ...


class EventSender(Protocol):
    """One signed POST (`adapters.event_sender`): (status or None, error, latency ms)."""

    def post(self, url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str | None, int]: ...


# -- recordings (issue 25) ---------------------------------------------------------------------------------------------
class Recordings(Protocol):
    """Recording items (`data.recordings`)."""

    def get(self, recording_id: str) -> Recording | None: ...

    def pending_before(self, moment: datetime, *, limit: int = 100) -> list[Recording]: ...

    def mark_archived(self, archived: Recording, *, events: Sequence[CallEvent] = ()) -> bool: ...

    def mark_failed(self, recording: Recording, reason: str) -> bool: ...


class RecordingQueue(Protocol):
    """The copy queue (`data.recording_archive.SqsRecordingQueue`)."""

    def send(self, recording_id: str) -> bool:
        """False when the queue could not take it (the recording stays pending; the sweep sends it again)."""
        ...


class RecordingArchive(Protocol):
    """The bucket (`data.recording_archive.S3Archive`)."""

    def upload(self, key: str, stream: RecordingSource, content_type: str) -> None: ...

    def url(self, key: str) -> str:
        """A presigned GET of the object, short-lived."""
        ...


class RecordingSource(Protocol):
    """An open download (`adapters.recording_download.Download`): read by the upload as it arrives."""

    extension: str
    content_type: str
    size: int

    def read(self, size: int = -1) -> bytes: ...


class RecordingDownloads(Protocol):
    """Where recordings come from (`adapters.recording_download.RecordingFetcher`)."""

    def open(self, url: str) -> AbstractContextManager[RecordingSource]: ...

    def open_via_pbx(
        self, conn: PbxConnection, method: str, param: str, value: str
    ) -> AbstractContextManager[RecordingSource]: ...
