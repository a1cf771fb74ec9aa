"""Roles and the admin API through the real handlers (moto in-process): who a token is, what each role may do, the
PBX connection and employees as the console changes them, and the operator's client card call and search."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.client import BaseClient
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from admin_api.handler import lambda_handler as admin_handler
from employee_call.handler import lambda_handler as employee_call_handler
from iptel_admin import admin
from iptelefon.data.employees import EmployeeStore
from iptelefon.data.gateway import get_storage
from iptelefon.data.pbx_settings import get_pbx_credentials, ssm_provider
from iptelefon.data.tokens import TokenStore
from iptelefon.domain.models import Client
from iptelefon.usecases.auth import issue_token
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

NEW_SECRET = "pbx-secret-from-console-1"


@pytest.fixture
def tokens(project: Any) -> dict[str, str]:
    """One token of each role for proj-a; the operator is employee 346 (API method)."""
    tokens = TokenStore(get_storage())
    return {
        "bot": project.token,
        "admin": issue_token(tokens, "proj-a", role="admin")[1],
        "operator": issue_token(tokens, "proj-a", role="operator", employee_id="346")[1],
        "soft": issue_token(tokens, "proj-a", role="operator", employee_id="soft")[1],
        "off": issue_token(tokens, "proj-a", role="operator", employee_id="off")[1],
    }


def call(context: Any, method: str, resource: str, path: str | None = None, **kwargs: Any) -> dict[str, Any]:
    handler = {"/v1/clients": read_api_handler, "/v1/clients/{client_id}/call": employee_call_handler}.get(
        resource, admin_handler
    )
    params = kwargs.pop("path_params", None)
    return handler(api_event(method, resource, path or resource, path_params=params, **kwargs), context)  # type: ignore[no-any-return]


ADMIN_ROUTES = [
    ("GET", "/v1/settings", None, None, None),
    ("PUT", "/v1/settings", None, None, {"employee_method": "call-employee"}),
    ("POST", "/v1/settings/check", None, None, None),
    ("POST", "/v1/settings/webhook-token", None, None, {"grace_hours": 1}),
    ("GET", "/v1/tokens", None, None, None),
    ("GET", "/v1/pbx/points", None, None, None),
    ("GET", "/v1/employees", None, None, None),
    ("PUT", "/v1/employees/{employee_id}", "/v1/employees/9", {"employee_id": "9"}, {"name": "N"}),
    ("DELETE", "/v1/employees/{employee_id}", "/v1/employees/off", {"employee_id": "off"}, None),
    (
        "POST",
        "/v1/employees/{employee_id}/operator-token",
        "/v1/employees/346/operator-token",
        {"employee_id": "346"},
        None,
    ),
    ("DELETE", "/v1/tokens/{token_id}", "/v1/tokens/x", {"token_id": "x"}, None),
]


@pytest.mark.parametrize("role", ["bot", "operator"])
@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_admin_routes_refuse_bot_and_operator_tokens(
    route: tuple[Any, ...], role: str, tokens: dict[str, str], lambda_context: Any
) -> None:
    method, resource, path, params, body = route
    answer = call(lambda_context, method, resource, path, path_params=params, body=body, token=tokens[role])
    assert answer["statusCode"] == 403, answer["body"]
    assert answer_json(answer)["error"] == "forbidden"


def test_me_says_who_each_token_is(tokens: dict[str, str], lambda_context: Any) -> None:
    me = {role: answer_json(call(lambda_context, "GET", "/v1/me", token=tokens[role])) for role in tokens}
    assert (me["bot"]["role"], me["bot"]["employee"]) == ("bot", None)
    assert (me["admin"]["role"], me["admin"]["project"]) == ("admin", {"id": "proj-a", "name": "Test project"})
    assert me["operator"]["role"] == "operator"
    assert me["operator"]["employee"] == {"id": "346", "name": "Operator", "call_method": "api", "short_number": "346"}
    assert call(lambda_context, "GET", "/v1/me")["statusCode"] == 401


def test_settings_never_show_the_secret_and_a_new_one_rotates_the_webhook(
    tokens: dict[str, str], lambda_context: Any
) -> None:
    # Given the admin reads the settings
    shown = call(lambda_context, "GET", "/v1/settings", token=tokens["admin"])
    settings = answer_json(shown)
    assert settings["server_url"] == "https://pbx.test/b3/api/v2/start.php" and settings["secret_set"] is True
    assert PBX_SECRET not in shown["body"]
    assert settings["webhook_url_template"].endswith("/iptelefon_webhook/{secret}")
    # When the console saves a new secret and server URL
    body = {"server_url": "https://a00.abc.ru/b3/api/v2/start.php", "secret": NEW_SECRET, "auth_mode": "bearer"}
    saved = call(lambda_context, "PUT", "/v1/settings", body=body, token=tokens["admin"])
    # Then they are stored (the secret in SSM), the answer does not repeat it, and both webhook URLs work for now
    assert saved["statusCode"] == 200, saved["body"]
    assert NEW_SECRET not in saved["body"] and "old_webhook_url_valid_until" in answer_json(saved)
    ssm_provider().clear_cache()
    assert get_pbx_credentials("proj-a").secret == NEW_SECRET
    assert answer_json(saved)["auth_mode"] == "bearer"
    form = {"id": "after-rotation", "calltype": "IN", "src": "79004443322", "talktime": "5"}
    assert webhook_handler(webhook_event(NEW_SECRET, form), lambda_context)["statusCode"] == 200
    assert webhook_handler(webhook_event(PBX_SECRET, {**form, "id": "old"}), lambda_context)["statusCode"] == 200


def test_a_new_random_webhook_url_is_shown_once_and_works_at_once(tokens: dict[str, str], lambda_context: Any) -> None:
    # When the admin asks for a random webhook URL, the old one cut at once (grace 0)
    issued = call(lambda_context, "POST", "/v1/settings/webhook-token", body={"grace_hours": 0}, token=tokens["admin"])
    # Then the answer is the new URL (201: shown this once), which works, while the PBX secret's URL stops
    assert issued["statusCode"] == 201, issued["body"]
    url = answer_json(issued)["webhook_url"]
    token = url.rsplit("/iptelefon_webhook/", 1)[1]
    assert url.startswith("https://") and len(token) >= 40 and PBX_SECRET not in url
    form = {"id": "after-token", "calltype": "IN", "src": "79004443322", "talktime": "5"}
    assert webhook_handler(webhook_event(token, form), lambda_context)["statusCode"] == 200
    assert webhook_handler(webhook_event(PBX_SECRET, {**form, "id": "old"}), lambda_context)["statusCode"] == 404
    # and the settings never show it again: only that the URL is a random token's
    shown = call(lambda_context, "GET", "/v1/settings", token=tokens["admin"])
    assert token not in shown["body"] and answer_json(shown)["webhook_path"] == "random"


def test_webhook_urls_use_the_stages_stable_domain_whatever_host_the_console_was_opened_on(
    tokens: dict[str, str], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stage deployed with DomainName (the template sets PUBLIC_BASE_URL), the console opened on execute-api
    from iptelefon.platform.settings import get_settings

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://pbx.example.com")
    get_settings.cache_clear()
    try:
        # When the admin reads the settings and asks for a new webhook URL
        shown = answer_json(call(lambda_context, "GET", "/v1/settings", token=tokens["admin"]))
        issued = call(
            lambda_context, "POST", "/v1/settings/webhook-token", body={"grace_hours": 1}, token=tokens["admin"]
        )
    finally:
        monkeypatch.delenv("PUBLIC_BASE_URL")
        get_settings.cache_clear()

    # Then both are on the domain (the PBX keeps its URL when the stack and its API id are created anew)
    assert shown["webhook_url_template"] == "https://pbx.example.com/iptelefon_webhook/{secret}"
    assert answer_json(issued)["webhook_url"].startswith("https://pbx.example.com/iptelefon_webhook/")
    # and without it, the host the request came in on, as before
    assert not answer_json(call(lambda_context, "GET", "/v1/settings", token=tokens["admin"]))[
        "webhook_url_template"
    ].startswith("https://pbx.example.com/")


@pytest.mark.parametrize("body", [{"grace_hours": 73}, {"grace_hours": -1}, {"grace_hours": "soon"}, {"ttl": 1}])
def test_a_bad_grace_period_for_a_new_webhook_url_is_a_400_naming_it(
    body: dict[str, Any], tokens: dict[str, str], lambda_context: Any
) -> None:
    answer = call(lambda_context, "POST", "/v1/settings/webhook-token", body=body, token=tokens["admin"])
    assert answer["statusCode"] == 400, answer["body"]
    assert next(iter(body)) in answer["body"]
    # and nothing changed: the PBX secret's URL still works
    form = {"id": "still", "calltype": "IN", "src": "79004443322", "talktime": "5"}
    assert webhook_handler(webhook_event(PBX_SECRET, form), lambda_context)["statusCode"] == 200


def test_the_token_list_names_each_live_token_and_never_shows_one(
    project: Any, tokens: dict[str, str], lambda_context: Any
) -> None:
    # Given the project's tokens (tokens: an admin and three operators; project: a bot), one of them revoked
    revoked_id, _ = issue_token(TokenStore(get_storage()), "proj-a", role="operator", employee_id="soft")
    TokenStore(get_storage()).revoke_token("proj-a", revoked_id)
    # When the admin lists them
    answer = call(lambda_context, "GET", "/v1/tokens", token=tokens["admin"])
    listed = answer_json(answer)["tokens"]
    # Then each live one is named by id, role and employee; no token, no hash; the revoked one is not there
    assert Counter((t["role"], t["employee_id"]) for t in listed) == Counter(
        {("bot", None): 1, ("admin", None): 1, ("operator", "346"): 1, ("operator", "soft"): 1, ("operator", "off"): 1}
    )
    assert revoked_id not in {t["token_id"] for t in listed}
    assert all(set(t) == {"token_id", "role", "employee_id", "created_at"} for t in listed)
    assert not any(token in answer["body"] for token in tokens.values()) and "hash" not in answer["body"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"server_url": "ftp://pbx.test/start.php"}, "server_url"),
        ({"secret": "has/slash-123"}, "secret"),
        ({"auth_mode": "plain"}, "auth_mode"),
        ({"unknown": 1}, "unknown"),
        ({"param_names": {"": "x"}}, "param_names"),  # an empty name cannot be a form field (nor a DynamoDB map key)
        ({"param_names": {"ext": "a b"}}, "param_names"),
    ],
)
def test_bad_settings_are_a_400_naming_the_field(
    body: dict[str, Any], field: str, tokens: dict[str, str], lambda_context: Any
) -> None:
    answer = call(lambda_context, "PUT", "/v1/settings", body=body, token=tokens["admin"])
    assert answer["statusCode"] == 400, answer["body"]
    assert field in answer["body"]


def _pbx_answering(fake_pbx: Any, replies: dict[str, Any]) -> None:
    """The fake PBX answers each method with its reply in `replies` (JSON), an unknown method as ZEON does."""
    import httpx

    def reply(request: httpx.Request) -> httpx.Response:
        method = dict(__import__("urllib.parse").parse.parse_qsl(request.content.decode()))["method"]
        return httpx.Response(200, json=replies.get(method, {"result": 0, "text": f"unknown method {method}"}))

    fake_pbx.reply = reply


def test_check_connection_pings_the_pbx_and_lists_its_methods_and_points(
    tokens: dict[str, str], lambda_context: Any, fake_pbx: Any
) -> None:
    # Given a PBX that answers ping, its method list and its points (the test project keeps the classic names)
    methods = {"result": 1, "data": ["ping", "call-employee", "call-group"]}
    _pbx_answering(
        fake_pbx, {"ping": {"result": 1, "data": "pong"}, "get-method-list": methods, "get-points": [346, "347"]}
    )
    # When the admin checks the connection
    answer = answer_json(call(lambda_context, "POST", "/v1/settings/check", token=tokens["admin"]))
    # Then everything it told is shown
    assert answer["reachable"] is True and "call-employee" in answer["methods"]
    assert answer["call_methods_found"] == {"employee_method": True, "group_method": True}
    assert (answer["points"], answer["unavailable"]) == (["346", "347"], {})
    assert [f["method"] for f in fake_pbx.forms] == ["ping", "get-method-list", "get-points"]


def test_a_pbx_without_method_list_or_points_still_passes_the_check(
    tokens: dict[str, str], lambda_context: Any, fake_pbx: Any
) -> None:
    # Given a PBX that answers ping as the public integration reads it, and neither list
    _pbx_answering(fake_pbx, {"ping": {"text": "pong"}})
    # When the admin checks the connection
    answer = call(lambda_context, "POST", "/v1/settings/check", token=tokens["admin"])
    # Then it is reachable, and what it did not tell is null with the PBX's own words
    body = answer_json(answer)
    assert (answer["statusCode"], body["reachable"], body["methods"], body["points"]) == (200, True, None, None)
    assert body["call_methods_found"] is None
    assert "unknown method get-method-list" in body["unavailable"]["methods"]
    assert "unknown method get-points" in body["unavailable"]["points"]


def test_a_pbx_that_does_not_answer_pong_fails_the_check(
    tokens: dict[str, str], lambda_context: Any, fake_pbx: Any
) -> None:
    _pbx_answering(fake_pbx, {"ping": {"text": "Access denied"}})
    answer = call(lambda_context, "POST", "/v1/settings/check", token=tokens["admin"])
    assert answer["statusCode"] == 502
    assert "Access denied" in answer_json(answer)["message"]
    assert [f["method"] for f in fake_pbx.forms] == ["ping"]


def test_pbx_points_lists_the_extensions_for_the_employee_form(
    tokens: dict[str, str], lambda_context: Any, fake_pbx: Any
) -> None:
    _pbx_answering(fake_pbx, {"get-points": ["346", {"number": "347"}]})
    answer = call(lambda_context, "GET", "/v1/pbx/points", token=tokens["admin"])
    assert (answer["statusCode"], answer_json(answer)) == (200, {"points": ["346", "347"]})
    # And a PBX without get-points is a 502 naming its words (the form then offers nothing)
    _pbx_answering(fake_pbx, {})
    refused = call(lambda_context, "GET", "/v1/pbx/points", token=tokens["admin"])
    assert refused["statusCode"] == 502 and "unknown method get-points" in answer_json(refused)["message"]


def test_employees_are_set_listed_and_deleted_with_their_operator_tokens(
    tokens: dict[str, str], lambda_context: Any
) -> None:
    admin_token = tokens["admin"]
    # The API method needs a short number: a 400 naming it
    missing = call(
        lambda_context,
        "PUT",
        "/v1/employees/{employee_id}",
        "/v1/employees/anna",
        path_params={"employee_id": "anna"},
        body={"name": "Анна", "call_method": "api"},
        token=admin_token,
    )
    assert missing["statusCode"] == 400 and "short_number" in missing["body"]
    # With one, she is saved and listed (with her operator tokens' ids, never the tokens)
    saved = call(
        lambda_context,
        "PUT",
        "/v1/employees/{employee_id}",
        "/v1/employees/anna",
        path_params={"employee_id": "anna"},
        body={"name": "Анна", "call_method": "api", "short_number": "347"},
        token=admin_token,
    )
    assert answer_json(saved) == {"id": "anna", "name": "Анна", "call_method": "api", "short_number": "347"}
    issued = call(
        lambda_context,
        "POST",
        "/v1/employees/{employee_id}/operator-token",
        "/v1/employees/anna/operator-token",
        path_params={"employee_id": "anna"},
        token=admin_token,
    )
    assert issued["statusCode"] == 201
    operator_token = answer_json(issued)["token"]
    listed = answer_json(call(lambda_context, "GET", "/v1/employees", token=admin_token))["employees"]
    anna = next(e for e in listed if e["id"] == "anna")
    assert [t["token_id"] for t in anna["operator_tokens"]] == [answer_json(issued)["token_id"]]
    assert operator_token not in str(listed)
    assert answer_json(call(lambda_context, "GET", "/v1/me", token=operator_token))["employee"]["id"] == "anna"
    # When she is deleted, her operator token stops working, and she is gone
    deleted = call(
        lambda_context,
        "DELETE",
        "/v1/employees/{employee_id}",
        "/v1/employees/anna",
        path_params={"employee_id": "anna"},
        token=admin_token,
    )
    assert deleted["statusCode"] == 200
    assert call(lambda_context, "GET", "/v1/me", token=operator_token)["statusCode"] == 401
    listed = answer_json(call(lambda_context, "GET", "/v1/employees", token=admin_token))["employees"]
    assert "anna" not in [e["id"] for e in listed]


def test_another_projects_ids_are_404_for_an_admin(
    tokens: dict[str, str], other_project: Any, admin_target: Any, lambda_context: Any
) -> None:
    admin.set_employee(admin_target, project_id="proj-b", employee_id="b1", name="B", method="app", short_number=None)
    for method, path in (("DELETE", "/v1/employees/b1"), ("POST", "/v1/employees/b1/operator-token")):
        resource = "/v1/employees/{employee_id}" + ("/operator-token" if method == "POST" else "")
        answer = call(lambda_context, method, resource, path, path_params={"employee_id": "b1"}, token=tokens["admin"])
        assert answer["statusCode"] == 404, answer["body"]
    assert EmployeeStore(get_storage()).get_employee("proj-b", "b1") is not None


@pytest.fixture
def card_client(project: Any, admin_target: Any) -> Client:
    return admin.add_client(
        admin_target, project_id="proj-a", channel="telephony", phone="79004443322", variables={"name": "Иван Петров"}
    )


def test_an_operator_calls_from_the_card_as_its_own_employee(
    tokens: dict[str, str], card_client: Client, lambda_context: Any, fake_pbx: Any
) -> None:
    card = f"/v1/clients/{card_client.id}/call"
    params = {"client_id": card_client.id}

    def card_call(token: str, body: dict[str, Any]) -> dict[str, Any]:
        resource = "/v1/clients/{client_id}/call"
        return call(lambda_context, "POST", resource, card, path_params=params, body=body, token=token)

    # The API-method operator rings through the PBX as 346, without naming an employee
    api = card_call(tokens["operator"], {})
    assert api["statusCode"] == 202, api["body"]
    assert (fake_pbx.forms[-1]["ext"], fake_pbx.forms[-1]["phone"]) == ("346", "79004443322")
    # the app-method operator gets a tel: link; the disabled one a 403
    assert answer_json(card_call(tokens["soft"], {})) == {"method": "app", "uri": "tel:+79004443322"}
    assert answer_json(card_call(tokens["off"], {}))["error"] == "calls_disabled"
    # an operator cannot call as somebody else; a bot must say who calls
    assert answer_json(card_call(tokens["operator"], {"employee_id": "soft"}))["error"] == "forbidden"
    assert card_call(tokens["bot"], {})["statusCode"] == 400
    # and an operator cannot use the bot's call routes
    bot_route = employee_call_handler(
        api_event(
            "POST",
            "/v1/calls/employee",
            "/v1/calls/employee",
            body={"client_phone": "79004443322", "short_employee_phone": "346"},
            token=tokens["operator"],
        ),
        lambda_context,
    )
    assert bot_route["statusCode"] == 403


def test_an_operator_finds_clients_by_name_or_phone(
    tokens: dict[str, str], card_client: Client, lambda_context: Any
) -> None:
    def search(text: str) -> list[str]:
        answer = call(lambda_context, "GET", "/v1/clients", query={"q": text}, token=tokens["operator"])
        assert answer["statusCode"] == 200, answer["body"]
        return [c["id"] for c in answer_json(answer)["clients"]]

    assert search("петров") == [card_client.id]
    assert search("+7 (900) 444-33-22") == [card_client.id]
    assert search("Сидоров") == []
    assert call(lambda_context, "GET", "/v1/clients", token=tokens["operator"])["statusCode"] == 400


def test_display_names_follow_the_projects_order_in_the_card_and_the_search(
    project: Any, admin_target: Any, tokens: dict[str, str], lambda_context: Any
) -> None:
    # Given clients named in the usual variables
    def add(phone: str, variables: dict[str, str]) -> str:
        client = admin.add_client(
            admin_target, project_id="proj-a", channel="telephony", phone=phone, variables=variables
        )
        return client.id

    fio = add("79001230001", {"ФИО": "Звонарёва Ольга", "name": "lead-17"})
    imya = add("79001230002", {"Имя": "Пётр", "Город": "Тула"})
    split = add("79001230003", {"first_name": "Anna", "last_name": "Smirnova"})

    def names(text: str) -> dict[str, str | None]:
        answer = call(lambda_context, "GET", "/v1/clients", query={"q": text}, token=tokens["operator"])
        return {c["id"]: c["display_name"] for c in answer_json(answer)["clients"]}

    # Then the card and the search answer the name by the default order, and a name search looks in those variables
    card = read_api_handler(
        api_event("GET", "/v1/clients/{client_id}", f"/v1/clients/{fio}", path_params={"client_id": fio},
                  token=tokens["operator"]),
        lambda_context,
    )  # fmt: skip
    assert answer_json(card)["display_name"] == "lead-17"  # `name` comes first by default
    assert names("пётр") == {imya: "Пётр"}
    assert names("smirnova") == {split: "Anna Smirnova"}
    assert names("тула") == {}  # a city is not a name
    # When the admin puts ФИО first
    order = {"name_variables": ["ФИО", "Имя", "first_name+last_name", "name"]}
    saved = call(lambda_context, "PUT", "/v1/settings", body=order, token=tokens["admin"])
    assert saved["statusCode"] == 200 and answer_json(saved)["name_variables"] == order["name_variables"]
    # Then the same client is named by its ФИО
    assert names("79001230001") == {fio: "Звонарёва Ольга"}
    # and an order that names nothing is a 400 naming the field
    bad = call(lambda_context, "PUT", "/v1/settings", body={"name_variables": []}, token=tokens["admin"])
    assert bad["statusCode"] == 400 and "name_variables" in bad["body"]


@pytest.mark.parametrize(
    ("method", "resource", "path", "params", "body", "status"),
    [
        ("PUT", "/v1/employees/{employee_id}", "/v1/employees/a%23b", {"employee_id": "a#b"}, {"name": "N"}, 400),
        ("DELETE", "/v1/employees/{employee_id}", "/v1/employees/x", {"employee_id": "x" * 2000}, None, 404),
        ("DELETE", "/v1/tokens/{token_id}", "/v1/tokens/x", {"token_id": "x" * 2000}, None, 404),
        ("PUT", "/v1/settings", None, None, {"auth_mode": None, "messengers": None}, 200),
    ],
)
def test_odd_ids_and_nulls_are_answered_never_a_500(
    method: str,
    resource: str,
    path: str | None,
    params: dict[str, str] | None,
    body: Any,
    status: int,
    tokens: dict[str, str],
    lambda_context: Any,
) -> None:
    answer = call(lambda_context, method, resource, path, path_params=params, body=body, token=tokens["admin"])
    assert answer["statusCode"] == status, answer["body"]


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", None, {"GetParametersByPath": 1}),
        ("PUT", {"group_method": "g"}, {"GetParametersByPath": 1}),
        ("PUT", {"secret": "pbx-secret-from-console-9"}, {"GetParametersByPath": 1, "PutParameter": 2}),
    ],
    ids=["view", "change", "new secret"],
)
def test_settings_read_ssm_once_a_request(
    method: str, body: Any, expected: dict[str, int], tokens: dict[str, str], lambda_context: Any, monkeypatch: Any
) -> None:
    # Given an admin Lambda whose SSM calls are counted (its warm cache emptied: the admin reads SSM itself anyway)
    seen: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "ssm":
            seen[operation] += 1
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    ssm_provider().clear_cache()
    # When the admin views or changes the settings
    answer = call(lambda_context, method, "/v1/settings", body=body, token=tokens["admin"])
    # Then SSM is read with one request, and the secret written only when it changed
    assert answer["statusCode"] == 200, answer["body"]
    assert dict(seen) == expected
