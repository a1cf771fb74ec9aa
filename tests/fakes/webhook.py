"""In-memory stand-ins for what the webhook and the reads receive (`usecases.ports`): plain dicts, no AWS.

They keep the repositories' contracts (a call is recorded once per key, a record link is stored once, a completed
attempt stays completed), not their storage layout: the moto tests in tests/integration cover that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fakes.admin import FakeClock, FakeEmployees
from iptelefon.domain.call_events import CallEvent
from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.callbacks import (
    AddMissed,
    CallbackChange,
    CallbackChanged,
    CallbackTask,
    ClosedTask,
    CloseTask,
    NoOpenTask,
    OpenTask,
    TextedRecently,
)
from iptelefon.domain.errors import StorageUnavailable
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.live_calls import LiveCall
from iptelefon.domain.models import CallAttempt, Client, PbxCredentials, Project
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.usecases.reads import ReadDeps
from iptelefon.usecases.webhook import WebhookDeps


@dataclass
class FakeProjects:
    projects: dict[str, Project] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha256 of a webhook secret -> its lookup item
    unavailable: bool = False

    def add(self, project: Project, *, secret: str) -> None:
        self.projects[project.id] = project
        self.secrets[sha256_hex(secret)] = {"project_id": project.id}

    def get_project(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def get_project_cached(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def find_webhook_secret(self, secret_sha256: str) -> dict[str, Any] | None:
        if self.unavailable:
            raise StorageUnavailable("the fake table is away")
        return self.secrets.get(secret_sha256)


@dataclass
class FakeClients:
    """Clients; a phone matches the clients whose phone it is, in the order they were added."""

    clients: dict[tuple[str, str], Client] = field(default_factory=dict)

    def add(self, project_id: str, client: Client) -> None:
        self.clients[(project_id, client.id)] = client

    def get(self, project_id: str, client_id: str) -> Client | None:
        return self.clients.get((project_id, client_id))

    def first(self, project_id: str, count: int) -> list[Client]:
        return [c for (pid, _), c in sorted(self.clients.items()) if pid == project_id][:count]

    def match(self, project_id: str, phone: str, *, limit: int = 1) -> list[str]:
        return [c.id for (pid, _), c in self.clients.items() if pid == project_id and c.phone == phone][:limit]

    def match_or_add(self, project: Project, client: Client) -> tuple[str, bool]:
        assert client.phone
        found = self.match(project.id, client.phone)
        if found:
            return found[0], False
        self.add(project.id, client)
        return client.id, True


@dataclass
class FakeCallbackTasks:
    """Open tasks by (project, client), closed ones by (project, task id); the texts sent, per client."""

    open: dict[tuple[str, str], CallbackTask] = field(default_factory=dict)
    done: dict[tuple[str, str], ClosedTask] = field(default_factory=dict)
    texted: dict[tuple[str, str], datetime] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (client, text)

    def open_of_client(self, project_id: str, client_id: str) -> CallbackTask | None:
        return self.open.get((project_id, client_id))

    def open_tasks(self, project_id: str) -> list[CallbackTask]:
        return [t for (pid, _), t in self.open.items() if pid == project_id]

    def closed(self, project_id: str, task_id: str) -> ClosedTask | None:
        return self.done.get((project_id, task_id))

    def apply(self, project_id: str, change: CallbackChange) -> None:
        """The change's writes, with the store's conditions (CallbackChanged when the task is not as read)."""
        if isinstance(change, NoOpenTask):
            if (project_id, change.client_id) in self.open:
                raise CallbackChanged()
            return
        key = (project_id, change.task.client_id)
        current = self.open.get(key)
        if isinstance(change, OpenTask):
            if current is not None:
                raise CallbackChanged()
            if change.task.message and change.texted_at:  # the text: once per client a day
                last = self.texted.get(key)
                if last is not None and change.texted_at - last < timedelta(hours=24):
                    raise TextedRecently()
                self.texted[key] = change.texted_at
                self.texts.append((change.task.client_id, change.task.message))
            self.open[key] = change.task
            return
        if current is None or current.task_id != change.task.task_id:
            raise CallbackChanged()
        if isinstance(change, AddMissed):
            self.open[key] = current.model_copy(
                update={"missed_calls": current.missed_calls + 1, "last_call_key": change.call_key}
            )
        elif isinstance(change, CloseTask):
            del self.open[key]
            self.done[(project_id, change.task.task_id)] = change.closed

    def close(self, project_id: str, change: CloseTask) -> None:
        self.apply(project_id, change)


@dataclass
class FakeCallRecords:
    calls: dict[tuple[str, str], CallRecord] = field(default_factory=dict)
    notes: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # (project, client) -> dialog
    record_links: dict[tuple[str, str], str] = field(default_factory=dict)  # (project, client) -> the variable
    requests: dict[tuple[str, str], WebhookRequest] = field(default_factory=dict)  # kept next to each call
    rejected: list[dict[str, Any]] = field(default_factory=list)
    unavailable: bool = False
    outbox: list[CallEvent] = field(default_factory=list)  # the call events written with the calls
    tasks: FakeCallbackTasks = field(default_factory=FakeCallbackTasks)  # what a call's transaction changes too

    def get(self, project_id: str, call_key: str) -> CallRecord | None:
        return self.calls.get((project_id, call_key))

    def of_client(self, project_id: str, client_id: str, *, limit: int = 50) -> list[CallRecord]:
        mine = [c for (pid, _), c in self.calls.items() if pid == project_id and c.client_id == client_id]
        return mine[::-1][:limit]

    def dialog(self, project_id: str, client_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
        return self.notes.get((project_id, client_id), [])[::-1][:limit]

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
        if self.unavailable:
            raise StorageUnavailable("the fake table is away")
        key = (project.id, call.call_key)
        if key in self.calls:
            return False
        if callback is not None:
            self.tasks.apply(project.id, callback)
        self.calls[key] = call
        self.outbox.extend(events)  # with the call, as the transaction writes them
        self.requests[key] = request
        note = {"text": notification, "kind": "call", "call_key": call.call_key, "created_at": "2024-03-01T11:00:00"}
        self.notes.setdefault((project.id, call.client_id), []).append(note)
        if call.record_link:
            self.record_links[(project.id, call.client_id)] = call.record_link
        return True

    def add_record_link(self, project: Project, call: CallRecord, *, notification: str) -> bool:
        stored = self.calls[(project.id, call.call_key)]
        if stored.record_link:
            return False
        self.calls[(project.id, call.call_key)] = stored.model_copy(update={"record_link": call.record_link})
        for note in self.notes[(project.id, call.client_id)]:
            if note["call_key"] == call.call_key:
                note["text"] = notification
        assert call.record_link
        self.record_links[(project.id, call.client_id)] = call.record_link
        return True

    def keep_rejected(
        self, project_id: str, request: WebhookRequest, *, error_code: str, message: str, status: int
    ) -> None:
        self.rejected.append(
            {"project_id": project_id, "request": request, "error": error_code, "message": message, "status": status}
        )


@dataclass
class FakeAttempts:
    """Attempts; a `starting`/`initiated` one is pending (may be ringing) until `link` completes it."""

    attempts: dict[tuple[str, str], CallAttempt] = field(default_factory=dict)

    def add(self, project_id: str, attempt: CallAttempt) -> None:
        self.attempts[(project_id, attempt.attempt_id)] = attempt

    def get(self, project_id: str, attempt_id: str) -> CallAttempt | None:
        return self.attempts.get((project_id, attempt_id))

    def latest_pending(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> CallAttempt | None:
        pending = sorted(
            (a for (pid, _), a in self.attempts.items() if pid == project_id and a.client_phone == phone),
            key=lambda a: a.created_at,
            reverse=True,
        )
        pending = [a for a in pending if a.status != "completed"]
        chosen = [a for a in pending if pbx_call_id and a.pbx_call_id == pbx_call_id]
        return (chosen or pending or [None])[0]

    def link(self, project_id: str, attempt_id: str, call_key: str, client_id: str) -> None:
        attempt = self.attempts.get((project_id, attempt_id))
        if attempt is None or attempt.status == "completed":
            return
        self.attempts[(project_id, attempt_id)] = attempt.model_copy(
            update={"status": "completed", "call_key": call_key, "client_id": client_id}
        )

    def start(self, project_id: str, attempt: CallAttempt, *, now: float, key_scope: str | None) -> bool:
        self.add(project_id, attempt)
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
        self.add(project_id, attempt)


@dataclass
class FakeLiveCalls:
    """Live calls by (project, call key); a write names the version it replaces, as the repository's does."""

    calls: dict[tuple[str, str], LiveCall] = field(default_factory=dict)
    writes: int = 0
    outbox: list[CallEvent] = field(default_factory=list)  # the call events written with the live states
    # Called before each `put`: a test lets another event or the call's end slip in between a read and a write.
    before_put: list[Any] = field(default_factory=list)

    def get(self, project_id: str, call_key: str) -> LiveCall | None:
        return self.calls.get((project_id, call_key))

    def put(
        self, project_id: str, live: LiveCall, *, replacing: LiveCall | None, events: Sequence[CallEvent] = ()
    ) -> bool:
        hooks, self.before_put = self.before_put, []
        for hook in hooks:
            hook()
        stored = self.calls.get((project_id, live.call_key))
        if (stored.version if stored else None) != (replacing.version if replacing else None):
            return False
        self.calls[(project_id, live.call_key)] = live.model_copy(update={"version": live.version + 1})
        self.outbox.extend(events)
        self.writes += 1
        return True

    def end(self, project_id: str, ended: LiveCall) -> None:
        stored = self.calls.get((project_id, ended.call_key))
        kept = {k: v for k, v in (stored.model_dump() if stored else {}).items() if v is not None}
        merged = {**kept, **ended.model_dump(exclude_none=True), "version": (stored.version if stored else 0) + 1}
        self.calls[(project_id, ended.call_key)] = LiveCall.model_validate(merged)
        self.writes += 1

    def of_project(self, project_id: str) -> list[LiveCall]:
        mine = [c for (pid, _), c in self.calls.items() if pid == project_id and c.state != "ended"]
        return sorted(mine, key=lambda c: c.since)


@dataclass
class FakeInbox:
    messages: list[str] = field(default_factory=list)

    def send(self, message: str) -> None:
        self.messages.append(message)


@dataclass
class FakeCredentials:
    secrets: dict[str, str] = field(default_factory=dict)  # project id -> PBX secret

    def __call__(self, project_id: str) -> PbxCredentials:
        return PbxCredentials(server_url="https://pbx.test/start.php", secret=self.secrets[project_id])


@dataclass
class WebhookWorld:
    """Everything the webhook receives, in memory, and a project whose PBX secret is `secret`."""

    project: Project
    secret: str
    projects: FakeProjects = field(default_factory=FakeProjects)
    clients: FakeClients = field(default_factory=FakeClients)
    calls: FakeCallRecords = field(default_factory=FakeCallRecords)
    attempts: FakeAttempts = field(default_factory=FakeAttempts)
    live: FakeLiveCalls = field(default_factory=FakeLiveCalls)
    employees: FakeEmployees = field(default_factory=FakeEmployees)
    callbacks: FakeCallbackTasks = field(default_factory=FakeCallbackTasks)
    inbox: FakeInbox = field(default_factory=FakeInbox)
    credentials: FakeCredentials = field(default_factory=FakeCredentials)
    clock: FakeClock = field(default_factory=lambda: FakeClock(1_709_290_800.0))

    def __post_init__(self) -> None:
        self.projects.add(self.project, secret=self.secret)
        self.credentials.secrets[self.project.id] = self.secret
        self.calls.tasks = self.callbacks

    @property
    def deps(self) -> WebhookDeps:
        return WebhookDeps(
            projects=self.projects,
            clients=self.clients,
            calls=self.calls,
            attempts=self.attempts,
            live=self.live,
            callbacks=self.callbacks,
            pbx_credentials=self.credentials,
            inbox=self.inbox,
            clock=self.clock,
        )

    @property
    def reads(self) -> ReadDeps:
        return ReadDeps(
            clients=self.clients,
            calls=self.calls,
            attempts=self.attempts,
            live=self.live,
            employees=self.employees,
            clock=self.clock,
        )
