"""Log scanner: whatever the service logs for a representative set of requests holds no secret, token or full phone.

Requests run through all four real handlers in-process (moto; the PBX is a FakePbx): webhooks good and bad, bot
calls that succeed and that the PBX fails in every way, reads, bad and revoked tokens. Everything the service writes
is captured: the JSON lines of our Powertools Logger (its handler's stream, redirected: it keeps the `sys.stdout` of
import time, which `capfd` does not see), stdout and stderr (the EMF metrics Powertools prints), and the stdlib
loggers' output (ours at DEBUG, the LogLevel an operator may choose; httpx and httpcore at DEBUG). The checks are
plain substring and digit-run searches, independent of `iptelefon.platform.observability.mask_text`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import phonenumbers
import pytest
from botocore.exceptions import ClientError
from fixtures.projects import PBX_SECRET
from support import api_event

from employee_call.handler import lambda_handler as employee_call_handler
from group_call.handler import lambda_handler as group_call_handler
from iptel_admin import admin
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage
from iptelefon.domain.models import Client
from iptelefon.platform.observability import logger as service_logger
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

SECRET_B = "pbx-secret-of-project-b"  # other_project, tests/fixtures/projects.py
PHONE = "79004443322"  # the README's number
PHONE_2 = "79005556677"
PHONE_BY = "375291234567"
PHONES = (PHONE, PHONE_2, PHONE_BY)
TOKEN_WINDOW = 20  # no 20 characters in a row of a token may show up


@dataclass
class Scan:
    """What was logged, and every value that must not be in it."""

    text: str
    secrets: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)


# -- requests --------------------------------------------------------------------------------------------------------
def _webhook(secret: str, body: str, content_type: str, context: Any, *, base64_body: bool = False) -> None:
    event = api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{secret}",
        body=body,
        path_params={"secret": secret},
        headers={"Content-Type": content_type},
    )
    event["isBase64Encoded"] = base64_body
    webhook_handler(event, context)


def _call(handler: Any, path: str, body: Any, token: str | None, context: Any, **kwargs: Any) -> dict[str, Any]:
    resource = "/v1/clients/{client_id}/call" if path.endswith("/call") and "/clients/" in path else path
    params = {"client_id": path.split("/")[3]} if resource != path else None
    event = api_event("POST", resource, path, body=body, token=token, path_params=params, **kwargs)
    return handler(event, context)  # type: ignore[no-any-return]


def _read(resource: str, path: str, token: str | None, context: Any, **kwargs: Any) -> dict[str, Any]:
    return read_api_handler(api_event("GET", resource, path, token=token, **kwargs), context)


def _dynamodb_refuses(*_: Any, **__: Any) -> list[str]:
    message = f"One or more parameter values were invalid: key PHONE#proj-a#{PHONE}"
    raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "GetItem")


def run_representative_requests(tokens: dict[str, str], fake_pbx: Any, context: Any) -> None:
    """One request of each kind the service handles, through its real handler."""
    a, b, revoked = tokens["a"], tokens["b"], tokens["revoked"]
    zeon = {"id": "1709290800.1843", "linkedid": "1709290800.1840", "calldate": "2024-03-01 14:00:00",
            "calltype": "IN", "src": "+7 (900) 444-33-22", "dst": "74951234567", "client": "8 900 444 33 22",
            "exten": "346", "members": "346,347", "talktime": "00:02:35",
            "link": "https://z138.fpg.ru/zeon/records/1709290800.1843.mp3"}  # fmt: skip
    form = "application/x-www-form-urlencoded"
    # webhooks: a ZEON form, its replay, JSON with a wrapper, another project's, refused ones, an unknown secret
    _webhook(PBX_SECRET, urllib.parse.urlencode(zeon), form, context)
    _webhook(PBX_SECRET, urllib.parse.urlencode(zeon), form, context)
    _webhook(PBX_SECRET, '{"data": {"callid": "c-2", "phone": "+7 900 555-66-77", "duration": 61}}', "application/json",
             context)  # fmt: skip
    _webhook(SECRET_B, urllib.parse.urlencode({**zeon, "id": "b-1"}), form, context)
    _webhook(PBX_SECRET, '{"src": "79004443322", "id": ', "application/json", context)  # broken JSON
    _webhook(PBX_SECRET, urllib.parse.urlencode({"src": "+7 900 444-33-2", "id": "bad-1"}), form, context)  # no phone
    _webhook(PBX_SECRET, "src=79004443322&note=" + "x" * 70_000, form, context)  # oversize
    _webhook(PBX_SECRET, base64.b64encode(urllib.parse.urlencode(zeon).encode()).decode(), form, context,
             base64_body=True)  # fmt: skip
    _webhook("not-" + PBX_SECRET, urllib.parse.urlencode(zeon), form, context)
    # bot calls that start, each way the PBX can fail, the toll-fraud guard, a bad phone
    employee = {"client_phone": "+7 900 444-33-22", "short_employee_phone": "346"}
    group = {"client_phone": "8 (900) 555-66-77", "group_id": "3"}
    _call(employee_call_handler, "/v1/calls/employee", employee, a, context, headers={"Idempotency-Key": "k-1"})
    _call(employee_call_handler, "/v1/calls/employee", employee, a, context, headers={"Idempotency-Key": "k-1"})
    _call(group_call_handler, "/v1/calls/group", group, a, context)
    head = f"topic=base&method=call-employee&ext=346&phone={PHONE}"
    echo = f"{head}&hash={hashlib.md5((head + PBX_SECRET).encode()).hexdigest()} secret={PBX_SECRET} phone={PHONE}"
    for reply in (
        httpx.Response(500, text=echo),
        httpx.Response(200, json={"result": 0, "text": echo}),
        httpx.Response(200, text=f"<html>{echo}</html>"),
        httpx.Response(200, json={"result": 1, "data": {"call_id": PHONE, "echo": echo}}),
        httpx.Response(403, text=echo),
        httpx.ReadTimeout(echo),
        httpx.ConnectError(echo),
        httpx.RemoteProtocolError(echo),
    ):
        fake_pbx.reply = reply
        _call(employee_call_handler, "/v1/calls/employee", {**employee, "client_phone": PHONE_2}, a, context)
    fake_pbx.reply = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-9"}})
    _call(employee_call_handler, "/v1/calls/employee", {**employee, "client_phone": f"+{PHONE_BY}"}, a, context)
    _call(employee_call_handler, "/v1/calls/employee", {**employee, "client_phone": "+7 900 444-33-2"}, a, context)
    _call(employee_call_handler, "/v1/calls/employee", "\xff not json " + PHONE, a, context)
    # calls from the client card: api, app, disabled, another project's client
    for employee_id in ("346", "soft", "off"):
        _call(employee_call_handler, "/v1/clients/card-a/call", {"employee_id": employee_id}, a, context)
    _call(employee_call_handler, "/v1/clients/card-a/call", {"employee_id": "346", "phone": PHONE_2}, b, context)
    # reads, and every kind of bad token
    _read("/v1/clients", "/v1/clients", a, context, query={"phone": "+7 900 444-33-22"})
    _read("/v1/clients/{client_id}", "/v1/clients/card-a", a, context, path_params={"client_id": "card-a"})
    _read("/v1/calls", "/v1/calls", a, context, query={"client_id": "card-a"})
    _read("/v1/calls/{call_id}", "/v1/calls/1709290800.1843", a, context, path_params={"call_id": "1709290800.1843"})
    for token in (None, "iptb_" + "x" * 43, revoked, a[:-1], f"{a} {b}", b + "x"):
        _read("/v1/clients", "/v1/clients", token, context, query={"phone": PHONE})
        _call(group_call_handler, "/v1/calls/group", group, token, context)
    # a body that is not UTF-8 on a JSON route
    event = api_event("POST", "/v1/calls/group", "/v1/calls/group", token=a)
    event["body"], event["isBase64Encoded"] = base64.b64encode(b"\xc1" + PHONE.encode()).decode(), True
    group_call_handler(event, context)
    # an unexpected error, logged with its traceback: DynamoDB refuses a lookup, quoting the key (the phone) in its text
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClientStore, "match", _dynamodb_refuses)
        _read("/v1/clients", "/v1/clients", a, context, query={"phone": PHONE})


@contextmanager
def logged(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Capture what the service writes meanwhile; yields a function returning it all as text."""
    caplog.set_level(logging.INFO)
    for name in ("iptelefon-connector", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    capfd.readouterr()  # what came before is not this block's
    caplog.clear()
    lines = io.StringIO()
    previous = service_logger.logger_handler.setStream(lines)  # type: ignore[attr-defined]
    captured: list[str] = []

    def text() -> str:
        return "\n".join(captured)

    try:
        yield text
    finally:
        service_logger.logger_handler.setStream(previous)  # type: ignore[attr-defined]
        out, err = capfd.readouterr()
        # Other loggers reach the root handler (in Lambda: the runtime's, to CloudWatch); ours does not (Powertools
        # filters its records out there), its output is the JSON lines above.
        others = [caplog.handler.format(r) for r in caplog.records if r.name != service_logger.name]
        captured += [lines.getvalue(), out, err, *others]


@pytest.fixture
def scan(
    project: Any,
    other_project: Any,
    admin_target: Any,
    fake_pbx: Any,
    lambda_context: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Scan:
    """Run the representative requests; what the service logged meanwhile, and what it must not contain."""
    store = ClientStore(get_storage())
    store.add(project.project, Client(id="card-a", channel="telegram", phone=PHONE, variables={"tel": PHONE_2}))
    token_id, revoked = admin.create_token(admin_target, "proj-a")
    admin_target.deps.tokens.revoke_token("proj-a", token_id)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # EMF metrics are printed too: scan them
    tokens = {"a": project.token, "b": other_project.token, "revoked": revoked}
    with logged(capfd, caplog) as text:
        run_representative_requests(tokens, fake_pbx, lambda_context)
    secrets = [PBX_SECRET, SECRET_B]
    return Scan(
        text=text(),
        secrets=secrets,
        tokens=[*tokens.values()],
        signatures=[form["hash"] for form in fake_pbx.forms if "hash" in form],
    )


# -- what must not be in the logs --------------------------------------------------------------------------------------
def _windows(value: str, size: int) -> set[str]:
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def _texts(text: str) -> list[str]:
    """The logged text as written and URL-decoded (a request path or form may be logged encoded)."""
    return [text, urllib.parse.unquote_plus(text)]


# Digits with the separators people and PBXs write phones with: `+7 (900) 444-33-22`, `8 900 444 33 22`.
_DIGIT_RUN = re.compile(r"\d(?:[\s().\-]*\d)*")


def _national_number(canonical: str) -> str:
    return phonenumbers.national_significant_number(phonenumbers.parse("+" + canonical))


def test_the_scan_sees_what_the_service_logged(scan: Scan) -> None:
    # Given the scan captured the service's log lines (else every other check here would pass vacuously)
    for message in ('"message":"call recorded"', '"message":"starting call"', '"message":"call not started"',
                    '"message":"PBX answered"', '"message":"unexpected error"', '"client_phone":"7900*****22"',
                    '"CallRecorded"', "HTTP Request: POST https://pbx.test/"):  # fmt: skip
        assert message in scan.text, message


def test_no_pbx_secret_is_logged(scan: Scan) -> None:
    for text in _texts(scan.text):
        for secret in scan.secrets:
            assert secret not in text


def test_no_bot_token_nor_20_characters_of_one_are_logged(scan: Scan) -> None:
    for text in _texts(scan.text):
        for token in scan.tokens:
            leaked = [w for w in _windows(token, TOKEN_WINDOW) if w in text]
            assert not leaked, f"{len(leaked)} 20-character pieces of a token are in the logs, e.g. {leaked[0]!r}"


def test_no_hash_of_a_token_or_secret_and_no_request_signature_is_logged(scan: Scan) -> None:
    digests = [hashlib.sha256(v.encode()).hexdigest() for v in (*scan.tokens, *scan.secrets)]
    digests += [hashlib.md5(v.encode()).hexdigest() for v in (*scan.tokens, *scan.secrets)]
    assert scan.signatures, "the FakePbx got no signed request"
    for text in _texts(scan.text.lower()):
        for digest in [*digests, *scan.signatures]:
            assert digest.lower() not in text


@pytest.mark.parametrize("phone", PHONES)
def test_no_full_phone_is_logged_in_any_writing(scan: Scan, phone: str) -> None:
    national = _national_number(phone)
    for text in _texts(scan.text):
        # as a plain substring: canonical, with +, national with 8
        for form in (phone, f"+{phone}", f"8{national}" if phone.startswith("7") else phone):
            assert form not in text, form
        # as digits in a run with spaces, dashes, dots and brackets: `+7 (900) 444-33-22`, `8 900 444 33 22`
        runs = [re.sub(r"\D", "", m.group(0)) for m in _DIGIT_RUN.finditer(text)]
        leaked = [run for run in runs if national in run]
        assert not leaked, f"{phone} in the logs as {leaked[:3]}"


def test_a_pbx_call_id_that_embeds_the_phone_is_not_logged_in_full(
    project: Any, lambda_context: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a PBX whose call ids carry the caller's number (the webhook logs the call id as `call_key`)
    form = {"id": f"in_{PHONE}_1709290800", "calltype": "IN", "src": PHONE, "talktime": "5"}
    # When its webhook comes
    with logged(capfd, caplog) as text:
        _webhook(PBX_SECRET, urllib.parse.urlencode(form), "application/x-www-form-urlencoded", lambda_context)
    # Then the phone is not in the logs in full
    assert "call recorded" in text()
    assert PHONE not in text()
