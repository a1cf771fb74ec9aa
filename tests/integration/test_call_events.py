"""Call events out (issue 22) on moto in-process: endpoints through the real admin API, events written with their
calls by the real webhook, relayed from the table's own stream (moto's dynamodbstreams, read by the local stack's
`StreamPoller`) by the real EventsFunction, delivered through `httpx.MockTransport`, and verified with the
`standardwebhooks` package (not our own code)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fixtures.aws import TEST_TEMPLATE
from fixtures.projects import PBX_SECRET
from standardwebhooks import Webhook
from support import answer_json, answer_lost_once, api_event

from admin_api.handler import lambda_handler as admin_handler
from devstack.gateway import StreamPoller
from devstack.lambda_worker import LocalFunction
from events_out.handler import lambda_handler as events_handler
from iptelefon.adapters import event_sender
from iptelefon.adapters.event_sender import EventSender
from iptelefon.data.call_events import CallEventStore
from iptelefon.data.endpoint_secrets import EndpointSecretStore
from iptelefon.data.event_items import LEASE_SECONDS
from iptelefon.data.gateway import get_storage
from iptelefon.domain.call_events import MAX_ATTEMPTS, RETRY_DELAYS_SECONDS
from iptelefon.domain.models import Project
from iptelefon.platform.settings import get_settings
from iptelefon.usecases import call_events
from iptelefon.usecases.auth import issue_token
from iptelefon.usecases.call_events import EventDeps
from webhook.handler import lambda_handler as webhook_handler

EVENTS = Path(__file__).resolve().parent.parent / "events"
CALL = "1709290800.2001"  # the call of tests/events/zeon_event_*.json and zeon_history_answered.json
RECEIVER = "https://crm.example.com/hooks/iptelefon"


class Receiver:
    """The endpoint: answers `status` (a list: one per request, the last one repeated), keeps what came."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses = [204]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return httpx.Response(status)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[Receiver]:
    seen = Receiver()
    sender = EventSender(httpx.Client(transport=httpx.MockTransport(seen.handle)))
    monkeypatch.setattr(event_sender, "get_event_sender", lambda network="public": sender)
    monkeypatch.setenv("EVENT_QUEUE_URL", queue_url())
    monkeypatch.setenv("EVENTS_TIME_SCALE", "4")  # a deferred event waits 0.5 s, not 2 (the retry tests use 1)
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def queue_url() -> str:
    name = TEST_TEMPLATE.physical_name("EventDeliveries")
    return str(boto3.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


@pytest.fixture
def admin_token(project: Any) -> str:
    from iptelefon.data.tokens import TokenStore

    return issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]


def admin(context: Any, method: str, resource: str, path: str | None = None, **kwargs: Any) -> dict[str, Any]:
    params = kwargs.pop("path_params", None)
    event = api_event(method, resource, path or resource, path_params=params, **kwargs)
    return admin_handler(event, context)  # type: ignore[no-any-return]


def add_endpoint(context: Any, token: str, **body: Any) -> dict[str, Any]:
    answer = admin(context, "POST", "/v1/endpoints", body={"url": RECEIVER, **body}, token=token)
    assert answer["statusCode"] == 201, answer["body"]
    return dict(answer_json(answer))


def zeon(context: Any, name: str, **changes: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    event["body"] = json.dumps({**json.loads(event["body"]), **changes})
    event["path"] = f"/iptelefon_webhook/{PBX_SECRET}"
    event["pathParameters"] = {"secret": PBX_SECRET}
    answer = webhook_handler(event, context)
    assert answer["statusCode"] == 200, answer["body"]
    return dict(answer_json(answer))


class Pipeline:
    """The stream (as the local stack reads it) and the delivery queue, each feeding the real EventsFunction."""

    def __init__(self) -> None:
        function = LocalFunction(TEST_TEMPLATE.functions()["EventsFunction"])
        (source,) = TEST_TEMPLATE.stream_sources()
        self.stream = StreamPoller(function, source, TEST_TEMPLATE, boto3.client("dynamodb"), streams_client())
        self.sqs, self.url = boto3.client("sqs"), queue_url()

    def delayed(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesDelayed"])

    def run(self, context: Any) -> int:
        """Relay what the stream has, then deliver what is due in the queue; returns how many messages were handled."""
        self.stream.poll_once()
        handled = 0
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = reply.get("Messages", [])
            if not messages:
                if self.delayed() == 0:
                    return handled
                time.sleep(0.2)  # an event waiting for an earlier one of its call (EVENTS_TIME_SCALE: 0.5 s)
                continue
            records = [{"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"} for m in messages]
            answer = events_handler({"Records": records}, context)
            assert answer == {"batchItemFailures": []}
            for m in messages:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            handled += len(messages)


def streams_client() -> Any:
    # moto in-process routes dynamodbstreams only with the path's "/" (botocore sends none)
    return boto3.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com/")


@pytest.fixture
def pipeline(receiver: Receiver, atomic_dynamodb: None) -> Pipeline:
    """(moto made safe for threads: EventsFunction delivers a batch's messages side by side)"""
    return Pipeline()


def verify(secret: str, request: httpx.Request) -> Any:
    """The delivery as a receiver checks it: the `standardwebhooks` package's Webhook.verify."""
    return Webhook(secret).verify(request.content, dict(request.headers))


# -- endpoints ---------------------------------------------------------------------------------------------------------
def test_an_endpoint_is_made_with_a_secret_shown_once(lambda_context: Any, admin_token: str, aws: None) -> None:
    made = add_endpoint(lambda_context, admin_token, description="CRM", event_types=["call.completed"])
    assert made["secret"].startswith("whsec_") and made["url"] == RECEIVER and made["enabled"] is True
    listed = answer_json(admin(lambda_context, "GET", "/v1/endpoints", token=admin_token))["endpoints"]
    assert [e["endpoint_id"] for e in listed] == [made["endpoint_id"]]
    assert "secret" not in json.dumps(listed)  # shown once: never listed
    stored = EndpointSecretStore(boto3.client("ssm"), get_settings().ssm_prefix).get("proj-a", made["endpoint_id"])
    assert stored == {"current": made["secret"]}
    parameter = boto3.client("ssm").describe_parameters()["Parameters"]
    assert {"SecureString"} == {p["Type"] for p in parameter if "endpoint-secrets" in p["Name"]}


def test_an_endpoint_whose_put_was_sent_twice_by_the_sdk_is_made_once(
    lambda_context: Any, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When the endpoint's put lands, its answer is lost and the SDK sends it again
    sent_twice = answer_lost_once(
        monkeypatch, lambda one: one.action == "Put" and one.request["Item"]["sk"]["S"].startswith("ENDPOINT#")
    )
    made = add_endpoint(lambda_context, admin_token)
    # Then the admin gets it with its secret (not a 500 for an endpoint stored and never shown), and it is listed once
    listed = answer_json(admin(lambda_context, "GET", "/v1/endpoints", token=admin_token))["endpoints"]
    assert sent_twice and [e["endpoint_id"] for e in listed] == [made["endpoint_id"]]


def test_an_endpoint_deleted_when_the_sdk_sent_the_delete_twice_is_gone_with_its_secret(
    lambda_context: Any, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = add_endpoint(lambda_context, admin_token)
    path = f"/v1/endpoints/{made['endpoint_id']}"
    # When the endpoint's delete lands, its answer is lost and the SDK sends it again
    sent_twice = answer_lost_once(monkeypatch, lambda one: one.action == "Delete")
    answer = admin(
        lambda_context,
        "DELETE",
        "/v1/endpoints/{endpoint_id}",
        path,
        path_params={"endpoint_id": made["endpoint_id"]},
        token=admin_token,
    )
    # Then the admin hears it is deleted (not a 404 for its own delete), and no secret is left behind
    assert sent_twice and (answer["statusCode"], answer_json(answer)) == (200, {"deleted": made["endpoint_id"]})
    secrets = EndpointSecretStore(boto3.client("ssm"), get_settings().ssm_prefix)
    assert secrets.get("proj-a", made["endpoint_id"]) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://crm.example.com/hook", "https"),
        ("https://127.0.0.1/hook", "public address"),
        ("https://10.1.2.3/hook", "public address"),
        ("https://[::ffff:169.254.169.254]/hook", "public address"),
        ("https://user:pw@crm.example.com/hook", "user name"),
    ],
)
def test_an_endpoint_url_follows_the_pbx_connections_ssrf_rules(
    lambda_context: Any, admin_token: str, url: str, why: str
) -> None:
    answer = admin(lambda_context, "POST", "/v1/endpoints", body={"url": url}, token=admin_token)
    assert answer["statusCode"] == 400
    assert answer_json(answer)["details"][0]["field"] == "url" and why in answer_json(answer)["details"][0]["message"]
    assert answer_json(admin(lambda_context, "GET", "/v1/endpoints", token=admin_token))["endpoints"] == []


def test_the_sender_refuses_an_inward_address_whatever_the_name_resolves_to() -> None:
    status, error, _ = event_sender.get_event_sender("public").post("https://127.0.0.1:9/x", "{}", {})
    assert (status, error) == (None, "refused: not a public address")


def test_endpoint_routes_are_for_admins_only(lambda_context: Any, project: Any) -> None:
    answer = admin(lambda_context, "GET", "/v1/endpoints", token=project.token)  # a bot token
    assert answer["statusCode"] == 403


# -- the whole flow ----------------------------------------------------------------------------------------------------
def test_a_calls_events_arrive_signed_in_order_and_once(
    lambda_context: Any, admin_token: str, pipeline: Pipeline, receiver: Receiver
) -> None:
    made = add_endpoint(lambda_context, admin_token)
    zeon(lambda_context, "zeon_event_ringing.json")
    zeon(lambda_context, "zeon_event_ringing.json")  # a repeat: no second event
    pipeline.run(lambda_context)
    zeon(lambda_context, "zeon_event_accepted.json")
    pipeline.run(lambda_context)
    record = "https://z138.fpg.ru/zeon/records/1709290800.2001.mp3"
    zeon(lambda_context, "zeon_history_answered.json", link=record)
    zeon(lambda_context, "zeon_history_answered.json", link=record)  # sent again: a duplicate, no second event
    pipeline.run(lambda_context)

    types = [verify(made["secret"], r)["type"] for r in receiver.requests]
    # (recording.ready follows the recording's copy: test_recordings.py here, test_call_events_stack.py end to end)
    assert types == ["call.ringing", "call.answered", "call.completed"]
    first = receiver.bodies()[0]
    assert first["project_id"] == "proj-a" and first["data"]["call_key"] == CALL
    assert first["data"]["client"]["created_now"] is True and first["data"]["client"]["channel"] == "telephony"
    assert receiver.requests[0].headers["webhook-id"] == first["event_id"]
    completed = receiver.bodies()[2]["data"]
    assert completed["status"] == "answered" and completed["durations"]["talk_seconds"] > 0
    assert completed["client"]["created_now"] is False  # the ringing call created it
    assert receiver.bodies()[1]["data"]["durations"]["ring_seconds"] is not None


def test_an_event_not_taken_by_the_endpoint_is_not_sent(
    lambda_context: Any, admin_token: str, pipeline: Pipeline, receiver: Receiver
) -> None:
    add_endpoint(lambda_context, admin_token, event_types=["call.completed", "call.missed"])
    zeon(lambda_context, "zeon_event_ringing.json")
    zeon(lambda_context, "zeon_history_no_answer.json")
    pipeline.run(lambda_context)
    assert [b["type"] for b in receiver.bodies()] == ["call.missed"]


def test_the_sweep_relays_what_the_stream_did_not(
    lambda_context: Any, admin_token: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = add_endpoint(lambda_context, admin_token)
    zeon(lambda_context, "zeon_event_ringing.json")
    deps = dependencies_now(offset=call_events.SWEEP_AFTER_SECONDS + 1)
    assert call_events.sweep(deps) == 1
    assert call_events.sweep(deps) == 0  # relayed: not again
    (message,) = queued_messages()
    assert message["endpoint_id"] == made["endpoint_id"] and message["attempt"] == 1


def dependencies_now(offset: float = 0.0, *, sending: bool = False) -> EventDeps:
    from iptelefon.entry import dependencies

    deps = dependencies.event_deps(sending=sending)
    now = datetime.now(UTC).timestamp() + offset
    return EventDeps(deps.events, deps.secrets, deps.queue, deps.sender, clock=lambda: now)


def queued_messages() -> list[dict[str, Any]]:
    reply = boto3.client("sqs").receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in reply.get("Messages", [])]


# -- retries, 410, disabling -------------------------------------------------------------------------------------------
class ListQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, messages: list[dict[str, Any]], now: float) -> None:
        self.sent.extend(messages)


@pytest.fixture
def one_event(lambda_context: Any, admin_token: str, receiver: Receiver) -> tuple[dict[str, Any], EventDeps, Any]:
    """An endpoint, one relayed ringing event, and deps over moto with a clock the test moves and a list as queue."""
    made = add_endpoint(lambda_context, admin_token)
    zeon(lambda_context, "zeon_event_ringing.json")
    storage = get_storage()
    clock = {"now": datetime.now(UTC).timestamp()}
    deps = EventDeps(
        events=CallEventStore(storage),
        secrets=EndpointSecretStore(boto3.client("ssm"), get_settings().ssm_prefix),
        queue=ListQueue(),
        sender=event_sender.get_event_sender(),
        clock=lambda: clock["now"],
    )
    (event,) = deps.events.unrelayed(datetime.now(UTC) + timedelta(seconds=1))
    call_events.relay(deps, [event])
    return made, deps, clock


def test_a_failed_delivery_is_retried_on_the_schedule_then_given_up(
    one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    made, deps, clock = one_event
    queue = deps.queue
    assert isinstance(queue, ListQueue)
    receiver.statuses = [500]
    outcomes = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        message = queue.sent.pop(0)
        assert message["attempt"] == attempt
        while (outcome := call_events.deliver(deps, message)) == "hop":  # SQS delays 15 minutes at most
            hop = queue.sent.pop(0)
            assert hop == message
            clock["now"] = min(message["due"], clock["now"] + 900)
        outcomes.append(outcome)
        if queue.sent:
            waited = queue.sent[0]["due"] - clock["now"]
            assert waited == RETRY_DELAYS_SECONDS[attempt - 1]
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["given_up"]
    assert len(receiver.requests) == MAX_ATTEMPTS
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # the same id on every attempt
    log = deps.events.attempts_log("proj-a", made["endpoint_id"], limit=100)
    assert [entry["status_code"] for entry in log] == [500] * MAX_ATTEMPTS


def test_410_stops_and_disables_the_endpoint(
    lambda_context: Any, admin_token: str, one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    _, deps, _ = one_event
    receiver.statuses = [410]
    assert call_events.deliver(deps, deps.queue.sent.pop(0)) == "gone"  # type: ignore[attr-defined]
    (listed,) = answer_json(admin(lambda_context, "GET", "/v1/endpoints", token=admin_token))["endpoints"]
    assert listed["enabled"] is False and "410" in listed["disabled_reason"]
    assert deps.queue.sent == []  # type: ignore[attr-defined]


def test_an_endpoint_failing_for_three_days_is_disabled(
    lambda_context: Any, admin_token: str, one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    _, deps, clock = one_event
    receiver.statuses = [503]
    assert call_events.deliver(deps, deps.queue.sent.pop(0)) == "retry"  # type: ignore[attr-defined]
    clock["now"] += 3 * 24 * 3600
    message = {**deps.queue.sent.pop(0), "due": clock["now"]}  # type: ignore[attr-defined]
    assert call_events.deliver(deps, message) == "disabled"
    (listed,) = answer_json(admin(lambda_context, "GET", "/v1/endpoints", token=admin_token))["endpoints"]
    assert listed["enabled"] is False and "3 days" in listed["disabled_reason"]


def test_a_message_received_twice_is_sent_once(
    one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    _, deps, _ = one_event
    message = deps.queue.sent.pop(0)  # type: ignore[attr-defined]
    assert call_events.deliver(deps, message) == "delivered"
    assert call_events.deliver(deps, message) == "duplicate"
    assert len(receiver.requests) == 1


def test_a_claim_whose_answer_was_lost_is_still_the_takers_when_the_sdk_sends_it_again(
    one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, deps, _ = one_event
    # When the claim of the attempt lands, its answer is lost and the SDK sends it again
    sent_twice = answer_lost_once(
        monkeypatch, lambda one: one.request.get("UpdateExpression", "").startswith("SET att")
    )
    assert call_events.deliver(deps, deps.queue.sent.pop(0)) == "delivered"  # type: ignore[attr-defined]
    # Then the attempt was the taker's own: sent once, not dropped as another's
    assert sent_twice and len(receiver.requests) == 1


def test_a_message_that_meets_another_takers_lease_comes_back_when_it_runs_out(
    one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    _, deps, clock = one_event
    message = deps.queue.sent.pop(0)  # type: ignore[attr-defined]
    event, _ = deps.events.get_event(message["project_id"], message["event_id"])  # type: ignore[misc]
    # Given another taker claimed the attempt and died before sending it (its invocation timed out)
    assert deps.events.claim(event, message["endpoint_id"], 1, clock["now"])
    # When the message comes, it does not drop the delivery: it comes back when the lease runs out
    assert call_events.deliver(deps, message) == "leased"
    (again,) = deps.queue.sent  # type: ignore[attr-defined]
    assert again == {**message, "due": int(clock["now"]) + LEASE_SECONDS + 1}
    # and then takes the attempt over and sends the event, once
    clock["now"] = deps.queue.sent.pop(0)["due"]  # type: ignore[attr-defined]
    assert call_events.deliver(deps, again) == "delivered"
    assert len(receiver.requests) == 1


def test_a_later_event_of_the_call_waits_for_an_earlier_pending_one(
    lambda_context: Any, one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    _, deps, clock = one_event
    ringing = deps.queue.sent.pop(0)  # type: ignore[attr-defined]
    zeon(lambda_context, "zeon_event_accepted.json")
    (answered_event,) = deps.events.unrelayed(datetime.now(UTC) + timedelta(seconds=1))
    call_events.relay(deps, [answered_event])
    answered = deps.queue.sent.pop(0)  # type: ignore[attr-defined]
    assert call_events.deliver(deps, answered) == "deferred"  # ringing is still pending
    assert call_events.deliver(deps, ringing) == "delivered"
    clock["now"] += call_events.DEFER_SECONDS
    assert call_events.deliver(deps, deps.queue.sent.pop(0)) == "delivered"  # type: ignore[attr-defined]
    assert [b["type"] for b in receiver.bodies()] == ["call.ringing", "call.answered"]


# -- rotation and replay -----------------------------------------------------------------------------------------------
def test_a_rotated_secret_signs_beside_the_old_one_during_the_grace_period(
    lambda_context: Any, admin_token: str, pipeline: Pipeline, receiver: Receiver
) -> None:
    made = add_endpoint(lambda_context, admin_token)
    path = f"/v1/endpoints/{made['endpoint_id']}/rotate-secret"
    answer = admin(
        lambda_context,
        "POST",
        "/v1/endpoints/{endpoint_id}/rotate-secret",
        path,
        path_params={"endpoint_id": made["endpoint_id"]},
        body={"grace_hours": 2},
        token=admin_token,
    )
    rotated = answer_json(answer)
    assert answer["statusCode"] == 200 and rotated["secret"] != made["secret"]
    zeon(lambda_context, "zeon_event_ringing.json")
    pipeline.run(lambda_context)
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(made["secret"], request)["type"] == "call.ringing"  # a receiver not yet told
    assert verify(rotated["secret"], request)["type"] == "call.ringing"  # a receiver already told


def test_a_replay_sends_the_event_again_with_its_id(
    lambda_context: Any, admin_token: str, pipeline: Pipeline, receiver: Receiver
) -> None:
    made = add_endpoint(lambda_context, admin_token)
    zeon(lambda_context, "zeon_event_ringing.json")
    pipeline.run(lambda_context)
    event_id = receiver.bodies()[0]["event_id"]
    answer = admin(
        lambda_context,
        "POST",
        "/v1/events/{event_id}/replay",
        f"/v1/events/{event_id}/replay",
        path_params={"event_id": event_id},
        token=admin_token,
    )
    assert answer["statusCode"] == 200 and answer_json(answer)["queued"] == [made["endpoint_id"]]
    pipeline.run(lambda_context)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event_id, event_id]
    verify(made["secret"], receiver.requests[1])
    path = f"/v1/endpoints/{made['endpoint_id']}/deliveries"
    log = answer_json(
        admin(
            lambda_context,
            "GET",
            "/v1/endpoints/{endpoint_id}/deliveries",
            path,
            path_params={"endpoint_id": made["endpoint_id"]},
            token=admin_token,
        )
    )["deliveries"]
    assert [(e["event_id"], e["status_code"], e["outcome"]) for e in log] == [(event_id, 204, "delivered")] * 2
    assert all(isinstance(e["latency_ms"], int) for e in log)


def test_a_replay_of_failed_deliveries_since_a_time_enables_the_endpoint(
    lambda_context: Any, admin_token: str, one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver
) -> None:
    made, deps, _ = one_event
    receiver.statuses = [410, 204]
    call_events.deliver(deps, deps.queue.sent.pop(0))  # type: ignore[attr-defined]
    since = datetime.now(UTC) - timedelta(hours=1)
    replayed = call_events.replay_failed(deps, Project(id="proj-a", name="x"), made["endpoint_id"], since)
    assert replayed == {"endpoint_id": made["endpoint_id"], "enabled": True, "queued": 1}
    assert call_events.deliver(deps, deps.queue.sent.pop(0)) == "delivered"  # type: ignore[attr-defined]


def test_an_unknown_event_or_another_projects_endpoint_is_a_404(
    lambda_context: Any, admin_token: str, other_project: Any
) -> None:
    answer = admin(
        lambda_context,
        "POST",
        "/v1/events/{event_id}/replay",
        "/v1/events/evt_x/replay",
        path_params={"event_id": "evt_x"},
        token=admin_token,
    )
    assert answer["statusCode"] == 404
    from iptelefon.data.tokens import TokenStore

    other_admin = issue_token(TokenStore(get_storage()), other_project.project.id, role="admin")[1]
    made = add_endpoint(lambda_context, admin_token)
    answer = admin(
        lambda_context,
        "DELETE",
        "/v1/endpoints/{endpoint_id}",
        f"/v1/endpoints/{made['endpoint_id']}",
        path_params={"endpoint_id": made["endpoint_id"]},
        token=other_admin,
    )
    assert answer["statusCode"] == 404


# -- the CLI: iptel endpoint add|list|rotate-secret|deliveries|replay|delete, iptel event replay -----------------------
def test_the_cli_manages_endpoints_with_the_admin_apis_rules(
    project: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support import IN_PROCESS_STACK

    from iptel_admin import cli

    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({**IN_PROCESS_STACK, "event_queue_url": queue_url()}))

    def iptel(*argv: str) -> tuple[int, Any]:
        code = cli.main(["--stack-file", str(stack), *argv])
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 else err

    # the local stack's receiver on this machine (a local target: loopback over http is allowed there)
    code, made = iptel("endpoint", "add", "proj-a", "--url", "http://127.0.0.1:8790/", "--event", "call.completed")
    assert code == 0 and made["secret"].startswith("whsec_") and made["event_types"] == ["call.completed"]
    code, listed = iptel("endpoint", "list", "proj-a")
    assert [e["endpoint_id"] for e in listed["endpoints"]] == [made["endpoint_id"]]
    code, rotated = iptel("endpoint", "rotate-secret", "proj-a", "--id", made["endpoint_id"], "--grace-hours", "0")
    assert code == 0 and rotated["previous_valid_until"] is None and rotated["secret"] != made["secret"]
    code, error = iptel("endpoint", "rotate-secret", "proj-a", "--id", made["endpoint_id"], "--grace-hours", "100")
    assert code == 2 and "grace_hours" in error
    code, log = iptel("endpoint", "deliveries", "proj-a", "--id", made["endpoint_id"])
    assert code == 0 and log["deliveries"] == []
    code, replayed = iptel("endpoint", "replay", "proj-a", "--id", made["endpoint_id"], "--since", "2026-01-01T00:00Z")
    assert code == 0 and replayed["queued"] == 0
    code, error = iptel("event", "replay", "proj-a", "--id", "evt_nothing")
    assert code == 2 and "not found" in error
    code, error = iptel("endpoint", "add", "proj-a", "--url", "ftp://crm.example.com/")
    assert code == 2 and "https" in error
    assert iptel("endpoint", "delete", "proj-a", "--id", made["endpoint_id"]) == (0, {"deleted": made["endpoint_id"]})
    assert iptel("endpoint", "list", "proj-a") == (0, {"endpoints": []})


def test_a_delivery_whose_storage_is_away_comes_again_in_seconds_not_after_the_visibility_timeout(
    one_event: tuple[dict[str, Any], EventDeps, Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iptelefon.domain.errors import StorageUnavailable

    _, deps, clock = one_event
    message = deps.queue.sent.pop(0)  # type: ignore[attr-defined]

    def away(*_: Any, **__: Any) -> None:
        raise StorageUnavailable()

    monkeypatch.setattr(deps.events, "attempt_context", away)
    assert call_events.deliver(deps, message) == "postponed"
    (again,) = deps.queue.sent  # type: ignore[attr-defined]
    assert again == {**message, "due": clock["now"] + call_events.STORAGE_RETRY_SECONDS}
    assert receiver.requests == []
