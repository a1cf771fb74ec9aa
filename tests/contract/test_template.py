"""template.yaml is the single source of truth: routes, handlers, packaging, IAM, tables and outputs are checked here.

Everything is read through `devstack.template.Template`, the same reader the local stack and the test tables use.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.template import LOCAL_ACCOUNT, Route, Template

TEMPLATE = Template(parameters={"Stage": "test"})
FUNCTIONS = TEMPLATE.functions()
LAYER_PACKAGE = "iptelefon"

# Contract sections 2 and 3: (method, path) -> the function that serves it.
CONTRACT_ROUTES = {
    ("POST", "/iptelefon_webhook/{secret}"): "WebhookFunction",
    ("GET", "/iptelefon_webhook/{secret}"): "WebhookFunction",
    ("POST", "/v1/calls/employee"): "EmployeeCallFunction",
    ("POST", "/v1/clients/{client_id}/call"): "EmployeeCallFunction",
    ("POST", "/v1/calls/group"): "GroupCallFunction",
    ("GET", "/v1/clients"): "ReadApiFunction",
    ("GET", "/v1/clients/{client_id}"): "ReadApiFunction",
    ("GET", "/v1/calls"): "ReadApiFunction",
    ("GET", "/v1/calls/{call_id}"): "ReadApiFunction",
    ("GET", "/v1/calls/live"): "ReadApiFunction",  # issue 19: the calls ringing or in talk now
    # issue 12: who a token is, and the admin API of the console
    ("GET", "/v1/me"): "AdminApiFunction",
    ("GET", "/v1/settings"): "AdminApiFunction",
    ("PUT", "/v1/settings"): "AdminApiFunction",
    ("POST", "/v1/settings/check"): "AdminApiFunction",
    ("POST", "/v1/settings/webhook-token"): "AdminApiFunction",  # issue 20: the random webhook URL in one click
    ("GET", "/v1/tokens"): "AdminApiFunction",  # issue 21: the console's token list
    ("GET", "/v1/pbx/points"): "AdminApiFunction",
    ("GET", "/v1/employees"): "AdminApiFunction",
    ("PUT", "/v1/employees/{employee_id}"): "AdminApiFunction",
    ("DELETE", "/v1/employees/{employee_id}"): "AdminApiFunction",
    ("POST", "/v1/employees/{employee_id}/operator-token"): "AdminApiFunction",
    ("DELETE", "/v1/tokens/{token_id}"): "AdminApiFunction",
    # issue 22: call events out - endpoints, their delivery log, replays
    ("POST", "/v1/endpoints"): "AdminApiFunction",
    ("GET", "/v1/endpoints"): "AdminApiFunction",
    ("DELETE", "/v1/endpoints/{endpoint_id}"): "AdminApiFunction",
    ("POST", "/v1/endpoints/{endpoint_id}/rotate-secret"): "AdminApiFunction",
    ("GET", "/v1/endpoints/{endpoint_id}/deliveries"): "AdminApiFunction",
    ("POST", "/v1/endpoints/{endpoint_id}/replay"): "AdminApiFunction",
    ("POST", "/v1/events/{event_id}/replay"): "AdminApiFunction",
    # issue 23: missed calls' callback tasks and the statistics
    ("GET", "/v1/stats"): "AdminApiFunction",
    ("GET", "/v1/callbacks"): "AdminApiFunction",
    ("POST", "/v1/callbacks/{task_id}/close"): "AdminApiFunction",
    ("GET", "/console"): "ConsoleFunction",
    ("GET", "/console/{asset}"): "ConsoleFunction",
    # issue 25: a recording's stable link (public: the random id is the credential) and its signed-in read
    ("GET", "/r/{recording_id}"): "RecordingLinkFunction",
    ("GET", "/v1/recordings/{recording_id}"): "ReadApiFunction",
}

# The one wildcard the design needs: each project's config is an SSM parameter under `.../projects/<project_id>/`
# (contract section 4) and every function serves every project, so the grant covers the `projects/` folder of this
# stack's prefix and stage, and nothing wider. The second: the objects of the recordings' bucket (issue 25; one object
# per call, under `<project>/`). Any other `*` in a Resource fails.
SSM_PROJECTS_ARN = (
    f"arn:aws:ssm:{TEMPLATE.region}:{LOCAL_ACCOUNT}:parameter/"
    f"{TEMPLATE.parameters['SsmPrefix']}/{TEMPLATE.parameters['Stage']}/projects/*"
)
# Issue 22: each call events endpoint's signing secret is a parameter under `.../endpoint-secrets/<project>/<id>`, a
# folder of its own (the functions that read PBX secrets cannot read these, nor the events function those).
SSM_ENDPOINT_SECRETS_ARN = SSM_PROJECTS_ARN.replace("/projects/*", "/endpoint-secrets/*")
RECORDINGS_OBJECTS_ARN = f"arn:aws:s3:::{TEMPLATE.bucket_name('RecordingsBucket')}/*"


def _route(method: str, path: str) -> Route:
    (route,) = [r for r in TEMPLATE.routes() if (r.method, r.path) == (method, path)]
    return route


def _statements(logical_id: str) -> list[dict[str, Any]]:
    policies = TEMPLATE.doc["Resources"][logical_id]["Properties"].get("Policies", [])
    statements: list[dict[str, Any]] = []
    for policy in policies:
        # Managed policies and SAM policy templates cannot be checked here: only inline statements are allowed.
        assert isinstance(policy, dict), f"{logical_id}: policy {policy!r} is not an inline statement document"
        assert set(policy) == {"Statement"}, f"{logical_id}: policy {policy!r} is not an inline statement document"
        statements.extend(policy["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# --- routes ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), list(CONTRACT_ROUTES), ids=[f"{m} {p}" for m, p in CONTRACT_ROUTES])
def test_contract_route_is_served_by_its_function(method: str, path: str) -> None:
    # Given a route of the contract
    # When the template's API events are read
    routes = {(r.method, r.path): r.function for r in TEMPLATE.routes()}

    # Then the route is there and goes to the function the contract names
    assert routes.get((method, path)) == CONTRACT_ROUTES[(method, path)]


def test_template_has_no_route_outside_the_contract() -> None:
    # Given the template's API events
    # When they are listed
    routes = [(r.method, r.path) for r in TEMPLATE.routes()]

    # Then each is a contract route, declared once
    assert sorted(routes) == sorted(CONTRACT_ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("POST", "/v1/clients/abc/call", "EmployeeCallFunction", {"client_id": "abc"}),
        ("POST", "/v1/calls/employee", "EmployeeCallFunction", {}),
        ("POST", "/v1/calls/group", "GroupCallFunction", {}),
        ("GET", "/v1/clients", "ReadApiFunction", {}),
        ("GET", "/v1/clients/c-42", "ReadApiFunction", {"client_id": "c-42"}),
        ("GET", "/v1/calls", "ReadApiFunction", {}),
        ("GET", "/v1/calls/1709290800.1843", "ReadApiFunction", {"call_id": "1709290800.1843"}),
        ("POST", "/iptelefon_webhook/s3cr-et_1", "WebhookFunction", {"secret": "s3cr-et_1"}),
        ("GET", "/iptelefon_webhook/s3cr-et_1", "WebhookFunction", {"secret": "s3cr-et_1"}),
    ],
)
def test_request_matches_exactly_one_route(method: str, path: str, function: str, params: dict[str, str]) -> None:
    # Given every route of the template
    # When a concrete request is matched against them
    hits = [(r.function, found) for r in TEMPLATE.routes() if (found := r.match(method, path)) is not None]

    # Then exactly one route answers, with the path parameters extracted
    assert hits == [(function, params)]


def test_path_parameter_is_extracted() -> None:
    # Given the client-card call route
    route = _route("POST", "/v1/clients/{client_id}/call")

    # When a request path is matched
    found = route.match("POST", "/v1/clients/abc/call")

    # Then the client id comes out as a path parameter
    assert found == {"client_id": "abc"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/clients/abc/call"),  # wrong method
        ("PUT", "/v1/clients/abc/call"),
        ("POST", "/v1/clients/abc"),
        ("POST", "/v1/clients/abc/call/extra"),
        ("POST", "/v1/clients/abc/callx"),
        ("POST", "/v1/clients//call"),  # empty parameter
        ("POST", "/v1/clients/a/b/call"),  # a parameter never spans a slash
        ("POST", "/prefix/v1/clients/abc/call"),
        ("POST", "/v1/clients/abc/call/"),
    ],
)
def test_route_does_not_match_other_paths_or_methods(method: str, path: str) -> None:
    # Given the client-card call route
    route = _route("POST", "/v1/clients/{client_id}/call")

    # When another request is matched
    # Then it is not this route
    assert route.match(method, path) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/calls"), ("DELETE", "/v1/clients/abc"), ("GET", "/v1/calls/group/extra"), ("GET", "/health")],
)
def test_unknown_request_matches_no_route(method: str, path: str) -> None:
    # Given every route of the template
    # When a request outside the contract is matched
    hits = [r for r in TEMPLATE.routes() if r.match(method, path) is not None]

    # Then nothing answers it
    assert hits == []


# --- functions and packaging -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handler_module_exposes_a_callable_lambda_handler(logical_id: str) -> None:
    # Given a function of the template, whose code dir pytest puts on sys.path
    spec = FUNCTIONS[logical_id]
    assert spec.code_dir.resolve() in {Path(p).resolve() for p in sys.path}
    module_name, _, attribute = spec.handler.rpartition(".")

    # When its Handler module is imported
    module = importlib.import_module(module_name)

    # Then it is that function's own file and it exposes a callable `lambda_handler`
    assert attribute == "lambda_handler"
    assert Path(str(module.__file__)).resolve().is_relative_to(spec.code_dir.resolve())
    assert callable(getattr(module, attribute))


def test_every_function_has_its_own_uniquely_named_package() -> None:
    # Given the functions of the template
    # When the top-level package of each Handler is read
    packages = {logical_id: spec.handler.split(".")[0] for logical_id, spec in FUNCTIONS.items()}

    # Then no two functions share a package name or a code dir, and none clashes with the layer package
    assert len(set(packages.values())) == len(FUNCTIONS)
    assert len({spec.code_dir.resolve() for spec in FUNCTIONS.values()}) == len(FUNCTIONS)
    assert LAYER_PACKAGE not in packages.values()


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_package_lives_in_its_code_dir(logical_id: str) -> None:
    # Given a function of the template
    spec = FUNCTIONS[logical_id]
    package = spec.handler.split(".")[0]

    # When its CodeUri is looked at
    # Then the Handler's package is a real package inside it (SAM copies the CodeUri's contents)
    assert (spec.code_dir / package / "__init__.py").is_file()
    assert not (spec.code_dir / LAYER_PACKAGE).exists()


def test_layer_is_built_by_sam_from_layers_common_without_a_python_folder() -> None:
    # Given the layer of the template
    (layer,) = TEMPLATE.resources("AWS::Serverless::LayerVersion").values()
    (layer_dir,) = TEMPLATE.layer_dirs()

    # When its build settings and source folder are read
    # Then SAM builds it for the functions' runtime from layers/common/, which holds the package and requirements, no
    # `python/`
    assert layer["Metadata"]["BuildMethod"] == TEMPLATE.doc["Globals"]["Function"]["Runtime"]
    assert layer["Properties"]["ContentUri"] == "layers/common/"
    assert not (layer_dir / "python").exists()
    assert (layer_dir / LAYER_PACKAGE / "__init__.py").is_file()
    assert (layer_dir / "requirements.txt").is_file()


def test_every_function_gets_the_layer() -> None:
    # Given the template's layer and function globals
    (layer_id,) = TEMPLATE.resources("AWS::Serverless::LayerVersion")
    global_layers = TEMPLATE.doc["Globals"]["Function"]["Layers"]

    # When a function has no Layers of its own
    own_layers = [
        lid for lid, res in TEMPLATE.resources("AWS::Serverless::Function").items() if "Layers" in res["Properties"]
    ]

    # Then it inherits the common layer from Globals
    assert {"Ref": layer_id} in global_layers
    assert own_layers == []


# --- IAM -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_policy_has_no_wildcard_resource(logical_id: str) -> None:
    # Given a function's inline policy statements
    statements = _statements(logical_id)
    # (the console serves its own files: it makes no AWS call and has no statement at all)
    assert statements or logical_id == "ConsoleFunction", f"{logical_id} has no policy statements"

    # When every Resource is resolved (!Sub, !Ref, !GetAtt) to its ARN
    for statement in statements:
        assert "NotResource" not in statement
        resources = [TEMPLATE.resolve(resource) for resource in _as_list(statement["Resource"])]

        # Then each is a concrete ARN: the SSM projects folder is the only allowed `*`
        for resource in resources:
            assert isinstance(resource, str), f"{logical_id}: unresolved Resource {resource!r}"
            assert resource.startswith("arn:aws:"), f"{logical_id}: {resource}"
            assert "*" not in resource or resource in (
                SSM_PROJECTS_ARN,
                SSM_ENDPOINT_SECRETS_ARN,
                RECORDINGS_OBJECTS_ARN,
            ), f"{logical_id}: wildcard Resource {resource}"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_policy_has_no_wildcard_action(logical_id: str) -> None:
    # Given a function's inline policy statements
    statements = _statements(logical_id)

    # When every Action is read
    actions = [action for statement in statements for action in _as_list(statement["Action"])]

    # Then each names one API call of one service
    assert all("NotAction" not in statement for statement in statements)
    for action in actions:
        assert isinstance(action, str)
        assert "*" not in action, f"{logical_id}: wildcard Action {action}"
        service, _, name = action.partition(":")
        assert service
        assert name


# --- tables and outputs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(TEMPLATE.resources("AWS::DynamoDB::Table")))
def test_table_is_on_demand_with_ttl(logical_id: str) -> None:
    # Given a DynamoDB table of the template
    props = TEMPLATE.doc["Resources"][logical_id]["Properties"]

    # When its billing and TTL are read
    ttl = props.get("TimeToLiveSpecification", {})

    # Then it is PAY_PER_REQUEST with an enabled TTL attribute, and the local stack creates it that way
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert ttl.get("Enabled") is True
    assert ttl.get("AttributeName")
    name = TEMPLATE.physical_name(logical_id)
    assert TEMPLATE.ttl_attributes()[name] == ttl["AttributeName"]
    (definition,) = [d for d in TEMPLATE.table_definitions() if d["TableName"] == name]
    assert definition["BillingMode"] == "PAY_PER_REQUEST"


def test_outputs_give_the_api_url_and_the_webhook_url_pattern() -> None:
    # Given the template's outputs
    outputs = TEMPLATE.doc["Outputs"]

    # When the two URLs are resolved
    api_url = TEMPLATE.resolve(outputs["ApiUrl"]["Value"])
    webhook_pattern = TEMPLATE.resolve(outputs["WebhookUrlPattern"]["Value"])

    # Then the webhook pattern is the API URL plus the webhook route with a placeholder for the secret
    assert api_url.startswith("https://")
    assert api_url.endswith("/test")
    assert webhook_pattern == f"{api_url}/iptelefon_webhook/<secret>"
