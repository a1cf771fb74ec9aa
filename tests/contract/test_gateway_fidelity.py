"""The API as AWS deploys it and as the local gateway serves it: the same bytes, the same refusals.

The deployed shape comes from SAM's own translator (`devstack.sam_transform`, run in the tools virtualenv that
`make test` builds), the local one from `devstack.gateway` reading the same template.yaml.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fixtures.aws import TEST_TEMPLATE
from fixtures.deployed import resources_of

from devstack.gateway import build_event, is_binary
from devstack.template import Route


def test_the_deployed_api_has_only_the_real_stage() -> None:
    # SAM creates an implicit "Stage" stage (without our throttling) unless the template says otherwise
    stages = resources_of("AWS::ApiGateway::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == [{"Ref": "Stage"}]


def test_the_deployed_api_delivers_form_and_multipart_bodies_as_raw_bytes() -> None:
    (api,) = resources_of("AWS::ApiGateway::RestApi").values()
    binary = api["Properties"]["Body"]["x-amazon-apigateway-binary-media-types"]
    assert {"application/x-www-form-urlencoded", "multipart/form-data"} <= set(binary)
    assert "application/json" not in binary  # the bot routes read JSON as text
    assert sorted(binary) == sorted(TEST_TEMPLATE.binary_media_types())  # what the local gateway uses


def test_the_deployed_api_answers_an_unknown_route_in_the_services_error_shape() -> None:
    (api,) = resources_of("AWS::ApiGateway::RestApi").values()
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert int(missing["statusCode"]) == 404
    assert json.loads(missing["responseTemplates"]["application/json"]) == {
        "error": "not_found",
        "message": "no such route",
    }
    # And the local gateway renders the same answer from the same template
    answer = TEST_TEMPLATE.gateway_response("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", 403)
    assert (answer.status, answer.body) == (404, b'{"error": "not_found", "message": "no such route"}')


@pytest.mark.parametrize(
    "response_type", ["MISSING_AUTHENTICATION_TOKEN", "REQUEST_TOO_LARGE", "THROTTLED", "UNAUTHORIZED"]
)
def test_the_gateways_own_answers_say_no_store_and_nosniff(response_type: str) -> None:
    """Issue 20: every answer, API Gateway's own too (an unknown route, 413, 429, the default 4XX/5XX), is never cached
    and never sniffed; the deployed API's entries carry the same headers the local gateway renders."""
    (api,) = resources_of("AWS::ApiGateway::RestApi").values()
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    for entry in responses.values():
        assert entry["responseParameters"] == {
            "gatewayresponse.header.Cache-Control": "'no-store'",
            "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
        }
    answer = TEST_TEMPLATE.gateway_response(response_type, "refused", 400)
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_gateway_refusal_without_its_own_entry_uses_the_default_4xx_with_the_message() -> None:
    answer = TEST_TEMPLATE.gateway_response("UNAUTHORIZED", "Unauthorized", 401)
    assert (answer.status, json.loads(answer.body)) == (401, {"error": "bad_request", "message": "Unauthorized"})


@pytest.mark.parametrize(
    ("content_type", "binary"),
    [
        ("application/x-www-form-urlencoded; charset=windows-1251", True),
        ("multipart/form-data; boundary=x", True),
        ("Application/Octet-Stream", True),
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        (None, False),
    ],
)
def test_binary_media_types_match_as_api_gateway_matches_them(content_type: str | None, binary: bool) -> None:
    assert is_binary(content_type, TEST_TEMPLATE.binary_media_types()) is binary


class _Request:
    """What build_event reads of an http.server request."""

    def __init__(self, content_type: str) -> None:
        self.command = "POST"
        self.headers = {"Content-Type": content_type, "User-Agent": "test"}
        self.client_address = ("127.0.0.1", 1)


def _event(content_type: str, body: bytes) -> dict[str, Any]:
    route = Route("POST", "/iptelefon_webhook/{secret}", "WebhookFunction")
    return build_event(
        _Request(content_type),  # type: ignore[arg-type]
        route,
        "/iptelefon_webhook/s",
        {"secret": "s"},
        "",
        body,
        "local",
        TEST_TEMPLATE.binary_media_types(),
    )


def test_a_windows_1251_form_reaches_the_function_byte_for_byte() -> None:
    body = "exten=Иван&src=79004443322".encode("cp1251")
    event = _event("application/x-www-form-urlencoded; charset=windows-1251", body)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_a_json_body_arrives_as_text_and_bytes_that_are_not_utf8_do_not_survive_as_on_aws() -> None:
    event = _event("application/json", b'{"a": "\xff"}')
    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"a": "\ufffd"}'
