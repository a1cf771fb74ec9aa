"""Downloading a call's recording from the PBX (issue 25), streamed: never read whole into memory.

The link is the PBX's, so the PBX connection's rules apply to its host (`adapters.pbx.GuardedTransport`: https to
public addresses only, each redirect hop checked too). What comes must be audio (`domain.recordings.audio_extension`)
and at most `max_bytes`: refused when Content-Length says more, and cut off while streaming when more arrives.

Outcomes: `RecordingRefused` (permanent: hostile address, not audio, too big, 4xx; `RecordingGone` for 404/410) or
`RecordingUnavailable` (a later try may work: timeouts, connection errors, 5xx).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx

from iptelefon.adapters.pbx import GuardedTransport, PbxAddressRefused, build_request
from iptelefon.domain.pbx_address import PbxNetwork
from iptelefon.domain.pbx_connection import PbxConnection
from iptelefon.domain.recordings import (
    RecordingGone,
    RecordingRefused,
    RecordingUnavailable,
    audio_extension,
    too_big,
)

HEAD_BYTES = 16  # enough for the MP3 and WAV signatures
MAX_REDIRECTS = 3
MAX_JSON_REPLY_BYTES = 64 * 1024  # a `get-file` reply that names a link instead of carrying the file
TIMEOUT = httpx.Timeout(20.0, connect=3.0)  # per read: a slow PBX still streams, a dead one ends the try


@dataclass
class Download:
    """An open download: its extension and content type, and `read` for `upload_fileobj` (bounded by `max_bytes`)."""

    extension: str
    content_type: str
    chunks: Iterator[bytes]
    max_bytes: int
    buffer: bytearray = field(default_factory=bytearray)
    size: int = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.size += len(chunk)
            if self.size > self.max_bytes:  # more arrived than the cap: stop now, nothing more is read
                raise too_big(self.max_bytes)
            self.buffer += chunk
        taken = bytes(memoryview(self.buffer)[: len(self.buffer) if size < 0 else size])  # one copy, no slice
        del self.buffer[: len(taken)]
        return taken


class RecordingFetcher:
    """Opens recordings over one shared httpx client (the PBX's guard in its transport)."""

    def __init__(self, http: httpx.Client, *, max_bytes: int) -> None:
        self.http = http
        self.max_bytes = max_bytes

    @contextmanager
    def open(self, url: str) -> Iterator[Download]:
        with self._opened(self.http.build_request("GET", url)) as download:
            yield download

    @contextmanager
    def open_via_pbx(self, conn: PbxConnection, method: str, param: str, value: str) -> Iterator[Download]:
        """The recording through the PBX's own API method (a `get-file` / `get-mp3` fallback): the reply is the file,
        or JSON naming a link to it (`{"result": 1, "data": {"link": ...}}`), which is then opened."""
        content, headers = build_request(conn, [("topic", "base"), ("method", method), (param, value)])
        request = self.http.build_request("POST", conn.server_url, content=content, headers=headers)
        with ExitStack() as stack:
            response = stack.enter_context(self._response(request))
            if "json" in response.headers.get("content-type", ""):
                link = _linked(_bounded_json(response))
                stack.close()
                with self.open(link) as download:
                    yield download
                return
            yield self._download(response)

    @contextmanager
    def _opened(self, request: httpx.Request) -> Iterator[Download]:
        with self._response(request) as response:
            yield self._download(response)

    @contextmanager
    def _response(self, request: httpx.Request) -> Iterator[httpx.Response]:
        try:
            response = self.http.send(request, stream=True, follow_redirects=True)
        except PbxAddressRefused as refused:
            raise RecordingRefused(f"link refused: {refused}".replace("server_url", "the link")) from None
        except httpx.TooManyRedirects:
            raise RecordingRefused("too many redirects") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise RecordingRefused("not an http(s) link") from None
        except httpx.HTTPError as error:
            raise RecordingUnavailable(f"download failed ({type(error).__name__})") from error
        try:
            _check_status(response.status_code)
            yield response
        except httpx.HTTPError as error:  # while streaming: a read timeout, a reset
            raise RecordingUnavailable(f"download failed ({type(error).__name__})") from error
        finally:
            response.close()

    def _download(self, response: httpx.Response) -> Download:
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise too_big(self.max_bytes)
        chunks = response.iter_bytes()
        download = Download("", "", chunks, self.max_bytes)
        head = download.read(HEAD_BYTES)
        download.buffer[:0] = head  # put back: the upload starts from the first byte
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        download.extension = audio_extension(content_type, head)
        download.content_type = content_type if content_type.startswith("audio/") else _SNIFFED[download.extension]
        return download


_SNIFFED = {"mp3": "audio/mpeg", "wav": "audio/wav"}


def _check_status(status: int) -> None:
    if status in (404, 410):
        raise RecordingGone(f"gone (HTTP {status})")
    if status >= 500 or status == 429:
        raise RecordingUnavailable(f"HTTP {status}")
    if status >= 300:
        raise RecordingRefused(f"HTTP {status}")


def _bounded_json(response: httpx.Response) -> Any:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_JSON_REPLY_BYTES:
            raise RecordingRefused("the PBX's reply is neither audio nor a short JSON")
    try:
        return json.loads(body)
    except ValueError:
        raise RecordingRefused("the PBX's reply is not JSON") from None


def _linked(reply: Any) -> str:
    """The link in a `get-file` reply: `data` as a string, or its `link` / `url` / `file`."""
    if isinstance(reply, dict) and reply.get("result") not in (1, "1", None):
        raise RecordingGone("the PBX has no such recording")
    data = reply.get("data") if isinstance(reply, dict) else None
    if isinstance(data, dict):
        data = next((data[name] for name in ("link", "url", "file") if isinstance(data.get(name), str)), None)
    if not isinstance(data, str) or not data.startswith(("http://", "https://")):
        raise RecordingRefused("the PBX's reply names no recording link")
    return data


@lru_cache(maxsize=2)
def get_recording_fetcher(network: PbxNetwork, max_bytes: int) -> RecordingFetcher:
    """One fetcher per warm Lambda: the PBX's guard (`GuardedTransport`) on every connection and redirect hop."""
    http = httpx.Client(
        transport=GuardedTransport(network),
        trust_env=False,
        timeout=TIMEOUT,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": "iptelefon-connector"},
    )
    return RecordingFetcher(http, max_bytes=max_bytes)
