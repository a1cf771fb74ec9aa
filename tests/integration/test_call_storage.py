"""The call use case wired as the handlers wire it (`entry.dependencies.call_deps`): attempts and rate counters in
DynamoDB (moto), the Idempotency-Key store on Powertools, the PBX adapter over httpx (FakePbx). The rules themselves
are unit-tested on fakes in tests/unit/test_calls.py."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fixtures.projects import PBX_SECRET
from support import answer_lost_once

from iptelefon.data.attempts import AttemptStore
from iptelefon.data.gateway import get_storage, put
from iptelefon.data.projects import get_project_store
from iptelefon.data.rate_counters import RateCounterStore
from iptelefon.domain.errors import Conflict, PbxError, PbxTimeout, RateLimited, StorageUnavailable
from iptelefon.domain.models import CallAttempt, PbxCredentials, Project
from iptelefon.domain.rate_limits import check_rate_limits
from iptelefon.domain.requests import EmployeeCallRequest, GroupCallRequest
from iptelefon.entry import dependencies
from iptelefon.usecases import calls

PHONE = "79004443322"
HOUR = 3600


@pytest.fixture
def proj(project: Any) -> Project:
    return project.project  # type: ignore[no-any-return]


@pytest.fixture
def employee_call(lambda_context: Any) -> Any:
    def call(project: Project, *, key: str | None = None, number: str = "346") -> dict[str, Any]:
        request = EmployeeCallRequest(client_phone=PHONE, short_employee_phone=number)
        return calls.start_employee_call(
            dependencies.call_deps(), lambda_context, project, request, idempotency_key=key
        )

    return call


def _update(project: Project, **changes: Any) -> Project:
    updated = project.model_copy(update=changes)
    get_project_store().update_project(updated)
    return updated


def _attempts(project_id: str) -> list[dict[str, Any]]:
    return get_storage().query(f"PROJECT#{project_id}", "ATTEMPT#")


# -- the rate counters -------------------------------------------------------------------------------------------------
def test_fixed_window_counter_refuses_above_the_limit_until_the_window_ends(aws: None) -> None:
    # Given a limit of 2 per hour, 100 s into an hour window
    counters, now = RateCounterStore(get_storage()), 1_700_000_000 // HOUR * HOUR + 100.0
    count = lambda at: counters.count("p", "PHONE#1", limit=2, window_seconds=HOUR, now=at)  # noqa: E731
    # When three calls come, then two are counted and the third waits for the rest of the window
    assert [count(now), count(now), count(now)] == [0, 0, HOUR - 100]
    # And the next window counts again, with an expiry for TTL
    assert count(now + HOUR) == 0
    item = get_storage().get("RATE#p", f"PHONE#1#{int(now) + HOUR - 100}")
    assert item is not None and item["expires_at"] == int(now) - 100 + 2 * HOUR


def test_project_limit_gives_the_phone_slot_back_in_dynamodb(proj: Project) -> None:
    project = proj.model_copy(update={"calls_per_project_per_minute": 1})
    counters, now = RateCounterStore(get_storage()), 1_700_000_000.0
    check_rate_limits(counters, project, "79001112233", now)
    with pytest.raises(RateLimited, match="a minute"):
        check_rate_limits(counters, project, PHONE, now)
    assert counters.counted(project.id, f"PHONE#{PHONE}", window_seconds=HOUR, now=now) == 0
    # And an empty window has nothing to give back
    counters.uncount(project.id, "PHONE#nobody", window_seconds=HOUR, now=now)
    assert counters.counted(project.id, "PHONE#nobody", window_seconds=HOUR, now=now) == 0


def test_a_count_the_sdk_sent_twice_counts_once_and_is_not_refused(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a limit of 2 an hour with one call counted
    counters, now = RateCounterStore(get_storage()), 1_700_000_000 // HOUR * HOUR + 100.0
    count = lambda: counters.count("p", "PHONE#1", limit=2, window_seconds=HOUR, now=now)  # noqa: E731
    assert count() == 0
    # When the second count takes the last slot, its answer is lost and the SDK sends it again
    sent_twice = answer_lost_once(monkeypatch, lambda one: "ADD calls :one" in one.request["UpdateExpression"])
    # Then it is counted (not a 429 for a call it counted), and once
    assert count() == 0
    assert sent_twice and counters.counted("p", "PHONE#1", window_seconds=HOUR, now=now) == 2
    # And a give-back the SDK sent twice gives one slot back
    answer_lost_once(monkeypatch, lambda one: "ADD calls :minus_one" in one.request["UpdateExpression"])
    counters.uncount("p", "PHONE#1", window_seconds=HOUR, now=now)
    assert counters.counted("p", "PHONE#1", window_seconds=HOUR, now=now) == 1


def test_rate_limited_call_sends_nothing(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    project = _update(proj, calls_per_phone_per_hour=1)
    employee_call(project)
    with pytest.raises(RateLimited) as refused:
        employee_call(project)
    assert 1 <= refused.value.retry_after_seconds <= HOUR
    assert len(fake_pbx.requests) == 1


# -- the PBX request ---------------------------------------------------------------------------------------------------
def test_hash_is_md5_of_the_exact_body_plus_secret(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    employee_call(proj)
    body = fake_pbx.requests[0].content.decode()
    expected_head = "topic=base&method=call-employee&ext=346&phone=79004443322"
    expected_hash = hashlib.md5((expected_head + PBX_SECRET).encode()).hexdigest()
    assert body == f"{expected_head}&hash={expected_hash}"
    assert fake_pbx.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_a_project_made_with_the_defaults_starts_calls_with_call_me(
    admin_target: Any, fake_pbx: Any, employee_call: Any, lambda_context: Any
) -> None:
    from iptel_admin import admin

    # Given a project made as `iptel project create` makes one now, its PBX answering as the public integration's
    created = admin.create_project(
        admin_target, name="Zeon", server_url="https://pbx.test/start.php", secret=PBX_SECRET, messengers=[]
    )
    project = get_project_store().get_project(created.project.id)
    assert project is not None
    fake_pbx.reply = httpx.Response(200, json={"code": "success", "callid": "1716.42"})
    # When a bot starts an employee call and a group call
    answer = employee_call(project)
    request = GroupCallRequest(client_phone=PHONE, group_id="3")
    calls.start_group_call(dependencies.call_deps(), lambda_context, project, request, idempotency_key=None)
    # Then call-me carries the extension (or the group's number) as src and the client as dst
    heads = [r.content.decode().partition("&hash=")[0] for r in fake_pbx.requests]
    assert heads == [f"topic=base&method=call-me&src=346&dst={PHONE}", f"topic=base&method=call-me&src=3&dst={PHONE}"]
    # And the PBX's callid is the attempt's pbx_call_id
    assert (answer["status"], answer["pbx_call_id"]) == ("initiated", "1716.42")
    stored = AttemptStore(get_storage()).get(project.id, answer["attempt_id"])
    assert stored is not None and stored.pbx_call_id == "1716.42"


def test_a_project_item_stored_before_issue_19_still_sends_the_classic_names(
    admin_target: Any, fake_pbx: Any, employee_call: Any
) -> None:
    # Given a project item as `model_dump` wrote it before the defaults changed, and its PBX connection in SSM
    old = Project(id="old-proj", name="Old").model_dump(mode="json")
    old.update({"employee_method": "call-employee", "group_method": "call-group", "param_names": {}})
    get_storage().write(put({"pk": "PROJECT#old-proj", "sk": "PROJECT", "type": "project", **old}))
    credentials = PbxCredentials(server_url="https://pbx.test/start.php", secret=PBX_SECRET)
    admin_target.deps.pbx_settings.write("old-proj", credentials)
    project = get_project_store().get_project("old-proj")
    assert project is not None
    # When a bot starts an employee call
    employee_call(project)
    # Then the PBX gets call-employee with ext and phone, as before
    assert fake_pbx.requests[0].content.decode().startswith(f"topic=base&method=call-employee&ext=346&phone={PHONE}&")


def test_project_overrides_reach_the_pbx(proj: Project, fake_pbx: Any, lambda_context: Any) -> None:
    project = proj.model_copy(
        update={
            "auth_mode": "bearer",
            "group_method": "originate-queue",
            "param_names": {"group": "queue", "phone": "number"},
        }
    )
    request = GroupCallRequest(client_phone=PHONE, group_id="3")
    calls.start_group_call(dependencies.call_deps(), lambda_context, project, request, idempotency_key=None)
    request_sent = fake_pbx.requests[0]
    assert request_sent.content.decode() == urlencode(
        {"topic": "base", "method": "originate-queue", "queue": "3", "number": PHONE}
    )
    assert request_sent.headers["authorization"] == f"Bearer {PBX_SECRET}"


def test_success_stores_an_initiated_attempt_and_a_pending_pointer(
    proj: Project, fake_pbx: Any, lambda_context: Any
) -> None:
    request = GroupCallRequest(client_phone=PHONE, group_id="3")
    answer = calls.start_group_call(dependencies.call_deps(), lambda_context, proj, request, idempotency_key=None)
    assert answer == {
        "attempt_id": answer["attempt_id"],
        "status": "initiated",
        "client_phone": PHONE,
        "client_phone_e164": "+" + PHONE,
        "pbx_call_id": "pbx-1",
    }
    (item,) = _attempts(proj.id)
    assert item["attempt_id"] == answer["attempt_id"]
    assert (item["kind"], item["group_id"], item["status"]) == ("group", "3", "initiated")
    assert "short_number" not in item  # a group attempt stores the group only
    store = AttemptStore(get_storage())
    assert store.latest_pending(proj.id, PHONE) == CallAttempt.model_validate(item)
    assert store.get(proj.id, answer["attempt_id"]) == CallAttempt.model_validate(item)


def test_pbx_refusal_is_502_with_its_text_and_a_failed_attempt(
    proj: Project, fake_pbx: Any, employee_call: Any
) -> None:
    fake_pbx.reply = httpx.Response(200, json={"result": 0, "text": "Номер занят"})
    with pytest.raises(PbxError, match="Номер занят"):
        employee_call(proj)
    (attempt,) = _attempts(proj.id)
    assert attempt["status"] == "failed"
    assert attempt["reason"]["error"] == "pbx_error" and "Номер занят" in attempt["reason"]["message"]
    assert AttemptStore(get_storage()).latest_pending(proj.id, PHONE) is None


def test_pbx_timeout_is_504_and_the_attempt_stays_findable(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    fake_pbx.reply = httpx.ReadTimeout("slow")
    with pytest.raises(PbxTimeout):
        employee_call(proj)
    pending = AttemptStore(get_storage()).latest_pending(proj.id, PHONE)
    assert pending is not None and pending.reason is not None and pending.reason["error"] == "pbx_timeout"


def test_the_attempt_is_stored_before_the_pbx_is_asked(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    seen: list[list[str]] = []
    reply = fake_pbx.reply

    def answer(request: Any) -> Any:
        seen.append([a["status"] for a in _attempts(proj.id)])
        return reply

    fake_pbx.reply = answer
    employee_call(proj)
    assert seen == [["starting"]]
    (attempt,) = _attempts(proj.id)
    assert attempt["status"] == "initiated"


class _InvocationTimedOut(BaseException):
    """What Lambda does to an invocation at its timeout: it stops, no `except Exception` runs."""


def test_a_repeat_after_an_invocation_died_mid_call_never_rings_twice(
    proj: Project, fake_pbx: Any, employee_call: Any
) -> None:
    import boto3

    from iptelefon.platform.settings import get_settings

    # Given a call with an Idempotency-Key whose invocation died while the PBX was ringing the client
    fake_pbx.reply = _InvocationTimedOut()
    with pytest.raises(_InvocationTimedOut):
        employee_call(proj, key="order-9")
    # And Powertools' in-progress record of it has expired (it lives as long as the invocation)
    table = get_settings().idempotency_table_name
    dynamodb = boto3.client("dynamodb")
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.delete_item(TableName=table, Key={"id": item["id"]})

    # When the bot repeats the request with the same key
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-2"}})
    with pytest.raises(PbxTimeout, match="may have started the call") as refused:
        employee_call(proj, key="order-9")

    # Then it is the 504 of a call that may be ringing, and the PBX was asked only once
    assert refused.value.status_code == 504
    assert len(fake_pbx.requests) == 1
    (attempt,) = _attempts(proj.id)
    assert attempt["status"] == "starting"
    # And a new key calls again
    assert employee_call(proj, key="order-10")["status"] == "initiated"


# -- idempotency on Powertools -----------------------------------------------------------------------------------------
def test_repeat_with_the_same_key_returns_the_first_answer_byte_for_byte(
    proj: Project, fake_pbx: Any, employee_call: Any
) -> None:
    import json

    first = employee_call(proj, key="order-1")
    again = employee_call(proj, key="order-1")
    assert json.dumps(again) == json.dumps(first)
    assert len(fake_pbx.requests) == 1
    assert len(_attempts(proj.id)) == 1


def test_same_key_with_another_body_is_409(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    employee_call(proj, key="k")
    with pytest.raises(Conflict, match="different request"):
        employee_call(proj, key="k", number="347")
    assert len(fake_pbx.requests) == 1


def test_after_a_timeout_the_same_key_never_calls_again(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    fake_pbx.reply = httpx.ReadTimeout("slow")
    with pytest.raises(PbxTimeout) as first:
        employee_call(proj, key="k")
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {}})
    with pytest.raises(PbxTimeout) as again:
        employee_call(proj, key="k")
    assert again.value.message == first.value.message
    assert len(fake_pbx.requests) == 1


def test_after_a_clear_refusal_the_same_key_may_try_again(proj: Project, fake_pbx: Any, employee_call: Any) -> None:
    fake_pbx.reply = httpx.Response(200, json={"result": 0, "text": "Нет линий"})
    with pytest.raises(PbxError):
        employee_call(proj, key="k")
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-2"}})
    assert employee_call(proj, key="k")["pbx_call_id"] == "pbx-2"
    assert len(fake_pbx.requests) == 2


def test_when_the_answer_cannot_be_remembered_the_started_call_is_still_reported(
    proj: Project, fake_pbx: Any, employee_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    def broken(self: Any, data_record: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "_update_record", broken)
    assert employee_call(proj, key="k")["status"] == "initiated"
    assert len(fake_pbx.requests) == 1


def test_an_unavailable_idempotency_store_before_the_call_is_503_and_nothing_is_sent(
    proj: Project, fake_pbx: Any, employee_call: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    def broken(self: Any, data_record: Any) -> None:
        raise RuntimeError("unreachable")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "_put_record", broken)
    with pytest.raises(StorageUnavailable):
        employee_call(proj, key="k")
    assert fake_pbx.requests == []


# -- attempts as the webhook finds and links them ----------------------------------------------------------------------
def _attempt(attempt_id: str, created_at: str, **extra: Any) -> CallAttempt:
    return CallAttempt(attempt_id=attempt_id, kind="employee", client_phone=PHONE, created_at=created_at, **extra)


def _store(store: AttemptStore, attempt: CallAttempt, *, pending: bool, now: float) -> None:
    """An attempt as a call start leaves it: stored `starting`, then finished with the PBX's answer."""
    assert store.start("p", attempt.model_copy(update={"status": "starting"}), now=now, key_scope=None)
    store.finish("p", attempt, pending=pending, key_scope=None, now=now)


def test_latest_pending_is_the_newest_or_the_one_with_the_pbx_id(aws: None) -> None:
    store, now = AttemptStore(get_storage()), 1_700_000_000.0
    _store(
        store,
        _attempt("a1", "2024-01-01T10:00:00.000000+00:00", status="initiated", pbx_call_id="x1"),
        pending=True,
        now=now,
    )
    _store(store, _attempt("a2", "2024-01-01T11:00:00.000000+00:00", status="initiated"), pending=True, now=now)
    _store(store, _attempt("a3", "2024-01-01T12:00:00.000000+00:00", status="failed"), pending=False, now=now)
    found = store.latest_pending("p", PHONE, now=now)
    assert found is not None and found.attempt_id == "a2"
    found = store.latest_pending("p", PHONE, pbx_call_id="x1", now=now)
    assert found is not None and found.attempt_id == "a1"
    # And nothing is pending a day later (TTL deletes lazily: the expiry is checked)
    assert store.latest_pending("p", PHONE, now=now + 86_401) is None
    assert store.latest_pending("p", "79990000000", now=now) is None


def test_start_with_a_used_key_scope_stores_nothing_and_says_so(aws: None) -> None:
    store, now = AttemptStore(get_storage()), 1_700_000_000.0
    assert store.start("p", _attempt("a1", "2024-01-01T10:00:00.000000+00:00"), now=now, key_scope="k")
    assert not store.start("p", _attempt("a2", "2024-01-01T10:00:01.000000+00:00"), now=now, key_scope="k")
    assert store.get("p", "a2") is None
    # And a refusal by the PBX frees the key (nothing was started)
    failed = _attempt("a1", "2024-01-01T10:00:00.000000+00:00", status="failed")
    store.finish("p", failed, pending=False, key_scope="k", now=now)
    assert store.start("p", _attempt("a3", "2024-01-01T10:00:02.000000+00:00"), now=now, key_scope="k")


def test_link_completes_it_once_and_it_is_no_longer_pending(aws: None) -> None:
    store, now = AttemptStore(get_storage()), 1_700_000_000.0
    _store(store, _attempt("a1", "2024-01-01T10:00:00.000000+00:00", status="initiated"), pending=True, now=now)
    store.link("p", "a1", "call-1", "client-1")
    store.link("p", "a1", "call-1", "client-1")
    store.link("p", "a1", "call-2", "client-2")
    store.link("p", "missing", "call-3", "client-3")
    attempt = store.get("p", "a1")
    assert attempt is not None
    assert (attempt.status, attempt.call_key, attempt.client_id) == ("completed", "call-1", "client-1")
    assert store.latest_pending("p", PHONE, now=now) is None


def test_an_attempt_completed_before_the_vocabulary_was_fixed_reads_its_call_key(aws: None) -> None:
    # Given an item linked by an older version (it named the call `call_id`)
    from iptelefon.data.gateway import put

    item = _attempt("a9", "2024-01-01T10:00:00.000000+00:00", status="completed").model_dump(exclude_none=True)
    get_storage().write(put({"pk": "PROJECT#p", "sk": "ATTEMPT#a9", "type": "call_attempt", **item, "call_id": "old"}))
    attempt = AttemptStore(get_storage()).get("p", "a9")
    assert attempt is not None and attempt.call_key == "old"


def test_the_handler_hands_the_lambda_context_to_the_idempotency_store(
    project: Any, fake_pbx: Any, lambda_context: Any
) -> None:
    import boto3
    from support import api_event

    from employee_call.handler import lambda_handler as employee_call_handler
    from iptelefon.platform.settings import get_settings

    # Given a PBX that looks at the Idempotency-Key's in-flight record when the call reaches it
    table = get_settings().idempotency_table_name
    seen: list[dict[str, Any]] = []
    reply = fake_pbx.reply

    def answer(request: Any) -> Any:
        seen.extend(boto3.client("dynamodb").scan(TableName=table)["Items"])
        return reply

    fake_pbx.reply = answer
    # When a bot starts a call with a key through the handler
    body = {"client_phone": PHONE, "short_employee_phone": "346"}
    event = api_event(
        "POST",
        "/v1/calls/employee",
        "/v1/calls/employee",
        body=body,
        headers={"Idempotency-Key": "k"},
        token=project.token,
    )
    assert employee_call_handler(event, lambda_context)["statusCode"] == 202
    # Then the record in flight expires with the invocation (Powertools knows the invocation's time left)
    (record,) = seen
    assert record["status"]["S"] == "INPROGRESS"
    assert "in_progress_expiration" in record
