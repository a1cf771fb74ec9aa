"""The call use case (`iptelefon.usecases.calls`), its idempotency rule (`usecases.idempotency`) and the rules it
applies (`domain.toll_fraud`, `domain.rate_limits`), on in-memory fakes (`tests/fakes/calls.py`): no moto, no
network. The same over DynamoDB (moto) and a PBX over httpx: tests/integration/test_call_storage.py."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.calls import PBX_SECRET, PBX_URL, Fakes, started

from iptelefon.domain.errors import (
    CallsDisabled,
    Conflict,
    CountryNotAllowed,
    Forbidden,
    IdempotencyKeyInProgress,
    InvalidInput,
    InvalidPhone,
    NotFound,
    NumberNotAllowed,
    PbxError,
    PbxRefused,
    PbxReplyUnreadable,
    PbxTimeout,
    PhoneNotOfClient,
    RateLimited,
    StorageUnavailable,
)
from iptelefon.domain.models import Client, Employee, Project
from iptelefon.domain.rate_limits import PHONE_WINDOW_SECONDS, PROJECT_COUNTER, check_rate_limits, phone_counter
from iptelefon.domain.requests import ClientCardCallRequest, EmployeeCallRequest, GroupCallRequest
from iptelefon.domain.toll_fraud import callable_phone
from iptelefon.usecases import calls
from iptelefon.usecases.auth import Caller

PHONE = "79004443322"
OTHER_PHONE = "79001112233"
HOUR = 3600
CONTEXT = object()  # the Lambda context the handler passes on


@pytest.fixture
def fakes() -> Fakes:
    fakes = Fakes()
    fakes.clients.add(
        "p",
        Client(id="c-1", channel="telephony", phone=PHONE, variables={"mobile": "8 900 111-22-33"}, can_message=False),
    )
    fakes.clients.add("p", Client(id="c-2", channel="telegram"))
    for employee in (
        Employee(id="346", name="Api", call_method="api", short_number="346"),
        Employee(id="soft", name="App", call_method="app", short_number="347"),
        Employee(id="off", name="Off", call_method="disabled", short_number="348"),
        Employee(id="old", name="Old", call_method="disabled"),
    ):
        fakes.employees.put_employee("p", employee)
    return fakes


@pytest.fixture
def project() -> Project:
    return Project(id="p", name="Project")


def _employee_call(fakes: Fakes, project: Project, phone: str = PHONE, *, key: str | None = None, number: str = "346"):  # type: ignore[no-untyped-def]
    request = EmployeeCallRequest(client_phone=phone, short_employee_phone=number)
    return calls.start_employee_call(fakes.deps(), CONTEXT, project, request, idempotency_key=key)


def _group_call(fakes: Fakes, project: Project, *, key: str | None = None) -> dict[str, Any]:
    request = GroupCallRequest(client_phone=PHONE, group_id="3")
    return calls.start_group_call(fakes.deps(), CONTEXT, project, request, idempotency_key=key)


def _card_call(
    fakes: Fakes, project: Project, employee_id: str, *, client_id: str = "c-1", phone: str | None = None
) -> tuple[int, dict[str, Any]]:
    request = ClientCardCallRequest(employee_id=employee_id, phone=phone)
    return calls.call_from_client_card(fakes.deps(), CONTEXT, project, client_id, request, idempotency_key=None)


# -- the toll-fraud guard (domain.toll_fraud) --------------------------------------------------------------------------
@pytest.mark.parametrize("typed", ["8 (900) 444-33-22", "+7 900 444 33 22", "9004443322", "79004443322"])
def test_phone_is_normalized_before_the_pbx(typed: str, fakes: Fakes, project: Project) -> None:
    answer = _employee_call(fakes, project, typed)
    assert fakes.pbx.requests[0].phone == PHONE
    assert answer["client_phone"] == PHONE


def test_own_country_only_by_default(project: Project) -> None:
    # Given a RU project without an allowed list, when a Belarusian number is checked, then it is refused with a reason
    with pytest.raises(CountryNotAllowed) as refused:
        callable_phone(project, "+375291234567", field="client_phone")
    assert refused.value.status_code == 403
    assert "BY" in refused.value.message and "RU" in refused.value.message
    assert refused.value.details[0]["field"] == "client_phone"


def test_kazakhstan_is_not_russia_though_both_are_plus_7(project: Project) -> None:
    # Given a RU project, when a Kazakh mobile (+7 701) is checked, then it is refused: the region decides, not +7
    with pytest.raises(CountryNotAllowed, match="KZ"):
        callable_phone(project, "+7 701 123 4567", field="client_phone")


def test_allowed_country_codes_add_to_the_projects_own_region(project: Project) -> None:
    widened = project.model_copy(update={"allowed_country_codes": [375]})
    assert callable_phone(widened, "+375291234567", field="phone") == "375291234567"
    assert callable_phone(widened, PHONE, field="phone") == PHONE
    # And allowing +7 takes in every region that shares it
    assert callable_phone(project.model_copy(update={"allowed_country_codes": [7]}), "+77011234567", field="p")


def test_a_call_to_another_country_never_reaches_the_pbx(fakes: Fakes, project: Project) -> None:
    with pytest.raises(CountryNotAllowed):
        _employee_call(fakes, project, "+375291234567")
    assert fakes.pbx.requests == [] and fakes.attempts.items == {}


@pytest.mark.parametrize(("typed", "kind"), [("+7 809 505 1234", "premium rate"), ("8 800 123 45 67", "toll free")])
def test_lines_other_than_fixed_and_mobile_are_refused_before_the_pbx(
    typed: str, kind: str, fakes: Fakes, project: Project
) -> None:
    with pytest.raises(NumberNotAllowed) as refused:
        _employee_call(fakes, project, typed)
    assert (refused.value.status_code, refused.value.code) == (403, "number_not_allowed")
    assert kind in refused.value.message
    assert fakes.pbx.requests == []


def test_a_project_may_allow_more_kinds_of_line_explicitly(project: Project) -> None:
    widened = project.model_copy(update={"allowed_number_types": ["fixed_line", "mobile", "toll_free"]})
    assert callable_phone(widened, "88001234567", field="phone") == "78001234567"


def test_an_invalid_phone_is_400_naming_the_field(fakes: Fakes, project: Project) -> None:
    with pytest.raises(InvalidPhone) as refused:
        calls.start_group_call(
            fakes.deps(), CONTEXT, project, GroupCallRequest(client_phone="12", group_id="3"), idempotency_key=None
        )
    assert refused.value.details[0]["field"] == "client_phone"
    assert fakes.pbx.requests == []


@pytest.mark.parametrize("field", ["short_employee_phone", "group_id"])
def test_short_numbers_and_group_ids_are_ascii_digits_only(field: str) -> None:
    # Given Arabic-Indic digits (`\d` in a regex takes them), when a bot sends them, then the body is refused
    body = {"client_phone": PHONE, field: "٣٤٦"}
    model = EmployeeCallRequest if field == "short_employee_phone" else GroupCallRequest
    with pytest.raises(ValueError, match=field):
        model.model_validate(body)


# -- the rate limits (domain.rate_limits) ------------------------------------------------------------------------------
def test_the_phone_limit_refuses_the_call_above_it_until_the_hour_ends(fakes: Fakes, project: Project) -> None:
    # Given two calls an hour per phone, 100 s into an hour window
    limited = project.model_copy(update={"calls_per_phone_per_hour": 2})
    fakes.now = 1_700_000_000 // HOUR * HOUR + 100.0
    _employee_call(fakes, limited)
    _employee_call(fakes, limited)
    # When the phone is called a third time, then 429 waiting for the rest of the hour, and no third PBX request
    with pytest.raises(RateLimited) as refused:
        _employee_call(fakes, limited)
    assert refused.value.retry_after_seconds == HOUR - 100
    assert "at most 2 an hour" in refused.value.message
    assert len(fakes.pbx.requests) == 2
    # And another phone is still called
    _employee_call(fakes, limited, OTHER_PHONE)
    assert len(fakes.pbx.requests) == 3


def test_the_project_limit_refuses_the_call_and_gives_the_phone_slot_back(fakes: Fakes, project: Project) -> None:
    # Given a project allowing one call a minute, already used by another phone
    limited = project.model_copy(update={"calls_per_project_per_minute": 1})
    now = fakes.now
    check_rate_limits(fakes.counters, limited, OTHER_PHONE, now)
    # When a second phone is called in the same minute
    with pytest.raises(RateLimited) as refused:
        check_rate_limits(fakes.counters, limited, PHONE, now)
    # Then the refusal names the project limit, waits for the minute's end, and the phone's counter is untouched
    assert "at most 1 a minute" in refused.value.message
    assert refused.value.retry_after_seconds == 60 - int(now) % 60
    assert fakes.counters.counted("p", phone_counter(PHONE), window_seconds=PHONE_WINDOW_SECONDS, now=now) == 0
    assert fakes.counters.counted("p", PROJECT_COUNTER, window_seconds=60, now=now) == 1


def test_a_call_refused_by_the_project_limit_does_not_use_up_the_phone_limit(fakes: Fakes, project: Project) -> None:
    # Given one call per phone per hour and one per project per minute, the project's minute used by another phone
    limited = project.model_copy(update={"calls_per_phone_per_hour": 1, "calls_per_project_per_minute": 1})
    _employee_call(fakes, limited, OTHER_PHONE)
    with pytest.raises(RateLimited, match="a minute"):
        _employee_call(fakes, limited)
    # When the next minute comes, then the phone still has its one call of the hour
    fakes.now += 60
    assert _employee_call(fakes, limited)["status"] == "initiated"


# -- the PBX request and its attempt -----------------------------------------------------------------------------------
def test_success_answers_the_attempt_id_and_stores_an_initiated_pending_attempt(fakes: Fakes, project: Project) -> None:
    answer = _group_call(fakes, project)
    # Then the answer names our attempt and the PBX's id, in the fixed order, and nothing else
    attempt_id = answer["attempt_id"]
    assert list(answer.items()) == [
        ("attempt_id", attempt_id),
        ("status", "initiated"),
        ("client_phone", PHONE),
        ("client_phone_e164", "+" + PHONE),
        ("pbx_call_id", "pbx-1"),
    ]
    # And the attempt is stored and findable by the phone for the webhook
    attempt = fakes.attempts.get("p", attempt_id)
    assert attempt is not None
    assert (attempt.kind, attempt.group_id, attempt.status, attempt.pbx_call_id) == ("group", "3", "initiated", "pbx-1")
    assert PBX_SECRET not in str(attempt.pbx_reply)
    assert fakes.attempts.latest_pending("p", PHONE) == attempt


def test_the_pbx_gets_the_projects_connection(fakes: Fakes, project: Project) -> None:
    tuned = project.model_copy(update={"auth_mode": "bearer", "param_names": {"group": "queue"}})
    _group_call(fakes, tuned)
    conn = fakes.pbx.requests[0].conn
    assert (conn.server_url, conn.secret, conn.auth_mode, conn.param_name("group")) == (
        PBX_URL,
        PBX_SECRET,
        "bearer",
        "queue",
    )
    assert fakes.credentials_asked == ["p"]


def test_a_reply_without_an_id_answers_without_pbx_call_id(fakes: Fakes, project: Project) -> None:
    fakes.pbx.reply = started(None)
    assert "pbx_call_id" not in _employee_call(fakes, project)


def test_pbx_refusal_is_502_with_a_failed_attempt_that_is_not_pending(fakes: Fakes, project: Project) -> None:
    fakes.pbx.reply = PbxRefused("PBX error on call-employee: Номер занят")
    with pytest.raises(PbxError, match="Номер занят"):
        _employee_call(fakes, project)
    (attempt,) = fakes.attempts.of("p")
    assert attempt.status == "failed"
    assert attempt.reason is not None and attempt.reason["error"] == "pbx_error"
    assert fakes.attempts.latest_pending("p", PHONE) is None


@pytest.mark.parametrize("error", [PbxTimeout("slow"), PbxError("connection broken after sending")])
def test_a_failure_after_which_a_call_may_ring_keeps_the_attempt_findable(
    error: Exception, fakes: Fakes, project: Project
) -> None:
    fakes.pbx.reply = error
    with pytest.raises(type(error)):
        _employee_call(fakes, project)
    pending = fakes.attempts.latest_pending("p", PHONE)
    assert pending is not None and pending.status == "failed"


def test_an_unreadable_reply_is_202_unknown_with_a_pending_attempt(fakes: Fakes, project: Project) -> None:
    # Given a PBX that took the request and answered a page nobody can read (the call may be ringing)
    fakes.pbx.reply = PbxReplyUnreadable("PBX answered call-me with something that is not JSON: <html>")

    # When a bot starts a call
    answer = _employee_call(fakes, project)

    # Then 202 `unknown` naming the attempt and telling the bot not to call again, in the fixed order
    attempt_id = answer["attempt_id"]
    assert list(answer) == ["attempt_id", "status", "client_phone", "client_phone_e164", "message"]
    assert (answer["status"], answer["client_phone"]) == ("unknown", PHONE)
    assert "may have started the call" in answer["message"] and f"/v1/calls/{attempt_id}" in answer["message"]
    # And the attempt is `unknown` with what came, still findable by the completion webhook
    attempt = fakes.attempts.get("p", attempt_id)
    assert attempt is not None and attempt.status == "unknown"
    assert attempt.reason == {
        "error": "pbx_error",
        "message": "PBX answered call-me with something that is not JSON: <html>",
    }
    assert fakes.attempts.latest_pending("p", PHONE) == attempt


def test_an_unknown_answer_is_remembered_under_the_key_and_never_retried(fakes: Fakes, project: Project) -> None:
    # Given a first request whose PBX reply could not be read
    fakes.pbx.reply = PbxReplyUnreadable("PBX answered call-me with JSON of no known shape")
    first = _employee_call(fakes, project, key="order-7")

    # When the bot repeats it with the same key (the PBX would now answer clearly)
    fakes.pbx.reply = started("pbx-2")
    again = _employee_call(fakes, project, key="order-7")

    # Then the same 202 unknown, byte for byte, and the PBX was asked once
    assert list(again.items()) == list(first.items())
    assert len(fakes.pbx.requests) == 1 and len(fakes.attempts.items) == 1


def test_a_card_call_with_an_unreadable_reply_is_202_unknown(fakes: Fakes, project: Project) -> None:
    fakes.pbx.reply = PbxReplyUnreadable("PBX answered call-me without saying whether the call started: []")
    status, body = _card_call(fakes, project, "346")
    assert (status, body["method"], body["status"]) == (202, "api", "unknown")
    (attempt,) = fakes.attempts.of("p")
    assert (attempt.status, attempt.source) == ("unknown", "client_card")


# A project stored before issue 19: `model_dump` wrote the old defaults, `param_names` {} = the logical names.
STORED_BEFORE_19 = {"employee_method": "call-employee", "group_method": "call-group", "param_names": {}}


@pytest.mark.parametrize(
    ("stored", "employee_call", "group_call"),
    [
        # a project made now: call-me, the extension (or the group's number) as src, the client as dst
        ({}, ("call-me", "src", "dst"), ("call-me", "src", "dst")),
        # a project stored before: asked as before
        (STORED_BEFORE_19, ("call-employee", "ext", "phone"), ("call-group", "group", "phone")),
    ],
    ids=["new_project", "stored_before_issue_19"],
)
def test_the_pbx_is_asked_with_the_projects_method_and_parameter_names(
    stored: dict[str, Any], employee_call: tuple[str, ...], group_call: tuple[str, ...], fakes: Fakes
) -> None:
    # Given a project item as read from storage
    project = Project.model_validate({"id": "p", "name": "P", **stored})
    # When a bot starts an employee call and a group call
    _employee_call(fakes, project)
    _group_call(fakes, project)
    # Then each names its method and parameters as the project says
    employee, group = (r.conn for r in fakes.pbx.requests)
    assert (employee.employee_method, employee.param_name("ext"), employee.param_name("phone")) == employee_call
    assert (group.group_method, group.param_name("group"), group.param_name("phone")) == group_call


def test_the_attempt_is_stored_before_the_pbx_is_asked(fakes: Fakes, project: Project) -> None:
    seen: list[list[str]] = []

    def reply(request: Any) -> Any:
        seen.append([a.status for a in fakes.attempts.of("p")])
        return started("pbx-1")

    fakes.pbx.reply = reply
    _employee_call(fakes, project)
    assert seen == [["starting"]]
    assert [a.status for a in fakes.attempts.of("p")] == ["initiated"]


def test_a_storage_failure_after_the_pbx_answered_still_answers_202(fakes: Fakes, project: Project) -> None:
    fakes.attempts.fail_finish = True
    assert _employee_call(fakes, project)["status"] == "initiated"


def test_too_little_time_left_is_503_before_anything_is_stored_or_sent(fakes: Fakes, project: Project) -> None:
    # Given an invocation whose time left cannot fit two connects and a useful read
    fakes.spare_seconds = calls.PBX_CONNECT_WORST + calls.MIN_PBX_SECONDS - 0.1
    with pytest.raises(StorageUnavailable):
        _employee_call(fakes, project)
    assert fakes.pbx.requests == [] and fakes.attempts.items == {}


def test_the_pbx_read_timeout_is_the_setting_or_what_time_is_left(fakes: Fakes, project: Project) -> None:
    fakes.spare_seconds = calls.PBX_CONNECT_WORST + 3.0
    _employee_call(fakes, project)
    fakes.spare_seconds = float("inf")
    _employee_call(fakes, project, OTHER_PHONE)
    assert [r.conn.timeout_seconds for r in fakes.pbx.requests] == [3.0, fakes.pbx_timeout_seconds]


# -- the client card ---------------------------------------------------------------------------------------------------
def test_card_call_method_app_answers_a_tel_uri_without_the_pbx(fakes: Fakes, project: Project) -> None:
    assert _card_call(fakes, project, "soft") == (200, {"method": "app", "uri": "tel:+79004443322"})
    assert fakes.pbx.requests == []


def test_card_call_method_disabled_is_403_even_with_a_short_number(fakes: Fakes, project: Project) -> None:
    # Given an employee with a short number whose call method is `disabled`
    with pytest.raises(CallsDisabled) as refused:
        _card_call(fakes, project, "off")
    # Then 403 calls_disabled saying the employee does not call, and nothing reached the PBX
    assert refused.value.body()["error"] == "calls_disabled"
    assert "does not make calls" in refused.value.message
    assert fakes.pbx.requests == []


def test_card_call_by_an_api_employee_without_a_short_number_is_403(fakes: Fakes, project: Project) -> None:
    # Given an old record: method `api` without a short number (the model refuses it now)
    fakes.employees.put_employee(
        "p", Employee.model_construct(id="legacy", name="L", call_method="api", short_number=None)
    )
    with pytest.raises(CallsDisabled, match="no short number"):
        _card_call(fakes, project, "legacy")
    assert fakes.pbx.requests == []


def test_card_call_method_api_calls_the_short_number_and_the_clients_other_phone(
    fakes: Fakes, project: Project
) -> None:
    status, body = _card_call(fakes, project, "346", phone="8 900 111-22-33")
    assert (status, body["method"], body["client_phone"]) == (202, "api", OTHER_PHONE)
    assert list(body) == ["method", "attempt_id", "status", "client_phone", "client_phone_e164", "pbx_call_id"]
    request = fakes.pbx.requests[0]
    assert (request.kind, request.number, request.phone) == ("employee", "346", OTHER_PHONE)
    (attempt,) = fakes.attempts.of("p")
    assert (attempt.source, attempt.employee_id, attempt.card_client_id) == ("client_card", "346", "c-1")


@pytest.mark.parametrize("employee_id", ["346", "soft"])
def test_card_call_to_a_number_that_is_not_the_clients_is_refused(
    employee_id: str, fakes: Fakes, project: Project
) -> None:
    # Given a client with two phones, when a card call names a third number (by the PBX or the softphone)
    with pytest.raises(PhoneNotOfClient) as refused:
        _card_call(fakes, project, employee_id, phone="+7 900 555-66-77")
    # Then it is a 403 and nothing reached the PBX
    assert (refused.value.status_code, refused.value.code) == (403, "phone_not_of_client")
    assert fakes.pbx.requests == []


@pytest.mark.parametrize(
    ("client_id", "employee_id", "missing"), [("nobody", "346", "client nobody"), ("c-1", "ghost", "employee ghost")]
)
def test_card_call_needs_the_client_and_the_employee(
    client_id: str, employee_id: str, missing: str, fakes: Fakes, project: Project
) -> None:
    with pytest.raises(NotFound, match=missing):
        _card_call(fakes, project, employee_id, client_id=client_id)


def test_card_call_without_any_phone_is_400_naming_phone(fakes: Fakes, project: Project) -> None:
    with pytest.raises(InvalidInput) as refused:
        _card_call(fakes, project, "346", client_id="c-2")
    assert refused.value.details[0]["field"] == "phone"


def test_card_call_is_under_the_toll_fraud_guard(fakes: Fakes, project: Project) -> None:
    with pytest.raises(CountryNotAllowed):
        _card_call(fakes, project, "346", phone="+375291234567")
    assert fakes.pbx.requests == []


def test_an_operator_calls_as_its_own_employee_only(project: Project) -> None:
    operator = Caller(project, "operator", "t-1", employee_id="346")
    assert calls.card_call_as(operator, ClientCardCallRequest()).employee_id == "346"
    with pytest.raises(Forbidden):
        calls.card_call_as(operator, ClientCardCallRequest(employee_id="other"))
    with pytest.raises(InvalidInput):
        calls.card_call_as(Caller(project, "bot", "t-2"), ClientCardCallRequest())


# -- idempotency (usecases.idempotency) --------------------------------------------------------------------------------
def test_repeat_with_the_same_key_returns_the_first_answer_without_a_second_request(
    fakes: Fakes, project: Project
) -> None:
    first = _employee_call(fakes, project, key="order-1")
    again = _employee_call(fakes, project, key="order-1")
    assert list(again.items()) == list(first.items())
    assert len(fakes.pbx.requests) == 1 and len(fakes.attempts.items) == 1


def test_the_lambda_context_reaches_the_idempotency_store(fakes: Fakes, project: Project) -> None:
    _employee_call(fakes, project, key="order-1")
    assert fakes.idempotency.contexts == [CONTEXT]


def test_without_a_key_the_store_is_not_used(fakes: Fakes, project: Project) -> None:
    _employee_call(fakes, project)
    _employee_call(fakes, project)
    assert fakes.idempotency.contexts == [] and len(fakes.pbx.requests) == 2


def test_same_key_on_another_route_or_project_is_independent(fakes: Fakes, project: Project) -> None:
    _employee_call(fakes, project, key="k")
    _group_call(fakes, project, key="k")
    other = Project(id="q", name="Other")
    _employee_call(fakes, other, key="k")
    assert len(fakes.pbx.requests) == 3


def test_same_key_with_another_body_is_409(fakes: Fakes, project: Project) -> None:
    _employee_call(fakes, project, key="k")
    with pytest.raises(Conflict, match="different request"):
        _employee_call(fakes, project, key="k", number="347")
    assert len(fakes.pbx.requests) == 1


def test_a_key_still_in_flight_is_409_with_retry_after(fakes: Fakes, project: Project) -> None:
    def in_flight(scope: Any, work: Any, *, lambda_context: Any) -> Any:
        raise IdempotencyKeyInProgress()

    fakes.idempotency.run_once = in_flight  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="still in progress") as refused:
        _employee_call(fakes, project, key="k")
    assert refused.value.retry_after_seconds == 2
    assert fakes.pbx.requests == []


@pytest.mark.parametrize("error", [PbxTimeout("slow"), PbxError("connection broken after sending")])
def test_after_a_failure_that_may_have_rung_the_same_key_never_calls_again(
    error: Exception, fakes: Fakes, project: Project
) -> None:
    fakes.pbx.reply = error
    with pytest.raises(type(error)) as first:
        _employee_call(fakes, project, key="k")
    fakes.pbx.reply = started("pbx-2")
    with pytest.raises(type(error)) as again:
        _employee_call(fakes, project, key="k")
    assert (again.value.status_code, again.value.message) == (first.value.status_code, first.value.message)
    assert len(fakes.pbx.requests) == 1


def test_after_a_clear_refusal_the_same_key_may_try_again(fakes: Fakes, project: Project) -> None:
    fakes.pbx.reply = PbxRefused("PBX error on call-employee: Нет линий")
    with pytest.raises(PbxError):
        _employee_call(fakes, project, key="k")
    fakes.pbx.reply = started("pbx-2")
    assert _employee_call(fakes, project, key="k")["pbx_call_id"] == "pbx-2"
    assert len(fakes.pbx.requests) == 2


def test_a_rate_limited_request_is_not_remembered(fakes: Fakes, project: Project) -> None:
    limited = project.model_copy(update={"calls_per_phone_per_hour": 1})
    _employee_call(fakes, limited)
    with pytest.raises(RateLimited):
        _employee_call(fakes, limited, key="k")
    raised = limited.model_copy(update={"calls_per_phone_per_hour": 2})
    assert _employee_call(fakes, raised, key="k")["status"] == "initiated"


def test_a_repeat_after_an_invocation_died_mid_call_never_rings_twice(fakes: Fakes, project: Project) -> None:
    # Given a key whose first request stored its attempt and key marker, then died before its answer was remembered
    # (the store's in-flight record expired with the invocation)
    class Died(BaseException):
        pass

    fakes.pbx.reply = Died()
    with pytest.raises(Died):
        _employee_call(fakes, project, key="order-9")
    # When the bot repeats it, then 504 "may have started the call", and the PBX was asked once
    fakes.pbx.reply = started("pbx-2")
    with pytest.raises(PbxTimeout, match="may have started the call"):
        _employee_call(fakes, project, key="order-9")
    assert len(fakes.pbx.requests) == 1
    # And a new key calls again
    assert _employee_call(fakes, project, key="order-10")["status"] == "initiated"


def test_when_the_answer_cannot_be_remembered_the_started_call_is_still_reported(
    fakes: Fakes, project: Project
) -> None:
    fakes.idempotency.fail_after = True
    assert _employee_call(fakes, project, key="k")["status"] == "initiated"
    assert len(fakes.pbx.requests) == 1


def test_an_unavailable_idempotency_store_before_the_call_is_503_and_nothing_is_sent(
    fakes: Fakes, project: Project
) -> None:
    fakes.idempotency.fail_before = True
    with pytest.raises(StorageUnavailable):
        _employee_call(fakes, project, key="k")
    assert fakes.pbx.requests == []


@pytest.mark.parametrize("key", ["", "   ", "x" * 201, "ключ", "a\nb"])
def test_a_malformed_idempotency_key_is_400(key: str, fakes: Fakes, project: Project) -> None:
    with pytest.raises(InvalidInput) as refused:
        _employee_call(fakes, project, key=key)
    assert refused.value.details[0]["field"] == "Idempotency-Key"
    assert fakes.pbx.requests == []
