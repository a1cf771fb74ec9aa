"""The read API answers from allow-lists (`domain.answers`): what is stored beside a call, a client or an attempt
(storage keys, the raw payload, the PBX's reply, any attribute added later) never reaches an answer."""

from __future__ import annotations

import time
from typing import Any

from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from iptelefon.data.attempts import AttemptStore, attempt_sk
from iptelefon.data.call_records import call_sk
from iptelefon.data.client_items import client_sk
from iptelefon.data.gateway import get_storage, project_pk, put, update
from iptelefon.domain.models import CallAttempt
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

ADDED = "internal_note"  # an attribute a later change stores on every item


def _read(project: Any, path: str, context: Any, **params: Any) -> dict[str, Any]:
    names = list(params.get("path_params") or {})
    resource = f"{path.rsplit('/', 1)[0]}/{{{names[0]}}}" if names else path
    answer = read_api_handler(api_event("GET", resource, path, token=project.token, **params), context)
    assert answer["statusCode"] == 200, answer["body"]
    return dict(answer_json(answer))


def _add_attribute(pk: str, sk: str) -> None:
    get_storage().write(update(pk, sk, "SET #added = :v", names={"#added": ADDED}, values={":v": "secret-ish"}))


def _keys_everywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys_everywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys_everywhere(v)}
    return set()


STORAGE_ONLY = {ADDED, "pk", "sk", "type", "gsi1pk", "gsi1sk", "dialog_sk", "raw", "pbx_reply", "call_id", "expires_at"}


def test_an_attribute_added_to_stored_items_stays_out_of_every_answer(project: Any, lambda_context: Any) -> None:
    # Given a recorded call, its client and a completed bot attempt, each item with an attribute no answer names
    pid = project.project.id
    form = {"id": "c-1", "calltype": "OUT", "src": "346", "dst": "79004443322", "talktime": "40"}
    attempt = {
        "attempt_id": "a-1",
        "kind": "employee",
        "client_phone": "79004443322",
        "short_number": "346",
        "created_at": "2024-03-01T10:00:00.000000+00:00",
        "status": "initiated",
        "pbx_reply": "the PBX said something",
    }
    AttemptStore(get_storage()).start(pid, CallAttempt.model_validate(attempt), now=time.time(), key_scope=None)
    recorded = answer_json(webhook_handler(webhook_event(PBX_SECRET, form), lambda_context))
    client_id = recorded["client_id"]
    _add_attribute(project_pk(pid), call_sk("c-1"))
    _add_attribute(project_pk(pid), client_sk(client_id))
    _add_attribute(project_pk(pid), attempt_sk("a-1"))

    # When each read route shows them
    answers = {
        "call": _read(project, "/v1/calls/c-1", lambda_context, path_params={"call_id": "c-1"}),
        "attempt": _read(project, "/v1/calls/a-1", lambda_context, path_params={"call_id": "a-1"}),
        "calls": _read(project, "/v1/calls", lambda_context, query={"client_id": client_id}),
        "card": _read(project, f"/v1/clients/{client_id}", lambda_context, path_params={"client_id": client_id}),
        "by phone": _read(project, "/v1/clients", lambda_context, query={"phone": "79004443322"}),
    }

    # Then they show what they are for, and nothing of the storage
    assert (answers["call"]["call_key"], answers["call"]["pbx_call_id"]) == ("c-1", "c-1")
    assert (answers["attempt"]["attempt_id"], answers["attempt"]["completed_by_call_key"]) == ("a-1", "c-1")
    assert answers["attempt"]["call"]["call_key"] == "c-1"
    assert [c["call_key"] for c in answers["calls"]["calls"]] == ["c-1"]
    assert answers["card"]["id"] == answers["by phone"]["clients"][0]["id"] == client_id
    for route, shown in answers.items():
        assert _keys_everywhere(shown) & STORAGE_ONLY == set(), route


def test_a_call_stored_before_the_vocabulary_is_read_with_its_pbx_call_id(project: Any, lambda_context: Any) -> None:
    # Given a call item as the webhook stored it before: the PBX's id under `call_id`, the key also as idempotency_key
    pid = project.project.id
    old = {
        "pk": project_pk(pid),
        "sk": call_sk("old-1"),
        "type": "call",
        "call_id": "old-1",
        "idempotency_key": "old-1",
        "call_key": "old-1",
        "client_id": "c-old",
        "client_phone": "79004443322",
        "direction": "in",
        "status": "answered",
        "talk_seconds": 12,
        "received_at": "2024-03-01T11:00:00+00:00",
    }
    get_storage().write(put(old))
    # When it is read, Then it answers in today's words
    shown = _read(project, "/v1/calls/old-1", lambda_context, path_params={"call_id": "old-1"})
    assert (shown["call_key"], shown["pbx_call_id"], shown["talk_seconds"]) == ("old-1", "old-1", 12)
    assert "call_id" not in shown and "idempotency_key" not in shown
