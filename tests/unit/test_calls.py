"""The call logic (`iptelefon.usecases.calls`) and its data access (`iptelefon.data.attempts`), over moto and a
FakePbx."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fixtures.projects import PBX_SECRET

from iptelefon.data import attempts as call_attempts
from iptelefon.data.gateway import get_storage
from iptelefon.domain.errors import (
    CallsDisabled,
    Conflict,
    CountryNotAllowed,
    InvalidInput,
    InvalidPhone,
    NotFound,
    NumberNotAllowed,
    PbxError,
    PbxTimeout,
    RateLimited,
)
from iptelefon.domain.models import (
    Client,
    ClientCardCallRequest,
    EmployeeCallRequest,
    GroupCallRequest,
    Project,
)
from iptelefon.usecases import calls

PHONE = "79004443322"
HOUR = 3600


@pytest.fixture
def proj(project: Any, lambda_context: Any) -> Project:
    calls.register_lambda_context(lambda_context)
    return project.project  # type: ignore[no-any-return]


def _employee(phone: str = PHONE, number: str = "346") -> EmployeeCallRequest:
    return EmployeeCallRequest(client_phone=phone, short_employee_phone=number)


def _update(project: Project, **changes: Any) -> Project:
    updated = project.model_copy(update=changes)
    get_storage().update_project(updated)
    return updated


def _attempts(project_id: str) -> list[dict[str, Any]]:
    return get_storage().query(f"PROJECT#{project_id}", "ATTEMPT#")


# -- the phone and the toll-fraud guard --------------------------------------------------------------------------------
@pytest.mark.parametrize("typed", ["8 (900) 444-33-22", "+7 900 444 33 22", "9004443322", "79004443322"])
def test_phone_is_normalized_before_the_pbx(typed: str, proj: Project, fake_pbx: Any) -> None:
    # Given a phone typed the way people type it
    # When an employee call is started
    answer = calls.start_employee_call(proj, _employee(typed), idempotency_key=None)
    # Then the PBX and the answer see the canonical phone
    assert fake_pbx.forms[0]["phone"] == PHONE
    assert answer["client_phone"] == PHONE


def test_own_country_only_by_default(proj: Project) -> None:
    # Given a RU project without an allowed list, when a Belarusian number is checked, then it is refused with a reason
    with pytest.raises(CountryNotAllowed) as refused:
        calls.callable_phone(proj, "+375291234567", field="client_phone")
    assert refused.value.status_code == 403
    assert "BY" in refused.value.message and "RU" in refused.value.message
    assert refused.value.details[0]["field"] == "client_phone"


def test_kazakhstan_is_not_russia_though_both_are_plus_7(proj: Project) -> None:
    # Given a RU project, when a Kazakh mobile (+7 701) is checked, then it is refused: the region decides, not +7
    with pytest.raises(CountryNotAllowed, match="KZ"):
        calls.callable_phone(proj, "+7 701 123 4567", field="client_phone")


def test_allowed_country_codes_add_to_the_projects_own_region(proj: Project) -> None:
    # Given a RU project that also allows +375
    project = proj.model_copy(update={"allowed_country_codes": [375]})
    # Then Belarus passes, and Russia still does
    assert calls.callable_phone(project, "+375291234567", field="phone") == "375291234567"
    assert calls.callable_phone(project, PHONE, field="phone") == PHONE
    # And allowing +7 takes in every region that shares it
    assert calls.callable_phone(proj.model_copy(update={"allowed_country_codes": [7]}), "+77011234567", field="p")


@pytest.mark.parametrize(
    ("typed", "kind"),
    [("+7 809 505 1234", "premium rate"), ("8 800 123 45 67", "toll free")],
)
def test_lines_other_than_fixed_and_mobile_are_refused_before_the_pbx(
    typed: str, kind: str, proj: Project, fake_pbx: Any
) -> None:
    # Given a RU project with the default kinds of line; when a bot calls a Russian premium-rate or toll-free number
    with pytest.raises(NumberNotAllowed) as refused:
        calls.start_employee_call(proj, _employee(typed), idempotency_key=None)
    # Then 403 number_not_allowed naming the kind, and nothing reached the PBX
    assert (refused.value.status_code, refused.value.code) == (403, "number_not_allowed")
    assert kind in refused.value.message
    assert fake_pbx.requests == []


def test_a_project_may_allow_more_kinds_of_line_explicitly(proj: Project) -> None:
    project = proj.model_copy(update={"allowed_number_types": ["fixed_line", "mobile", "toll_free"]})
    assert calls.callable_phone(project, "88001234567", field="phone") == "78001234567"


@pytest.mark.parametrize("field", ["short_employee_phone", "group_id"])
def test_short_numbers_and_group_ids_are_ascii_digits_only(field: str) -> None:
    # Given Arabic-Indic digits (`\d` in a regex takes them), when a bot sends them, then the body is refused
    body = {"client_phone": PHONE, field: "٣٤٦"}
    model = EmployeeCallRequest if field == "short_employee_phone" else GroupCallRequest
    with pytest.raises(ValueError, match=field):
        model.model_validate(body)


def test_an_invalid_phone_is_400_naming_the_field(proj: Project, fake_pbx: Any) -> None:
    with pytest.raises(InvalidPhone) as refused:
        calls.start_group_call(proj, GroupCallRequest(client_phone="12", group_id="3"), idempotency_key=None)
    assert refused.value.details[0]["field"] == "client_phone"
    assert fake_pbx.requests == []


# -- rate limits -------------------------------------------------------------------------------------------------------
def test_fixed_window_counter_refuses_above_the_limit_until_the_window_ends(aws: None) -> None:
    # Given a limit of 2 per hour, 100 s into an hour window
    storage, now = get_storage(), 1_700_000_000 // HOUR * HOUR + 100.0
    count = lambda at: call_attempts.count_call(storage, "p", "PHONE#1", limit=2, window_seconds=HOUR, now=at)  # noqa: E731
    # When three calls come
    # Then two are counted and the third waits for the rest of the window
    assert [count(now), count(now), count(now)] == [0, 0, HOUR - 100]
    # And the next window counts again, with an expiry for TTL
    assert count(now + HOUR) == 0
    item = storage.get("RATE#p", f"PHONE#1#{int(now) + HOUR - 100}")
    assert item is not None and item["expires_at"] == int(now) - 100 + 2 * HOUR


def test_project_limit_gives_the_phone_slot_back(proj: Project) -> None:
    # Given a project allowing one call a minute, already used by another phone
    project = proj.model_copy(update={"calls_per_project_per_minute": 1})
    storage, now = get_storage(), 1_700_000_000.0
    calls.check_rate_limits(storage, project, "79001112233", now)
    # When a second phone is called in the same minute
    with pytest.raises(RateLimited) as refused:
        calls.check_rate_limits(storage, project, PHONE, now)
    # Then the refusal names the project limit, waits for the minute's end, and the phone's counter is untouched
    assert "a minute" in refused.value.message
    assert 1 <= refused.value.retry_after_seconds <= 60
    counted = call_attempts.calls_counted(storage, project.id, f"PHONE#{PHONE}", window_seconds=HOUR, now=now)
    assert counted == 0


def test_rate_limited_call_sends_nothing(proj: Project, fake_pbx: Any) -> None:
    # Given one call per phone per hour, used
    project = _update(proj, calls_per_phone_per_hour=1)
    calls.start_employee_call(project, _employee(), idempotency_key=None)
    # When the phone is called again, then 429 with a Retry-After, and the PBX got one request only
    with pytest.raises(RateLimited) as refused:
        calls.start_employee_call(project, _employee(), idempotency_key=None)
    assert 1 <= refused.value.retry_after_seconds <= HOUR
    assert len(fake_pbx.requests) == 1


# -- the PBX request ---------------------------------------------------------------------------------------------------
def test_hash_is_md5_of_the_exact_body_plus_secret(proj: Project, fake_pbx: Any) -> None:
    # Given the project's hash mode
    # When an employee call is started
    calls.start_employee_call(proj, _employee(), idempotency_key=None)
    # Then the body is exactly the form before the hash, and the hash is computed by hand over it
    body = fake_pbx.requests[0].content.decode()
    expected_head = "topic=base&method=call-employee&ext=346&phone=79004443322"
    expected_hash = hashlib.md5((expected_head + PBX_SECRET).encode()).hexdigest()
    assert body == f"{expected_head}&hash={expected_hash}"
    assert fake_pbx.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_project_overrides_reach_the_pbx(proj: Project, fake_pbx: Any) -> None:
    # Given a project whose PBX takes bearer auth and other method and parameter names
    project = proj.model_copy(
        update={
            "auth_mode": "bearer",
            "group_method": "originate-queue",
            "param_names": {"group": "queue", "phone": "number"},
        }
    )
    # When a group call is started
    calls.start_group_call(project, GroupCallRequest(client_phone=PHONE, group_id="3"), idempotency_key=None)
    # Then the request uses those names, the bearer header and no hash
    request = fake_pbx.requests[0]
    assert request.content.decode() == urlencode(
        {"topic": "base", "method": "originate-queue", "queue": "3", "number": PHONE}
    )
    assert request.headers["authorization"] == f"Bearer {PBX_SECRET}"


def test_success_stores_an_initiated_attempt_and_a_pending_pointer(proj: Project, fake_pbx: Any) -> None:
    # Given a PBX that answers its own call id
    # When a group call is started
    answer = calls.start_group_call(proj, GroupCallRequest(client_phone=PHONE, group_id="3"), idempotency_key=None)
    # Then the answer carries our attempt id and the PBX's id
    assert answer == {
        "call_id": answer["call_id"],
        "status": "initiated",
        "client_phone": PHONE,
        "client_phone_e164": "+" + PHONE,
        "pbx_call_id": "pbx-1",
    }
    # And the attempt is stored and findable by the phone for the webhook
    (attempt,) = _attempts(proj.id)
    assert attempt["attempt_id"] == answer["call_id"]
    assert (attempt["kind"], attempt["group_id"], attempt["status"]) == ("group", "3", "initiated")
    assert call_attempts.latest_pending_attempt(get_storage(), proj.id, PHONE) == attempt


def test_pbx_refusal_is_502_with_its_text_and_a_failed_attempt(proj: Project, fake_pbx: Any) -> None:
    # Given a PBX that says no
    fake_pbx.reply = httpx.Response(200, json={"result": 0, "text": "Номер занят"})
    # When a call is started, then 502 with the PBX's text
    with pytest.raises(PbxError, match="Номер занят"):
        calls.start_employee_call(proj, _employee(), idempotency_key=None)
    # And a failed attempt with the reason; nothing is pending (no call can be ringing)
    (attempt,) = _attempts(proj.id)
    assert attempt["status"] == "failed"
    assert attempt["reason"]["error"] == "pbx_error" and "Номер занят" in attempt["reason"]["message"]
    assert call_attempts.latest_pending_attempt(get_storage(), proj.id, PHONE) is None


def test_pbx_timeout_is_504_and_the_attempt_stays_findable(proj: Project, fake_pbx: Any) -> None:
    # Given a PBX that does not answer in time
    fake_pbx.reply = httpx.ReadTimeout("slow")
    # When a call is started, then 504
    with pytest.raises(PbxTimeout):
        calls.start_employee_call(proj, _employee(), idempotency_key=None)
    # And the failed attempt stays pending: the call may be ringing and its webhook may come
    pending = call_attempts.latest_pending_attempt(get_storage(), proj.id, PHONE)
    assert pending is not None and pending["reason"]["error"] == "pbx_timeout"


def test_a_storage_failure_after_the_pbx_answered_still_answers_202(
    proj: Project, fake_pbx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the attempt cannot be stored
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("table gone")

    monkeypatch.setattr(call_attempts, "finish_attempt", broken)
    # When a call is started, then the started call is still reported
    assert calls.start_employee_call(proj, _employee(), idempotency_key=None)["status"] == "initiated"


def test_the_attempt_is_stored_before_the_pbx_is_asked(proj: Project, fake_pbx: Any) -> None:
    # Given a PBX that looks at the attempts when the start request reaches it
    seen: list[list[str]] = []
    reply = fake_pbx.reply

    def answer(request: Any) -> Any:
        seen.append([a["status"] for a in get_storage().query(f"PROJECT#{proj.id}", "ATTEMPT#")])
        return reply

    fake_pbx.reply = answer
    # When a call is started
    calls.start_employee_call(proj, _employee(), idempotency_key=None)
    # Then the PBX was asked while a `starting` attempt was already on record, and the attempt is `initiated` now
    assert seen == [["starting"]]
    (attempt,) = get_storage().query(f"PROJECT#{proj.id}", "ATTEMPT#")
    assert attempt["status"] == "initiated"


class _InvocationTimedOut(BaseException):
    """What Lambda does to an invocation at its timeout: it stops, no `except Exception` runs."""


def test_a_repeat_after_an_invocation_died_mid_call_never_rings_twice(
    proj: Project, fake_pbx: Any, lambda_context: Any
) -> None:
    import boto3

    from iptelefon.platform.settings import get_settings

    # Given a call with an Idempotency-Key whose invocation died while the PBX was ringing the client
    fake_pbx.reply = _InvocationTimedOut()
    with pytest.raises(_InvocationTimedOut):
        calls.start_employee_call(proj, _employee(), idempotency_key="order-9")
    # And Powertools' in-progress record of it has expired (it lives as long as the invocation)
    table = get_settings().idempotency_table_name
    dynamodb = boto3.client("dynamodb")
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.delete_item(TableName=table, Key={"id": item["id"]})

    # When the bot repeats the request with the same key
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-2"}})
    with pytest.raises(PbxTimeout, match="may have started the call") as refused:
        calls.start_employee_call(proj, _employee(), idempotency_key="order-9")

    # Then it is the 504 of a call that may be ringing, and the PBX was asked only once
    assert refused.value.status_code == 504
    assert len(fake_pbx.requests) == 1
    (attempt,) = get_storage().query(f"PROJECT#{proj.id}", "ATTEMPT#")
    assert attempt["status"] == "starting"
    # And a new key calls again
    assert calls.start_employee_call(proj, _employee(), idempotency_key="order-10")["status"] == "initiated"


# -- the client card ---------------------------------------------------------------------------------------------------
@pytest.fixture
def client(proj: Project) -> Client:
    from iptelefon.data.clients import ClientStore

    card = Client(id="c-1", channel="telephony", phone=PHONE, can_message=False)
    ClientStore(get_storage()).add(proj, card)
    return card


def test_card_call_method_app_answers_a_tel_uri_without_the_pbx(proj: Project, client: Client, fake_pbx: Any) -> None:
    status, body = calls.call_from_client_card(
        proj, "c-1", ClientCardCallRequest(employee_id="soft"), idempotency_key=None
    )
    assert (status, body) == (200, {"method": "app", "uri": "tel:+79004443322"})
    assert fake_pbx.requests == []


def test_card_call_method_disabled_is_403_calls_disabled(proj: Project, client: Client, fake_pbx: Any) -> None:
    with pytest.raises(CallsDisabled) as refused:
        calls.call_from_client_card(proj, "c-1", ClientCardCallRequest(employee_id="off"), idempotency_key=None)
    assert refused.value.body()["error"] == "calls_disabled"
    assert fake_pbx.requests == []


def test_card_call_method_api_calls_the_short_number_and_the_given_phone(
    proj: Project, client: Client, fake_pbx: Any
) -> None:
    # Given an explicit phone that differs from the client's
    request = ClientCardCallRequest(employee_id="346", phone="8 900 111-22-33")
    # When the card call is made
    status, body = calls.call_from_client_card(proj, "c-1", request, idempotency_key=None)
    # Then a 202 employee call to 346 with that phone, and the attempt remembers the card's client
    assert (status, body["method"], body["client_phone"]) == (202, "api", "79001112233")
    assert (fake_pbx.forms[0]["ext"], fake_pbx.forms[0]["phone"]) == ("346", "79001112233")
    (attempt,) = _attempts(proj.id)
    assert (attempt["source"], attempt["employee_id"], attempt["card_client_id"]) == ("client_card", "346", "c-1")


@pytest.mark.parametrize(
    ("client_id", "employee_id", "missing"), [("nobody", "346", "client nobody"), ("c-1", "ghost", "employee ghost")]
)
def test_card_call_needs_the_client_and_the_employee(
    client_id: str, employee_id: str, missing: str, proj: Project, client: Client, fake_pbx: Any
) -> None:
    with pytest.raises(NotFound, match=missing):
        calls.call_from_client_card(
            proj, client_id, ClientCardCallRequest(employee_id=employee_id), idempotency_key=None
        )


def test_card_call_without_any_phone_is_400_naming_phone(proj: Project, fake_pbx: Any) -> None:
    # Given a messenger client without a phone
    from iptelefon.data.clients import ClientStore

    ClientStore(get_storage()).add(proj, Client(id="c-2", channel="telegram"))
    with pytest.raises(InvalidInput) as refused:
        calls.call_from_client_card(proj, "c-2", ClientCardCallRequest(employee_id="346"), idempotency_key=None)
    assert refused.value.details[0]["field"] == "phone"


# -- idempotency -------------------------------------------------------------------------------------------------------
def test_repeat_with_the_same_key_returns_the_first_answer_without_a_second_request(
    proj: Project, fake_pbx: Any
) -> None:
    first = calls.start_employee_call(proj, _employee(), idempotency_key="order-1")
    again = calls.start_employee_call(proj, _employee(), idempotency_key="order-1")
    assert again == first
    assert len(fake_pbx.requests) == 1
    assert len(_attempts(proj.id)) == 1


def test_same_key_on_another_route_or_project_is_independent(proj: Project, other_project: Any, fake_pbx: Any) -> None:
    # Given a key used for an employee call in project A
    calls.start_employee_call(proj, _employee(), idempotency_key="k")
    # When the same key starts a group call in A and an employee call in B
    calls.start_group_call(proj, GroupCallRequest(client_phone=PHONE, group_id="3"), idempotency_key="k")
    calls.start_employee_call(other_project.project, _employee(), idempotency_key="k")
    # Then each is a call of its own
    assert len(fake_pbx.requests) == 3


def test_same_key_with_another_body_is_409(proj: Project, fake_pbx: Any) -> None:
    calls.start_employee_call(proj, _employee(), idempotency_key="k")
    with pytest.raises(Conflict, match="different request"):
        calls.start_employee_call(proj, _employee(number="347"), idempotency_key="k")
    assert len(fake_pbx.requests) == 1


def test_after_a_timeout_the_same_key_never_calls_again(proj: Project, fake_pbx: Any) -> None:
    # Given a first request that timed out (the call may be ringing)
    fake_pbx.reply = httpx.ReadTimeout("slow")
    with pytest.raises(PbxTimeout) as first:
        calls.start_employee_call(proj, _employee(), idempotency_key="k")
    # When it is repeated with the same key, even with a healthy PBX
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {}})
    with pytest.raises(PbxTimeout) as again:
        calls.start_employee_call(proj, _employee(), idempotency_key="k")
    # Then the same 504 comes back and the PBX saw one request
    assert again.value.message == first.value.message
    assert len(fake_pbx.requests) == 1


def test_after_a_clear_refusal_the_same_key_may_try_again(proj: Project, fake_pbx: Any) -> None:
    # Given a first request the PBX refused (result 0: nothing started)
    fake_pbx.reply = httpx.Response(200, json={"result": 0, "text": "Нет линий"})
    with pytest.raises(PbxError):
        calls.start_employee_call(proj, _employee(), idempotency_key="k")
    # When it is repeated with the same key, then the PBX is asked again and the success is kept
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-2"}})
    answer = calls.start_employee_call(proj, _employee(), idempotency_key="k")
    assert answer["pbx_call_id"] == "pbx-2"
    assert len(fake_pbx.requests) == 2


def test_a_rate_limited_request_is_not_remembered(proj: Project, fake_pbx: Any) -> None:
    # Given a phone at its hourly limit
    project = _update(proj, calls_per_phone_per_hour=1)
    calls.start_employee_call(project, _employee(), idempotency_key=None)
    with pytest.raises(RateLimited):
        calls.start_employee_call(project, _employee(), idempotency_key="k")
    # When the limit is raised and the same key is retried, then the call is made
    project = _update(project, calls_per_phone_per_hour=2)
    assert calls.start_employee_call(project, _employee(), idempotency_key="k")["status"] == "initiated"


def test_when_the_answer_cannot_be_remembered_the_started_call_is_still_reported(
    proj: Project, fake_pbx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an idempotency store that fails to mark the record completed
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    def broken(self: Any, data_record: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "_update_record", broken)
    # When a call is started with a key, then the call that was made is reported (not a 503)
    assert calls.start_employee_call(proj, _employee(), idempotency_key="k")["status"] == "initiated"
    assert len(fake_pbx.requests) == 1


def test_an_unavailable_idempotency_store_before_the_call_is_503_and_nothing_is_sent(
    proj: Project, fake_pbx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from iptelefon.domain.errors import StorageUnavailable

    def broken(self: Any, data_record: Any) -> None:
        raise RuntimeError("unreachable")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "_put_record", broken)
    with pytest.raises(StorageUnavailable):
        calls.start_employee_call(proj, _employee(), idempotency_key="k")
    assert fake_pbx.requests == []


@pytest.mark.parametrize("key", ["", "   ", "x" * 201, "ключ", "a\nb"])
def test_a_malformed_idempotency_key_is_400(key: str, proj: Project, fake_pbx: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        calls.start_employee_call(proj, _employee(), idempotency_key=key)
    assert refused.value.details[0]["field"] == "Idempotency-Key"
    assert fake_pbx.requests == []


# -- linking attempts to completed calls (used by the webhook) ---------------------------------------------------------
def _attempt(attempt_id: str, created_at: str, **extra: Any) -> dict[str, Any]:
    return {"attempt_id": attempt_id, "client_phone": PHONE, "created_at": created_at, "status": "initiated", **extra}


def _store(storage: Any, attempt: dict[str, Any], *, pending: bool, now: float) -> None:
    """An attempt as a call start leaves it: stored `starting`, then finished with the PBX's answer."""
    call_attempts.start_attempt(storage, "p", {**attempt, "status": "starting"}, now=now)
    call_attempts.finish_attempt(storage, "p", attempt, pending=pending, key_scope=None, now=now)


def test_latest_pending_attempt_is_the_newest_or_the_one_with_the_pbx_id(aws: None) -> None:
    # Given two pending attempts to one phone and a failed one that started nothing
    storage, now = get_storage(), 1_700_000_000.0
    _store(storage, _attempt("a1", "2024-01-01T10:00:00.000000+00:00", pbx_call_id="x1"), pending=True, now=now)
    _store(storage, _attempt("a2", "2024-01-01T11:00:00.000000+00:00"), pending=True, now=now)
    _store(storage, _attempt("a3", "2024-01-01T12:00:00.000000+00:00", status="failed"), pending=False, now=now)
    # Then the newest pending one wins, unless the PBX id names another
    find = call_attempts.latest_pending_attempt
    assert find(storage, "p", PHONE, now=now)["attempt_id"] == "a2"  # type: ignore[index]
    assert find(storage, "p", PHONE, pbx_call_id="x1", now=now)["attempt_id"] == "a1"  # type: ignore[index]
    # And nothing is pending a day later (TTL deletes lazily: the expiry is checked)
    assert find(storage, "p", PHONE, now=now + 86_401) is None
    assert find(storage, "p", "79990000000", now=now) is None


def test_link_attempt_completes_it_once_and_it_is_no_longer_pending(aws: None) -> None:
    # Given a pending attempt
    storage, now = get_storage(), 1_700_000_000.0
    _store(storage, _attempt("a1", "2024-01-01T10:00:00.000000+00:00"), pending=True, now=now)
    # When the webhook links it twice, and another call tries to take it
    call_attempts.link_attempt(storage, "p", "a1", "call-1", "client-1")
    call_attempts.link_attempt(storage, "p", "a1", "call-1", "client-1")
    call_attempts.link_attempt(storage, "p", "a1", "call-2", "client-2")
    call_attempts.link_attempt(storage, "p", "missing", "call-3", "client-3")
    # Then it is completed by the first call and no longer pending
    attempt = call_attempts.get_attempt(storage, "p", "a1")
    assert attempt is not None
    assert (attempt["status"], attempt["call_id"], attempt["client_id"]) == ("completed", "call-1", "client-1")
    assert call_attempts.latest_pending_attempt(storage, "p", PHONE, now=now) is None
