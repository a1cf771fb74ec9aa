"""The admin API (the console's settings and employee screens) and GET /v1/me for every token.

Admin routes take only an admin token (an operator or bot token is a 403); every id is looked up in the token's own
project, so another project's employee is a 404 like one that does not exist.
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.domain.models import Project
from iptelefon.domain.requests import (
    CallbackCloseRequest,
    EmployeeUpdate,
    EndpointCreate,
    ReplaySince,
    SecretRotation,
    SettingsUpdate,
    WebhookTokenRequest,
)
from iptelefon.entry import dependencies
from iptelefon.entry.api import (
    SECURITY_HEADERS,
    api_base_url,
    create_resolver,
    json_body,
    request_caller,
    request_project,
    resolve_with_token,
)
from iptelefon.entry.dependencies import PbxProbe, admin_deps
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.snapstart import prime_before_snapshot
from iptelefon.usecases import admin, call_events, callbacks, calls, stats

app = create_resolver()
prime_before_snapshot(dependencies.admin_deps, dependencies.auth_deps)  # SnapStart only (the snapshot)


@app.get("/v1/me")
def me() -> Response[dict[str, Any]]:
    return json_body(admin.who_is(admin_deps(), request_caller(app)))


@app.get("/v1/settings")
def get_settings() -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(admin.settings_view(admin_deps(), project, api_base_url(app)))


@app.put("/v1/settings")
def put_settings(body: SettingsUpdate) -> Response[dict[str, Any]]:
    view = admin.update_settings(admin_deps(), request_project(app, "admin"), body, api_base_url(app))
    dependencies.forget_cached_pbx_settings()  # read again here at once; other Lambdas within their cache time
    return json_body(view)


@app.post("/v1/settings/webhook-token")
def new_webhook_token(body: WebhookTokenRequest) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    issued = admin.issue_webhook_url(admin_deps(), project, api_base_url(app), grace_hours=body.grace_hours)
    return json_body(issued, status=201)


@app.post("/v1/settings/check")
def check_settings() -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(admin.check_connection(project, _pbx_probe(project)))


@app.get("/v1/pbx/points")
def pbx_points() -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(admin.pbx_points(_pbx_probe(project)))


def _pbx_probe(project: Project) -> PbxProbe:
    # the PBX client and connection of the call use cases: the same timeouts and budget as a call
    deps = dependencies.call_deps()
    return PbxProbe(dependencies.pbx_client(), lambda: calls.pbx_connection(project, deps))


@app.get("/v1/employees")
def list_employees() -> Response[dict[str, Any]]:
    return json_body(admin.employees_view(admin_deps(), request_project(app, "admin")))


@app.put("/v1/employees/<employee_id>")
def put_employee(employee_id: str, body: EmployeeUpdate) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    employee = admin.put_employee(admin_deps(), project, employee_id, body)
    return json_body(employee.model_dump(mode="json"))


@app.delete("/v1/employees/<employee_id>")
def delete_employee(employee_id: str) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    admin.delete_employee(admin_deps(), project, employee_id)
    return json_body({"deleted": employee_id})


@app.post("/v1/employees/<employee_id>/operator-token")
def issue_operator_token(employee_id: str) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    issued = admin.issue_operator_token(admin_deps(), project, employee_id)
    return json_body(issued, status=201)


@app.get("/v1/tokens")
def list_tokens() -> Response[dict[str, Any]]:
    return json_body({"tokens": admin.list_tokens(admin_deps(), request_project(app, "admin"))})


@app.delete("/v1/tokens/<token_id>")
def revoke_token(token_id: str) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    admin.revoke_token(admin_deps(), project, token_id)
    return json_body({"revoked": token_id})


# -- call events: endpoints, their delivery log, replays ---------------------------------------------------------------
@app.post("/v1/endpoints")
def add_endpoint(body: EndpointCreate) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(call_events.add_endpoint(dependencies.event_deps(), project, body), status=201)


@app.get("/v1/endpoints")
def list_endpoints() -> Response[dict[str, Any]]:
    return json_body(call_events.endpoints_view(dependencies.event_deps(), request_project(app, "admin")))


@app.delete("/v1/endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id: str) -> Response[dict[str, Any]]:
    call_events.delete_endpoint(dependencies.event_deps(), request_project(app, "admin"), endpoint_id)
    return json_body({"deleted": endpoint_id})


@app.post("/v1/endpoints/<endpoint_id>/rotate-secret")
def rotate_endpoint_secret(endpoint_id: str, body: SecretRotation | None = None) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    grace = (body or SecretRotation()).grace_hours
    return json_body(call_events.rotate_secret(dependencies.event_deps(), project, endpoint_id, grace_hours=grace))


@app.get("/v1/endpoints/<endpoint_id>/deliveries")
def endpoint_deliveries(endpoint_id: str) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(call_events.deliveries_view(dependencies.event_deps(), project, endpoint_id))


@app.post("/v1/endpoints/<endpoint_id>/replay")
def replay_endpoint(endpoint_id: str, body: ReplaySince) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(call_events.replay_failed(dependencies.event_deps(), project, endpoint_id, body.since))


@app.post("/v1/events/<event_id>/replay")
def replay_event(event_id: str) -> Response[dict[str, Any]]:
    project = request_project(app, "admin")
    return json_body(call_events.replay_event(dependencies.event_deps(), project, event_id))


# -- missed calls and statistics (issue 23): operators see their own, admins everything ------------------------------
@app.get("/v1/stats")
def get_stats(
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response[Any]:
    caller = request_caller(app)
    caller.require("admin", "operator")
    period = stats.parse_period(first, last)
    report, reads = stats.report(dependencies.stats_deps(), caller, *period)
    logger.info("stats read", extra={"days": (period[1] - period[0]).days + 1, "storage_reads": reads})
    headers = {"X-Storage-Reads": str(reads)}
    if format == "csv":
        filename = f"stats-{period[0].isoformat()}-{period[1].isoformat()}.csv"
        return Response(
            status_code=200,
            content_type="text/csv; charset=utf-8",
            body=stats.as_csv(report),
            headers={**SECURITY_HEADERS, **headers, "Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return json_body(report, headers=headers)


@app.get("/v1/callbacks")
def list_callbacks(state: Annotated[str, Query(max_length=20)] = "open") -> Response[dict[str, Any]]:
    caller = request_caller(app)
    caller.require("admin", "operator")
    return json_body(callbacks.open_tasks(dependencies.callback_deps(), caller, state).model_dump(mode="json"))


@app.post("/v1/callbacks/<task_id>/close")
def close_callback(task_id: str, body: CallbackCloseRequest) -> Response[dict[str, Any]]:
    caller = request_caller(app)
    caller.require("admin", "operator")
    closed = callbacks.close_by_hand(dependencies.callback_deps(), caller, task_id, body.reason)
    return json_body(closed.model_dump(mode="json"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context):  # storage retries end inside the invocation
        return resolve_with_token(app, event, context)
