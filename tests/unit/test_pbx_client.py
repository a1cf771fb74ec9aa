"""PbxClient against httpx.MockTransport: the start.php wire format, reply handling, retries and secret hygiene."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from iptelefon.adapters.pbx import PbxClient, encode_body, get_pbx_client
from iptelefon.domain.errors import PbxError, PbxRefused, PbxReplyUnreadable, PbxTimeout
from iptelefon.domain.models import PBX_CALL_NAMES
from iptelefon.domain.pbx_connection import PbxConnection

SECRET = "s3cr3t"
URL = "https://a00.abc.ru/b3/api/v2/start.php"
# Computed once by hand: `printf %s 'topic=base&method=call-me&src=346&dst=79004443322s3cr3t' | md5sum`.
EMPLOYEE_BODY = "topic=base&method=call-me&src=346&dst=79004443322"
EMPLOYEE_HASH = "3e1694c7249c0e7cfc276c166b0503bc"

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> PbxClient:
    return PbxClient(httpx.Client(transport=httpx.MockTransport(handler)))


def _recording(reply: httpx.Response | None = None) -> tuple[PbxClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply if reply is not None else httpx.Response(200, json={"code": "success", "callid": "1.1"})

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


def test_a_connection_with_the_classic_names_sends_contract_1s_methods() -> None:
    # Given a project that keeps contract §1's names (every project stored before issue 19)
    client, seen = _recording()
    classic = PBX_CALL_NAMES["classic"]
    conn = _conn(employee_method=classic.employee_method, group_method=classic.group_method, param_names={})

    # When an employee call and a group call are started
    client.start_employee_call(conn, "346", "79004443322")
    client.start_group_call(conn, "3", "79004443322")

    # Then call-employee with ext/phone and call-group with group/phone are sent
    assert seen[0].content.decode().startswith("topic=base&method=call-employee&ext=346&phone=79004443322&hash=")
    assert seen[1].content.decode().startswith("topic=base&method=call-group&group=3&phone=79004443322&hash=")


def test_the_default_group_call_is_call_me_from_the_groups_number() -> None:
    # Given a connection with the default names (an assumption for the group call: README)
    client, seen = _recording()

    # When a group call is started
    client.start_group_call(_conn(), "3", "79004443322")

    # Then call-me rings the group's number as src and connects dst
    assert seen[0].content.decode().startswith("topic=base&method=call-me&src=3&dst=79004443322&hash=")


def test_method_list_calls_get_method_list() -> None:
    # Given a PBX that lists its methods
    client, seen = _recording(httpx.Response(200, json={"result": 1, "data": ["ping", "call-employee"]}))

    # When the method list is asked for
    methods = client.method_list(_conn())

    # Then get-method-list is called and its names returned
    assert seen[0].content.decode().startswith("topic=base&method=get-method-list&hash=")
    assert methods == ["ping", "call-employee"]


@pytest.mark.parametrize(
    ("reply", "points"),
    [
        (httpx.Response(200, json=["346", "347"]), ["346", "347"]),  # the public integration's bare list
        (
            httpx.Response(200, json={"result": 1, "data": [346, {"number": "347"}, {"exten": 348}]}),
            ["346", "347", "348"],
        ),
        (httpx.Response(200, json={"result": 1, "data": {"points": [{"name": "349"}, None, " "]}}), ["349"]),
        (httpx.Response(200, json={"result": 1, "data": "346, 347"}), ["346", "347"]),
        (httpx.Response(200, json={"result": 1, "data": []}), []),
    ],
    ids=["bare_list", "result_data_mixed", "wrapped_objects", "text", "empty"],
)
def test_points_lists_the_pbxs_extensions_whatever_the_shape(reply: httpx.Response, points: list[str]) -> None:
    # Given a PBX answering get-points in one of the shapes seen or plausible
    client, seen = _recording(reply)

    # When its points are asked for, then get-points is called and the numbers come back as text
    assert client.points(_conn()) == points
    assert seen[0].content.decode().startswith("topic=base&method=get-points&hash=")


def test_points_refused_is_a_pbx_refusal() -> None:
    # Given a PBX without get-points (it says so), when the points are asked for, then its words come back
    client, _ = _recording(httpx.Response(200, json={"result": 0, "text": "Unknown method"}))
    with pytest.raises(PbxRefused, match="Unknown method"):
        client.points(_conn())


def test_request_accepts_a_mapping_and_a_topic() -> None:
    # Given any PBX method with a mapping of parameters
    client, seen = _recording(httpx.Response(200, json={"result": 1, "data": []}))

    # When it is called under another topic
    client.request(_conn(), "get-calls", {"date_from": "2024-05-01 00:00:00"}, topic="stat")

    # Then topic, method and parameters are sent in that order
    assert seen[0].content.decode().startswith("topic=stat&method=get-calls&date_from=2024-05-01+00%3A00%3A00&hash=")


@pytest.mark.parametrize(
    ("reply", "pbx_call_id"),
    [
        ({"code": "success", "callid": "1716.7"}, "1716.7"),  # the public integration's call-me
        ({"code": "Success", "callid": 17167}, "17167"),
        ({"result": 1, "data": {"call_id": "1716.7"}}, "1716.7"),  # contract §1
        ({"result": "1", "data": {"linkedid": "1716.8"}}, "1716.8"),
        ({"result": 1, "data": None}, None),
        # The PBX said "success" without an id: the call started (its webhook still links it by the phone).
        ({"code": "success"}, None),
        ({"code": "success", "callid": ""}, None),
    ],
    ids=["code", "code_int_id", "result", "result_text_1", "result_no_data", "code_no_callid", "code_empty_callid"],
)
def test_a_started_call_is_read_in_either_shape_with_its_pbx_call_id(reply: object, pbx_call_id: str | None) -> None:
    # Given a PBX that starts the call and says so
    client, _ = _recording(httpx.Response(200, json=reply))

    # When an employee call is started
    started = client.start_employee_call(_conn(), "346", "79004443322")

    # Then the reply is a confirmed success with the PBX's id of the call (when it named one)
    assert (started.confirmed, started.pbx_call_id) == (True, pbx_call_id)


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        ({"result": 0, "text": "Номер занят"}, "Номер занят"),
        ({"result": "0", "error": "Нет линий"}, "Нет линий"),
        ({"code": "error", "text": "Неверный номер"}, "Неверный номер"),
        ({"code": "ERROR", "message": "wrong src"}, "wrong src"),
        ({"code": "error"}, "code 'error' without text"),
        ({"result": True, "data": {"call_id": "1"}}, "result True without text"),  # JSON true is not 1
    ],
    ids=["result_text", "result_error", "code_text", "code_message", "code_no_text", "result_true"],
)
def test_a_clear_refusal_in_either_shape_is_pbx_refused_with_the_pbxs_words(reply: object, words: str) -> None:
    # Given a PBX that refuses the call
    client, _ = _recording(httpx.Response(200, json=reply))

    # When an employee call is started
    with pytest.raises(PbxRefused) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then it is a 502 refusal (nothing started) carrying the PBX's own words
    assert words in raised.value.message
    assert (raised.value.status_code, raised.value.code) == (502, "pbx_error")


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="<html><body>Welcome</body></html>"),
        httpx.Response(200, text="<br /><b>Warning</b>: mysqli_connect()"),
        httpx.Response(200, content=b""),
        httpx.Response(200, json={"status": "ok", "uid": "1716.7"}),
        httpx.Response(200, json={"code": "queued", "callid": "1716.7"}),
        httpx.Response(200, json={"text": "ok"}),
        httpx.Response(200, json=["1716.7"]),
        httpx.Response(200, json="started"),
    ],
    ids=["html", "php_warning", "empty", "unknown_object", "unknown_code", "text_only", "bare_list", "bare_string"],
)
def test_a_call_start_reply_nobody_can_read_is_unreadable_after_one_request(reply: httpx.Response) -> None:
    # Given a PBX that got the request and answered in words we do not know (the call may be ringing)
    client, seen = _recording(reply)

    # When an employee call is started
    with pytest.raises(PbxReplyUnreadable) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")

    # Then it is neither a start nor a refusal, and the request was sent once
    assert not isinstance(raised.value, PbxRefused)
    assert len(seen) == 1


def test_an_unreadable_reply_is_logged_redacted_and_never_quoted_to_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a PBX whose HTML page repeats what it received
    client, _ = _recording(httpx.Response(200, text=f"<p>hash={EMPLOYEE_HASH} key={SECRET} inside</p>"))
    caplog.set_level(logging.INFO)

    # When a call is started, then the caller gets the short reason only
    with pytest.raises(PbxReplyUnreadable) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")
    assert raised.value.message == "PBX answered call-me with something that is not JSON (not_json)"
    # and the log keeps the page, without the secret or the hash
    logged = _service_log(caplog)
    assert "key=*** inside" in logged
    assert SECRET not in logged and EMPLOYEE_HASH not in logged


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (httpx.Response(500, text="<html>Internal Server Error</html>"), PbxError),
        (httpx.Response(302, headers={"Location": "https://a00.abc.ru/login"}), PbxRefused),
        (httpx.Response(403, text="Forbidden"), PbxRefused),
    ],
    ids=["http_500", "redirect", "http_403"],
)
def test_http_errors_keep_their_meaning(reply: httpx.Response, error: type[PbxError]) -> None:
    # Given a PBX answering with an HTTP error: a 5xx may have run the method, a 3xx/4xx did not
    client, _ = _recording(reply)

    # When a call is started, then it is that error, never an "unreadable" 202
    with pytest.raises(PbxError) as raised:
        client.start_employee_call(_conn(), "346", "79004443322")
    assert type(raised.value) is error


@pytest.mark.parametrize(
    "reply",
    [{"result": 1, "data": "pong"}, {"text": "pong"}, {"result": 1, "text": "pong"}, "pong", {"text": " Pong\n"}],
    ids=["result_data", "text", "result_text", "bare_string", "spaced"],
)
def test_ping_is_pong_in_either_shape(reply: object) -> None:
    # Given a PBX answering ping in one of its shapes, when pinged, then it is "pong"
    client, seen = _recording(httpx.Response(200, json=reply))
    assert client.ping(_conn()) == "pong"
    assert seen[0].content.decode().startswith("topic=base&method=ping&hash=")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (httpx.Response(200, json={"text": "nope"}), PbxError),
        (httpx.Response(200, json={"data": "no result"}), PbxError),
        (httpx.Response(200, json=["result", 1]), PbxError),
        (httpx.Response(200, json={"result": 0, "text": "bad hash"}), PbxRefused),
        (httpx.Response(200, text="<br /><b>Warning</b>: mysqli_connect()"), PbxReplyUnreadable),
    ],
    ids=["other_text", "no_result", "list", "refused", "not_json"],
)
def test_ping_without_pong_is_a_pbx_error(reply: httpx.Response, error: type[PbxError]) -> None:
    # Given a PBX answering ping with anything but pong, when pinged, then a PBX error says what came
    client, _ = _recording(reply)
    with pytest.raises(error):
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

    # Then exactly two attempts were made, and the error says why in one word (a closed port looks like a dead host)
    assert len(seen) == 2
    assert raised.value.message == "PBX unreachable (unreachable)"


def test_connect_failure_then_success_returns_the_data() -> None:
    # Given a PBX whose first connect fails
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"code": "success", "callid": "1.2"})

    # When a call is started
    reply = _client(handler).start_employee_call(_conn(), "346", "79004443322")

    # Then the second attempt started it
    assert reply.pbx_call_id == "1.2"
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


# -- what a caller is told (issue 20): a short reason, never the PBX's body or a redirect target -----------------------
BODY_OF_SOMETHING_ELSE = '<?xml version="1.0"?><ListAllMyBucketsResult><Name>internal-bucket</Name>'


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            httpx.Response(200, text=BODY_OF_SOMETHING_ELSE),
            "PBX answered ping with something that is not JSON (not_json)",
        ),
        (
            httpx.Response(302, headers={"Location": "http://169.254.169.254/internal-bucket"}),
            "PBX answered HTTP 302 to ping (a redirect: check server_url)",
        ),
        (httpx.Response(200, json={"data": {"internal-bucket": 1}}), "PBX answered ping without pong"),
        (httpx.Response(200, json={"text": "wrong hash"}), "PBX answered ping without pong: wrong hash"),
        (httpx.Response(200, json={"result": 0, "text": "wrong hash"}), "PBX error on ping: wrong hash"),
    ],
    ids=["not_json", "redirect", "other_json", "pbx_text", "pbx_refusal"],
)
def test_a_failed_check_tells_a_short_reason_or_the_pbxs_own_text(reply: httpx.Response, message: str) -> None:
    client, _ = _recording(reply)
    with pytest.raises(PbxError) as raised:
        client.ping(_conn())
    assert raised.value.message == message
    assert "internal-bucket" not in str(raised.value.body())


def test_the_pbx_url_is_logged_without_userinfo_or_query(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = _recording(httpx.Response(200, json={"text": "pong"}))
    caplog.set_level(logging.INFO)
    client.ping(PbxConnection(server_url="https://admin:hunter2pw@a00.abc.ru/start.php?key=k9", secret=SECRET))
    logged = _service_log(caplog)
    assert "https://a00.abc.ru/start.php" in logged
    assert "hunter2pw" not in logged and "k9" not in logged


def _service_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(str(r.__dict__) for r in caplog.records if r.name == "iptelefon-connector")


def test_the_shared_client_keeps_httpx_from_logging_request_urls() -> None:
    # httpx logs every request's full URL at INFO: the shared client's module turns that down
    get_pbx_client()
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
