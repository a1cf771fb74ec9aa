"""Sends one signed event to one endpoint: the only HTTP client of call events.

It goes through the PBX client's guarded transport (`adapters.pbx.GuardedTransport`): an endpoint URL is chosen by a
tenant admin, so the same rules apply (https to public addresses; on a `local` stage also http and this machine). No
redirect is followed (a redirected POST would be resent elsewhere); 10 s at most. The answer's body is not read
beyond what httpx buffers, and never logged.
"""

from __future__ import annotations

import time
from functools import lru_cache

import httpx

from iptelefon.adapters.pbx import GuardedTransport, PbxAddressRefused
from iptelefon.domain.call_events import DELIVERY_TIMEOUT_SECONDS
from iptelefon.domain.pbx_address import PbxNetwork


class EventSender:
    """`usecases.ports.EventSender` over one injected `httpx.Client`."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def post(self, url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str | None, int]:
        """(HTTP status or None, the error when there was no answer, latency in ms)."""
        started = time.monotonic()
        try:
            response = self._http.post(url, content=body.encode(), headers=headers)
            status, error = response.status_code, None
        except PbxAddressRefused:
            status, error = None, "refused: not a public address"
        except httpx.TimeoutException:
            status, error = None, "timeout"
        except httpx.ConnectError:
            status, error = None, "unreachable"
        except httpx.HTTPError as exc:
            status, error = None, type(exc).__name__
        return status, error, round((time.monotonic() - started) * 1000)


@lru_cache(maxsize=2)
def get_event_sender(network: PbxNetwork = "public") -> EventSender:
    http = httpx.Client(
        transport=GuardedTransport(network),
        trust_env=False,
        timeout=httpx.Timeout(DELIVERY_TIMEOUT_SECONDS, connect=2.0),
        follow_redirects=False,
        headers={"User-Agent": "iptelefon-connector-events"},
    )
    return EventSender(http)
