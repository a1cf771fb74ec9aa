"""Every flow right under what DynamoDB and SSM really answer under load, injected at the wire (see `wire.py`).

DynamoDB is a moto server on 127.0.0.1 (fixture `dynamodb_server`) reached by the service's own client; SSM is
moto in-process. Answers that moto never gives (a transaction cancelled for `TransactionConflict`, `ThrottlingError`
or `ValidationError` reasons, a DynamoDB 500, SSM throttling and read timeouts) come back in AWS's own JSON, parsed by
botocore. The gateway's backoff sleeps are real but short (tens of milliseconds).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.httpsession import URLLib3Session
from fixtures.aws import Inbox
from fixtures.dynamodb_server import DynamoDBServer
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event
from wire import Injector, aws_json_error, cancelled, dynamodb_error, read_timeout, ssm_error

from employee_call.handler import lambda_handler as employee_call_handler
from iptel_admin.client_import import import_clients
from iptelefon.data import client_items
from iptelefon.data.attempts import AttemptStore
from iptelefon.data.call_records import CallRecordStore, call_sk
from iptelefon.data.client_items import client_sk, phone_pk
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage, project_pk, put
from iptelefon.data.pbx_settings import ssm_provider
from iptelefon.domain.errors import PhoneShared, StorageUnavailable
from iptelefon.domain.models import CallAttempt, Client, Project, utc_stamp
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.entry.dependencies import webhook_deps
from iptelefon.usecases.webhook import receive_webhook
from webhook.handler import lambda_handler as webhook_handler

PHONE = "79004443322"
CONFLICT = "TransactionConflict"


@pytest.fixture(autouse=True)
def _fresh_ssm_client() -> Any:
    """An SSM client of its own for each test: an injector registered on it must not outlive the test."""
    ssm_provider.cache_clear()
    yield
    ssm_provider.cache_clear()


def call_form(pbx_call_id: str, phone: str = PHONE, **extra: str) -> dict[str, str]:
    return {"id": pbx_call_id, "calltype": "IN", "src": phone, "exten": "346", "talktime": "35", **extra}


def post(context: Any, form: dict[str, str]) -> dict[str, Any]:
    return webhook_handler(webhook_event(PBX_SECRET, form), context)  # type: ignore[no-any-return]


def deliver(form: dict[str, str]) -> dict[str, Any]:
    """The webhook's logic without the resolver (which keeps one request at a time): for real concurrent threads."""
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    return receive_webhook(
        webhook_deps(), PBX_SECRET, WebhookRequest(body=body, content_type="application/x-www-form-urlencoded")
    )


def transactions(server: DynamoDBServer, answer: Any, *, times: int | None, nth: int | None = None) -> Injector:
    return Injector(server.clients, "TransactWriteItems", answer, times=times)


def stored(project: Project, prefix: str) -> list[dict[str, Any]]:
    return get_storage().query(project_pk(project.id), prefix)


# -- one transaction, answered as DynamoDB does ------------------------------------------------------------------------
@pytest.mark.parametrize("reason", [CONFLICT, "ThrottlingError", "ProvisionedThroughputExceeded"])
def test_a_transaction_cancelled_for_contention_is_retried_and_the_call_is_recorded_once(
    reason: str, dynamodb_server: DynamoDBServer, project: Any, lambda_context: Any
) -> None:
    # Given DynamoDB cancelling the next three transactions for contention on their second item
    injected = transactions(dynamodb_server, cancelled("None", reason), times=3)

    # When the PBX posts a call of a new phone
    answer = post(lambda_context, call_form("c-1"))

    # Then the gateway retried until the transactions went through: 200, one client, one call
    assert answer["statusCode"] == 200, answer
    assert answer_json(answer)["duplicate"] is False
    assert injected.injected == 3 and injected.attempts > 3
    assert len(stored(project.project, client_sk(""))) == 1
    assert len(stored(project.project, call_sk(""))) == 1


def test_contention_that_never_ends_queues_the_call_and_writes_nothing(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any
) -> None:
    # Given DynamoDB cancelling every transaction for a conflict
    contention = transactions(dynamodb_server, cancelled(CONFLICT), times=None)

    # When the PBX posts a call, then it waits in the inbox once the gateway's retries are spent
    assert deliver(call_form("c-1")) == {"result": 1, "queued": True}
    assert len(inbox.messages()) == 1
    # And nothing half-done stays behind
    assert stored(project.project, client_sk("")) == []
    assert stored(project.project, call_sk("")) == []

    # When the contention ends and the inbox is applied, then the call is recorded once
    contention.remove()
    assert inbox.drain() == 1
    assert len(stored(project.project, call_sk(""))) == 1


def test_a_validation_error_is_a_clear_storage_error_never_a_failed_condition(
    dynamodb_server: DynamoDBServer, project: Any, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given DynamoDB refusing the transaction itself (an item too large)
    injected = transactions(dynamodb_server, cancelled("ValidationError"), times=None)

    # When the PBX posts a call
    answer = post(lambda_context, call_form("c-1"))

    # Then the answer names the storage refusal (not "duplicate", not "being created"), after a single attempt
    assert answer["statusCode"] == 500, answer
    assert answer_json(answer)["error"] == "storage_rejected"
    assert injected.attempts == 1
    # And the log carries DynamoDB's reason
    refused = [r for r in caplog.records if r.getMessage() == "storage rejected the request"]
    assert refused and "maximum allowed size" in refused[0].reasons[0]


def test_a_validation_exception_on_a_read_is_a_storage_error_too(
    dynamodb_server: DynamoDBServer, project: Any, lambda_context: Any
) -> None:
    # Given DynamoDB refusing the phone-index lookup
    Injector(dynamodb_server.clients, "GetItem", dynamodb_error("ValidationException", "Key too long"), times=None)

    # When the PBX posts a call, then the answer is the clear storage refusal
    answer = post(lambda_context, call_form("c-1"))
    assert (answer["statusCode"], answer_json(answer)["error"]) == (500, "storage_rejected")


def test_a_dynamodb_500_beyond_the_retries_is_storage_unavailable(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given DynamoDB answering 500 InternalServerError to every transaction
    injected = transactions(dynamodb_server, dynamodb_error("InternalServerError", status=500), times=None)

    # When a bot call needs storage, then it is a 503 (not a 500) after botocore's and the gateway's retries
    with pytest.raises(StorageUnavailable):
        get_storage().transact([put({"pk": "X", "sk": "Y"})])
    assert injected.attempts > 2
    # And the webhook's call waits in the inbox
    assert deliver(call_form("c-1")) == {"result": 1, "queued": True}


def test_a_call_written_though_dynamodb_answered_500_is_not_written_again_as_a_new_one(
    dynamodb_server: DynamoDBServer, project: Any, lambda_context: Any
) -> None:
    # Given DynamoDB writing the call's transaction and then answering 500, to botocore's attempt and its retry
    def written_then_500(request: Any) -> Any:
        URLLib3Session().send(request)
        return aws_json_error(request, 500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "injected")

    injected = Injector(
        dynamodb_server.clients,
        "TransactWriteItems",
        written_then_500,
        times=2,
        where=lambda params: "CALL#c-1" in json.dumps(params),
    )

    # When the PBX posts a call
    answer = post(lambda_context, call_form("c-1"))

    # Then the gateway's retry is the same request (its ClientRequestToken), which DynamoDB answers without running it:
    # the call is recorded once and answered as the first time, not "duplicate" (a new request met its own writes)
    assert injected.injected == 2 and injected.attempts == 3
    assert answer["statusCode"] == 200 and answer_json(answer)["duplicate"] is False, answer
    assert len(stored(project.project, call_sk(""))) == 1


# -- the flows under conflicts -----------------------------------------------------------------------------------------
def test_the_loser_of_a_new_phone_race_gets_the_winners_client(
    dynamodb_server: DynamoDBServer, project: Any, lambda_context: Any
) -> None:
    # Given a competing request that creates a client for the phone while ours is in flight, so DynamoDB first
    # cancels our creation for a conflict, then (on the retry) fails its "phone still unmatched" condition
    winner = Client(id="winner", channel="telephony", phone=PHONE, can_message=False)

    def competitor_wins(request: Any) -> Any:
        ClientStore(get_storage()).add(project.project, winner)
        return cancelled("None", CONFLICT)(request)

    Injector(dynamodb_server.clients, "TransactWriteItems", competitor_wins, times=1)

    # When the PBX posts a call of that phone
    answer = post(lambda_context, call_form("c-1"))

    # Then 200, recorded for the winner's client, and no second client
    assert answer["statusCode"] == 200, answer
    assert answer_json(answer)["client_id"] == "winner"
    assert [c["id"] for c in stored(project.project, client_sk(""))] == ["winner"]


def test_fifty_concurrent_webhooks_for_a_new_phone_with_conflicts_create_one_client_and_fifty_calls(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any
) -> None:
    # Given DynamoDB cancelling about 30 % of the transactions for a conflict
    import random

    chance = random.Random(7)
    transactions(dynamodb_server, lambda r: cancelled(CONFLICT)(r) if chance.random() < 0.3 else None, times=None)

    # When 50 calls of one new phone arrive at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda n: deliver(call_form(f"race-{n}")), range(50)))

    # Then every one is taken: recorded, or (a rare one whose six attempts all met a conflict) queued
    assert all(a["result"] == 1 for a in answers)
    assert len({a["client_id"] for a in answers if "client_id" in a}) == 1
    assert not any(a.get("duplicate") for a in answers)
    # And once the inbox is applied: one client, fifty calls
    inbox.drain()
    assert len(stored(project.project, client_sk(""))) == 1
    assert len(stored(project.project, call_sk(""))) == 50


def test_concurrent_deliveries_of_one_call_have_one_first_time_effect(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any
) -> None:
    # Given a known client, and DynamoDB cancelling about 30 % of the transactions for a conflict
    deliver(call_form("warm-up"))
    import random

    chance = random.Random(11)
    transactions(dynamodb_server, lambda r: cancelled(CONFLICT)(r) if chance.random() < 0.3 else None, times=None)

    # When the PBX delivers one call ten times at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: deliver(call_form("twice")), range(10)))

    # Then at most one delivery recorded it for the first time, the others say duplicate (or were queued)
    assert sum(a.get("duplicate") is False for a in answers) <= 1
    assert sum(a.get("duplicate") is True for a in answers) + sum("queued" in a for a in answers) >= 9
    # And after the inbox: one call, one notification (warm-up + twice)
    inbox.drain()
    (record,) = [c for c in stored(project.project, call_sk("")) if c["call_key"] == "twice"]
    assert len(CallRecordStore(get_storage()).dialog(project.project.id, record["client_id"])) == 2


def test_a_late_recording_link_that_meets_a_conflict_is_stored(dynamodb_server: DynamoDBServer, project: Any) -> None:
    # Given a recorded call without its recording
    first = deliver(call_form("late"))
    # And DynamoDB cancelling the next two transactions (the new-call attempt, then the link) for a conflict
    transactions(dynamodb_server, cancelled(CONFLICT), times=2)

    # When the PBX posts the same call again with the link
    link = "https://pbx.example/rec/late.mp3"
    again = deliver(call_form("late", link=link))

    # Then the link is on the call and in the client's variable
    assert again["duplicate"] is True
    record = CallRecordStore(get_storage()).get(project.project.id, "late")
    assert record is not None and record.record_link == link
    client = ClientStore(get_storage()).get(project.project.id, first["client_id"])
    assert client is not None and client.variables["iptelefon_call_record_link"] == link


def test_a_late_recording_link_that_cannot_be_stored_now_is_queued_never_dropped(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any
) -> None:
    # Given a recorded call, and then DynamoDB cancelling every transaction for a conflict
    deliver(call_form("late"))
    contention = transactions(dynamodb_server, cancelled(CONFLICT), times=None)

    # When the PBX posts the link, then it is queued, not answered "duplicate"
    link = "https://pbx.example/rec/late.mp3"
    assert deliver(call_form("late", link=link)) == {"result": 1, "queued": True}

    # When the contention ends and the inbox is applied, then the link is on the call
    contention.remove()
    assert inbox.drain() == 1
    record = CallRecordStore(get_storage()).get(project.project.id, "late")
    assert record is not None and record.record_link == link


def test_client_import_retries_a_throttled_batch_and_reports_nobody_as_existing(
    dynamodb_server: DynamoDBServer, project: Any, tmp_path: Path
) -> None:
    # Given a CSV of three clients, and DynamoDB throttling the first import transaction (a ThrottlingError reason)
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("id,phone,name\nb1,79001110001,A\nb2,79001110002,B\nb3,79001110003,C\n")
    injected = transactions(dynamodb_server, cancelled("None", "ThrottlingError"), times=1)

    # When the import runs
    report = import_clients(ClientStore(get_storage()), project.project, csv_file)

    # Then all three are imported and none is reported as "already exists"
    assert (report.created, report.skipped) == (3, [])
    assert injected.injected == 1
    assert sorted(c["id"] for c in stored(project.project, client_sk(""))) == ["b1", "b2", "b3"]


def test_client_import_names_only_the_clients_that_really_exist(
    dynamodb_server: DynamoDBServer, project: Any, tmp_path: Path
) -> None:
    # Given client b2 stored already, and a conflict on the import's first transaction
    ClientStore(get_storage()).add(project.project, Client(id="b2", channel="telephony", phone="79001110002"))
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text("id,phone\nb1,79001110001\nb2,79001110002\nb3,79001110003\n")
    transactions(dynamodb_server, cancelled(CONFLICT), times=1)

    # When the import runs, then only b2 is skipped, as existing
    report = import_clients(ClientStore(get_storage()), project.project, csv_file)
    assert report.created == 2
    assert report.skipped == [{"line": 3, "error": "client b2 already exists"}]


def _attempt(project: Project) -> None:
    attempt = CallAttempt(
        attempt_id="a-1",
        kind="employee",
        client_phone=PHONE,
        created_at=utc_stamp(datetime.now(UTC)),
        status="initiated",
    )
    assert AttemptStore(get_storage()).start(project.id, attempt, now=0, key_scope=None)


def test_attempt_linking_is_retried_through_throttling(dynamodb_server: DynamoDBServer, project: Any) -> None:
    # Given a pending attempt, and the linking transaction throttled twice
    _attempt(project.project)
    transactions(dynamodb_server, cancelled("ThrottlingError"), times=2)

    # When the webhook links it, then it is completed
    AttemptStore(get_storage()).link(project.project.id, "a-1", "call-1", "client-1")
    attempt = AttemptStore(get_storage()).get(project.project.id, "a-1")
    assert attempt is not None and attempt.status == "completed"


def test_attempt_linking_that_stays_throttled_is_not_swallowed(dynamodb_server: DynamoDBServer, project: Any) -> None:
    # Given a pending attempt, and every linking transaction throttled
    _attempt(project.project)
    transactions(dynamodb_server, cancelled("ThrottlingError"), times=None)

    # When the webhook links it, then the failure reaches the caller (the PBX retries and the replay links again)
    with pytest.raises(StorageUnavailable):
        AttemptStore(get_storage()).link(project.project.id, "a-1", "call-1", "client-1")
    attempt = AttemptStore(get_storage()).get(project.project.id, "a-1")
    assert attempt is not None and attempt.status == "initiated"


# -- SSM ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer", [ssm_error("ThrottlingException"), ssm_error("InternalServerError", 500), read_timeout()]
)
def test_ssm_throttling_or_timeouts_beyond_the_retries_are_storage_unavailable(
    answer: Any, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given SSM throttling (or timing out on) every GetParametersByPath
    injected = Injector([ssm_provider().client], "GetParametersByPath", answer, times=None)

    # When a bot starts a call, then the answer is a 503 with Retry-After, after the client's retries
    event = api_event(
        "POST",
        "/v1/calls/employee",
        "/v1/calls/employee",
        body={"client_phone": PHONE, "short_employee_phone": "346"},
        token=project.token,
    )
    refused = employee_call_handler(event, lambda_context)
    assert refused["statusCode"] == 503, refused
    assert answer_json(refused)["error"] == "storage_unavailable"
    assert refused["multiValueHeaders"]["Retry-After"] == ["2"]
    assert injected.attempts == ssm_provider().client.meta.config.retries["total_max_attempts"]
    # And the webhook's call waits in the inbox
    assert answer_json(post(lambda_context, call_form("c-1"))) == {"result": 1, "queued": True}


def test_ssm_throttled_once_is_retried_and_the_webhook_succeeds(aws: None, project: Any, lambda_context: Any) -> None:
    Injector([ssm_provider().client], "GetParametersByPath", ssm_error("ThrottlingException"), times=1)
    assert post(lambda_context, call_form("c-1"))["statusCode"] == 200


def test_the_ssm_client_answers_within_the_lambda_budget() -> None:
    # Given the SSM client's configuration: short timeouts, not Powertools' default 60 s
    config = ssm_provider().client.meta.config
    assert (config.connect_timeout, config.read_timeout) <= (1, 2)


# -- keys within DynamoDB's limits -------------------------------------------------------------------------------------
def test_a_pbx_call_id_too_long_for_a_key_is_hashed_and_the_call_is_recorded(
    aws: None, project: Any, lambda_context: Any
) -> None:
    # Given a PBX call id of 250 four-byte characters (1,000 bytes: over DynamoDB's 1,024-byte sort key with its prefix)
    pbx_call_id = "😀" * 250

    # When the PBX posts that call
    answer = post(lambda_context, call_form(pbx_call_id))

    # Then it is recorded under a bounded key, and the PBX's own id is kept as data
    assert answer["statusCode"] == 200, answer
    key = answer_json(answer)["call_key"]
    assert len(key) == 64 and key != pbx_call_id
    record = CallRecordStore(get_storage()).get(project.project.id, key)
    assert record is not None and record.pbx_call_id == pbx_call_id
    assert get_storage().get(project_pk(project.project.id), call_sk(key)) is not None


def test_a_client_id_with_the_key_separator_is_refused() -> None:
    with pytest.raises(ValueError, match="id"):
        Client(id="acme#42", channel="telephony", phone=PHONE)


def test_index_order_is_creation_time_whatever_offset_a_client_was_imported_with(aws: None, project: Any) -> None:
    # Given a client created at 10:30 UTC written as 13:30+03:00, and a younger one created at 11:00 UTC
    store = ClientStore(get_storage())
    older = Client.model_validate(
        {"id": "older", "channel": "telephony", "phone": PHONE, "created_at": "2026-01-01T13:30:00+03:00"}
    )
    younger = Client.model_validate(
        {"id": "younger", "channel": "telephony", "phone": PHONE, "created_at": "2026-01-01T11:00:00+00:00"}
    )
    store.add(project.project, younger)
    store.add(project.project, older)

    # When the phone is matched, then the older client wins
    assert store.match(project.project.id, PHONE, limit=2) == ["older", "younger"]


def test_a_phone_shared_by_the_most_clients_refuses_one_more_with_a_clear_error(
    aws: None, project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cap of 3 clients a phone, reached
    monkeypatch.setattr(client_items, "MAX_CLIENTS_PER_PHONE", 3)
    store = ClientStore(get_storage())
    for n in range(3):
        store.add(project.project, Client(id=f"c{n}", channel="telephony", phone=PHONE))

    # When a fourth client with that phone is added, then it is refused with a clear 409, and nothing is written
    with pytest.raises(PhoneShared, match="already stands for 3 clients") as refused:
        store.add(project.project, Client(id="c3", channel="telephony", phone=PHONE))
    assert refused.value.status_code == 409
    assert store.get(project.project.id, "c3") is None
    index = get_storage().get(phone_pk(project.project.id, PHONE), "INDEX")
    assert index is not None and len(index["entries"]) == 3
