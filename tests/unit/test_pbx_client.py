"""PbxClient against httpx.MockTransport: the start.php wire format, reply handling, retries and secret hygiene."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from iptelefon.adapters.pbx import PbxClient, encode_body, get_pbx_client
from iptelefon.domain.errors import PbxError, PbxTimeout
from iptelefon.domain.pbx_connection import PbxConnection

SECRET = "s3cr3t"
URL = "https://a00.abc.ru/b3/api/v2/start.php"
# Computed once by hand: hashlib.md5(b"topic=base&method=call-employee&ext=346&phone=79004443322" + b"s3cr3t").
EMPLOYEE_BODY = "topic=base&method=call-employee&ext=346&phone=79004443322"
EMPLOYEE_HASH = "5a40714f35de2dbedd6f16f0bd42dd88"

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> PbxClient:
    return PbxClient(httpx.Client(transport=httpx.MockTransport(handler)))


def _recording(reply: httpx.Response | None = None) -> tuple[PbxClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply if reply is not None else httpx.Response(200, json={"result": 1, "data": {"call_id": "1.1"}})

    return _client(handler), seen


def _failing(exc_type: type[httpx.HTTPError]) -> tuple[PbxClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise exc_type("boom", request=request)  # type: ignore[call-arg]

    return _client(handler), seen


def _conn(**overrides: object) -> PbxConnection:
    return PbxConnection(server_url=URL, secret=SECRET, **overrides)  # type: ignore[arg-type]


def test_hash_mode_sends_exactly_the_hashed_body_with_md5_appended_last() -> None:
    # Given a hash-mode project
    client, seen = _recording()

    # When an employee call is started
    client.start_employee_call(_conn(), "346", "79004443322")

    # Then the bytes sent are the body string followed by md5(body + secret), as a form POST
    (request,) = seen
    assert request.method == "POST"
    assert request.content == f"{EMPLOYEE_BODY}&hash={EMPLOYEE_HASH}".encode("ascii")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers


def test_server_url_is_used_exactly_as_configured() -> None:
    # Given a project whose PBX lives under a customer-specific path
    client, seen = _recording(httpx.Response(200, json={"result": 1, "data": "pong"}))
    url = "https://z138.fpg.ru/zeon/api/v2/start.php"

    # When it is pinged
    client.ping(PbxConnection(server_url=url, secret=SECRET))

    # Then that very URL is called
    assert str(seen[0].url) == url


def test_encode_body_is_php_style() -> None:
    # Given values with a space, a plus, a tilde, cyrillic and form delimiters
    pairs = [("text", "a b+c Привет~"), ("x", "a&b=c*")]

    # When they are encoded
    body = encode_body(pairs)

    # Then it is what PHP http_build_query gives: space as +, UTF-8 percent-escapes, ~ and * escaped
    assert body == "text=a+b%2Bc+%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%7E&x=a%26b%3Dc%2A"


def test_bearer_mode_sends_the_token_header_and_no_hash() -> None:
    # Given a bearer-mode project
    client, seen = _recording()

    # When an employee call is started
    client.start_employee_call(_conn(auth_mode="bearer"), "346", "79004443322")

    # Then the secret travels as a bearer token and the body has no hash
    (request,) = seen
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.content == EMPLOYEE_BODY.encode("ascii")


def test_employee_call_uses_the_projects_method_and_parameter_names() -> None:
    # Given a PBX whose originate method and parameters are named differently
    client, seen = _recording()
    conn = _conn(employee_method="originate", param_names={"ext": "from", "phone": "to"})

    # When an employee call is started
    client.start_employee_call(conn, "346", "79004443322")

    # Then the overridden names are sent, in the protocol order
    assert seen[0].content.decode().startswith("topic=base&method=originate&from=346&to=79004443322&hash=")


def test_group_call_uses_the_projects_method_and_group_parameter_name() -> None:
    # Given a PBX whose group method and group parameter are named differently (phone left as is)
    client, seen = _recording()
    conn = _conn(group_method="queue-call", param_names={"group": "queue"})

    # When a group call is started
    client.start_group_call(conn, "3", "79004443322")

    # Then the overridden names are sent and the unmapped one keeps its logical name
    assert seen[0].content.decode().startswith("topic=base&method=queue-call&queue=3&phone=79004443322&hash=")


def test_method_list_calls_get_method_list() -> None:
    # Given a PBX that lists its methods
    client, seen = _recording(httpx.Response(200, json={"result": 1, "data": ["ping", "call-employee"]}))

    # When the method list is asked for
    methods = client.method_list(_conn())

    # Then get-method-list is called and its data returned
    assert seen[0].content.decode().startswith("topic=base&method=get-method-list&hash=")
    assert methods == ["ping", "call-employee"]


def test_request_accepts_a_mapping_and_a_topic() -> None:
    # Given any PBX method with a mapping of parameters
    client, seen = _recording(httpx.Response(200, json={"result": 1, "data": []}))

    # When it is called under another topic
    client.request(_conn(), "get-calls", {"date_from": "2024-05-01 00:00:00"}, topic="stat")

    # Then topic, method and parameters are sent in that order
    assert seen[0].content.decode().startswith("topic=stat&method=get-calls&date_from=2024-05-01+00%3A00%3A00&hash=")


def test_success_returns_the_replys_data() -> None:
    # Given a PBX that starts the call
    client, _ = _recording(httpx.Response(200, json={"result": 1, "data": {"call_id": "1716.7"}}))

    # When an employee call is started
    data = client.start_employee_call(_conn(), "346", "79004443322")

    # Then the reply's data comes back
    assert data == {"call_id": "1716.7"}


def test_result_0_raises_pbx_error_with_the_pbx_text() -> None:
    # Given a PBX that refuses the call
    client, _ = _recording(httpx.Response(200, json={"result": 0, "text": "Номер занят"}))

    # When an employee call is started
    with pytest.raises(PbxError) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then the error is a 502 carrying the PBX's own words
    assert "Номер занят" in raised.value.message
    assert raised.value.status_code == 502


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(500, text="<html>Internal Server Error</html>"),
        httpx.Response(200, text="<br /><b>Warning</b>: mysqli_connect()"),
        httpx.Response(200, json={"data": "no result"}),
        httpx.Response(200, json=["result", 1]),
        httpx.Response(302, headers={"Location": "https://a00.abc.ru/login"}),
    ],
    ids=["http_500", "not_json", "no_result", "not_an_object", "redirect"],
)
def test_a_reply_that_is_not_a_pbx_answer_raises_pbx_error(reply: httpx.Response) -> None:
    # Given a PBX answering something that is not its JSON
    client, _ = _recording(reply)

    # When it is called, then it is a PBX error
    with pytest.raises(PbxError):
        client.ping(_conn())


def test_bom_before_the_json_is_tolerated() -> None:
    # Given a PHP script that emits a UTF-8 byte order mark first
    client, _ = _recording(httpx.Response(200, content=b'\xef\xbb\xbf{"result": 1, "data": "pong"}'))

    # When it is pinged, then the reply is read
    assert client.ping(_conn()) == "pong"


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout])
def test_timeout_raises_pbx_timeout_after_exactly_one_attempt(exc_type: type[httpx.HTTPError]) -> None:
    # Given a PBX that does not answer in time
    client, seen = _failing(exc_type)

    # When a call is started
    with pytest.raises(PbxTimeout):
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then it was not retried: the call may already be ringing
    assert len(seen) == 1


def test_timeout_comes_from_the_connection() -> None:
    # Given a project with a 3 s PBX timeout
    client, seen = _recording()

    # When a call is started
    client.start_employee_call(_conn(timeout_seconds=3.0), "346", "79004443322")

    # Then reading the answer waits 3 s at most
    assert seen[0].extensions["timeout"]["read"] == 3.0


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout])
def test_connect_failure_is_retried_once_then_pbx_unreachable(exc_type: type[httpx.HTTPError]) -> None:
    # Given a PBX that cannot be connected to (nothing is ever sent)
    client, seen = _failing(exc_type)

    # When a call is started
    with pytest.raises(PbxError) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then exactly two attempts were made, and the error names the PBX
    assert len(seen) == 2
    assert raised.value.message.startswith(f"PBX unreachable at {URL}")


def test_connect_failure_then_success_returns_the_data() -> None:
    # Given a PBX whose first connect fails
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"result": 1, "data": {"call_id": "1.2"}})

    # When a call is started
    data = _client(handler).start_employee_call(_conn(), "346", "79004443322")

    # Then the second attempt started it
    assert data == {"call_id": "1.2"}
    assert len(seen) == 2


@pytest.mark.parametrize("exc_type", [httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError])
def test_failure_after_sending_raises_pbx_error_after_exactly_one_attempt(exc_type: type[httpx.HTTPError]) -> None:
    # Given a connection that breaks once the request may have reached the PBX
    client, seen = _failing(exc_type)

    # When a call is started
    with pytest.raises(PbxError):
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then it was not retried
    assert len(seen) == 1


@pytest.mark.parametrize(
    "exc_type", [httpx.ReadTimeout, httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError]
)
def test_the_secret_and_hash_never_appear_in_errors_or_logs(
    exc_type: type[httpx.HTTPError], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a failing PBX and captured logs
    client, _ = _failing(exc_type)
    caplog.set_level(logging.DEBUG)

    # When a call is started
    with pytest.raises((PbxError, PbxTimeout)) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then neither the secret nor the hash is in the message or any log record
    shown = [str(raised.value), raised.value.message, caplog.text, *(str(r.__dict__) for r in caplog.records)]
    assert not any(SECRET in text or EMPLOYEE_HASH in text for text in shown)


def test_a_pbx_text_echoing_the_secret_or_a_hash_is_redacted() -> None:
    # Given a PBX whose error text repeats what it received
    text = f"hash {EMPLOYEE_HASH} does not match salt {SECRET}"
    client, _ = _recording(httpx.Response(200, json={"result": 0, "text": text}))

    # When it is called
    with pytest.raises(PbxError) as raised:
        client.ping(_conn())

    # Then the secret and the hash are masked
    assert SECRET not in str(raised.value)
    assert EMPLOYEE_HASH not in str(raised.value)
    assert "***" in str(raised.value)


def test_repr_of_a_connection_hides_the_secret() -> None:
    # Given a connection, when it is shown, then the secret is not
    text = repr(_conn(auth_mode="bearer"))
    assert SECRET not in text
    assert URL in text


def test_get_pbx_client_is_one_cached_client() -> None:
    # Given the factory, when it is called twice, then the same client (and connection pool) comes back
    assert get_pbx_client() is get_pbx_client()
