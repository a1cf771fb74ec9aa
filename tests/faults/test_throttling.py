"""DynamoDB throttling is retried by the SDK's `standard` retry mode, then by the storage gateway while the invocation
has time; throttling that outlasts both is a 503, not a 500.

The service's own clients (`gateway.dynamodb_client()`) talk to a moto server on 127.0.0.1 (`dynamodb_server`
in fixtures/). A `before-send` handler answers the first N attempts of one operation with DynamoDB's throttling error
(HTTP 400, JSON `__type` ...#ProvisionedThroughputExceededException) instead of sending them: botocore parses it like a
real reply, so its retry handler (standard mode: throttling detection, retry quota, exponential backoff) decides, and
the throttled attempts never reach the server. Only the backoff sleep is cut to zero: each computed delay is recorded
(with the error code the retry handler saw) and then skipped, so the test stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff
from fixtures.aws import TEST_TEMPLATE
from fixtures.dynamodb_server import DynamoDBServer
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from employee_call.handler import lambda_handler as employee_call_handler
from iptelefon.data.call_records import call_sk
from iptelefon.data.client_items import client_sk
from iptelefon.data.gateway import WORST_CALL_SECONDS, dynamodb_client, get_storage, project_pk
from webhook.handler import lambda_handler as webhook_handler

PHONE = "79004443322"
DYNAMODB_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
THROTTLING_CODES = ["ProvisionedThroughputExceededException", "ThrottlingException"]


class _Body:
    """The `raw` of an AWSResponse: botocore reads the body through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class Throttle:
    """Answers the first `times` attempts of `operation` with a throttling error (times=None: every attempt)."""

    def __init__(self, server: DynamoDBServer, operation: str, code: str, times: int | None) -> None:
        self.operation, self.code, self.times = operation, code, times
        self.attempts = 0
        self.throttled = 0
        server.on(f"before-send.dynamodb.{operation}", self._before_send)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.times is not None and self.throttled >= self.times:
            return None  # sent for real
        self.throttled += 1
        body = {"__type": DYNAMODB_ERROR_PREFIX + self.code, "message": "Rate of requests exceeds the allowed rate"}
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": f"throttled-{self.attempts}"}
        return AWSResponse(request.url, 400, headers, _Body(json.dumps(body).encode()))


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(attempt number, error code) of each backoff the standard retry handler computed; the sleep itself is skipped."""
    seen: list[tuple[int, str]] = []
    original = ExponentialBackoff.delay_amount

    def recorded(self: ExponentialBackoff, context: Any) -> float:
        original(self, context)
        seen.append((context.attempt_number, str(context.get_error_code())))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", recorded)
    return seen


def webhook(context: Any) -> dict[str, Any]:
    payload = {"id": "throttle-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "35"}
    return webhook_handler(webhook_event(PBX_SECRET, payload), context)  # type: ignore[no-any-return]


def employee_call(context: Any, token: str, key: str | None = None) -> dict[str, Any]:
    event = api_event(
        "POST",
        "/v1/calls/employee",
        "/v1/calls/employee",
        body={"client_phone": PHONE, "short_employee_phone": "346"},
        headers={"Idempotency-Key": key} if key else None,
        token=token,
    )
    return employee_call_handler(event, context)  # type: ignore[no-any-return]


def total_attempts() -> int:
    return int(get_storage().client.meta.config.retries["total_max_attempts"])


# -- the client's configuration ----------------------------------------------------------------------------------------
def test_storage_client_uses_the_standard_retry_mode() -> None:
    # Given the factory every DynamoDB client of the service comes from
    config = dynamodb_client().meta.config

    # Then throttling is retried by the standard mode (with backoff and a retry quota), a bounded number of times
    assert config.retries["mode"] == "standard"
    assert 2 <= config.retries["total_max_attempts"] <= 5


def test_a_stuck_storage_call_gives_up_before_the_lambda_timeout() -> None:
    # Given the storage client's timeouts and attempts, and the functions' Lambda timeout
    config = dynamodb_client().meta.config
    lambda_timeout = int(TEST_TEMPLATE.doc["Globals"]["Function"]["Timeout"])

    # When DynamoDB accepts connections but never answers, every attempt waits out its connect and read timeouts
    worst_case = config.retries["total_max_attempts"] * (config.connect_timeout + config.read_timeout)

    # Then the call still fails inside the invocation, so the caller gets the 503 + Retry-After and not a Lambda timeout
    # And the gateway's figure for it (what the webhook keeps free to fall back to its inbox) is not optimistic
    assert worst_case <= WORST_CALL_SECONDS
    assert worst_case < lambda_timeout, (
        f"{config.retries['total_max_attempts']} attempts x ({config.connect_timeout} s connect + "
        f"{config.read_timeout} s read) = {worst_case} s >= the {lambda_timeout} s Lambda timeout"
    )


# -- transient throttling: retried, the request succeeds ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "code", "times"),
    [
        ("GetItem", "ProvisionedThroughputExceededException", 1),
        ("GetItem", "ThrottlingException", 2),
        ("TransactWriteItems", "ProvisionedThroughputExceededException", 2),
        ("TransactWriteItems", "ThrottlingException", 1),
    ],
)
def test_throttled_webhook_is_retried_by_the_sdk_and_succeeds(
    operation: str,
    code: str,
    times: int,
    dynamodb_server: DynamoDBServer,
    backoffs: list[tuple[int, str]],
    project: Any,
    lambda_context: Any,
) -> None:
    # Given DynamoDB throttling the first `times` attempts of one operation
    throttle = Throttle(dynamodb_server, operation, code, times)

    # When the PBX posts a call
    answer = webhook(lambda_context)

    # Then the webhook succeeds, after more than one attempt, the SDK's retries backed off as throttling retries
    assert answer["statusCode"] == 200, answer
    assert answer_json(answer)["duplicate"] is False
    assert throttle.throttled == times
    assert throttle.attempts > times
    assert backoffs and all(seen == code for _, seen in backoffs)
    # And the call was recorded once (the throttled attempts never reached DynamoDB)
    assert len(get_storage().query(project_pk(project.project.id), call_sk(""))) == 1


# The Idempotency record is Powertools' own write (its own 2 SDK attempts): throttled once; the rate-limit count goes
# through the storage gateway, which retries after the SDK gave up: throttled twice.
@pytest.mark.parametrize(("operation", "key", "times"), [("UpdateItem", None, 2), ("PutItem", "order-7", 1)])
def test_throttled_bot_call_is_retried_by_the_sdk_and_starts_one_call(
    operation: str,
    key: str | None,
    times: int,
    dynamodb_server: DynamoDBServer,
    backoffs: list[tuple[int, str]],
    fake_pbx: Any,
    project: Any,
    lambda_context: Any,
) -> None:
    # Given DynamoDB throttling the rate-limit count (UpdateItem) or the Idempotency record (PutItem)
    throttle = Throttle(dynamodb_server, operation, "ProvisionedThroughputExceededException", times)

    # When a bot starts a call
    answer = employee_call(lambda_context, project.token, key)

    # Then it is started, once, after the SDK retried the throttled call
    assert answer["statusCode"] == 202, answer
    assert len(fake_pbx.requests) == 1
    assert throttle.throttled == times
    assert throttle.attempts > times


# -- throttling beyond the retries: 503 + Retry-After, never a 500 -----------------------------------------------------
@pytest.mark.parametrize("code", THROTTLING_CODES)
def test_webhook_throttled_beyond_the_retries_is_queued_in_the_inbox(
    code: str,
    dynamodb_server: DynamoDBServer,
    backoffs: list[tuple[int, str]],
    project: Any,
    lambda_context: Any,
) -> None:
    # Given DynamoDB throttling every transaction
    throttle = Throttle(dynamodb_server, "TransactWriteItems", code, None)

    # When the PBX posts a call of a new phone
    answer = webhook(lambda_context)

    # Then, once the SDK and the gateway spent their attempts on the first transaction, the call waits in the inbox
    assert answer["statusCode"] == 200, answer
    assert answer_json(answer) == {"result": 1, "queued": True}
    assert throttle.attempts > total_attempts() > 1
    assert len(backoffs) >= total_attempts() - 1
    # And nothing was written: no client, no call
    assert get_storage().query(project_pk(project.project.id), client_sk("")) == []
    assert get_storage().query(project_pk(project.project.id), call_sk("")) == []


def test_bot_call_throttled_beyond_the_retries_is_503_and_reaches_no_pbx(
    dynamodb_server: DynamoDBServer,
    backoffs: list[tuple[int, str]],
    fake_pbx: Any,
    project: Any,
    lambda_context: Any,
) -> None:
    # Given DynamoDB throttling every rate-limit count
    throttle = Throttle(dynamodb_server, "UpdateItem", "ProvisionedThroughputExceededException", None)

    # When a bot starts a call
    answer = employee_call(lambda_context, project.token)

    # Then 503 with Retry-After after all the SDK's and the gateway's attempts, and the PBX was never asked
    assert answer["statusCode"] == 503, answer
    assert answer_json(answer)["error"] == "storage_unavailable"
    assert answer["multiValueHeaders"]["Retry-After"] == ["2"]
    assert throttle.attempts > total_attempts()
    assert fake_pbx.requests == []
