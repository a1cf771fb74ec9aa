"""The one place where domain errors become HTTP answers, and the resolver every function uses.

Error body (contract section 3): {"error": "<code>", "message": "...", "details": [{"field", "message"}]}.

No input is a 500: the bearer token is checked before anything else (`resolve_with_token`: an anonymous caller learns
nothing about the body schema), a body that is not JSON is a 415, a JSON body nested too deep or with a number too long
to read is a 400, and only then does Powertools validate the body against the route's model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import partial
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.domain.errors import DomainError
from iptelefon.domain.models import Project, Role
from iptelefon.entry.dependencies import auth_deps
from iptelefon.platform.observability import logger
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.auth import Caller, authenticate

# Powertools' own serializer, but UTF-8 as it is: "Звонок", not "\u0417\u0432..." (answers are UTF-8 JSON).
serialize = partial(json.dumps, separators=(",", ":"), cls=Encoder, ensure_ascii=False)


# On every answer (issue 20): no cache keeps a token or the settings, no browser reads an answer as another type. Every
# answer is built here (`json_body`, `error_response`: the routes', the error map's and the token check's).
SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return json_body(body, status, headers)


def domain_error_response(error: DomainError) -> Response:
    headers = None if error.retry_after_seconds is None else {"Retry-After": str(error.retry_after_seconds)}
    if error.status_code >= 500:
        logger.warning("request failed", extra={"error": error.code, "status": error.status_code})
    return error_response(error.status_code, error.body(), headers)


# A JSON body is read with these bounds (json's own limits would raise RecursionError / ValueError: a 500).
MAX_JSON_NUMBER_DIGITS = 100


def bounded_json(text: str) -> Any:
    """json.loads for request bodies: too deep or a number too long is a JSONDecodeError (a 400), never a crash."""
    try:
        return json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_JSON_NUMBER_DIGITS:
        raise json.JSONDecodeError(f"a number longer than {MAX_JSON_NUMBER_DIGITS} digits", digits, 0)
    return int(digits)


def _validation_error(error: RequestValidationError) -> Response:
    details = [
        {"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid value")} for e in error.errors()
    ]
    invalid_json = [e for e in error.errors() if e.get("type") == "json_invalid"]
    if invalid_json:
        reason = str(invalid_json[0].get("ctx", {}).get("error") or "")
        message = "the body is not valid JSON" + (f": {reason}" if reason else "")
        return error_response(400, {"error": "invalid_json", "message": message})
    fields = ", ".join(d["field"] for d in details) or "body"
    return error_response(
        400, {"error": "validation_error", "message": f"invalid request: {fields}", "details": details}
    )


def _field_name(loc: Any) -> str:
    # Powertools reports ("body", "client_phone") or ("query", "phone"): the caller wants the field.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _unsupported_media_type(_: RequestUnsupportedContentType) -> Response:
    return error_response(
        415, {"error": "unsupported_media_type", "message": "send the body as JSON (Content-Type: application/json)"}
    )


def _undecodable_body(_: UnicodeDecodeError) -> Response:
    # Powertools decodes a JSON body as UTF-8 before validating it: bytes that are not UTF-8 are the caller's error.
    return error_response(400, {"error": "invalid_json", "message": "the body is not UTF-8 encoded JSON"})


def _not_found(_: NotFoundError) -> Response:
    return error_response(404, {"error": "not_found", "message": "no such route"})


def _unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")
    return error_response(500, {"error": "internal_error", "message": "internal error, the request was not completed"})


def create_resolver(*, validation: bool = True) -> APIGatewayRestResolver:
    """An API Gateway (REST) resolver with our error mapping, and pydantic validation of the routes' typed parameters
    and bodies. Without typed parameters (the webhook reads its raw request) `validation=False` spares the cold start
    the validation middleware and the per-route pydantic models Powertools would build on the first request."""
    app = APIGatewayRestResolver(
        enable_validation=validation, json_body_deserializer=bounded_json, serializer=serialize
    )
    app.exception_handler(DomainError)(domain_error_response)
    app.exception_handler(RequestUnsupportedContentType)(_unsupported_media_type)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(UnicodeDecodeError)(_undecodable_body)
    app.not_found(_not_found)
    app.exception_handler(Exception)(_unexpected)
    return app


def json_body(
    payload: dict[str, Any], status: int = HTTPStatus.OK, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=payload,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def json_body_tagged(app: APIGatewayRestResolver, payload: dict[str, Any]) -> Response[Any]:
    """A 200 with a strong ETag over its exact body, or a 304 without a body when the request's `If-None-Match`
    names that tag (a poller that already has this answer): the console polls `GET /v1/calls/live` every second and
    most answers are "nothing changed". `no-store` stays: the poller keeps the answer and sends the tag itself."""
    body = serialize(payload)
    tag = f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'
    if _names_tag(app.current_event.headers.get("if-none-match"), tag):
        return Response(status_code=HTTPStatus.NOT_MODIFIED, body=None, headers={**SECURITY_HEADERS, "ETag": tag})
    return Response(
        status_code=HTTPStatus.OK,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={**SECURITY_HEADERS, "ETag": tag},
    )


def _names_tag(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 13.1.2: `*`, or a list of tags compared weakly (`W/"x"` names `"x"`)."""
    if not if_none_match:
        return False
    named = [part.strip().removeprefix("W/") for part in if_none_match.split(",")]
    return "*" in named or tag in named


def resolve_with_token(app: APIGatewayRestResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve a request of a bot or operator route: the bearer token is checked first (401 before any validation)."""
    headers: Mapping[str, Any] = event.get("headers") or {}
    authorization = next((str(v) for k, v in headers.items() if str(k).lower() == "authorization"), None)
    try:
        caller = authenticate(auth_deps(), authorization)
    except DomainError as error:
        answer = ResponseBuilder[APIGatewayProxyEvent](domain_error_response(error), serializer=serialize)
        return answer.build(APIGatewayProxyEvent(event))
    app.append_context(caller=caller)  # `resolve` clears it when the request is done
    return app.resolve(event, context)


def request_caller(app: APIGatewayRestResolver) -> Caller:
    """Who the request's bearer token is (checked by `resolve_with_token`)."""
    caller: Caller = app.context["caller"]
    return caller


def request_project(app: APIGatewayRestResolver, *roles: Role) -> Project:
    """The project of the request's token, if its role is one of `roles` (else 403)."""
    return request_caller(app).require(*roles)


def api_base_url(app: APIGatewayRestResolver) -> str:
    """The API's base URL for the URLs we hand out: the stage's stable domain when it has one (PUBLIC_BASE_URL), else
    as the caller reached it: `https://<domain>/<stage>` on API Gateway's own domain (the stage is the part of the
    request's path before the route's), `https://<custom domain>` on a custom one."""
    public = get_settings().public_base_url
    if public:
        return public
    event = app.current_event
    context: Mapping[str, Any] = event.raw_event.get("requestContext") or {}
    host = context.get("domainName") or event.headers.get("host") or "localhost"
    scheme = event.headers.get("x-forwarded-proto") or "https"
    full_path, stage = str(context.get("path") or event.path), str(context.get("stage") or "")
    if full_path.endswith(event.path):
        prefix = full_path.removesuffix(event.path)
    else:  # the two paths disagree: never let a path (a webhook's secret) into the base, keep only the stage
        prefix = f"/{stage}" if stage and full_path.startswith(f"/{stage}/") else ""
    return f"{scheme}://{host}{prefix}"
