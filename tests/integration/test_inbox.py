"""The webhook's durable inbox: what storage could not take waits in SQS, and InboxFunction applies it once.

SQS is moto in-process; InboxFunction runs through the local stack's own event-source poller (`Inbox` in fixtures),
or directly with an SQS event where the batch answer itself is the point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fixtures.aws import Inbox
from fixtures.dynamodb_server import DynamoDBServer
from fixtures.projects import PBX_SECRET
from support import answer_json, inbox_message, sqs_event, webhook_event
from wire import Injector, read_timeout

from inbox.handler import lambda_handler as inbox_handler
from iptelefon.data.call_records import call_sk
from iptelefon.data.client_items import client_sk
from iptelefon.data.gateway import get_storage, project_pk
from iptelefon.data.inbox import sqs_client
from iptelefon.data.pbx_settings import ssm_provider
from iptelefon.domain.hashes import sha256_hex
from webhook.handler import RESERVE_SECONDS
from webhook.handler import lambda_handler as webhook_handler

FORM = {"id": "q-1", "calltype": "IN", "src": "79004443322", "exten": "346", "talktime": "35"}


@pytest.fixture(autouse=True)
def _fresh_clients() -> Any:
    """Clients of their own for each test: an injector registered on one must not outlive the test."""
    ssm_provider.cache_clear()
    sqs_client.cache_clear()
    yield
    ssm_provider.cache_clear()
    sqs_client.cache_clear()


def post(context: Any, form: dict[str, str] = FORM, secret: str = PBX_SECRET) -> dict[str, Any]:
    return webhook_handler(webhook_event(secret, form), context)  # type: ignore[no-any-return]


def queue(inbox: Inbox, form: dict[str, str] = FORM, secret: str = PBX_SECRET) -> str:
    """Put a webhook into the inbox as the webhook function does; returns the message body."""
    message = inbox_message(form, secret)
    inbox.sqs.send_message(QueueUrl=inbox.url, MessageBody=message)
    return message


def calls(project: Any) -> list[dict[str, Any]]:
    return get_storage().query(project_pk(project.project.id), call_sk(""))


def test_a_message_applied_twice_records_the_call_once(inbox: Inbox, project: Any) -> None:
    # Given the same webhook queued twice (SQS delivers at least once)
    queue(inbox)
    queue(inbox)

    # When the inbox is applied
    assert inbox.drain() == 2

    # Then one call, one client
    assert [c["call_key"] for c in calls(project)] == ["q-1"]
    assert len(get_storage().query(project_pk(project.project.id), client_sk(""))) == 1


def test_a_queued_webhook_with_an_unknown_secret_is_dropped_never_applied(
    inbox: Inbox, project: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a webhook queued during an outage for a secret no project has
    queue(inbox, secret="not-a-project-secret")

    # When the inbox is applied, then it is taken off the queue, counted in the log, and nothing is stored
    assert inbox.drain() == 1
    assert inbox.messages() == []
    assert calls(project) == []
    assert any("unknown secret" in r.getMessage() for r in caplog.records)


def test_an_unreadable_queued_webhook_is_kept_as_rejected_not_retried(inbox: Inbox, project: Any) -> None:
    queue(inbox, {"id": "no-phone", "calltype": "IN"})
    assert inbox.drain() == 1
    (kept,) = get_storage().query(project_pk(project.project.id), "REJECTED#")
    assert "no-phone" in kept["body"]


def test_a_message_whose_storage_is_still_away_is_reported_as_a_batch_item_failure(
    dynamodb_server: DynamoDBServer, project: Any, lambda_context: Any
) -> None:
    # Given DynamoDB still down when the inbox is applied
    message = inbox_message({"id": "q-2", "src": "79004443322"}, PBX_SECRET)
    dynamodb_server.stop()

    # When InboxFunction gets it with a message that is not even ours
    answer = inbox_handler(sqs_event([message, "not json"]), lambda_context)

    # Then both are reported as failed: they stay in the queue (the second one ends in the dead-letter queue)
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == ["m-0", "m-1"]


def test_when_the_inbox_is_unavailable_too_the_pbx_gets_a_503(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any, lambda_context: Any
) -> None:
    # Given DynamoDB down and SQS timing out
    dynamodb_server.stop()
    Injector([sqs_client()], "SendMessage", read_timeout(), times=None)

    # When the PBX posts a call, then it hears 503 + Retry-After and sends it again later
    answer = post(lambda_context)
    assert answer["statusCode"] == 503
    assert answer["multiValueHeaders"]["Retry-After"] == ["2"]


@dataclass
class AlmostOutOfTime:
    remaining_ms: int
    function_name: str = "test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "req-late"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_an_invocation_about_to_run_out_of_time_queues_the_call_without_touching_dynamodb(
    dynamodb_server: DynamoDBServer, inbox: Inbox, project: Any
) -> None:
    # Given an invocation with just the time to queue, not the time a storage call may take
    seen = Injector(dynamodb_server.clients, "GetItem", lambda request: None, times=None)
    context = AlmostOutOfTime(remaining_ms=int(RESERVE_SECONDS * 1000))

    # When the PBX posts a call, then it is queued, and DynamoDB was never asked
    assert answer_json(post(context)) == {"result": 1, "queued": True}
    assert seen.attempts == 0
    (message,) = inbox.messages()
    assert json.loads(message["Body"])["secret_sha256"] == sha256_hex(PBX_SECRET)
