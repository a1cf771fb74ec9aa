"""A call's recording, archived (issue 25): the PBX's link is copied to our bucket, and the client gets a stable link
of ours (`<api base>/r/<recording id>`) that outlives the PBX's.

A recording moves `pending` → `archived` (the copy landed in S3) or `failed` (with a short `reason`: the link is
hostile, gone, not audio, too big). The id is random (`secrets.token_urlsafe`), never derived from the project or the
call: knowing one link tells nothing of another. Pure: no I/O.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

RecordingState = Literal["pending", "archived", "failed"]
RecordingAccess = Literal["link", "console"]  # who may open /r/{id}: anyone with the link, or signed-in users
RECORDING_ID_BYTES = 18  # 24 URL-safe characters, 144 random bits
RECORDING_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"  # what an id may look like (ids of a longer token stay valid)
_RECORDING_ID = re.compile(RECORDING_ID_PATTERN)
DEFAULT_MAX_RECORDING_BYTES = 100 * 1024 * 1024
# How long a presigned S3 GET lives (the issue: at most 15 minutes).
PRESIGNED_URL_SECONDS = 900
# Content types a recording may come as; `application/octet-stream` only with an MP3 or WAV signature.
_AUDIO_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/x-mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/ogg": "ogg",
    "audio/x-m4a": "m4a",
    "audio/mp4": "m4a",
}


class Recording(BaseModel):
    """One recording of one call, under its random id."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    recording_id: str
    project_id: str
    call_key: str
    source_link: str  # the PBX's link, as the call brought it
    state: RecordingState = "pending"
    reason: str | None = None  # `failed`: why, in a few words
    archive_key: str | None = None  # `archived`: the S3 object's key
    content_type: str | None = None
    size_bytes: int | None = None
    created_at: datetime


class RecordingRefused(Exception):
    """A permanent failure: the copy is never tried again (the recording becomes `failed` with this reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecordingGone(RecordingRefused):
    """The PBX's link answers 404/410: the PBX's own method (a `get-file` fallback) may still have it."""


class RecordingUnavailable(Exception):
    """A failure a later try may cure (a timeout, a 5xx, an S3 hiccup): the queue brings the message back."""


def new_recording_id() -> str:
    return secrets.token_urlsafe(RECORDING_ID_BYTES)


def is_recording_id(value: str) -> bool:
    return bool(_RECORDING_ID.fullmatch(value))


def stable_link(api_base: str, recording_id: str) -> str:
    return f"{api_base.rstrip('/')}/r/{recording_id}"


def archive_key(project_id: str, call_key: str, extension: str) -> str:
    return f"{project_id}/{call_key}.{extension}"


def audio_extension(content_type: str | None, head: bytes) -> str:
    """The file extension of a recording that says it is `content_type` and starts with `head`; RecordingRefused when
    it is not audio (an HTML error page with 200, a login form, a PDF)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _AUDIO_EXTENSIONS:
        return _AUDIO_EXTENSIONS[media]
    if media.startswith("audio/"):
        return media.removeprefix("audio/").removeprefix("x-")[:8] or "audio"
    if media in ("application/octet-stream", "binary/octet-stream", ""):
        sniffed = sniff_audio(head)
        if sniffed:
            return sniffed
    raise RecordingRefused(f"not audio ({media or 'no content type'})")


def sniff_audio(head: bytes) -> str | None:
    """`mp3` for an ID3 tag or an MPEG audio frame sync, `wav` for RIFF/WAVE, else None."""
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    return None


def too_big(max_bytes: int) -> RecordingRefused:
    return RecordingRefused(f"too big (over {max_bytes // (1024 * 1024)} MB)")
