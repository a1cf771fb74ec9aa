"""Tenancy: a project's token or webhook secret never reaches another project's data (moto in-process, real handlers).

Two projects, each with a client, a completed call, a bot call attempt and a call ringing now. Every /v1 route is tried
with project A's token on project B's resources and with B's token on A's: another project's resource is a 404,
exactly like one that does not exist, a search and the calls ringing now find nothing of the other's, a call never
reaches the other project's PBX. The webhook with one project's secret never touches the other project's clients,
calls or attempts.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from devstack.template import Template
from employee_call.handler import lambda_handler as employee_call_handler
from group_call.handler import lambda_handler as group_call_handler
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

SECRET_B = "pbx-secret-of-project-b"  # other_project, tests/fixtures/projects.py


@dataclass
class Tenant:
    name: str
    project_id: str
    token: str
    secret: str
    server_url: str
    phone: str
    client_id: str = ""
    call_key: str = ""
    attempt_id: str = ""
    live_key: str = ""
    recording_id: str = ""


def webhook(secret: str, form: dict[str, str], context: Any) -> dict[str, Any]:
    event = api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{secret}",
        body=urllib.parse.urlencode(form),
        path_params={"secret": secret},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return webhook_handler(event, context)


def read(
    token: str, resource: str, path: str, context: Any, *, params: dict[str, str] | None = None, **query: str
) -> dict[str, Any]:
    event = api_event("GET", resource, path, path_params=params, query=query or None, token=token)
    return read_api_handler(event, context)


def call(
    handler: Callable[..., dict[str, Any]],
    resource: str,
    path: str,
    body: dict[str, Any],
    token: str,
    context: Any,
    *,
    params: dict[str, str] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    event = api_event("POST", resource, path, path_params=params, body=body, headers=headers, token=token)
    return handler(event, context)


@pytest.fixture
def tenants(project: Any, other_project: Any, fake_pbx: Any, lambda_context: Any) -> dict[str, Tenant]:
    """A (telephony clients) and B (a WhatsApp project), each with a client, a call, a bot call attempt and a call
    ringing now (a ZEON live event)."""
    a = Tenant("A", "proj-a", project.token, PBX_SECRET, "https://pbx.test/b3/api/v2/start.php", "79001110001")
    b = Tenant("B", "proj-b", other_project.token, SECRET_B, "https://pbx-b.test/api/v2/start.php", "79002220002")
    for tenant in (a, b):
        form = {"id": f"call-{tenant.name}", "calltype": "IN", "src": tenant.phone, "exten": "346", "talktime": "65"}
        form["link"] = f"https://pbx.test/records/call-{tenant.name}.mp3"
        recorded = answer_json(webhook(tenant.secret, form, lambda_context))
        tenant.client_id, tenant.call_key = recorded["client_id"], recorded["call_key"]
        tenant.recording_id = answer_json(
            read(tenant.token, "/v1/calls/{call_id}", f"/v1/calls/{tenant.call_key}", lambda_context,
                 params={"call_id": tenant.call_key})
        )["recording"]["url"].rsplit("/", 1)[1]  # fmt: skip
        body = {"client_phone": tenant.phone, "short_employee_phone": "346"}
        started = call(
            employee_call_handler, "/v1/calls/employee", "/v1/calls/employee", body, tenant.token, lambda_context
        )
        assert started["statusCode"] == 202, started["body"]
        tenant.attempt_id = answer_json(started)["attempt_id"]
        ringing = {"cmd": "event", "call-status": "RINGING", "callid": f"live-{tenant.name}", "phone": tenant.phone}
        tenant.live_key = answer_json(webhook(tenant.secret, ringing, lambda_context))["call_key"]
    fake_pbx.requests.clear()
    return {"A": a, "B": b}


DIRECTIONS = {"A's token on B's data": ("A", "B"), "B's token on A's data": ("B", "A")}


def _pair(tenants: dict[str, Tenant], direction: str) -> tuple[Tenant, Tenant]:
    viewer, owner = DIRECTIONS[direction]
    return tenants[viewer], tenants[owner]


def _owner_data_absent(answer: dict[str, Any], owner: Tenant) -> None:
    owned = (owner.client_id, owner.call_key, owner.attempt_id, owner.live_key, owner.recording_id, owner.phone)
    for value in (*owned, owner.project_id):
        assert value not in answer["body"], f"{value} of project {owner.name} in {answer['body']}"


# -- the matrix: every /v1 route that names a resource, with the other project's id --------------------------------
# route -> (which id of the owner it names, the request with that id)
FOREIGN_ID_ROUTES: dict[str, tuple[str, Callable[[str, str, Any], dict[str, Any]]]] = {
    "GET /v1/clients/{client_id}": ("client_id", lambda token, id_, ctx: read(
        token, "/v1/clients/{client_id}", f"/v1/clients/{id_}", ctx, params={"client_id": id_}
    )),
    "GET /v1/calls?client_id=": ("client_id", lambda token, id_, ctx: read(
        token, "/v1/calls", "/v1/calls", ctx, client_id=id_
    )),
    "GET /v1/calls/{call_id} (a completed call)": ("call_key", lambda token, id_, ctx: read(
        token, "/v1/calls/{call_id}", f"/v1/calls/{id_}", ctx, params={"call_id": id_}
    )),
    "GET /v1/calls/{call_id} (a bot call attempt)": ("attempt_id", lambda token, id_, ctx: read(
        token, "/v1/calls/{call_id}", f"/v1/calls/{id_}", ctx, params={"call_id": id_}
    )),
    "GET /v1/calls/{call_id} (a call ringing now)": ("live_key", lambda token, id_, ctx: read(
        token, "/v1/calls/{call_id}", f"/v1/calls/{id_}", ctx, params={"call_id": id_}
    )),
    "GET /v1/recordings/{recording_id}": ("recording_id", lambda token, id_, ctx: read(
        token, "/v1/recordings/{recording_id}", f"/v1/recordings/{id_}", ctx, params={"recording_id": id_}
    )),
    "POST /v1/clients/{client_id}/call": ("client_id", lambda token, id_, ctx: call(
        employee_call_handler, "/v1/clients/{client_id}/call", f"/v1/clients/{id_}/call", {"employee_id": "346"},
        token, ctx, params={"client_id": id_},
    )),
}  # fmt: skip


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("route", list(FOREIGN_ID_ROUTES))
def test_another_projects_resource_is_404_like_a_missing_one(
    route: str, direction: str, tenants: dict[str, Tenant], fake_pbx: Any, lambda_context: Any
) -> None:
    viewer, owner = _pair(tenants, direction)
    attribute, request = FOREIGN_ID_ROUTES[route]
    foreign_id = getattr(owner, attribute)
    missing_id = "f" * len(foreign_id)
    # When the viewer's token names the owner's resource, and (for comparison) an id that exists nowhere
    foreign = request(viewer.token, foreign_id, lambda_context)
    missing = request(viewer.token, missing_id, lambda_context)
    # Then 404 not_found, the very answer a missing id gets (the id it named aside), and no PBX request
    assert (foreign["statusCode"], answer_json(foreign)["error"]) == (404, "not_found"), foreign["body"]
    assert missing["statusCode"] == 404
    assert foreign["body"].replace(foreign_id, "<id>") == missing["body"].replace(missing_id, "<id>")
    _owner_data_absent({"body": foreign["body"].replace(foreign_id, "<id>")}, owner)
    assert fake_pbx.requests == []


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_the_calls_ringing_now_are_the_callers_projects_only(
    direction: str, tenants: dict[str, Tenant], lambda_context: Any
) -> None:
    viewer, owner = _pair(tenants, direction)
    # When the viewer lists the calls ringing or in talk now
    answer = read(viewer.token, "/v1/calls/live", "/v1/calls/live", lambda_context)
    # Then its own call, nothing of the owner's
    assert answer["statusCode"] == 200
    assert [c["call_key"] for c in answer_json(answer)["calls"]] == [viewer.live_key]
    _owner_data_absent(answer, owner)


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_a_search_by_a_phone_of_another_project_finds_nothing(
    direction: str, tenants: dict[str, Tenant], lambda_context: Any
) -> None:
    viewer, owner = _pair(tenants, direction)
    # When the viewer searches the phone that only the owner's client has
    answer = read(viewer.token, "/v1/clients", "/v1/clients", lambda_context, phone=owner.phone)
    # Then an empty list; while the owner finds its client by it
    assert answer["statusCode"] == 200
    assert answer_json(answer)["clients"] == []
    _owner_data_absent({"body": answer["body"].replace(owner.phone, "")}, owner)
    own = read(owner.token, "/v1/clients", "/v1/clients", lambda_context, phone=owner.phone)
    assert [c["id"] for c in answer_json(own)["clients"]] == [owner.client_id]


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize(
    ("handler", "resource", "body"),
    [
        (employee_call_handler, "/v1/calls/employee", {"short_employee_phone": "346"}),
        (group_call_handler, "/v1/calls/group", {"group_id": "3"}),
    ],
    ids=["POST /v1/calls/employee", "POST /v1/calls/group"],
)
def test_a_bot_call_to_another_projects_client_goes_to_the_callers_pbx_only(
    handler: Any,
    resource: str,
    body: dict[str, str],
    direction: str,
    tenants: dict[str, Tenant],
    fake_pbx: Any,
    lambda_context: Any,
) -> None:
    viewer, owner = _pair(tenants, direction)
    # When the viewer's bot calls the phone of the owner's client
    answer = call(handler, resource, resource, {**body, "client_phone": owner.phone}, viewer.token, lambda_context)
    # Then exactly one request, to the viewer's PBX, signed with the viewer's secret; nothing of the owner's comes back
    assert answer["statusCode"] == 202, answer["body"]
    (request,) = fake_pbx.requests
    assert str(request.url) == viewer.server_url
    head, _, signature = request.content.decode().rpartition("&hash=")
    assert signature == hashlib.md5((head + viewer.secret).encode()).hexdigest()
    assert owner.secret not in request.content.decode()
    _owner_data_absent({"body": answer["body"].replace(owner.phone, "")}, owner)


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_an_idempotency_key_of_another_project_starts_a_new_call(
    direction: str, tenants: dict[str, Tenant], fake_pbx: Any, lambda_context: Any
) -> None:
    viewer, owner = _pair(tenants, direction)
    body = {"client_phone": "79003334455", "short_employee_phone": "346"}
    # Given the owner's bot started a call with a key
    first = call(employee_call_handler, "/v1/calls/employee", "/v1/calls/employee", body, owner.token, lambda_context,
                 key="order-1")  # fmt: skip
    # When the viewer's bot sends the same request with the same key
    second = call(employee_call_handler, "/v1/calls/employee", "/v1/calls/employee", body, viewer.token,
                  lambda_context, key="order-1")  # fmt: skip
    # Then it is the viewer's own new call, on the viewer's PBX, not the owner's cached answer
    assert first["statusCode"] == second["statusCode"] == 202
    assert answer_json(first)["attempt_id"] != answer_json(second)["attempt_id"]
    assert [str(r.url) for r in fake_pbx.requests] == [owner.server_url, viewer.server_url]
    attempt = read(viewer.token, "/v1/calls/{call_id}", f"/v1/calls/{answer_json(first)['attempt_id']}", lambda_context,
                   params={"call_id": answer_json(first)["attempt_id"]})  # fmt: skip
    assert attempt["statusCode"] == 404


def test_the_matrix_covers_every_v1_route() -> None:
    v1 = {f"{r.method} {r.path}" for r in Template().routes() if r.path.startswith("/v1/")}
    covered = {name.split(" (")[0].replace("?client_id=", "") for name in FOREIGN_ID_ROUTES}
    covered |= {"GET /v1/clients", "GET /v1/calls/live", "POST /v1/calls/employee", "POST /v1/calls/group"}  # below
    covered |= {f"{r[0]} {r[1]}" for r in FOREIGN_ADMIN_IDS}  # the admin matrix below
    covered |= {"GET /v1/me", "GET /v1/settings", "PUT /v1/settings", "POST /v1/settings/check", "GET /v1/employees"}
    covered |= {"GET /v1/pbx/points"}  # no id: the token's own project's PBX
    covered |= {"POST /v1/settings/webhook-token", "GET /v1/tokens"}  # no id: the token's own project (tested below)
    covered |= {"PUT /v1/employees/{employee_id}"}  # no foreign id: it names an employee of the token's own project
    covered |= {"POST /v1/endpoints", "GET /v1/endpoints"}  # no id: the token's own project (tested below)
    covered |= {f"{r[0]} {r[1]}" for r in FOREIGN_EVENT_IDS}  # the call events matrix below
    covered |= {"GET /v1/stats", "GET /v1/callbacks", "POST /v1/callbacks/{task_id}/close"}  # missed calls, below
    assert covered == v1


# -- the admin API: another project's employee or token is a 404, and stays as it was ------------------------------
FOREIGN_ADMIN_IDS = [
    ("DELETE", "/v1/employees/{employee_id}", "employee_id", "employee"),
    ("POST", "/v1/employees/{employee_id}/operator-token", "employee_id", "employee"),
    ("DELETE", "/v1/tokens/{token_id}", "token_id", "token"),
]


@pytest.mark.parametrize("route", FOREIGN_ADMIN_IDS, ids=lambda r: f"{r[0]} {r[1]}")
def test_an_admin_cannot_reach_another_projects_employees_or_tokens(
    route: tuple[str, str, str, str], project: Any, other_project: Any, admin_target: Any, lambda_context: Any
) -> None:
    from admin_api.handler import lambda_handler as admin_handler
    from iptel_admin import admin
    from iptelefon.data.employees import EmployeeStore
    from iptelefon.data.gateway import get_storage
    from iptelefon.data.tokens import TokenStore
    from iptelefon.entry.dependencies import auth_deps
    from iptelefon.usecases.auth import authenticate, issue_token

    # Given an admin of A, and B's employee and bot token
    admin_a = issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]
    admin.set_employee(admin_target, project_id="proj-b", employee_id="b1", name="B", method="app", short_number=None)
    foreign = {"employee": "b1", "token": other_project.token_id}
    method, resource, param, kind = route
    path = resource.replace("{" + param + "}", foreign[kind])
    # When A's admin names them
    answer = admin_handler(api_event(method, resource, path, path_params={param: foreign[kind]}, token=admin_a),
                           lambda_context)  # fmt: skip
    # Then it is a 404, and B's employee and token are as they were
    assert answer["statusCode"] == 404, answer["body"]
    assert EmployeeStore(get_storage()).get_employee("proj-b", "b1") is not None
    assert authenticate(auth_deps(), f"Bearer {other_project.token}").project.id == "proj-b"


# -- call events (issue 22): another project's endpoint or event is a 404, and stays as it was ------------------------
FOREIGN_EVENT_IDS = [
    ("DELETE", "/v1/endpoints/{endpoint_id}", "endpoint_id", None),
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret", "endpoint_id", {"grace_hours": 0}),
    ("GET", "/v1/endpoints/{endpoint_id}/deliveries", "endpoint_id", None),
    ("POST", "/v1/endpoints/{endpoint_id}/replay", "endpoint_id", {"since": "2024-01-01T00:00:00+00:00"}),
    ("POST", "/v1/events/{event_id}/replay", "event_id", None),
]


@pytest.mark.parametrize("route", FOREIGN_EVENT_IDS, ids=lambda r: f"{r[0]} {r[1]}")
def test_an_admin_cannot_reach_another_projects_endpoints_or_events(
    route: tuple[str, str, str, Any], project: Any, other_project: Any, lambda_context: Any
) -> None:
    from admin_api.handler import lambda_handler as admin_handler
    from iptelefon.data.call_events import CallEventStore
    from iptelefon.data.gateway import get_storage
    from iptelefon.data.tokens import TokenStore
    from iptelefon.usecases.auth import issue_token
    from webhook.handler import lambda_handler as webhook_handler

    # Given admins of A and B, B's endpoint and one of B's call events
    admin_a = issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]
    admin_b = issue_token(TokenStore(get_storage()), "proj-b", role="admin")[1]
    made = admin_handler(
        api_event("POST", "/v1/endpoints", "/v1/endpoints", body={"url": "https://b.example.com/h"}, token=admin_b),
        lambda_context,
    )
    endpoint_b = answer_json(made)
    webhook_handler(webhook_event("pbx-secret-of-project-b", {"id": "b-1", "calltype": "IN", "src": "79004443322"}),
                    lambda_context)  # fmt: skip
    (event_b,) = CallEventStore(get_storage()).unrelayed(datetime.now(UTC) + timedelta(seconds=1))
    foreign = {"endpoint_id": endpoint_b["endpoint_id"], "event_id": event_b.event_id}
    method, resource, param, body = route
    path = resource.replace("{" + param + "}", foreign[param])
    # When A's admin names them
    answer = admin_handler(api_event(method, resource, path, path_params={param: foreign[param]}, body=body,
                                     token=admin_a), lambda_context)  # fmt: skip
    # Then it is a 404, and B's endpoint is as it was (and A's listing never shows it)
    assert answer["statusCode"] == 404, answer["body"]
    (listed,) = answer_json(admin_handler(api_event("GET", "/v1/endpoints", "/v1/endpoints", token=admin_b),
                                          lambda_context))["endpoints"]  # fmt: skip
    assert (listed["endpoint_id"], listed["enabled"]) == (foreign["endpoint_id"], True)
    mine = admin_handler(api_event("GET", "/v1/endpoints", "/v1/endpoints", token=admin_a), lambda_context)
    assert answer_json(mine)["endpoints"] == []


def test_missed_calls_and_statistics_are_each_projects_own(
    project: Any, other_project: Any, lambda_context: Any
) -> None:
    from admin_api.handler import lambda_handler as admin_handler
    from iptelefon.data.gateway import get_storage
    from iptelefon.data.tokens import TokenStore
    from iptelefon.usecases.auth import issue_token
    from webhook.handler import lambda_handler as webhook_handler

    # Given a missed call in project B (a callback task there) and an admin of each project
    missed = {"id": "b-missed", "calltype": "IN", "client": "79004443322", "exten": "346", "disposition": "BUSY"}
    event = api_event("POST", "/iptelefon_webhook/{secret}", "/iptelefon_webhook/pbx-secret-of-project-b",
                      body=missed, path_params={"secret": "pbx-secret-of-project-b"})  # fmt: skip
    assert webhook_handler(event, lambda_context)["statusCode"] == 200
    admin_a = issue_token(TokenStore(get_storage()), "proj-a", role="admin")[1]
    admin_b = issue_token(TokenStore(get_storage()), "proj-b", role="admin")[1]

    def ask(method: str, resource: str, token: str, path: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return admin_handler(api_event(method, resource, path or resource, token=token, **kwargs), lambda_context)  # type: ignore[no-any-return]

    (task,) = answer_json(ask("GET", "/v1/callbacks", admin_b))["tasks"]
    # When A's admin lists, reads the statistics and closes B's task by its id
    assert answer_json(ask("GET", "/v1/callbacks", admin_a))["tasks"] == []
    from datetime import date, timedelta

    day = date.fromisoformat(task["opened_at"][:10])  # UTC; the project's local day is this or a neighbour
    period = {"from": str(day - timedelta(days=1)), "to": str(day + timedelta(days=1))}
    stats_a = answer_json(ask("GET", "/v1/stats", admin_a, query=period))
    close = ask("POST", "/v1/callbacks/{task_id}/close", admin_a, f"/v1/callbacks/{task['task_id']}/close",
                path_params={"task_id": task["task_id"]}, body={"reason": "чужая"})  # fmt: skip
    # Then A sees nothing of B's, the close is a 404, and B's task is still open
    assert stats_a["total"]["calls_in"] == 0 and stats_a["employees"] == []
    assert close["statusCode"] == 404, close["body"]
    assert [t["task_id"] for t in answer_json(ask("GET", "/v1/callbacks", admin_b))["tasks"]] == [task["task_id"]]


def test_an_admins_token_list_and_new_webhook_url_are_its_own_projects(
    project: Any, other_project: Any, lambda_context: Any
) -> None:
    from admin_api.handler import lambda_handler as admin_handler
    from iptelefon.data.gateway import get_storage
    from iptelefon.data.projects import ProjectStore
    from iptelefon.data.tokens import TokenStore
    from iptelefon.usecases.auth import issue_token

    # Given an admin of A, and B's bot token
    admin_id, admin_a = issue_token(TokenStore(get_storage()), "proj-a", role="admin")
    b_before = ProjectStore(get_storage()).get_project("proj-b")
    # When A's admin lists the tokens and takes a new random webhook URL
    listed = answer_json(admin_handler(api_event("GET", "/v1/tokens", "/v1/tokens", token=admin_a), lambda_context))[
        "tokens"
    ]
    issued = admin_handler(
        api_event(
            "POST", "/v1/settings/webhook-token", "/v1/settings/webhook-token", body={"grace_hours": 0}, token=admin_a
        ),
        lambda_context,
    )
    # Then only A's tokens are listed (no secret, no hash), and B's webhook lookup is as it was
    ids = {t["token_id"] for t in listed}
    assert admin_id in ids and project.token_id in ids and other_project.token_id not in ids
    assert all(set(t) == {"token_id", "role", "employee_id", "created_at"} for t in listed)
    assert issued["statusCode"] == 201, issued["body"]
    assert ProjectStore(get_storage()).get_project("proj-b") == b_before


# -- the webhook: one project's secret, the other project's clients ---------------------------------------------
def _snapshot(tenant: Tenant, context: Any) -> dict[str, Any]:
    """Everything the read API shows of a tenant's client, calls, attempt and phone match."""
    card = read(tenant.token, "/v1/clients/{client_id}", f"/v1/clients/{tenant.client_id}", context,
                params={"client_id": tenant.client_id})  # fmt: skip
    calls = read(tenant.token, "/v1/calls", "/v1/calls", context, client_id=tenant.client_id)
    attempt = read(tenant.token, "/v1/calls/{call_id}", f"/v1/calls/{tenant.attempt_id}", context,
                   params={"call_id": tenant.attempt_id})  # fmt: skip
    match = read(tenant.token, "/v1/clients", "/v1/clients", context, phone=tenant.phone)
    return {
        name: answer_json(a) for name, a in (("card", card), ("calls", calls), ("attempt", attempt), ("match", match))
    }


@pytest.mark.parametrize("direction", ["B's secret, A's client", "A's secret, B's client"])
def test_a_webhook_never_touches_the_other_projects_client_with_the_same_phone(
    direction: str, tenants: dict[str, Tenant], lambda_context: Any
) -> None:
    sender, other = (tenants["B"], tenants["A"]) if direction.startswith("B") else (tenants["A"], tenants["B"])
    before = _snapshot(other, lambda_context)
    # When the sender's PBX reports calls with the other project's client phone: a new call, with a recording, and
    # the completion of an outgoing call under the PBX call id of the other project's pending attempt ("pbx-1")
    forms = [
        {"id": "x-1", "calltype": "IN", "src": other.phone, "talktime": "30", "link": "https://pbx.example/x-1.mp3"},
        {"id": "pbx-1", "calltype": "OUT", "dst": other.phone, "exten": "346", "talktime": "12"},
        {"id": other.call_key, "calltype": "IN", "src": other.phone, "link": "https://pbx.example/again.mp3"},
    ]
    answers = [answer_json(webhook(sender.secret, form, lambda_context)) for form in forms]
    # Then each is a new call of the sender's own client (the same call id in two projects is two calls)
    assert [a["duplicate"] for a in answers] == [False, False, False]
    assert {a["client_id"] for a in answers} != {other.client_id}
    assert other.client_id not in {a["client_id"] for a in answers}
    # And the other project's client, calls, attempt and phone match are exactly as before
    assert _snapshot(other, lambda_context) == before
    assert before["attempt"]["status"] == "initiated"


@pytest.mark.parametrize(
    "near_miss",
    [PBX_SECRET + "x", PBX_SECRET[:-1], PBX_SECRET.upper(), f" {PBX_SECRET}", SECRET_B + PBX_SECRET, "proj-a"],
)
def test_a_near_miss_of_a_secret_is_the_unknown_secret_404(
    near_miss: str, tenants: dict[str, Tenant], lambda_context: Any
) -> None:
    before = _snapshot(tenants["A"], lambda_context)
    form = {"id": "nm-1", "calltype": "IN", "src": tenants["A"].phone, "talktime": "30"}
    answer = webhook(near_miss, form, lambda_context)
    assert answer["statusCode"] == 404
    assert answer_json(answer) == {"error": "not_found", "message": "unknown webhook secret"}
    assert _snapshot(tenants["A"], lambda_context) == before
