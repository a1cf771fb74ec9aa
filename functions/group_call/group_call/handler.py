"""POST /v1/calls/group: the PBX rings a group (queue), then the client."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.domain.requests import GroupCallRequest
from iptelefon.entry import dependencies
from iptelefon.entry.api import create_resolver, json_body, request_project, resolve_with_token
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.snapstart import prime_before_snapshot
from iptelefon.usecases import calls

app = create_resolver()
prime_before_snapshot(dependencies.call_deps, dependencies.auth_deps)  # SnapStart only (the snapshot)


@app.post("/v1/calls/group")
def group_call(body: GroupCallRequest) -> Response[dict[str, Any]]:
    project = request_project(app, "bot")
    started = calls.start_group_call(
        dependencies.call_deps(), app.lambda_context, project, body, idempotency_key=_idempotency_key()
    )
    return json_body(started, status=202)


def _idempotency_key() -> str | None:
    return app.current_event.headers.get("idempotency-key")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context):  # storage retries end inside the invocation
        return resolve_with_token(app, event, context)
