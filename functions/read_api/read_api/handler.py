"""GET /v1/clients, /v1/clients/{client_id}, /v1/calls, /v1/calls/live, /v1/calls/{call_id},
/v1/recordings/{recording_id}: what a bot or operator may read."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from iptelefon.domain.errors import InvalidInput
from iptelefon.domain.models import Role
from iptelefon.entry import dependencies
from iptelefon.entry.api import (
    create_resolver,
    json_body,
    json_body_tagged,
    request_caller,
    request_project,
    resolve_with_token,
)
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.snapstart import prime_before_snapshot
from iptelefon.usecases import reads
from iptelefon.usecases.recordings import recording_of_project

app = create_resolver()
prime_before_snapshot(dependencies.read_deps, dependencies.auth_deps)  # SnapStart only (the snapshot)
READERS: tuple[Role, ...] = ("bot", "operator", "admin")


@app.get("/v1/clients")
def list_clients(
    phone: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Response[dict[str, Any]]:
    """By phone (`phone=`: the clients a webhook would match), or the console's search (`q=`: a phone or a name)."""
    project = request_project(app, *READERS)
    if phone is not None:
        return answer(reads.clients_by_phone(dependencies.read_deps(), project, phone))
    if q is not None:
        return answer(reads.search_clients(dependencies.read_deps(), project, q))
    raise InvalidInput.for_field("phone", "give a phone (phone=...) or a search text (q=...)")


@app.get("/v1/clients/<client_id>")
def get_client(client_id: str) -> Response[dict[str, Any]]:
    return answer(reads.client_card(dependencies.read_deps(), request_project(app, *READERS), client_id))


@app.get("/v1/calls")
def list_calls(client_id: Annotated[str, Query(min_length=1, max_length=64)]) -> Response[dict[str, Any]]:
    return answer(reads.calls_of_client(dependencies.read_deps(), request_project(app, *READERS), client_id))


@app.get("/v1/calls/live")
def list_live_calls() -> Response[Any]:
    """The calls ringing or in talk now that the token sees (a literal path: API Gateway and the resolver match it
    before `/v1/calls/{call_id}`); with an ETag, `If-None-Match` answered 304 when nothing changed."""
    request_project(app, *READERS)
    seen = reads.live_calls_seen_by(dependencies.read_deps(), request_caller(app))
    return json_body_tagged(app, seen.model_dump(mode="json"))


@app.get("/v1/calls/<call_id>")
def get_call(call_id: str) -> Response[dict[str, Any]]:
    # The path's name stays: it takes a call's `call_key` or an attempt's `attempt_id`.
    return answer(reads.call_record(dependencies.read_deps(), request_project(app, *READERS), call_id))


@app.get("/v1/recordings/<recording_id>")
def get_recording(recording_id: str) -> Response[dict[str, Any]]:
    """A recording's state and a URL that plays it now (the console, when its stable link wants a signed-in user)."""
    project = request_project(app, *READERS)
    return answer(recording_of_project(dependencies.recording_link_deps(), project, recording_id))


def answer(model: BaseModel) -> Response[dict[str, Any]]:
    return json_body(model.model_dump(mode="json"))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context):  # storage retries end inside the invocation
        return resolve_with_token(app, event, context)
