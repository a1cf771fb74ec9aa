"""The OpenAPI document (`devstack.openapi`) describes exactly the API of template.yaml, as the service answers it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import schemathesis

from devstack.openapi import (
    ANSWERS,
    BEARER_AUTH,
    CALL_STARTING_ROUTES,
    IDEMPOTENCY_HEADER,
    STATIC_FUNCTIONS,
    build_openapi,
    webhook_field_names,
)
from devstack.template import ROOT, Template

TEMPLATE = Template(parameters={"Stage": "test"})
DOCUMENT = build_openapi(TEMPLATE)
OPERATIONS = [(method, path, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_the_document_has_exactly_the_routes_of_the_template_each_on_its_function() -> None:
    # Given the JSON API's routes of template.yaml (the console's files aside) and the paths merged from the resolvers
    template_routes = {(r.method, r.path): r.function for r in TEMPLATE.routes() if r.function not in STATIC_FUNCTIONS}
    documented = {(method.upper(), path): op["x-function"] for method, path, op in OPERATIONS}
    # Then they are the same routes, each served by the function the template names
    assert documented == template_routes


def test_every_v1_route_needs_the_bearer_token_and_the_webhook_none() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"][BEARER_AUTH]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, op in OPERATIONS:
        expected = [{BEARER_AUTH: []}] if path.startswith("/v1/") else []
        assert op["security"] == expected, f"{method} {path}"


def test_the_webhook_accepts_form_json_and_multipart_bodies_with_every_alias() -> None:
    post = DOCUMENT["paths"]["/iptelefon_webhook/{secret}"]["post"]
    content = post["requestBody"]["content"]
    assert {"application/x-www-form-urlencoded", "application/json", "multipart/form-data"} <= set(content)
    assert post["requestBody"]["required"] is False
    for media in content.values():  # every alias of the contract's table, e.g. ZEON's `calltype`, `talktime`, `link`
        assert {"calltype", "talktime", "link", "src", "members"} <= set(media["schema"]["properties"])
        assert set(webhook_field_names()) <= set(media["schema"]["properties"])
    for method in ("get", "post"):  # query parameters are merged in, for GET and POST
        op = DOCUMENT["paths"]["/iptelefon_webhook/{secret}"][method]
        assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == set(webhook_field_names())


def test_answers_are_the_ones_the_service_gives() -> None:
    for method, path, op in OPERATIONS:
        successes, errors = ANSWERS[(method, path)]
        # the JSON error body of iptelefon.entry.api, never the 422 Powertools would document
        assert set(op["responses"]) == {str(s) for s in (*successes, *errors)}, f"{method} {path}"
        for status in errors:
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}
    assert set(DOCUMENT["paths"]["/v1/calls/employee"]["post"]["responses"]) >= {"202", "401", "429", "502", "504"}
    assert "422" not in json.dumps(DOCUMENT)


def test_call_starting_routes_take_an_idempotency_key() -> None:
    for method, path, op in OPERATIONS:
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert (IDEMPOTENCY_HEADER in names) == ((method, path) in CALL_STARTING_ROUTES), f"{method} {path}"
    assert {(m, p) for m, p, _ in OPERATIONS if m == "post" and p.startswith(("/v1/calls/", "/v1/clients/"))} == (
        CALL_STARTING_ROUTES
    )


def test_every_reference_resolves_and_bodies_come_from_the_pydantic_models() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for ref in _refs(DOCUMENT):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    employee = DOCUMENT["paths"]["/v1/calls/employee"]["post"]["requestBody"]["content"]["application/json"]
    assert employee["schema"] == {"$ref": "#/components/schemas/EmployeeCallRequest"}
    assert schemas["EmployeeCallRequest"]["required"] == ["client_phone", "short_employee_phone"]


def test_started_calls_document_their_answer_models() -> None:
    # the 202 names the attempt (`attempt_id`), never a bare `call_id`
    schemas = DOCUMENT["components"]["schemas"]
    for path in ("/v1/calls/employee", "/v1/calls/group"):
        answer = DOCUMENT["paths"][path]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/CallStartedAnswer"}
    card = DOCUMENT["paths"]["/v1/clients/{client_id}/call"]["post"]["responses"]
    assert card["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AppCallAnswer"}
    assert card["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CardCallStartedAnswer"
    }
    assert (
        "attempt_id" in schemas["CallStartedAnswer"]["required"]
        and "call_id" not in schemas["CallStartedAnswer"]["properties"]
    )
    assert schemas["CardCallStartedAnswer"]["properties"]["method"]["const"] == "api"


def test_schemathesis_loads_every_operation() -> None:
    # .ok() raises for an operation schemathesis cannot read
    loaded = [result.ok().label for result in schemathesis.openapi.from_dict(DOCUMENT).get_all_operations()]
    assert sorted(loaded) == sorted(f"{method.upper()} {path}" for method, path, _ in OPERATIONS)


def test_the_module_prints_the_document() -> None:
    # When `python -m devstack.openapi > openapi.json` runs
    printed = subprocess.run(
        [sys.executable, "-m", "devstack.openapi"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    # Then it prints the same document (for the template's default stage) as JSON
    assert json.loads(printed.stdout) == build_openapi()
