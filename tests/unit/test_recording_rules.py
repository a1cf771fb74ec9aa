"""Recordings' rules on their own (issue 25): what counts as audio, the random id, the webhook's copy request, the
stable link's destination by state and access mode, and the download's cap while streaming. The same against moto,
S3 and the PBX guard: tests/integration/test_recordings.py."""

from __future__ import annotations

import dataclasses
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.webhook import WebhookWorld

from iptelefon.adapters.recording_download import Download
from iptelefon.domain.errors import NotFound
from iptelefon.domain.models import Project
from iptelefon.domain.recordings import (
    Recording,
    RecordingRefused,
    audio_extension,
    is_recording_id,
    new_recording_id,
    stable_link,
)
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.usecases.recordings import LinkDeps, follow_link, recording_of_project
from iptelefon.usecases.webhook import receive_webhook

MP3_FRAME = b"\xff\xfb\x90\xc0" + bytes(413)
SECRET = "pbx-secret-unit"


@pytest.mark.parametrize(
    ("content_type", "head", "extension"),
    [
        ("audio/mpeg", b"", "mp3"),
        ("audio/x-wav; charset=binary", b"", "wav"),
        ("application/octet-stream", MP3_FRAME[:16], "mp3"),
        ("application/octet-stream", b"ID3\x03\x00" + bytes(11), "mp3"),
        (None, b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
    ],
)
def test_audio_is_known_by_its_type_or_its_first_bytes(content_type: str | None, head: bytes, extension: str) -> None:
    assert audio_extension(content_type, head) == extension


@pytest.mark.parametrize(
    ("content_type", "head"),
    [
        ("text/html", b"<html>"),
        ("application/octet-stream", b"<html><body>"),
        ("application/pdf", b"%PDF-1.7"),
        (None, b""),
    ],
)
def test_what_is_not_audio_is_refused_with_its_type(content_type: str | None, head: bytes) -> None:
    with pytest.raises(RecordingRefused, match="not audio"):
        audio_extension(content_type, head)


def test_a_recording_id_is_random_long_and_url_safe() -> None:
    ids = {new_recording_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(is_recording_id(i) and len(i) == 24 for i in ids)
    assert stable_link("https://api.test/prod/", "abc") == "https://api.test/prod/r/abc"
    assert not is_recording_id("../../x") and not is_recording_id("short")


def test_the_download_stops_as_soon_as_more_than_the_cap_arrived() -> None:
    read: list[int] = []

    def chunks() -> Any:
        for n in range(100):
            read.append(n)
            yield bytes(1000)

    download = Download("mp3", "audio/mpeg", chunks(), max_bytes=5_500)
    assert len(download.read(3000)) == 3000
    with pytest.raises(RecordingRefused, match="too big"):
        download.read(10_000)
    assert len(read) == 6  # the sixth chunk crossed the cap: nothing after it was read


# -- the webhook asks for the copy -------------------------------------------------------------------------------------
@dataclasses.dataclass
class FakeQueue:
    accepts: bool = True
    sent: list[str] = dataclasses.field(default_factory=list)

    def send(self, recording_id: str) -> bool:
        self.sent.append(recording_id)
        return self.accepts


def linked_call(api_base: str | None = "https://api.test/prod") -> WebhookRequest:
    values = {"id": "c-1", "calltype": "IN", "src": "79004443322", "talktime": "5", "link": "https://pbx.test/1.mp3"}
    body = urllib.parse.urlencode(values).encode()
    return WebhookRequest(body=body, content_type="application/x-www-form-urlencoded", api_base=api_base)


def test_a_call_with_a_link_gets_a_stable_link_and_one_copy_request_even_when_the_queue_is_away() -> None:
    w = WebhookWorld(project=Project(id="wh", name="Webhook"), secret=SECRET)
    queue = FakeQueue(accepts=False)
    deps = dataclasses.replace(w.deps, recording_queue=queue)
    answer = receive_webhook(deps, SECRET, linked_call())
    call = w.calls.get("wh", "c-1")
    assert answer["duplicate"] is False  # the call is stored whether or not the queue took the copy (the sweep will)
    assert call is not None and call.recording_state == "pending" and call.record_link == "https://pbx.test/1.mp3"
    assert call.recording_link == f"https://api.test/prod/r/{call.recording_id}"
    assert queue.sent == [call.recording_id]
    assert f"запись: {call.recording_link}" in w.calls.dialog("wh", answer["client_id"])[0]["text"]


def test_a_queued_webhook_without_its_api_base_keeps_the_pbx_link_and_is_still_copied() -> None:
    w = WebhookWorld(project=Project(id="wh", name="Webhook"), secret=SECRET)
    queue = FakeQueue()
    receive_webhook(dataclasses.replace(w.deps, recording_queue=queue), SECRET, linked_call(api_base=None))
    call = w.calls.get("wh", "c-1")
    assert call is not None and call.recording_link is None and queue.sent == [call.recording_id]


def test_a_webhook_message_carries_its_api_base_through_the_inbox() -> None:
    request = linked_call()
    _, back = WebhookRequest.from_message(request.to_message("0" * 64))
    assert back.api_base == "https://api.test/prod"


# -- where /r/{id} leads -----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class FakeRecordings:
    items: dict[str, Recording]

    def get(self, recording_id: str) -> Recording | None:
        return self.items.get(recording_id)


class FakeArchive:
    def url(self, key: str) -> str:
        return f"https://s3.test/{key}?X-Amz-Expires=900"


@dataclasses.dataclass
class FakeProjects:
    projects: dict[str, Project]

    def get_project_cached(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)


def link_deps(state: str, access: str = "link") -> LinkDeps:
    recording = Recording(
        recording_id="r" * 24,
        project_id="wh",
        call_key="c-1",
        source_link="https://pbx.test/1.mp3",
        state=state,  # type: ignore[arg-type]
        archive_key="wh/c-1.mp3" if state == "archived" else None,
        created_at=datetime(2026, 12, 4, tzinfo=UTC),
    )
    project = Project(id="wh", name="Webhook", recording_access=access)  # type: ignore[arg-type]
    return LinkDeps(
        recordings=FakeRecordings({recording.recording_id: recording}),  # type: ignore[arg-type]
        archive=FakeArchive(),  # type: ignore[arg-type]
        projects=FakeProjects({"wh": project}),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("state", "access", "location"),
    [
        ("archived", "link", "https://s3.test/wh/c-1.mp3?X-Amz-Expires=900"),
        ("pending", "link", "https://pbx.test/1.mp3"),
        ("failed", "link", "https://pbx.test/1.mp3"),
        ("archived", "console", "https://api.test/console#recording=" + "r" * 24),
    ],
)
def test_the_stable_link_leads_by_state_and_access_mode(state: str, access: str, location: str) -> None:
    assert follow_link(link_deps(state, access), "r" * 24, "https://api.test/console") == location


def test_an_unknown_recording_and_another_projects_are_not_found() -> None:
    deps = link_deps("archived")
    with pytest.raises(NotFound):
        follow_link(deps, "x" * 24, "https://api.test/console")
    with pytest.raises(NotFound):
        recording_of_project(deps, Project(id="other", name="Other"), "r" * 24)
    assert recording_of_project(deps, Project(id="wh", name="Webhook"), "r" * 24).url.startswith("https://s3.test/")
