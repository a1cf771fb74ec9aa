"""The one place where domain errors become HTTP answers, and the resolver every function uses.

Error body (contract section 3): {"error": "<code>", "message": "...", "details": [{"field", "message"}]}.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from iptelefon.auth import authenticate
from iptelefon.errors import DomainError
from iptelefon.models import Project
from iptelefon.observability import logger
from iptelefon.storage import get_storage


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def domain_error_response(error: DomainError) -> Response:
    headers = None if error.retry_after_seconds is None else {"Retry-After": str(error.retry_after_seconds)}
    if error.status_code >= 500:
        logger.warning("request failed", extra={"error": error.code, "status": error.status_code})
    return error_response(error.status_code, error.body(), headers)


def _validation_error(error: RequestValidationError) -> Response:
    details = [
        {"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid value")} for e in error.errors()
    ]
    if any(e.get("type") == "json_invalid" for e in error.errors()):
        return error_response(400, {"error": "invalid_json", "message": "the body is not valid JSON"})
    fields = ", ".join(d["field"] for d in details) or "body"
    return error_response(
        400, {"error": "validation_error", "message": f"invalid request: {fields}", "details": details}
    )


def _field_name(loc: Any) -> str:
    # Powertools reports ("body", "client_phone") or ("query", "phone"): the caller wants the field.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _undecodable_body(_: UnicodeDecodeError) -> Response:
    # Powertools decodes a JSON body as UTF-8 before validating it: bytes that are not UTF-8 are the caller's error.
    return error_response(400, {"error": "invalid_json", "message": "the body is not UTF-8 encoded JSON"})


def _not_found(_: NotFoundError) -> Response:
    return error_response(404, {"error": "not_found", "message": "no such route"})


def _unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")
    return error_response(500, {"error": "internal_error", "message": "internal error, the request was not completed"})


def create_resolver() -> APIGatewayRestResolver:
    """An API Gateway (REST) resolver with pydantic validation and our error mapping."""
    app = APIGatewayRestResolver(enable_validation=True)
    app.exception_handler(DomainError)(domain_error_response)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(UnicodeDecodeError)(_undecodable_body)
    app.not_found(_not_found)
    app.exception_handler(Exception)(_unexpected)
    return app


def json_body(payload: dict[str, Any], status: int = HTTPStatus.OK) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=payload)


def request_project(app: APIGatewayRestResolver) -> Project:
    """The project named by the request's bearer token (401 otherwise)."""
    return authenticate(get_storage(), app.current_event.headers.get("authorization"))
