"""Hostile requests to the demo project's webhook (its known secret) through the REAL local stack.

Random bytes, random JSON, forms and JSON objects made of the contract's alias names with random values, multipart
bodies, random content types and charsets, query strings, oversize bodies. Every request is answered without a 5xx,
with a JSON object; 200 means a call was recorded (once), a 4xx names the problem AND the raw request was kept
(a `REJECTED#` item holding that body): checked per request, and by counting the table's items at the end.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from fuzzing import Answer, WebhookLedger, check_answer, describe_request, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from devstack.gateway import is_binary
from devstack.openapi import webhook_field_names
from devstack.template import Template
from iptelefon.data.call_records import call_sk
from iptelefon.domain.webhook_body import WRAPPER_KEYS

TEMPLATE = Template()

MAX_BODY_BYTES = 64 * 1024
URL_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]+")
FIELD_NAMES = [*webhook_field_names(), *WRAPPER_KEYS, "lost", "waiting"]
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
MEDIA_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
    "text/json",
    "application/vnd.zeon+json",
    "application/octet-stream",
    "application/xml",
    "*/*",
    "",
]
# Real ones a PBX may declare, and names Python knows but cannot decode text with, and nonsense.
CHARSETS = ["utf-8", "windows-1251", "koi8-r", "utf-16", "utf-32", "latin-1", "idna", "punycode", "unicode_escape"]
CHARSETS += ["base64", "rot13", "zlib", "hex", "utf-8-sig", "x-unknown", '"utf-8"', "'cp1251'", ""]
# Values the parser gives meaning to, and near misses.
MEANINGFUL = [
    "IN", "OUT", "in", "out", "incoming", "outbound", "входящий", "исходящая", "ANSWERED", "NO ANSWER", "busy",
    "failed", "cancel", "0", "1", "-1", "00:02:35", "2:35", "99:99:99", "1e400", "NaN", "inf", "-0", "1709290800.1843",
    "2024-03-01 14:00:00", "01.03.2024 14:00", "2024-03-01T14:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01",
    "1709290800", "1709290800123", "346", "346,347", "https://pbx.example/rec/1.mp3", "http://", "https://x",
    "ftp://pbx.example/1.mp3", "javascript:alert(1)", "//pbx.example/1.mp3", "null", "true", "{}", "[]",
    '{"src": "79004443322"}', "%00", "\x00", "\u202e", "😀",
]  # fmt: skip


class HostileRequest:
    """One request to the webhook. A plain class: Hypothesis prints a failing example by this short repr."""

    def __init__(self, method: str, query: list[tuple[str, str]], body: bytes, content_type: str | None) -> None:
        self.method = method
        self.query = query
        self.body = body
        self.content_type = content_type

    def __repr__(self) -> str:
        body = f"{self.body[:200]!r}" + (f"... ({len(self.body)} bytes)" if len(self.body) > 200 else "")
        return f"HostileRequest({self.method}, query={self.query!r}, content_type={self.content_type!r}, body={body})"


# -- strategies ------------------------------------------------------------------------------------------------------
def alias_names() -> st.SearchStrategy[str]:
    """The contract's field names as a PBX may spell them."""
    return st.sampled_from(FIELD_NAMES).flatmap(
        lambda n: st.sampled_from([n, n.upper(), n.capitalize(), f" {n} ", f"{n}[]"])
    )


def field_names() -> st.SearchStrategy[str]:
    return st.one_of(alias_names(), alias_names(), alias_names(), st.text(max_size=20))


def phone_texts() -> st.SearchStrategy[str]:
    digits = st.from_regex(r"9[0-9]{9}", fullmatch=True)
    return st.one_of(
        digits.map(lambda d: f"7{d}"),
        digits.map(lambda d: f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"),
        digits.map(lambda d: f"8{d}"),
        st.text("0123456789 +-().", max_size=24),
        st.integers(0, 10**17).map(str),
        st.sampled_from(["", "+", "8", "tel:", "00", "+0000000000000", "7" * 40, "+375291234567", "+12025550143"]),
    )


def text_values() -> st.SearchStrategy[str]:
    return st.one_of(phone_texts(), st.sampled_from(MEANINGFUL), st.text(max_size=60))


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=True, allow_infinity=True),
        text_values(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(field_names(), inner, max_size=4),
        max_leaves=20,
    )


def content_types(*preferred: str) -> st.SearchStrategy[str | None]:
    with_charset = st.builds(
        lambda media, charset: f"{media}; charset={charset}", st.sampled_from(MEDIA_TYPES), st.sampled_from(CHARSETS)
    )
    return st.one_of(
        *(st.just(p) for p in preferred),
        st.none(),
        st.sampled_from(MEDIA_TYPES),
        with_charset,
        st.text(PRINTABLE, max_size=60).filter(lambda t: t == t.strip()),  # a header value has no edge whitespace
    )


def queries() -> st.SearchStrategy[list[tuple[str, str]]]:
    """A few query parameters next to a body (names of any kind: the "GET query" kind)."""
    return st.lists(st.tuples(alias_names(), text_values()), max_size=3)


def _form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


@st.composite
def random_bytes(draw: st.DrawFn) -> HostileRequest:
    return HostileRequest("POST", draw(queries()), draw(st.binary(max_size=4096)), draw(content_types()))


@st.composite
def random_json(draw: st.DrawFn) -> HostileRequest:
    text = json.dumps(draw(json_values()), ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # and broken JSON: cut, or with a stray character
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "}", "{", ",", '"', "\\", "\x00"]))
    depth = draw(st.sampled_from([0, 0, 0, 50, 999, 1100, 5000]))  # nesting (Python's recursion limit is ~1000)
    text = '{"data":' * depth + text + "}" * depth
    return HostileRequest("POST", draw(queries()), text.encode(), draw(content_types("application/json")))


@st.composite
def alias_forms(draw: st.DrawFn) -> HostileRequest:
    pairs = draw(st.lists(st.tuples(field_names(), text_values()), min_size=1, max_size=12))
    if draw(st.booleans()):  # one wrapper level holding a JSON object
        inner = draw(st.dictionaries(field_names(), text_values(), max_size=6))
        pairs.append((draw(st.sampled_from(WRAPPER_KEYS)), json.dumps(inner)))
    charset = draw(st.sampled_from(CHARSETS))
    media = "application/x-www-form-urlencoded"
    kind = draw(content_types(media, f"{media}; charset={charset}"))
    try:
        body = urlencode(pairs, encoding=charset or "utf-8").encode("ascii")
    except (LookupError, UnicodeError, ValueError):
        body = _form(pairs)
    return HostileRequest("POST", draw(queries()), body, kind)


@st.composite
def alias_json(draw: st.DrawFn) -> HostileRequest:
    fields = draw(st.dictionaries(field_names(), json_values(), min_size=1, max_size=12))
    wrapper = draw(st.sampled_from([None, *WRAPPER_KEYS]))
    if wrapper is not None:
        outer = draw(st.dictionaries(field_names(), json_values(), max_size=4))
        outer[wrapper] = json.dumps(fields) if draw(st.booleans()) else fields
        fields = outer
    body = json.dumps(fields, ensure_ascii=draw(st.booleans())).encode()
    return HostileRequest("POST", draw(queries()), body, draw(content_types("application/json")))


@st.composite
def multiparts(draw: st.DrawFn) -> HostileRequest:
    boundary = draw(st.text(string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=70))
    parts = []
    for name, value in draw(st.lists(st.tuples(field_names(), text_values()), min_size=1, max_size=8)):
        headers = f'Content-Disposition: form-data; name="{name}"'
        if draw(st.integers(0, 9)) == 0:
            headers += '; filename="call.txt"'
        part_type = draw(
            st.sampled_from(
                [None, None, "text/plain; charset=utf-8", "text/plain; charset=koi8-r", "application/octet-stream"]
            )
        )
        if part_type:
            headers += f"\r\nContent-Type: {part_type}"
        parts.append(f"--{boundary}\r\n{headers}\r\n\r\n{value}\r\n".encode("utf-8", "replace"))
    end = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}"]))
    body = b"".join(parts) + end.encode()
    declared = draw(st.sampled_from([boundary, boundary, f'"{boundary}"', "other", ""]))
    kind = draw(content_types(f"multipart/form-data; boundary={declared}"))
    return HostileRequest("POST", draw(queries()), body, kind)


@st.composite
def oversize(draw: st.DrawFn) -> HostileRequest:
    # just over the limit, or far over it (API Gateway takes up to 10 MB): text, bytes that are not UTF-8, NULs
    size = draw(st.one_of(st.integers(MAX_BODY_BYTES + 1, 70_000), st.integers(130_000, 400_000)))
    head = _form([("id", "oversize"), ("src", "79004443322")]) + b"&note="
    fill = draw(st.sampled_from([b"x", "я".encode(), "😀".encode(), b"\x00", b"%", b"\xff", b"\x80", b"\xc3"]))
    body = (head + fill * size)[:size]
    media = draw(content_types("application/x-www-form-urlencoded", "application/json", "application/octet-stream"))
    return HostileRequest("POST", [], body, media)


@st.composite
def get_queries(draw: st.DrawFn) -> HostileRequest:
    pairs = draw(st.lists(st.tuples(field_names(), text_values()), max_size=12))
    return HostileRequest("GET", pairs, b"", None)


HOSTILE = {
    "random bytes": random_bytes(),
    "random JSON": random_json(),
    "alias form": alias_forms(),
    "alias JSON": alias_json(),
    "multipart": multiparts(),
    "oversize": oversize(),
    "GET query": get_queries(),
}


# -- the fuzz --------------------------------------------------------------------------------------------------------
@pytest.fixture
def ledger(local_stack: dict[str, Any]) -> Iterator[WebhookLedger]:
    """What the table holds when the test starts: each test accounts for its own requests."""
    ledger = WebhookLedger.open(local_stack)
    yield ledger
    ledger.dynamodb.close()


def send(client: httpx.Client, url: str, request: HostileRequest) -> Answer:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in request.query)
    target = f"{url}?{query}" if query else url
    headers = {"Content-Type": request.content_type} if request.content_type is not None else {}
    response = client.request(request.method, target, content=request.body or None, headers=headers)
    return Answer(
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        describe_request(request.method, target, headers, request.body),
    )


def read_back(read: Callable[[], Any], answer: Answer) -> Any:
    """What `read` returns from the table; a stored item the SDK cannot read back is a failure of that request."""
    try:
        return read()
    except Exception as error:
        raise AssertionError(f"what this request stored cannot be read back ({error!r}):\n{answer}") from error


def assert_call_readable(
    client: httpx.Client, stack: dict[str, Any], ledger: WebhookLedger, call_key: str, answer: Answer
) -> None:
    """A recorded call is readable: through the read API when its id fits a URL path as it is, else in the table."""
    if URL_SAFE_ID.fullmatch(call_key) and call_key.strip("."):
        url = f"{stack['api_url']}/v1/calls/{call_key}"
        got = client.get(url, headers={"Authorization": f"Bearer {stack['bot_token']}"})
        assert got.status_code == 200 and got.json().get("call_key") == call_key, (
            f"GET /v1/calls/{call_key} -> {got.status_code} {got.text[:200]}\nafter:\n{answer}"
        )
    else:
        assert read_back(lambda: ledger.get(call_sk(call_key)), answer) is not None, f"not stored:\n{answer}"


def delivered(request: HostileRequest) -> bytes:
    """The body as API Gateway hands it to the function: byte for byte for a binary media type, else as UTF-8 text
    (bytes that are not UTF-8 become U+FFFD on the way, on AWS and in the local gateway alike)."""
    if is_binary(request.content_type, TEMPLATE.binary_media_types()):
        return request.body
    return request.body.decode("utf-8", "replace").encode()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_every_hostile_webhook_is_answered_and_kept(
    kind: str, local_stack: dict[str, Any], ledger: WebhookLedger, fuzz_tally: Any
) -> None:
    @fuzz_settings()
    @given(request=HOSTILE[kind])
    def one_request(request: HostileRequest) -> None:
        # When the PBX (or anyone who knows the secret) posts it
        answer = send(client, local_stack["webhook_url"], request)
        fuzz_tally.count(f"POST|GET /iptelefon_webhook/<demo secret> {kind}", answer.status)
        # Then: no 5xx, a JSON object; 200 recorded the call, a 4xx names the problem
        body = check_answer(answer)
        ledger.record(answer)
        if len(request.body) > MAX_BODY_BYTES:
            assert (answer.status, body["error"]) == (413, "payload_too_large"), str(answer)
        elif answer.status != 200:
            assert answer.status == 400, str(answer)
            assert body["error"] in {"invalid_phone", "invalid_json", "validation_error"}, str(answer)
        if answer.status == 200 and body.get("duplicate") is False:  # and the recorded call can be read back
            assert_call_readable(client, local_stack, ledger, body["call_key"], answer)
        elif answer.status != 200:  # and the raw request was kept, as it came
            kept = read_back(lambda: ledger.newest("REJECTED#"), answer)
            assert kept is not None, f"nothing kept:\n{answer}"
            assert kept["error"]["S"] == body["error"] and int(kept["status"]["N"]) == answer.status, str(answer)
            assert int(kept["body_bytes"]["N"]) == len(delivered(request)), f"another request was kept:\n{answer}"
            assert kept["body"]["S"][:200] == request.body.decode("utf-8", "replace")[:200], str(answer)

    with httpx.Client(timeout=60) as client:
        one_request()
    # And the table holds exactly one kept raw request per refusal and one call per new call
    ledger.verify()
