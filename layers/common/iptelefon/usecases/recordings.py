"""Recordings that outlive the PBX's link (issue 25).

- The webhook: a call that brings a link gets a random recording id and our stable link (`with_recording`, before the
  call's transaction: `data.call_records` writes the recording item in it), then one copy message (`queue_copy`, after
  it; a message that could not be sent is the sweep's).
- The copier (RecordingFunction): `copy_recording` streams the PBX's link into the archive and marks the recording
  `archived`, or `failed` with a short reason when the failure is permanent; a transient one (`RecordingUnavailable`)
  propagates and the queue brings the message back (then its dead-letter queue). A dead link (404/410) falls back to
  the project's `get-file`-style PBX method when it has one. `sweep_pending` re-queues what waits too long.
- The reads: `/r/{id}` (`follow_link`) and `GET /v1/recordings/{id}` (`recording_of_project`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from iptelefon.domain.answers import RecordingAnswer
from iptelefon.domain.call_events import recording_event
from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.errors import NotFound
from iptelefon.domain.models import Project
from iptelefon.domain.pbx_connection import PbxConnection
from iptelefon.domain.recordings import (
    Recording,
    RecordingGone,
    RecordingRefused,
    RecordingState,
    archive_key,
    new_recording_id,
    stable_link,
)
from iptelefon.platform.observability import logger, metrics
from iptelefon.usecases.ports import (
    CallRecords,
    Clock,
    Projects,
    RecordingArchive,
    RecordingDownloads,
    RecordingQueue,
    Recordings,
    RecordingSource,
)

# The sweep: a recording pending longer than this was not queued (the send failed) or its message died.
SWEEP_AFTER = timedelta(minutes=1)
# ... and one pending this long is given up (its messages kept failing): `failed`, so the sweep stops sending it.
GIVE_UP_AFTER = timedelta(days=1)


def with_recording(record: CallRecord, api_base: str | None) -> CallRecord:
    """The call with a new recording id and our stable link, when it brings a PBX link and the request's API base is
    known (a request queued before issue 25 has none: the variable keeps the PBX's link, the copy still happens)."""
    if not record.record_link:
        return record
    recording_id = new_recording_id()
    link = stable_link(api_base, recording_id) if api_base else None
    return record.model_copy(
        update={"recording_id": recording_id, "recording_link": link, "recording_state": "pending"}
    )


def queue_copy(queue: RecordingQueue | None, record: CallRecord) -> None:
    """After the call's transaction: ask for its copy (a replay asks again while it is pending: copies are
    idempotent). A send that fails leaves it pending; the sweep sends it."""
    if queue is None or not record.recording_id or record.recording_state not in (None, "pending"):
        return
    if not queue.send(record.recording_id):
        metrics.add_metric(name="RecordingNotQueued", unit="Count", value=1)


# -- the copier --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CopyDeps:
    recordings: Recordings
    archive: RecordingArchive
    downloads: RecordingDownloads
    projects: Projects
    calls: CallRecords  # the recording's call, which its `recording.ready` event describes
    # How to ask the project's PBX (the fallback method): built from its SSM credentials when needed.
    pbx_connection: Callable[[Project], PbxConnection]
    queue: RecordingQueue
    clock: Clock


def copy_recording(deps: CopyDeps, recording_id: str) -> RecordingState | None:
    """Copy one pending recording into the archive: `archived`, or `failed` (permanent), or None when there is nothing
    to do (unknown, or ended before). `RecordingUnavailable` propagates: the message comes back later."""
    recording = deps.recordings.get(recording_id)
    if recording is None or recording.state != "pending":
        return None
    try:
        try:
            key, content_type, size = _archive(deps, recording, deps.downloads.open(recording.source_link))
        except RecordingGone:
            fallback = _fallback(deps, recording)
            if fallback is None:
                raise
            key, content_type, size = _archive(deps, recording, fallback)
    except RecordingRefused as refused:
        logger.warning("recording not archived", extra={"recording_id": recording_id, "reason": refused.reason})
        metrics.add_metric(name="RecordingFailed", unit="Count", value=1)
        deps.recordings.mark_failed(recording, refused.reason)
        return "failed"
    archived = recording.model_copy(
        update={"state": "archived", "archive_key": key, "content_type": content_type, "size_bytes": size}
    )
    call = deps.calls.get(recording.project_id, recording.call_key)
    at = datetime.fromtimestamp(deps.clock(), UTC)
    deps.recordings.mark_archived(archived, events=[recording_event(call, archived, at)] if call else [])
    logger.info("recording archived", extra={"recording_id": recording_id, "bytes": size})
    metrics.add_metric(name="RecordingArchived", unit="Count", value=1)
    return "archived"


def _archive(
    deps: CopyDeps, recording: Recording, opened: AbstractContextManager[RecordingSource]
) -> tuple[str, str, int]:
    with opened as source:
        key = archive_key(recording.project_id, recording.call_key, source.extension)
        deps.archive.upload(key, source, source.content_type)
        return key, source.content_type, source.size


def _fallback(deps: CopyDeps, recording: Recording) -> AbstractContextManager[RecordingSource] | None:
    """The PBX's own method for a dead link, when the project names one: asked with the link's last path segment
    without its extension (ZEON's links end with the recording's id; thin evidence, README "Recordings")."""
    project = deps.projects.get_project_cached(recording.project_id)
    if project is None or not project.recording_fallback_method:
        return None
    name = urlsplit(recording.source_link).path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if not name:
        return None
    conn = deps.pbx_connection(project)
    return deps.downloads.open_via_pbx(conn, project.recording_fallback_method, project.recording_fallback_param, name)


def sweep_pending(deps: CopyDeps) -> dict[str, int]:
    """Re-queue the recordings pending for over SWEEP_AFTER (their send failed, or their message died); give up on
    those pending for over GIVE_UP_AFTER. One query of the sparse pending index, oldest first."""
    now = datetime.fromtimestamp(deps.clock(), UTC)
    queued = given_up = 0
    for recording in deps.recordings.pending_before(now - SWEEP_AFTER):
        if recording.created_at < now - GIVE_UP_AFTER:
            given_up += deps.recordings.mark_failed(recording, "not copied within a day")
        else:
            queued += deps.queue.send(recording.recording_id)
    return {"queued": queued, "given_up": given_up}


# -- the reads ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkDeps:
    recordings: Recordings
    archive: RecordingArchive
    projects: Projects


def follow_link(deps: LinkDeps, recording_id: str, console_url: str) -> str:
    """Where `/r/{id}` sends its visitor: the recording (a presigned S3 GET, or the PBX's link before the copy), or the
    console (`console` access: a signed-in user asks `GET /v1/recordings/{id}`). Unknown: 404."""
    recording = deps.recordings.get(recording_id)
    project = deps.projects.get_project_cached(recording.project_id) if recording else None
    if recording is None or project is None:
        raise NotFound("no such recording")
    if project.recording_access == "console":
        return f"{console_url}#recording={recording.recording_id}"
    return playable_url(deps, recording)


def recording_of_project(deps: LinkDeps, project: Project, recording_id: str) -> RecordingAnswer:
    recording = deps.recordings.get(recording_id)
    if recording is None or recording.project_id != project.id:  # another project's: as if it did not exist
        raise NotFound("no such recording")
    return RecordingAnswer.of(recording, playable_url(deps, recording))


def playable_url(deps: LinkDeps, recording: Recording) -> str:
    if recording.state == "archived" and recording.archive_key:
        return deps.archive.url(recording.archive_key)
    return recording.source_link  # pending or failed: the PBX's link is all there is
