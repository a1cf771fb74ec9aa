"""Every route through its real Lambda handler (moto in-process): routing, bearer auth, error bodies."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from support import answer_json, api_event

from employee_call.handler import lambda_handler as employee_call_handler
from group_call.handler import lambda_handler as group_call_handler
from read_api.handler import lambda_handler as read_api_handler

BOT_ROUTES = [
    (
        employee_call_handler,
        "POST",
        "/v1/calls/employee",
        "/v1/calls/employee",
        None,
        {"client_phone": "79004443322", "short_employee_phone": "346"},
    ),
    (
        employee_call_handler,
        "POST",
        "/v1/clients/{client_id}/call",
        "/v1/clients/c1/call",
        {"client_id": "c1"},
        {"employee_id": "346"},
    ),
    (
        group_call_handler,
        "POST",
        "/v1/calls/group",
        "/v1/calls/group",
        None,
        {"client_phone": "79004443322", "group_id": "3"},
    ),
    (read_api_handler, "GET", "/v1/clients/{client_id}", "/v1/clients/c1", {"client_id": "c1"}, None),
    (read_api_handler, "GET", "/v1/calls/{call_id}", "/v1/calls/x1", {"call_id": "x1"}, None),
]


def _call(route: tuple[Any, ...], context: Any, **kwargs: Any) -> dict[str, Any]:
    handler, method, resource, path, params, body = route
    return handler(api_event(method, resource, path, path_params=params, body=body, **kwargs), context)


@pytest.mark.parametrize("route", BOT_ROUTES, ids=lambda r: f"{r[1]} {r[2]}")
def test_bot_route_without_token_is_401_with_json_error(
    route: tuple[Any, ...], lambda_context: Any, project: Any
) -> None:
    # Given a valid request without a bearer token
    # When it reaches the handler
    answer = _call(route, lambda_context)
    # Then it is refused with 401 and a JSON error body
    assert answer["statusCode"] == 401
    assert answer_json(answer) == {"error": "unauthorized", "message": "missing or invalid bearer token"}


@pytest.mark.parametrize("token", ["iptb_wrong", "not-even-a-token", "iptb_" + "x" * 300])
def test_wrong_token_is_401(token: str, lambda_context: Any, project: Any) -> None:
    # Given a token that was never issued (or malformed)
    answer = _call(BOT_ROUTES[0], lambda_context, token=token)
    # Then the answer is the same 401 as without a token
    assert answer["statusCode"] == 401
    assert answer_json(answer)["error"] == "unauthorized"


def test_revoked_token_is_401(lambda_context: Any, project: Any, admin_target: Any) -> None:
    # Given the project's token is revoked
    assert admin_target.deps.tokens.revoke_token(project.project.id, project.token_id)
    # When it is used
    answer = _call(BOT_ROUTES[0], lambda_context, token=project.token)
    # Then it no longer opens the API
    assert answer["statusCode"] == 401


def test_invalid_body_is_400_naming_the_field(lambda_context: Any, project: Any) -> None:
    # Given an employee call whose short number is not digits
    event = api_event(
        "POST",
        "/v1/calls/employee",
        "/v1/calls/employee",
        token=project.token,
        body={"client_phone": "79004443322", "short_employee_phone": "abc"},
    )
    # When it reaches the handler
    answer = employee_call_handler(event, lambda_context)
    # Then a 400 names the field
    body = answer_json(answer)
    assert answer["statusCode"] == 400
    assert body["error"] == "validation_error"
    assert [d["field"] for d in body["details"]] == ["short_employee_phone"]


def test_broken_json_body_is_400_invalid_json(lambda_context: Any, project: Any) -> None:
    # Given a body that is not JSON
    event = api_event("POST", "/v1/calls/group", "/v1/calls/group", token=project.token, body="{not json")
    # When it reaches the handler
    answer = group_call_handler(event, lambda_context)
    # Then the 400 says so
    assert answer["statusCode"] == 400
    assert answer_json(answer)["error"] in ("invalid_json", "validation_error")


def test_missing_query_parameter_is_400(lambda_context: Any, project: Any) -> None:
    # Given GET /v1/clients without ?phone=
    answer = read_api_handler(api_event("GET", "/v1/clients", "/v1/clients", token=project.token), lambda_context)
    # Then the 400 names the missing parameter
    assert answer["statusCode"] == 400
    assert answer_json(answer)["details"][0]["field"] == "phone"


def test_unknown_path_in_a_function_is_404_json(lambda_context: Any, project: Any) -> None:
    # Given a path the function does not serve
    answer = read_api_handler(api_event("GET", "/v1/nothing", "/v1/nothing", token=project.token), lambda_context)
    # Then a JSON 404
    assert answer["statusCode"] == 404
    assert answer_json(answer)["error"] == "not_found"


def test_a_body_that_is_not_utf8_is_400_invalid_json(lambda_context: Any, project: Any) -> None:
    # Given a JSON route and a body whose bytes are not UTF-8 (API Gateway passes such a body base64-encoded)
    event = api_event("POST", "/v1/calls/employee", "/v1/calls/employee", token=project.token)
    event["body"], event["isBase64Encoded"] = base64.b64encode(b'\xff\xfe{"client_phone": 1}').decode(), True
    # When it reaches the handler
    answer = employee_call_handler(event, lambda_context)
    # Then a 400 says so (not a 500)
    assert answer["statusCode"] == 400
    assert answer_json(answer) == {"error": "invalid_json", "message": "the body is not UTF-8 encoded JSON"}


# -- hostile bodies: a clear 4xx, never a 500 (issue 10) ---------------------------------------------------------------
def _group_call(body: str, content_type: str, token: str | None) -> dict[str, Any]:
    event = api_event(
        "POST", "/v1/calls/group", "/v1/calls/group", body=body, headers={"Content-Type": content_type}, token=token
    )
    return group_call_handler(event, _context())  # type: ignore[no-any-return]


def _context() -> Any:
    from fixtures.projects import LambdaContext

    return LambdaContext()


HOSTILE_BODIES = {
    "text/plain": ('{"client_phone": "79004443322", "group_id": "3"}', "text/plain"),
    "XML": ("<call><group_id>3</group_id></call>", "application/xml"),
    "nested 1,000 deep": ("[" * 1000 + "]" * 1000, "application/json"),
    "a number of 5,000 digits": ('{"client_phone": ' + "9" * 5000 + ', "group_id": "3"}', "application/json"),
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_a_hostile_body_without_a_token_is_401_before_anything_reads_it(case: str, project: Any) -> None:
    # Given a body meant to break the parser, sent anonymously
    body, content_type = HOSTILE_BODIES[case]
    # When it reaches the route, then the answer is the 401 every anonymous request gets: nothing about the body
    answer = _group_call(body, content_type, None)
    assert (answer["statusCode"], answer_json(answer)["error"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("case", "status", "error", "says"),
    [
        ("text/plain", 415, "unsupported_media_type", "application/json"),
        ("XML", 415, "unsupported_media_type", "application/json"),
        ("nested 1,000 deep", 400, "invalid_json", "nested too deeply"),
        ("a number of 5,000 digits", 400, "invalid_json", "longer than 100 digits"),
    ],
)
def test_a_hostile_body_with_a_token_is_a_clear_4xx_never_a_500(
    case: str, status: int, error: str, says: str, project: Any
) -> None:
    body, content_type = HOSTILE_BODIES[case]
    answer = _group_call(body, content_type, project.token)
    assert (answer["statusCode"], answer_json(answer)["error"]) == (status, error), answer
    assert says in answer_json(answer)["message"]


def test_a_phone_the_api_answers_with_is_read_back_as_the_same_number(project: Any, admin_target: Any) -> None:
    # Given a client with a Vietnamese number (84 912 345 678), whose digits look like a Russian 8-number
    from iptelefon.data.clients import ClientStore
    from iptelefon.data.gateway import get_storage
    from iptelefon.domain.models import Client

    ClientStore(get_storage()).add(project.project, Client(id="vn", channel="telephony", phone="84912345678"))

    def find(phone: str) -> Any:
        event = api_event("GET", "/v1/clients", "/v1/clients", query={"phone": phone}, token=project.token)
        return answer_json(read_api_handler(event, _context()))

    # When a bot reads the client's card, then the phone also comes in E.164 form
    card = answer_json(
        read_api_handler(
            api_event(
                "GET", "/v1/clients/{client_id}", "/v1/clients/vn", path_params={"client_id": "vn"}, token=project.token
            ),
            _context(),
        )
    )
    assert (card["phone"], card["phone_e164"]) == ("84912345678", "+84912345678")
    # And sending that form back finds the same client, where the bare digits are read as a Russian 8-number
    assert [c["id"] for c in find(card["phone_e164"])["clients"]] == ["vn"]
    assert find(card["phone"])["phone"] == "74912345678"


def test_answers_carry_cyrillic_as_utf8_text_not_escapes(lambda_context: Any, project: Any, admin_target: Any) -> None:
    from iptelefon.data.clients import ClientStore
    from iptelefon.domain.models import Client

    # Given a client whose variables are Russian text
    ClientStore(admin_target.storage).add(
        project.project, Client(id="ru1", channel="telegram", variables={"Имя": "Звонарёв Иван"})
    )
    # When a bot reads its card
    route = (read_api_handler, "GET", "/v1/clients/{client_id}", "/v1/clients/ru1", {"client_id": "ru1"}, None)
    answer = _call(route, lambda_context, token=project.token)
    # Then the JSON holds the letters themselves (UTF-8 on the wire), readable with curl
    assert answer["statusCode"] == 200
    assert '"Имя":"Звонарёв Иван"' in answer["body"] and "\\u" not in answer["body"]
