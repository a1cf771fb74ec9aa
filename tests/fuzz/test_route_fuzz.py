"""Every route of the OpenAPI document, fuzzed by schemathesis through the REAL local stack (`python -m devstack.run`:
moto server, local gateway, PBX simulator as subprocesses).

Each route runs with schema-valid (positive) and schema-breaking (negative) requests, each with the demo project's bot
token, without a token and with a wrong one (unknown, revoked, malformed); the webhook with the demo secret or another
one; a recording's public stable link (`/r/{id}`) with ids that name no recording (a 404). Every answer: never a 5xx, a
JSON object, `error` + `message` on a 4xx, a status and body the OpenAPI document promises; a bad token on /v1 is a 401
(or the 400 of a request Powertools refuses before the token check), never an answer with data; an unknown webhook
secret is the same 404 every time; every request to the demo webhook left its call or its kept raw request in the table.
"""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import schemathesis
from fuzzing import (
    UNKNOWN_SECRET_BODY,
    Answer,
    WebhookLedger,
    check_answer,
    describe_request,
    fuzz_settings,
    is_demo_webhook,
    is_route_miss,
)
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.openapi import build_openapi
from devstack.run import DEMO_SECRET
from iptel_admin import admin

SCHEMA = schemathesis.openapi.from_dict(build_openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
MODES = {"positive": GenerationMode.POSITIVE, "negative": GenerationMode.NEGATIVE}
AUTHS = ("valid token", "no token", "wrong token")
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
# What Powertools refuses before the handler checks the token (README: validation runs first).
REFUSED_BEFORE_AUTH = {"validation_error", "invalid_json"}
PHONE = "79001112233"  # the seeded client's phone


# -- what the stack holds ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(local_stack: dict[str, Any]) -> dict[str, Any]:
    """A client with a call and a bot call attempt in the demo project, and a revoked token: real ids for the fuzz."""
    api, token = local_stack["api_url"], local_stack["bot_token"]
    form = {"id": "fuzz-seed-1", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "00:01:05"}
    call = httpx.post(local_stack["webhook_url"], data=form, timeout=30)
    assert call.status_code == 200, call.text
    started = httpx.post(
        f"{api}/v1/calls/employee",
        json={"client_phone": PHONE, "short_employee_phone": "346"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert started.status_code == 202, started.text
    target = admin.connect(
        local_stack["aws_endpoint_url"],
        local_stack["region"],
        local_stack["table_name"],
        local_stack["ssm_prefix"],
        api,
    )
    token_id, revoked = admin.create_token(target, local_stack["project_id"])
    assert target.deps.tokens.revoke_token(local_stack["project_id"], token_id)
    return {
        "client_id": [call.json()["client_id"]],
        "call_id": [call.json()["call_key"], started.json()["attempt_id"]],
        "phone": [PHONE, "+7 (900) 111-22-33", "8 900 111 22 33"],
        "revoked_token": revoked,
    }


# -- generated values --------------------------------------------------------------------------------------------------
def phones() -> st.SearchStrategy[str]:
    """Numbers a bot would send: Russian mobiles in every usual writing, and other countries (toll-fraud guard)."""
    digits = st.from_regex(r"9[0-9]{9}", fullmatch=True)
    russian = st.one_of(
        digits.map(lambda d: f"7{d}"),
        digits.map(lambda d: f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"),
        digits.map(lambda d: f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}"),
        digits.map(lambda d: f"tel:+7{d}"),
    )
    return st.one_of(russian, st.sampled_from(["+375 29 123-45-67", "+1 202 555 0143", "+44 20 7946 0958", PHONE]))


def realistic_values(seeded: dict[str, Any]) -> dict[str, st.SearchStrategy[str]]:
    """Field name -> values that get past validation, so that positive cases reach the PBX, storage and rate limits."""
    return {
        "client_phone": phones(),
        "phone": st.one_of(phones(), st.sampled_from(seeded["phone"])),
        "short_employee_phone": st.sampled_from(["346", "347", "12345678"]),
        "group_id": st.sampled_from(["3", "sales", "q_1"]),
        "employee_id": st.sampled_from(["346", "zoiper", "intern", "nobody"]),
        "client_id": st.sampled_from(seeded["client_id"]),
        "call_id": st.sampled_from(seeded["call_id"]),
    }


def wrong_authorizations(token: str, revoked: str) -> st.SearchStrategy[str]:
    """Authorization headers that must not open the API."""
    urlsafe = string.ascii_letters + string.digits + "-_"
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    one_char_off = st.integers(len("iptb_"), len(token) - 1).map(
        lambda i: token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    )
    return st.one_of(
        st.just(f"Bearer {revoked}"),
        st.text(urlsafe, min_size=43, max_size=43).map(lambda t: f"Bearer iptb_{t}"),
        one_char_off.map(lambda t: f"Bearer {t}"),
        st.sampled_from(
            [f"Bearer {token[:-1]}", f"Bearer {token}x", f"Basic {token}", token, "Bearer", "Bearer iptb_"]
        ),
        st.text(printable, min_size=1, max_size=80),
    )


def is_valid_authorization(value: str | None, token: str) -> bool:
    scheme, _, rest = (value or "").strip().partition(" ")
    return scheme.lower() == "bearer" and rest.strip() == token


def _answer_of(response: Any) -> Answer:
    """An Answer from an httpx response or a schemathesis one (requests underneath)."""
    request = response.request
    if isinstance(response, httpx.Response):
        content_type = response.headers.get("content-type", "")
        body = request.content
    else:
        content_type = (response.headers.get("content-type") or [""])[0]
        body = request.body
    url, headers = str(request.url), request.headers
    return Answer(
        response.status_code, content_type, response.content, describe_request(request.method, url, headers, body)
    )


# -- the fuzz ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_route_answers_every_generated_request_as_documented(
    label: str,
    mode: str,
    auth: str,
    local_stack: dict[str, Any],
    seeded: dict[str, Any],
    fuzz_tally: Any,
) -> None:
    operation = OPERATIONS[label]
    token = local_stack["bot_token"]
    webhook = operation.path.startswith("/iptelefon_webhook/")
    # Given the demo project's secret for a webhook with a "valid token", else whatever secret schemathesis makes
    fixed = {"path_parameters": {"secret": DEMO_SECRET}} if webhook and auth == "valid token" else {}
    cases = operation.as_strategy(generation_mode=MODES[mode], **fixed)
    ledger = WebhookLedger.open(local_stack) if webhook else None
    realistic = realistic_values(seeded)
    wrong = wrong_authorizations(token, seeded["revoked_token"])

    @fuzz_settings()
    @given(case=cases, data=st.data())
    def one_request(case: Any, data: st.DataObject) -> None:
        if mode == "positive":  # some fields get values that pass validation, to reach the logic behind it
            for part in (case.path_parameters, case.query, case.body):
                if isinstance(part, dict):
                    for name in [n for n in part if n in realistic and not (webhook and n == "secret")]:
                        if data.draw(st.booleans(), label=f"realistic {name}"):
                            part[name] = data.draw(realistic[name], label=name)
        headers = {}
        if auth == "valid token":
            headers["Authorization"] = f"Bearer {token}"
        elif auth == "wrong token":
            headers["Authorization"] = data.draw(wrong, label="Authorization")
        # When the request goes through the local gateway
        response = case.call(base_url=local_stack["api_url"], session=session, headers=headers, timeout=30)
        answer = _answer_of(response)
        fuzz_tally.count(f"{label} {mode} {auth}", answer.status)
        # Then: no 5xx, a JSON object, `error` and `message` on a 4xx
        body = check_answer(answer)
        path = urlsplit(str(response.request.url)).path
        if webhook:
            if is_demo_webhook(path):
                assert ledger is not None
                ledger.record(answer)
            else:  # an unknown secret: the same 404 for all (or the gateway's 404 for an empty one)
                assert answer.status == 404, f"unknown secret not refused:\n{answer}"
                assert body == UNKNOWN_SECRET_BODY or is_route_miss(answer), str(answer)
        elif operation.path.startswith("/r/"):  # a recording's stable link: public, the random id is the credential
            assert answer.status == 404 or is_route_miss(answer), f"an unknown recording was answered:\n{answer}"
        elif is_valid_authorization(response.request.headers.get("Authorization"), token):
            assert answer.status != 401, f"the valid token was refused:\n{answer}"
        else:
            refused_first = answer.status == 400 and body["error"] in REFUSED_BEFORE_AUTH
            assert answer.status == 401 or refused_first or is_route_miss(answer), f"a bad token got in:\n{answer}"
        # And the answer is one the OpenAPI document describes (status, content type, body schema)
        if not is_route_miss(answer):
            case.validate_response(response, checks=CONFORMANCE)

    try:
        with requests.Session() as session:
            one_request()
        if ledger is not None:  # every request to the demo webhook left its call or its raw request
            ledger.verify()
    finally:
        if ledger is not None:
            ledger.dynamodb.close()
