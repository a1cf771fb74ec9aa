"""Recordings that outlive the PBX's link (issue 25), through the real handlers on moto in-process (DynamoDB, SQS,
S3); the PBX's recording links answer through httpx.MockTransport, or through the real PBX guard (hostile links)."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from devstack.pbx_simulator import RECORDING_MP3
from iptelefon.adapters.pbx import GuardedTransport
from iptelefon.adapters.recording_download import RecordingFetcher
from iptelefon.data.call_events import CallEventStore
from iptelefon.data.call_records import RECORD_LINK_VARIABLE, CallRecordStore
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage, project_pk, update
from iptelefon.data.projects import project_store
from iptelefon.data.recording_archive import S3Archive
from iptelefon.data.recording_items import recording_pk
from iptelefon.data.recordings import RecordingStore, SqsRecordingQueue
from iptelefon.domain.pbx_connection import PbxConnection
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.recordings import CopyDeps, copy_recording, sweep_pending
from read_api.handler import lambda_handler as read_api_handler
from recording_link.handler import lambda_handler as link_handler
from webhook.handler import lambda_handler as webhook_handler

PBX_LINK = "https://pbx.test/records/c-1.mp3"
API_HOST = "api.test"


# -- helpers -----------------------------------------------------------------------------------------------------------
def post_call(project: Any, context: Any, *, link: str | None = PBX_LINK, call_id: str = "c-1") -> dict[str, Any]:
    form = {"id": call_id, "calltype": "IN", "src": "79004443322", "exten": "346", "talktime": "00:00:02"}
    if link:
        form["link"] = link
    event = webhook_event(PBX_SECRET, form)
    event["headers"]["Host"] = API_HOST
    answer = webhook_handler(event, context)
    assert answer["statusCode"] == 200, answer["body"]
    return dict(answer_json(answer))


def variable_link(project_id: str, client_id: str) -> str:
    client = ClientStore(get_storage()).get(project_id, client_id)
    assert client is not None
    return client.variables[RECORD_LINK_VARIABLE]


def recording_id_of(link: str) -> str:
    assert link.startswith(f"https://{API_HOST}/r/"), link
    return link.rsplit("/", 1)[1]


def open_link(recording_id: str, context: Any) -> dict[str, Any]:
    event = api_event("GET", "/r/{recording_id}", f"/r/{recording_id}", path_params={"recording_id": recording_id})
    event["headers"]["Host"] = API_HOST
    return dict(link_handler(event, context))


def location_of(answer: dict[str, Any]) -> str:
    (location,) = answer["multiValueHeaders"]["Location"]  # a REST API proxy answer lists header values
    return str(location)


def mock_fetcher(answer: Callable[[httpx.Request], httpx.Response], *, max_bytes: int = 1024 * 1024) -> Any:
    return RecordingFetcher(httpx.Client(transport=httpx.MockTransport(answer)), max_bytes=max_bytes)


def copy_deps(downloads: Any, *, clock: Callable[[], float] = time.time) -> CopyDeps:
    storage = get_storage()
    return CopyDeps(
        recordings=RecordingStore(storage),
        archive=S3Archive(),
        downloads=downloads,
        projects=project_store(storage),
        calls=CallRecordStore(storage),
        pbx_connection=lambda project: PbxConnection(server_url="https://pbx.test/start.php", secret="s"),
        queue=SqsRecordingQueue(),
        clock=clock,
    )


def mp3(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=RECORDING_MP3, headers={"Content-Type": "audio/mpeg"})


def archived_keys() -> list[str]:
    found = boto3.client("s3").list_objects_v2(Bucket=get_settings().recordings_bucket).get("Contents", [])
    return [o["Key"] for o in found]


def recording_item(recording_id: str) -> dict[str, Any]:
    item = get_storage().get(recording_pk(recording_id), "RECORDING")
    assert item is not None
    return item


@pytest.fixture
def recorded(project: Any, lambda_context: Any) -> Iterator[tuple[Any, str, str]]:
    """A call with a recording link, stored through the webhook: (project, client id, recording id)."""
    answer = post_call(project, lambda_context)
    link = variable_link(project.project.id, answer["client_id"])
    yield project, answer["client_id"], recording_id_of(link)


# -- the stable link ---------------------------------------------------------------------------------------------------
def test_the_variable_holds_our_stable_link_and_the_call_keeps_the_pbx_link(recorded: Any) -> None:
    project, _, recording_id = recorded
    call = CallRecordStore(get_storage()).get(project.project.id, "c-1")
    assert call is not None and call.record_link == PBX_LINK
    assert call.recording_id == recording_id and call.recording_state == "pending"
    # the id is random (not derived from the project or the call) and long enough not to be guessed
    assert len(recording_id) >= 22 and "c-1" not in recording_id and project.project.id not in recording_id
    item = recording_item(recording_id)
    assert (item["project_id"], item["call_key"], item["source_link"], item["state"]) == (
        project.project.id,
        "c-1",
        PBX_LINK,
        "pending",
    )


def test_a_replay_keeps_the_same_link_and_queues_the_copy_again(recorded: Any, lambda_context: Any) -> None:
    project, client_id, recording_id = recorded
    post_call(project, lambda_context)
    assert variable_link(project.project.id, client_id).endswith(f"/r/{recording_id}")
    sqs = boto3.client("sqs")
    bodies = []
    for _ in range(3):
        reply = sqs.receive_message(QueueUrl=get_settings().recording_queue_url, MaxNumberOfMessages=10)
        bodies += [json.loads(m["Body"]) for m in reply.get("Messages", [])]
    assert bodies == [{"recording_id": recording_id}] * 2


def test_a_link_that_comes_later_gets_a_stable_link_too(project: Any, lambda_context: Any) -> None:
    first = post_call(project, lambda_context, link=None, call_id="c-2")
    post_call(project, lambda_context, link="https://pbx.test/records/c-2.mp3", call_id="c-2")
    recording_id = recording_id_of(variable_link(project.project.id, first["client_id"]))
    assert recording_item(recording_id)["source_link"] == "https://pbx.test/records/c-2.mp3"
    call = CallRecordStore(get_storage()).get(project.project.id, "c-2")
    assert call is not None and call.recording_id == recording_id


def test_before_the_copy_the_link_redirects_to_the_pbx(recorded: Any, lambda_context: Any) -> None:
    _, _, recording_id = recorded
    answer = open_link(recording_id, lambda_context)
    assert answer["statusCode"] == 302
    assert location_of(answer) == PBX_LINK
    assert answer["multiValueHeaders"]["Cache-Control"] == ["no-store"]


def test_after_the_copy_the_link_redirects_to_the_archive_even_when_the_pbx_link_died(
    recorded: Any, lambda_context: Any
) -> None:
    project, client_id, recording_id = recorded
    assert copy_recording(copy_deps(mock_fetcher(mp3)), recording_id) == "archived"
    assert archived_keys() == [f"{project.project.id}/c-1.mp3"]

    # the PBX's link is dead now: the stable link does not ask it
    answer = open_link(recording_id, lambda_context)
    location = location_of(answer)
    assert answer["statusCode"] == 302 and location.startswith("https://")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert f"{project.project.id}/c-1.mp3" in urllib.parse.unquote(location)
    bucket, key = get_settings().recordings_bucket, f"{project.project.id}/c-1.mp3"
    stored = boto3.client("s3").get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == RECORDING_MP3 and stored["ContentType"] == "audio/mpeg"

    # the read answers say so
    calls = read_api_handler(
        api_event("GET", "/v1/calls", "/v1/calls", token=project.token, query={"client_id": client_id}), lambda_context
    )
    (call,) = answer_json(calls)["calls"]
    assert call["recording"] == {"state": "archived", "reason": None, "url": f"https://{API_HOST}/r/{recording_id}"}


def test_recording_ready_fires_once_when_the_copy_is_archived_with_the_stable_link(recorded: Any) -> None:
    # Given a call whose PBX link came with it: its completion is an event, its recording not yet
    project, client_id, recording_id = recorded
    outbox = CallEventStore(get_storage())

    def events() -> list[Any]:
        return outbox.unrelayed(datetime.now(UTC) + timedelta(seconds=5))

    assert [e.type for e in events()] == ["call.completed"]
    # When the copy lands, and a redelivered message copies it again
    assert copy_recording(copy_deps(mock_fetcher(mp3)), recording_id) == "archived"
    assert copy_recording(copy_deps(mock_fetcher(mp3)), recording_id) is None
    # Then one recording.ready, naming our lasting link (not the PBX's) and what was archived
    (ready,) = [e for e in events() if e.type == "recording.ready"]
    assert ready.order_key == "c-1" and ready.project_id == project.project.id
    assert ready.data["record_link"] == f"https://{API_HOST}/r/{recording_id}"
    assert ready.data["recording"] == {
        "id": recording_id,
        "content_type": "audio/mpeg",
        "size_bytes": len(RECORDING_MP3),
    }
    assert ready.data["client"]["id"] == client_id


def test_an_unknown_recording_is_a_json_404(project: Any, lambda_context: Any) -> None:
    for unknown in ("x" * 24, "no", "../../etc"):
        answer = open_link(unknown, lambda_context)
        assert answer["statusCode"] == 404
        assert answer_json(answer)["error"] == "not_found"


def test_console_access_sends_the_visitor_to_the_console_and_a_signed_in_user_gets_the_url(
    recorded: Any, other_project: Any, lambda_context: Any
) -> None:
    project, _, recording_id = recorded
    get_storage().write(
        update(project_pk(project.project.id), "PROJECT", "SET recording_access = :c", values={":c": "console"})
    )
    project_store.cache_clear()
    answer = open_link(recording_id, lambda_context)
    assert answer["statusCode"] == 302
    assert location_of(answer) == f"https://{API_HOST}/console#recording={recording_id}"

    def read(token: str | None) -> dict[str, Any]:
        path = f"/v1/recordings/{recording_id}"
        event = api_event("GET", "/v1/recordings/{recording_id}", path, token=token)
        event["pathParameters"] = {"recording_id": recording_id}
        return dict(read_api_handler(event, lambda_context))

    mine = read(project.token)
    assert mine["statusCode"] == 200
    assert answer_json(mine) == {
        "recording_id": recording_id,
        "call_key": "c-1",
        "state": "pending",
        "reason": None,
        "url": PBX_LINK,
    }
    assert read(other_project.token)["statusCode"] == 404  # another project's recording: as if it did not exist
    assert read(None)["statusCode"] == 401


# -- the copy --------------------------------------------------------------------------------------------------------
def test_a_5xx_is_retried_by_the_queue_and_the_next_try_archives(recorded: Any) -> None:
    from iptelefon.domain.recordings import RecordingUnavailable

    _, _, recording_id = recorded
    answers = iter([httpx.Response(503), None])

    def flaky(request: httpx.Request) -> httpx.Response:
        return next(answers) or mp3(request)

    deps = copy_deps(mock_fetcher(flaky))
    with pytest.raises(RecordingUnavailable):  # the message comes back after the visibility timeout
        copy_recording(deps, recording_id)
    assert recording_item(recording_id)["state"] == "pending"
    assert copy_recording(deps, recording_id) == "archived"
    assert copy_recording(deps, recording_id) is None  # a redelivered message changes nothing


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("https://127.0.0.1/records/x.mp3", "link refused"),
        ("https://169.254.169.254/latest/meta-data/", "link refused"),
        ("http://pbx.test/records/x.mp3", "link refused"),  # plain http on a public stage
    ],
)
def test_a_hostile_link_is_refused_by_the_pbx_guard_and_never_retried(
    project: Any, lambda_context: Any, link: str, reason: str
) -> None:
    answer = post_call(project, lambda_context, link=link)
    recording_id = recording_id_of(variable_link(project.project.id, answer["client_id"]))
    guarded = RecordingFetcher(httpx.Client(transport=GuardedTransport("public")), max_bytes=1024)
    assert copy_recording(copy_deps(guarded), recording_id) == "failed"
    item = recording_item(recording_id)
    assert item["state"] == "failed" and item["reason"].startswith(reason)
    assert "gsi1pk" not in item  # off the pending index: the sweep never sends it again
    assert archived_keys() == []


def _huge_by_header(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "audio/mpeg", "Content-Length": str(10**9)}, content=b"")


def _huge_by_stream(_: httpx.Request) -> httpx.Response:
    # no Content-Length: the cap is enforced while streaming
    chunks = (RECORDING_MP3[:4] + bytes(64 * 1024) for _ in range(100))
    return httpx.Response(200, headers={"Content-Type": "audio/mpeg"}, content=chunks)


def _html(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html>login</html>")


def _octet_stream_text(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "application/octet-stream"}, content=b"<html>nope</html>")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_huge_by_header, "too big"),
        (_huge_by_stream, "too big"),
        (_html, "not audio (text/html)"),
        (_octet_stream_text, "not audio"),
        (lambda _: httpx.Response(404), "gone (HTTP 404)"),
    ],
)
def test_what_is_not_a_recording_fails_with_its_reason(
    recorded: Any, lambda_context: Any, answer: Callable[[httpx.Request], httpx.Response], reason: str
) -> None:
    project, _, recording_id = recorded
    assert copy_recording(copy_deps(mock_fetcher(answer)), recording_id) == "failed"
    assert recording_item(recording_id)["reason"].startswith(reason)
    assert archived_keys() == []
    # the call says why, and its stable link still leads to the PBX's link
    call = CallRecordStore(get_storage()).get(project.project.id, "c-1")
    assert call is not None and (call.recording_state, call.recording_reason) == (
        "failed",
        recording_item(recording_id)["reason"],
    )
    assert location_of(open_link(recording_id, lambda_context)) == PBX_LINK


def test_an_octet_stream_with_an_mp3_signature_is_archived_as_audio(recorded: Any) -> None:
    _, _, recording_id = recorded

    def octets(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/octet-stream"}, content=RECORDING_MP3)

    assert copy_recording(copy_deps(mock_fetcher(octets)), recording_id) == "archived"
    assert recording_item(recording_id)["content_type"] == "audio/mpeg"


def test_a_dead_link_falls_back_to_the_pbx_get_file_method_when_the_project_names_one(recorded: Any) -> None:
    project, _, recording_id = recorded
    get_storage().write(
        update(
            project_pk(project.project.id),
            "PROJECT",
            "SET recording_fallback_method = :m, recording_fallback_param = :p",
            values={":m": "get-mp3", ":p": "id"},
        )
    )
    project_store.cache_clear()
    asked: list[str] = []

    def pbx(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start.php":
            asked.append(request.content.decode())
            return httpx.Response(200, json={"result": 1, "data": {"link": "https://pbx.test/files/c-1.mp3"}})
        if request.url.path == "/files/c-1.mp3":
            return mp3(request)
        return httpx.Response(404)

    assert copy_recording(copy_deps(mock_fetcher(pbx)), recording_id) == "archived"
    (form,) = asked
    assert "method=get-mp3" in form and "id=c-1" in form and "hash=" in form


def test_the_sweep_requeues_what_waits_and_gives_up_after_a_day(recorded: Any) -> None:
    _, _, recording_id = recorded
    queue_url = get_settings().recording_queue_url
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=queue_url)
    # not yet a minute old: left alone
    assert sweep_pending(copy_deps(mock_fetcher(mp3))) == {"queued": 0, "given_up": 0}
    later = time.time() + 120
    assert sweep_pending(copy_deps(mock_fetcher(mp3), clock=lambda: later)) == {"queued": 1, "given_up": 0}
    message = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
    assert json.loads(message["Body"]) == {"recording_id": recording_id}
    much_later = time.time() + 2 * 86400
    assert sweep_pending(copy_deps(mock_fetcher(mp3), clock=lambda: much_later)) == {"queued": 0, "given_up": 1}
    assert recording_item(recording_id)["state"] == "failed"


# requestContext.path as sent: the same as the route's path after the stage, or written otherwise (percent-encoded)
@pytest.mark.parametrize(
    "sent_path", [f"/iptelefon_webhook/{PBX_SECRET}", f"/iptelefon_webhook/{PBX_SECRET.replace('-', '%2D')}"]
)
def test_the_stable_link_starts_with_the_apis_base_and_never_carries_the_webhooks_path(
    project: Any, lambda_context: Any, sent_path: str
) -> None:
    # Given a webhook as API Gateway delivers it on its own domain (the stage in requestContext.path)
    form = {"id": "c-9", "calltype": "IN", "src": "79004443322", "talktime": "3", "link": PBX_LINK}
    event = webhook_event(PBX_SECRET, form)
    event["requestContext"].update({"path": f"/prod{sent_path}", "stage": "prod", "domainName": "abc.execute-api.test"})
    answer = webhook_handler(event, lambda_context)
    link = variable_link(project.project.id, answer_json(answer)["client_id"])
    # Then the link is <base>/r/<id>, the stage kept, nothing of the webhook's path in it
    assert link.startswith("https://abc.execute-api.test/prod/r/") and "iptelefon_webhook" not in link
