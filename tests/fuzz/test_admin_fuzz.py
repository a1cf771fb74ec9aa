"""The admin API with an admin token and generated input, in-process (moto): never a 5xx, always the error shape.

The route fuzz (through the local stack) sends the bot token, which the admin routes refuse after validating the
body; here the logic behind them gets the generated settings, employees and ids too.
"""

from __future__ import annotations

from typing import Any

from fuzzing import FUZZ_EXAMPLES, fuzz_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import answer_json, api_event

from admin_api.handler import lambda_handler as admin_handler
from iptelefon.data.gateway import get_storage
from iptelefon.data.tokens import TokenStore
from iptelefon.usecases.auth import issue_token

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
# Values that pass validation often enough to reach the logic behind it, mixed with anything JSON can hold.
SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "server_url": st.sampled_from(["https://pbx.test/b3/api/v2/start.php", "http://127.0.0.1:1/x", "ftp://x"])
        | JSON,
        "secret": st.sampled_from(["pbx-secret-a1b2c3d4e5f6", "pbx-secret-new-0001", "a/b?c#d%e"]) | JSON,
        "auth_mode": st.sampled_from(["hash", "bearer", None, "plain"]),
        "employee_method": st.text(max_size=70) | st.none(),
        "param_names": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3) | JSON,
        "messengers": st.lists(st.sampled_from(["whatsapp", "telegram", "icq"]), max_size=3) | st.none(),
        "allowed_country_codes": st.lists(st.integers(), max_size=3) | st.none(),
        "allowed_number_types": st.lists(st.sampled_from(["mobile", "toll_free", "fax"]), max_size=3),
        "working_hours": st.fixed_dictionaries(
            {},
            optional={
                "time_zone": st.sampled_from(["Asia/Vladivostok", "Mars/Base", "", "UTC", "../etc"]) | JSON,
                "days": st.lists(st.integers(-1, 9), max_size=8) | JSON,
                "start": st.sampled_from(["09:00", "24:00", "9", "18:00"]) | JSON,
                "end": st.sampled_from(["18:00", "24:00", "08:00"]) | JSON,
            },
        )
        | JSON,
        "callback_sla_minutes": st.integers(-5, 20_000) | JSON,
        "callback_default_employee": st.sampled_from(["346", "", "x"]) | JSON,
        "missed_call_text": st.text(max_size=1100) | JSON,
        "other": JSON,
    },
)
EMPLOYEES = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=210)},
    optional={
        "call_method": st.sampled_from(["disabled", "app", "api", "sip", None]),
        "short_number": st.sampled_from(["346", "٣٤٦", "1", "123456789"]) | st.none() | st.text(max_size=10),
    },
)
IDS = st.text(max_size=300) | st.sampled_from(["346", "soft", "off", "nobody"])


def check(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] < 500, answer
    body = answer_json(answer)
    assert isinstance(body, dict), answer
    if answer["statusCode"] >= 400:
        assert body.get("error") and body.get("message"), answer


# (method, resource, the path parameter the generated id goes into)
ROUTES = [
    ("PUT", "/v1/settings", None),
    ("PUT", "/v1/employees/{employee_id}", "employee_id"),
    ("DELETE", "/v1/employees/{employee_id}", "employee_id"),
    ("POST", "/v1/employees/{employee_id}/operator-token", "employee_id"),
    ("DELETE", "/v1/tokens/{token_id}", "token_id"),
    ("POST", "/v1/endpoints", None),
    ("DELETE", "/v1/endpoints/{endpoint_id}", "endpoint_id"),
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret", "endpoint_id"),
    ("GET", "/v1/endpoints/{endpoint_id}/deliveries", "endpoint_id"),
    ("POST", "/v1/endpoints/{endpoint_id}/replay", "endpoint_id"),
    ("POST", "/v1/events/{event_id}/replay", "event_id"),
]


def test_admin_routes_answer_every_generated_request(project: Any, lambda_context: Any, fake_pbx: Any) -> None:
    token = issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]
    base = fuzz_settings(max_examples=FUZZ_EXAMPLES * 4)
    in_process = settings(
        base, suppress_health_check=[*base.suppress_health_check, HealthCheck.function_scoped_fixture]
    )

    @in_process
    @given(route=st.sampled_from(ROUTES), body=SETTINGS | EMPLOYEES, some_id=IDS)
    def one_request(route: tuple[str, str, str | None], body: dict[str, Any], some_id: str) -> None:
        method, resource, param = route
        params = {param: some_id} if param else None
        event = api_event(method, resource, resource, body=body, path_params=params, token=token)
        check(admin_handler(event, lambda_context))

    one_request()


STATS_QUERIES = st.fixed_dictionaries(
    {},
    optional={
        "from": st.sampled_from(["2026-12-01", "2025-01-01", "2026-02-30", ""]) | st.text(max_size=12),
        "to": st.sampled_from(["2026-12-31", "2026-11-01", "9999-12-31"]) | st.text(max_size=12),
        "format": st.sampled_from(["csv", "json", "xml"]) | st.text(max_size=5),
        "state": st.sampled_from(["open", "closed"]) | st.text(max_size=5),
    },
)


def test_missed_call_routes_answer_every_generated_request(project: Any, lambda_context: Any) -> None:
    # GET /v1/stats, GET /v1/callbacks and POST /v1/callbacks/{task_id}/close as an admin and as an operator
    tokens = [
        issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1],
        issue_token(TokenStore(get_storage()), "proj-a", role="operator", employee_id="346")[1],
    ]
    base = fuzz_settings(max_examples=FUZZ_EXAMPLES * 2)
    in_process = settings(
        base, suppress_health_check=[*base.suppress_health_check, HealthCheck.function_scoped_fixture]
    )

    @in_process
    @given(
        which=st.sampled_from(["stats", "list", "close"]),
        query=STATS_QUERIES,
        body=st.fixed_dictionaries({}, optional={"reason": st.text(max_size=600) | JSON, "other": JSON}) | JSON,
        some_id=IDS,
        token=st.sampled_from(tokens),
    )
    def one_request(which: str, query: dict[str, str], body: Any, some_id: str, token: str) -> None:
        if which == "close":
            resource, path = "/v1/callbacks/{task_id}/close", f"/v1/callbacks/{some_id}/close"
            event = api_event("POST", resource, path, body=body, path_params={"task_id": some_id}, token=token)
        else:
            resource = "/v1/stats" if which == "stats" else "/v1/callbacks"
            event = api_event("GET", resource, resource, query=query, token=token)
        answer = admin_handler(event, lambda_context)
        if which == "stats" and answer["statusCode"] == 200 and query.get("format") == "csv":
            assert answer["body"].startswith("period,"), answer
            return
        check(answer)

    one_request()
