"""The OpenAPI document of the whole API, built from the code: `python -m devstack.openapi > openapi.json`.

Each function's Powertools resolver (`APIGatewayRestResolver(enable_validation=True)`) knows its own routes, path and
query parameters and pydantic bodies. The functions and their handler modules come from template.yaml (exactly the
functions behind the API, so not Powertools' file discovery), the resolvers' documents are merged into one by
Powertools' `OpenAPIMerge`, and what a resolver cannot see is added here:
- `bearerAuth` on every /v1 route (the token is checked in code, not declared as a parameter);
- the optional `Idempotency-Key` header of the call-starting routes (read from the event in code);
- the webhook's requests: its handler reads the raw request itself, so the fields it understands (every alias of the
  contract's table, from `iptelefon.domain.call_aliases`) are documented as JSON, form and multipart bodies and
  as query parameters, all optional;
- the answers the service really gives: our error body (`iptelefon.entry.api`) for 4xx/5xx instead of the 422 that
  Powertools documents and the service never sends (validation errors are 400), and 202 for started calls with
  their bodies (`iptelefon.domain.answers`);
- the `If-None-Match` header, the `ETag` and the 304 of the polled route (`GET /v1/calls/live`,
  `entry.api.json_body_tagged`).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable
from importlib.metadata import version
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

from devstack.template import Template

TITLE = "iptelefon-connector"
DESCRIPTION = (
    "Connects the Iptelefon (ZEON) cloud PBX to the bot platform: the PBX's call-completion webhook, bot call "
    "endpoints and the read API. /v1 routes need `Authorization: Bearer <bot token>`."
)
STATIC_FUNCTIONS = {"ConsoleFunction"}  # serves the console's files: HTML, JS, CSS, not the JSON API
BEARER_AUTH = "bearerAuth"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CALL_STARTING_ROUTES = {
    ("post", "/v1/calls/employee"),
    ("post", "/v1/calls/group"),
    ("post", "/v1/clients/{client_id}/call"),
}
# Routes answered with a strong ETag, and 304 without a body when `If-None-Match` names it.
ETAG_ROUTES = {("get", "/v1/calls/live")}
_CALL_ERRORS = (400, 401, 403, 409, 429, 502, 503, 504)
_READ_ERRORS = (400, 401, 404, 503)
_ADMIN_ERRORS = (401, 403, 404, 503)  # 403: not an admin token; 404: another project's id, or none
# (method, path) -> (success statuses, error statuses): what each route answers (README "Errors").
ANSWERS: dict[tuple[str, str], tuple[tuple[int, ...], tuple[int, ...]]] = {
    ("post", "/iptelefon_webhook/{secret}"): ((200,), (400, 404, 413, 503)),
    ("get", "/iptelefon_webhook/{secret}"): ((200,), (400, 404, 413, 503)),
    ("post", "/v1/calls/employee"): ((202,), _CALL_ERRORS),
    ("post", "/v1/calls/group"): ((202,), _CALL_ERRORS),
    ("post", "/v1/clients/{client_id}/call"): ((200, 202), (*_CALL_ERRORS, 404)),
    ("get", "/v1/clients"): ((200,), (400, 401, 503)),
    ("get", "/v1/clients/{client_id}"): ((200,), _READ_ERRORS),
    ("get", "/v1/calls"): ((200,), _READ_ERRORS),
    ("get", "/v1/calls/live"): ((200, 304), (401, 503)),
    ("get", "/v1/calls/{call_id}"): ((200,), _READ_ERRORS),
    ("get", "/v1/recordings/{recording_id}"): ((200,), _READ_ERRORS),
    ("get", "/r/{recording_id}"): ((302,), (404, 503)),
    ("get", "/v1/me"): ((200,), (401, 503)),
    ("get", "/v1/settings"): ((200,), _ADMIN_ERRORS),
    ("put", "/v1/settings"): ((200,), (400, *_ADMIN_ERRORS, 409)),
    ("post", "/v1/settings/check"): ((200,), (*_ADMIN_ERRORS, 502, 504)),
    ("post", "/v1/settings/webhook-token"): ((201,), (400, *_ADMIN_ERRORS)),
    ("get", "/v1/tokens"): ((200,), _ADMIN_ERRORS),
    ("get", "/v1/pbx/points"): ((200,), (*_ADMIN_ERRORS, 502, 504)),
    ("get", "/v1/employees"): ((200,), _ADMIN_ERRORS),
    ("put", "/v1/employees/{employee_id}"): ((200,), (400, *_ADMIN_ERRORS)),
    ("delete", "/v1/employees/{employee_id}"): ((200,), _ADMIN_ERRORS),
    ("post", "/v1/employees/{employee_id}/operator-token"): ((201,), _ADMIN_ERRORS),
    ("delete", "/v1/tokens/{token_id}"): ((200,), _ADMIN_ERRORS),
    # issue 22: call events out
    ("post", "/v1/endpoints"): ((201,), (400, *_ADMIN_ERRORS)),
    ("get", "/v1/endpoints"): ((200,), _ADMIN_ERRORS),
    ("delete", "/v1/endpoints/{endpoint_id}"): ((200,), _ADMIN_ERRORS),
    ("post", "/v1/endpoints/{endpoint_id}/rotate-secret"): ((200,), (400, *_ADMIN_ERRORS)),
    ("get", "/v1/endpoints/{endpoint_id}/deliveries"): ((200,), _ADMIN_ERRORS),
    ("post", "/v1/endpoints/{endpoint_id}/replay"): ((200,), (400, *_ADMIN_ERRORS)),
    ("post", "/v1/events/{event_id}/replay"): ((200,), _ADMIN_ERRORS),
    ("get", "/v1/stats"): ((200,), (400, 401, 403, 503)),
    ("get", "/v1/callbacks"): ((200,), (400, 401, 403, 503)),
    ("post", "/v1/callbacks/{task_id}/close"): ((200,), (400, *_ADMIN_ERRORS, 409)),
}
_SUCCESS_TEXT = {
    200: "OK",
    304: "Not Modified: `If-None-Match` names the current ETag (nothing changed since); no body",
    302: "To the recording (`Location`): a presigned archive URL of at most 15 minutes once archived, the PBX's link "
    "before; or to the console (`#recording=<id>`) when the project lets only signed-in users listen",
    201: "Created: the token is shown this once",
    202: "The PBX accepted the call request: it rings the employee (or group), then the client (`initiated`); or "
    "its reply could not be read and the call may be ringing (`unknown`: do not retry)",
}
_ERROR_TEXT = {
    400: "validation_error, invalid_phone or invalid_json (details name the field)",
    401: "unauthorized: missing, unknown or revoked bearer token",
    403: "forbidden (not for this token's role), calls_disabled, country_not_allowed or number_not_allowed",
    404: "not_found: unknown webhook secret or recording, another project's resource, or nothing with that id",
    409: "conflict: the same Idempotency-Key is in flight (Retry-After) or was used with another request; a callback "
    "task closed already",
    413: "payload_too_large: webhook body over 64 KiB (the raw request is still kept)",
    429: "rate_limited (Retry-After)",
    502: "pbx_error: the PBX refused or answered garbage",
    503: "storage_unavailable (Retry-After)",
    504: "pbx_timeout: no PBX answer in time; the call may have started",
}
# The call-starting routes' answers (their handlers return plain JSON, so the resolvers cannot see these models).
CALL_ANSWERS: dict[tuple[str, str, int], str] = {
    ("post", "/v1/calls/employee", 202): "CallStartedAnswer",
    ("post", "/v1/calls/group", 202): "CallStartedAnswer",
    ("post", "/v1/clients/{client_id}/call", 200): "AppCallAnswer",
    ("post", "/v1/clients/{client_id}/call", 202): "CardCallStartedAnswer",
}
_POWERTOOLS_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
_REF_PREFIX = "#/components/schemas/"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "examples": ["validation_error"]},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
WEBHOOK_ANSWER_SCHEMA: dict[str, Any] = {
    "title": "WebhookAnswer",
    "description": "A completed call (`duplicate`), a live call event of ZEON's `cmd=event` (`live`, `changed`), or "
    "the request queued while storage is away (`queued`).",
    "oneOf": [
        {
            "type": "object",
            "required": ["result", "call_key", "client_id", "duplicate"],
            "properties": {
                "result": {"type": "integer", "const": 1},
                "call_key": {"type": "string"},
                "client_id": {"type": "string"},
                "duplicate": {"type": "boolean"},
            },
        },
        {
            "type": "object",
            "required": ["result", "call_key", "client_id", "live", "changed"],
            "properties": {
                "result": {"type": "integer", "const": 1},
                "call_key": {"type": "string"},
                "client_id": {"type": "string"},
                "live": {"type": "string", "enum": ["ringing", "answered", "ended"]},
                "changed": {"type": "boolean"},
            },
        },
        {
            "type": "object",
            "required": ["result", "queued"],
            "properties": {"result": {"type": "integer", "const": 1}, "queued": {"type": "boolean", "const": True}},
        },
    ],
}
WEBHOOK_EXAMPLE = {
    "id": "1709290800.1843",
    "calldate": "2024-03-01 14:00:00",
    "calltype": "IN",
    "src": "79004443322",
    "exten": "346",
    "talktime": "00:02:35",
    "link": "https://z138.fpg.ru/zeon/records/1709290800.1843.mp3",
}


def handler_modules(template: Template) -> dict[str, str]:
    """Function logical id -> the module of its handler (`webhook.handler`), as template.yaml names it: the functions
    of the JSON API only (the inbox's function is fed by SQS; the console's serves files)."""
    behind_the_api = {route.function for route in template.routes()} - STATIC_FUNCTIONS
    return {
        name: spec.handler.rpartition(".")[0] for name, spec in template.functions().items() if name in behind_the_api
    }


def resolver_documents(template: Template) -> dict[str, dict[str, Any]]:
    """Function logical id -> the OpenAPI document of its handler module's resolver (`app`)."""
    # Lambda's layout: the layer and each function's code directory on sys.path (as devstack.gateway does).
    for directory in [*template.layer_dirs(), *(spec.code_dir for spec in template.functions().values())]:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    documents = {}
    for name, module in handler_modules(template).items():
        app = importlib.import_module(module).app
        documents[name] = json.loads(app.get_openapi_json_schema(title=TITLE))
    return documents


def build_openapi(template: Template | None = None) -> dict[str, Any]:
    """The merged document of every route of template.yaml: Powertools' `OpenAPIMerge` joins the resolvers' documents
    (a route served by two functions is an error), then what no resolver can see is added."""
    template = template or Template()
    documents = resolver_documents(template)
    merge = OpenAPIMerge(
        title=TITLE, version=version("iptelefon-connector"), description=DESCRIPTION, on_conflict="error"
    )
    for function, document in documents.items():
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation["x-function"] = function
        merge.add_schema(document)
    _check_shared_schemas(documents)  # Powertools lets the last of two same-named schemas win: refuse instead
    merged = merge.get_openapi_schema()
    paths: dict[str, dict[str, Any]] = merged.get("paths", {})
    for path, operations in paths.items():
        for method, operation in operations.items():
            _complete_operation(method, path, operation)
    schemas: dict[str, Any] = merged.get("components", {}).get("schemas", {})
    for name in _POWERTOOLS_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update({"Error": ERROR_SCHEMA, "WebhookAnswer": WEBHOOK_ANSWER_SCHEMA, **_call_answer_schemas()})
    merged["paths"] = {path: paths[path] for path in sorted(paths)}
    merged["components"] = {
        "schemas": {name: schemas[name] for name in sorted(schemas)},
        "securitySchemes": {
            BEARER_AUTH: {
                "type": "http",
                "scheme": "bearer",
                "description": "A project's bot token (`iptb_...`), shown once by `iptel project create` or "
                "`iptel token create`.",
            }
        },
    }
    return merged


def _check_shared_schemas(documents: dict[str, dict[str, Any]]) -> None:
    seen: dict[str, Any] = {}
    for document in documents.values():
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if seen.setdefault(name, schema) != schema:
                raise ValueError(f"two resolvers define the schema {name} differently")


def _complete_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    if (method, path) not in ANSWERS:
        raise KeyError(f"{method.upper()} {path}: add its answers to devstack.openapi.ANSWERS")
    successes, errors = ANSWERS[(method, path)]
    success_body = operation.get("responses", {}).get("200", {}).get("content")
    if path.startswith("/iptelefon_webhook/"):
        operation["security"] = []  # the path secret names the project
        operation["parameters"] = [*operation.get("parameters", []), *_webhook_query_parameters()]
        if method == "post":
            operation["requestBody"] = _webhook_body()
        success_body = {"application/json": {"schema": {"$ref": _REF_PREFIX + "WebhookAnswer"}}}
    elif path.startswith("/r/"):
        operation["security"] = []  # the random id is the credential (or the console's sign-in, per project)
        success_body = None
    else:
        operation["security"] = [{BEARER_AUTH: []}]
    if (method, path) in CALL_STARTING_ROUTES:
        operation["parameters"] = [*operation.get("parameters", []), _idempotency_header()]
    tagged = (method, path) in ETAG_ROUTES
    if tagged:
        operation["parameters"] = [*operation.get("parameters", []), _if_none_match_header()]
    responses: dict[str, Any] = {}
    for status in successes:
        responses[str(status)] = {"description": _SUCCESS_TEXT[status]}
        if (method, path, status) in CALL_ANSWERS:
            ref = _REF_PREFIX + CALL_ANSWERS[(method, path, status)]
            responses[str(status)]["content"] = {"application/json": {"schema": {"$ref": ref}}}
        elif success_body and status != 304:
            responses[str(status)]["content"] = success_body
        if tagged:
            responses[str(status)]["headers"] = {
                "ETag": {"description": "A strong tag of this answer's body", "schema": {"type": "string"}}
            }
    for status in errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": {"$ref": _REF_PREFIX + "Error"}}},
        }
    operation["responses"] = responses


def _call_answer_schemas() -> dict[str, Any]:
    from iptelefon.domain import answers

    return {name: getattr(answers, name).model_json_schema() for name in sorted(set(CALL_ANSWERS.values()))}


def _idempotency_header() -> dict[str, Any]:
    return {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": "A repeat within 24 h returns the first answer and never starts a second call.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x20-\\x7e]+$"},
    }


def _if_none_match_header() -> dict[str, Any]:
    return {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "The ETag of the answer the caller has: 304 without a body when nothing changed.",
        "schema": {"type": "string", "maxLength": 200},
    }


def webhook_field_names() -> list[str]:
    """Every field name the webhook reads (the contract's aliases, `src`/`dst`, `members`), in the table's order."""
    from iptelefon.domain import call_aliases as p

    groups: Iterable[Iterable[str]] = (
        (p.KIND_FIELD,),
        p.PBX_CALL_ID_ALIASES,
        p.DIRECTION_ALIASES,
        p.CLIENT_PHONE_ALIASES,
        ("src", "dst"),
        p.CALLER_ALIASES,
        p.CALLEE_ALIASES,
        p.EMPLOYEE_ALIASES,
        ("members",),
        p.GROUP_ID_ALIASES,
        p.STARTED_AT_ALIASES,
        p.TALK_SECONDS_ALIASES,
        p.STATUS_ALIASES,
        p.RECORD_ALIASES,
        (p.MISSED_FLAG, p.PICKED_UP_FLAG, p.TRANSFERRED_FLAG),
    )
    return list(dict.fromkeys(name for group in groups for name in group))


def _webhook_query_parameters() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in webhook_field_names()
    ]


def _webhook_body() -> dict[str, Any]:
    from iptelefon.domain.webhook_body import WRAPPER_KEYS

    text_fields = {name: {"type": "string"} for name in webhook_field_names()}
    json_fields: dict[str, Any] = {name: {"type": ["string", "integer", "number"]} for name in webhook_field_names()}
    json_fields["members"] = {"type": ["string", "array"], "items": {"type": "string"}}
    for wrapper in WRAPPER_KEYS:  # one wrapper level: an object, or a string holding a JSON object
        json_fields[wrapper] = {"type": ["object", "string"]}
    form = {"type": "object", "properties": text_fields, "additionalProperties": {"type": "string"}}
    return {
        "required": False,
        "description": "A completed call, in whatever shape the PBX sends it: the first present alias of each field "
        "wins (case-insensitive, `-` read as `_`: `call-type`); query parameters are merged in. ZEON's `cmd=event` "
        "(`call-status` RINGING or ACCEPTED) is a live state of a call, `cmd=history` its completion. At most 64 KiB.",
        "content": {
            "application/x-www-form-urlencoded": {"schema": form, "example": WEBHOOK_EXAMPLE},
            "application/json": {
                "schema": {"type": "object", "properties": json_fields, "additionalProperties": True},
                "example": WEBHOOK_EXAMPLE,
            },
            "multipart/form-data": {"schema": form},
        },
    }


def main() -> None:
    print(json.dumps(build_openapi(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
