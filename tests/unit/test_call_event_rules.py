"""Call events (issue 22), pure and over in-memory fakes: which events a call makes and when (the webhook, a refused
bot call), what they say, how they are signed (checked with the `standardwebhooks` package), when a failed delivery
comes back."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime

import pytest
from fakes.calls import Fakes
from fakes.webhook import WebhookWorld
from standardwebhooks import Webhook, WebhookVerificationError

from iptelefon.domain.call_events import (
    MAX_ATTEMPTS,
    RETRY_DELAYS_SECONDS,
    delivery_headers,
    new_secret,
    outcome_of,
    retry_delay_seconds,
)
from iptelefon.domain.errors import PbxRefused
from iptelefon.domain.models import CallAttempt, Project
from iptelefon.domain.requests import EmployeeCallRequest
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.usecases import calls
from iptelefon.usecases.webhook import receive_webhook

SECRET = "pbx-secret-unit"
PHONE = "79004443322"


def world() -> WebhookWorld:
    return WebhookWorld(project=Project(id="wh", name="Webhook"), secret=SECRET)


def form(**fields: str) -> WebhookRequest:
    values = {"id": "c-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "00:02:35", **fields}
    return WebhookRequest(
        body=urllib.parse.urlencode(values).encode(), content_type="application/x-www-form-urlencoded"
    )


def zeon(**fields: str) -> WebhookRequest:
    values = {"cmd": "event", "callid": "c-1", "call-type": "IN", "phone": PHONE, "exten": "346", **fields}
    return WebhookRequest(body=json.dumps(values).encode(), content_type="application/json")


# -- which events, when ------------------------------------------------------------------------------------------------
def test_a_completed_call_makes_its_event_with_the_call_and_a_duplicate_makes_none() -> None:
    w = world()
    receive_webhook(w.deps, SECRET, form(link="https://pbx.test/r/1.mp3"))
    receive_webhook(w.deps, SECRET, form(link="https://pbx.test/r/1.mp3"))
    # (its recording's recording.ready comes once the copy is archived: tests/integration/test_recordings.py)
    assert [e.type for e in w.calls.outbox] == ["call.completed"]
    completed = w.calls.outbox[0]
    assert completed.order_key == "c-1" and completed.project_id == "wh"
    assert completed.data["client"] == {"id": completed.data["client"]["id"], "phone": PHONE,
                                        "channel": "telephony", "created_now": True}  # fmt: skip
    assert completed.data["durations"] == {"ring_seconds": None, "talk_seconds": 155}


def test_an_unanswered_call_is_missed() -> None:
    w = world()
    receive_webhook(w.deps, SECRET, form(talktime="0", disposition="NO ANSWER"))
    assert [e.type for e in w.calls.outbox] == ["call.missed"]
    assert w.calls.outbox[0].data["status"] == "missed"


def test_a_recording_link_that_comes_later_makes_no_event_before_its_copy() -> None:
    w = world()
    receive_webhook(w.deps, SECRET, form())
    receive_webhook(w.deps, SECRET, form(link="https://pbx.test/r/1.mp3"))
    assert [e.type for e in w.calls.outbox] == ["call.completed"]


def test_ringing_and_answered_are_events_once_each_and_a_next_extension_is_none() -> None:
    w = world()
    for fields in ({"call-status": "RINGING"}, {"call-status": "RINGING"}, {"call-status": "RINGING", "exten": "347"},
                   {"call-status": "ACCEPTED", "exten": "347"}, {"call-status": "ACCEPTED"}):  # fmt: skip
        w.clock.now += 3
        receive_webhook(w.deps, SECRET, zeon(**fields))
    assert [e.type for e in w.live.outbox] == ["call.ringing", "call.answered"]
    answered = w.live.outbox[1].data
    assert answered["employee"] == "347" and answered["durations"]["ring_seconds"] == 9  # rang from 3 s to 12 s


def test_an_outgoing_call_names_the_bots_attempt_and_its_reference() -> None:
    w = world()
    attempt = CallAttempt(
        attempt_id="a-1",
        kind="employee",
        client_phone=PHONE,
        short_number="346",
        created_at="2024-03-01T10:59:00.000000+00:00",
        status="initiated",
        reference="deal-7",
    )
    w.attempts.add("wh", attempt)
    receive_webhook(w.deps, SECRET, form(calltype="OUT", dst=PHONE, src="346"))
    (event,) = w.calls.outbox
    assert event.data["attempt"] == {"id": "a-1", "reference": "deal-7"} and event.data["direction"] == "out"


def test_a_call_the_pbx_refused_is_an_attempt_failed_event_stored_with_the_failure() -> None:
    fakes = Fakes()
    fakes.pbx.reply = PbxRefused("PBX error on call-me: busy")
    request = EmployeeCallRequest(client_phone=PHONE, short_employee_phone="346", reference="deal-9")
    with pytest.raises(PbxRefused):
        calls.start_employee_call(fakes.deps(), None, Project(id="p", name="P"), request, idempotency_key=None)
    (event,) = fakes.attempts.outbox
    assert event.type == "call.attempt_failed" and event.data["attempt"]["reference"] == "deal-9"
    (attempt,) = fakes.attempts.items.values()
    assert attempt.reference == "deal-9" and event.data["attempt"]["id"] == attempt.attempt_id


def test_a_call_the_pbx_took_makes_no_attempt_failed_event() -> None:
    fakes = Fakes()
    request = EmployeeCallRequest(client_phone=PHONE, short_employee_phone="346")
    calls.start_employee_call(fakes.deps(), None, Project(id="p", name="P"), request, idempotency_key=None)
    assert fakes.attempts.outbox == []


# -- signing -----------------------------------------------------------------------------------------------------------
def test_a_signature_verifies_with_the_standardwebhooks_package() -> None:
    secret = new_secret()
    now = int(datetime.now(UTC).timestamp())
    body = '{"type":"call.ringing"}'
    headers = delivery_headers([secret], "evt_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "call.ringing"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # another endpoint's secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("ringing", "missed"), headers)  # a changed body


def test_a_rotated_out_secret_signs_until_its_grace_period_ends_and_not_after() -> None:
    from typing import Any

    from iptelefon.usecases.call_events import EventDeps, signing_secrets

    stored = {"current": "whsec_new", "previous": "whsec_old", "previous_valid_until": 1000}

    class Secrets:  # the endpoint's secrets as SSM keeps them
        def get(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
            return stored

    def at(now: float) -> list[str]:
        deps = EventDeps(events=None, secrets=Secrets(), queue=None, clock=lambda: now)  # type: ignore[arg-type]
        return signing_secrets(deps, "p1", "e1")

    assert at(999.0) == ["whsec_new", "whsec_old"]
    assert at(1000.0) == ["whsec_new"]


def test_a_secret_is_whsec_and_24_random_bytes() -> None:
    import base64

    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert new_secret() != secret


# -- retries -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "attempt", "outcome"),
    [
        (200, 1, "delivered"),
        (299, 3, "delivered"),
        (410, 1, "gone"),
        (500, 1, "retry"),
        (None, 7, "retry"),
        (404, MAX_ATTEMPTS, "given_up"),
        (301, 2, "retry"),
    ],
)
def test_what_an_answer_means(status: int | None, attempt: int, outcome: str) -> None:
    assert outcome_of(status, attempt) == outcome


def test_the_schedule_is_about_a_day_and_a_half_and_scales_for_the_bench() -> None:
    assert RETRY_DELAYS_SECONDS == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert 1.1 * 86400 < sum(RETRY_DELAYS_SECONDS) < 1.5 * 86400  # the "about a day and a half"
    assert retry_delay_seconds(2, time_scale=60) == 5
