"""What a bot or operator may read: clients and calls of its own project only (another project's id is a 404)."""

from __future__ import annotations

from typing import Any

from iptelefon.data.attempts import attempt_answer, get_attempt
from iptelefon.data.call_records import CallRecordStore, call_answer
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage
from iptelefon.domain.errors import InvalidPhone, NotFound
from iptelefon.domain.models import Client, Project
from iptelefon.domain.phones import e164, normalize_phone

MAX_MATCHES = 20
MAX_SEARCHED_CLIENTS = 5_000


def clients_by_phone(project: Project, phone: str) -> dict[str, Any]:
    """The clients a webhook from this phone would match, in matching order (the first one wins)."""
    canonical = normalize_phone(phone, default_region=project.default_region, field="phone")
    store = ClientStore(get_storage())
    ids = store.match(project.id, canonical, limit=MAX_MATCHES)
    clients = [client for client in (store.get(project.id, i) for i in ids) if client is not None]
    return {"phone": canonical, "phone_e164": e164(canonical), "clients": [client_answer(c) for c in clients]}


def search_clients(project: Project, text: str) -> dict[str, Any]:
    """The console's search box: a phone finds the clients a webhook would match, in that order; other text finds the
    clients with a name-like variable (`name`, `first_name`, `ФИО`, …) that contains it, case aside. A name search
    reads at most MAX_SEARCHED_CLIENTS clients of the project: a search box, not a report."""
    try:
        return {"query": text, **clients_by_phone(project, text)}
    except InvalidPhone:
        pass
    needle = text.strip().casefold()
    found = [
        client
        for client in ClientStore(get_storage()).first(project.id, MAX_SEARCHED_CLIENTS)
        if any(needle in value.casefold() for key, value in client.variables.items() if _is_name(key))
    ]
    return {"query": text, "clients": [client_answer(c) for c in found[:MAX_MATCHES]]}


def _is_name(variable: str) -> bool:
    key = variable.casefold()
    return any(hint in key for hint in ("name", "имя", "фио", "fio"))


def client_card(project: Project, client_id: str) -> dict[str, Any]:
    client = _client(project, client_id)
    dialog = CallRecordStore(get_storage()).dialog(project.id, client.id)
    notes = [
        {"text": n["text"], "kind": n.get("kind"), "call_id": n.get("call_key"), "created_at": n["created_at"]}
        for n in dialog
    ]
    return {**client_answer(client), "dialog": notes}


def calls_of_client(project: Project, client_id: str) -> dict[str, Any]:
    client = _client(project, client_id)
    records = CallRecordStore(get_storage()).of_client(project.id, client.id)
    return {"client_id": client.id, "calls": [call_answer(r) for r in records]}


def call_record(project: Project, call_id: str) -> dict[str, Any]:
    """A completed call by its id, or a bot's call attempt by the `call_id` its 202 answer gave (with the call
    that completed it, once the PBX's webhook came)."""
    records = CallRecordStore(get_storage())
    record = records.get(project.id, call_id)
    if record is not None:
        return call_answer(record)
    attempt = get_attempt(records.storage, project.id, call_id)
    if attempt is None:
        raise NotFound(f"call {call_id} not found")
    completed = records.get(project.id, str(attempt["call_id"])) if attempt.get("call_id") else None
    return {**attempt_answer(attempt), "call": call_answer(completed) if completed else None}


def client_answer(client: Client) -> dict[str, Any]:
    answer = client.model_dump(mode="json")
    answer["phone_e164"] = e164(client.phone) if client.phone else None
    return answer


def _client(project: Project, client_id: str) -> Client:
    client = ClientStore(get_storage()).get(project.id, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    return client
