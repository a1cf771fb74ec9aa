"""What a bot or operator may read: clients and calls of its own project only (another project's id is a 404).

What it reads from is handed in (`ReadDeps`, built by `entry.dependencies`); every answer is an allow-list
model of `domain.answers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from iptelefon.domain.answers import (
    AttemptAnswer,
    CallAnswer,
    CallsOfClientAnswer,
    ClientAnswer,
    ClientCardAnswer,
    ClientsByPhoneAnswer,
    DialogNoteAnswer,
    LiveCallAnswer,
    LiveCallsAnswer,
    NameSearchAnswer,
    PhoneSearchAnswer,
)
from iptelefon.domain.client_names import name_values
from iptelefon.domain.errors import InvalidPhone, NotFound
from iptelefon.domain.live_calls import LiveCall
from iptelefon.domain.models import Client, Project, call_key_for
from iptelefon.domain.phones import e164, normalize_phone
from iptelefon.usecases.auth import Caller
from iptelefon.usecases.ports import Attempts, CallRecords, Clients, Clock, EmployeeLookup, LiveCalls

MAX_MATCHES = 20
MAX_SEARCHED_CLIENTS = 5_000


@dataclass(frozen=True)
class ReadDeps:
    clients: Clients
    calls: CallRecords
    attempts: Attempts
    live: LiveCalls
    employees: EmployeeLookup  # an operator's short number: the extension whose calls it sees now
    clock: Clock


def clients_by_phone(deps: ReadDeps, project: Project, phone: str) -> ClientsByPhoneAnswer:
    """The clients a webhook from this phone would match, in matching order (the first one wins)."""
    canonical = normalize_phone(phone, default_region=project.default_region, field="phone")
    ids = deps.clients.match(project.id, canonical, limit=MAX_MATCHES)
    clients = [client for client in (deps.clients.get(project.id, i) for i in ids) if client is not None]
    return ClientsByPhoneAnswer(
        phone=canonical,
        phone_e164=e164(canonical),
        clients=[ClientAnswer.of(c, project.name_variables) for c in clients],
    )


def search_clients(deps: ReadDeps, project: Project, text: str) -> PhoneSearchAnswer | NameSearchAnswer:
    """The console's search box: a phone finds the clients a webhook would match, in that order; other text finds the
    clients with a name variable of the project's `name_variables` (`name`, `ФИО`, `first_name`, …) that contains it,
    case aside. A name search
    reads at most MAX_SEARCHED_CLIENTS clients of the project: a search box, not a report."""
    try:
        return PhoneSearchAnswer(query=text, **dict(clients_by_phone(deps, project, text)))
    except InvalidPhone:
        pass
    needle = text.strip().casefold()
    found = [
        client
        for client in deps.clients.first(project.id, MAX_SEARCHED_CLIENTS)
        if any(needle in value.casefold() for value in name_values(client.variables, project.name_variables))
    ]
    return NameSearchAnswer(
        query=text, clients=[ClientAnswer.of(c, project.name_variables) for c in found[:MAX_MATCHES]]
    )


def client_card(deps: ReadDeps, project: Project, client_id: str) -> ClientCardAnswer:
    client = _client(deps, project, client_id)
    dialog = [DialogNoteAnswer.of(note) for note in deps.calls.dialog(project.id, client.id)]
    return ClientCardAnswer(**dict(ClientAnswer.of(client, project.name_variables)), dialog=dialog)


def calls_of_client(deps: ReadDeps, project: Project, client_id: str) -> CallsOfClientAnswer:
    client = _client(deps, project, client_id)
    records = deps.calls.of_client(project.id, client.id)
    return CallsOfClientAnswer(client_id=client.id, calls=[CallAnswer.of(r) for r in records])


def call_record(deps: ReadDeps, project: Project, key: str) -> CallAnswer | AttemptAnswer | LiveCallAnswer:
    """A completed call by its `call_key`; a bot's call attempt by the `attempt_id` its 202 answer gave (with the call
    that completed it, once the PBX's webhook came, or its live state while it rings or talks); or a call ringing or
    in talk now by its `call_key` (before its `history` came). A completed call has no live state: it is over."""
    record = deps.calls.get(project.id, key)
    if record is not None:
        return CallAnswer.of(record)
    attempt = deps.attempts.get(project.id, key)
    if attempt is not None:
        completed = deps.calls.get(project.id, attempt.call_key) if attempt.call_key else None
        live = (
            _live(deps, project, call_key_for(attempt.pbx_call_id)) if attempt.pbx_call_id and not completed else None
        )
        return AttemptAnswer.of(attempt, completed, live)
    live = _live(deps, project, key)
    if live is None:
        raise NotFound(f"call {key} not found")
    return LiveCallAnswer.of(live)


def live_calls(deps: ReadDeps, project: Project, *, extension: str | None = None) -> LiveCallsAnswer:
    """The project's calls ringing or in talk now, the longest-standing first: one query of the project's live
    calls. `extension`: only the calls ringing or in talk at that short number."""
    now = _now(deps)
    return LiveCallsAnswer(
        calls=[
            LiveCallAnswer.of(c)
            for c in deps.live.of_project(project.id)
            if c.is_live(now) and (extension is None or c.employee == extension)
        ]
    )


def live_calls_seen_by(deps: ReadDeps, caller: Caller) -> LiveCallsAnswer:
    """GET /v1/calls/live: an operator sees the calls at its employee's short number (none without one, or when the
    employee is gone); an admin or a bot, all the project's calls now."""
    if caller.role != "operator":
        return live_calls(deps, caller.project)
    employee = deps.employees.get_employee(caller.project.id, caller.employee_id) if caller.employee_id else None
    if employee is None or not employee.short_number:
        return LiveCallsAnswer(calls=[])
    return live_calls(deps, caller.project, extension=employee.short_number)


def _live(deps: ReadDeps, project: Project, call_key: str) -> LiveCall | None:
    live = deps.live.get(project.id, call_key)
    return live if live is not None and live.is_live(_now(deps)) else None


def _now(deps: ReadDeps) -> datetime:
    return datetime.fromtimestamp(deps.clock(), UTC)


def _client(deps: ReadDeps, project: Project, client_id: str) -> Client:
    client = deps.clients.get(project.id, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    return client
