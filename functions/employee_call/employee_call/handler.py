"""POST /v1/calls/employee and POST /v1/clients/{client_id}/call: the PBX rings an employee, then the client."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.domain.requests import ClientCardCallRequest, EmployeeCallRequest
from iptelefon.entry import dependencies
from iptelefon.entry.api import create_resolver, json_body, request_caller, request_project, resolve_with_token
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.snapstart import prime_before_snapshot
from iptelefon.usecases import calls

app = create_resolver()
prime_before_snapshot(dependencies.call_deps, dependencies.auth_deps)  # SnapStart only (the snapshot)


@app.post("/v1/calls/employee")
def employee_call(body: EmployeeCallRequest) -> Response[dict[str, Any]]:
    project = request_project(app, "bot")
    started = calls.start_employee_call(
        dependencies.call_deps(), app.lambda_context, project, body, idempotency_key=_idempotency_key()
    )
    return json_body(started, status=202)


@app.post("/v1/clients/<client_id>/call")
def client_card_call(client_id: str, body: ClientCardCallRequest) -> Response[dict[str, Any]]:
    caller = request_caller(app)
    project = caller.require("bot", "operator")
    status, answer = calls.call_from_client_card(
        dependencies.call_deps(),
        app.lambda_context,
        project,
        client_id,
        calls.card_call_as(caller, body),
        idempotency_key=_idempotency_key(),
    )
    return json_body(answer, status=status)


def _idempotency_key() -> str | None:
    return app.current_event.headers.get("idempotency-key")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context):  # storage retries end inside the invocation
        return resolve_with_token(app, event, context)
