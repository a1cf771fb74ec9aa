"""The rate-limit counters (`domain.rate_limits.RateCounters`) in the main table: one fixed-window counter per item.

RATE#<pid> / <counter>#<window start>   `calls` counted in the window, `expires_at` = window end (TTL),
                                        `last_token` / `last_return`: the last count's / give-back's request
                                        (<counter>: PHONE#<phone> or PROJECT)
"""

from __future__ import annotations

import contextlib
import math
import uuid

from iptelefon.data.gateway import ConditionFailed, Storage, update


def rate_pk(project_id: str) -> str:
    return f"RATE#{project_id}"


def window_start(now: float, window_seconds: int) -> int:
    return int(now) // window_seconds * window_seconds


class RateCounterStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def count(self, project_id: str, counter: str, *, limit: int, window_seconds: int, now: float) -> int:
        """Count one call in the current fixed window of `counter`.

        Returns 0 when counted, else (the window is full, nothing counted) the seconds until the window ends (>= 1).
        One conditional UpdateItem: concurrent callers can never push the count above `limit`. Its token
        (`last_token`) makes the SDK's repeat of the same request (the first landed, its answer lost) fail instead of
        counting twice, and a re-read tells that failure from a full window.
        """
        start = window_start(now, window_seconds)
        end = start + window_seconds
        token = uuid.uuid4().hex
        try:
            self._storage.write(
                update(
                    rate_pk(project_id),
                    f"{counter}#{start}",
                    "SET expires_at = :end, last_token = :token ADD calls :one",
                    only_if="(attribute_not_exists(calls) OR calls < :limit) AND "
                    "(attribute_not_exists(last_token) OR last_token <> :token)",
                    values={":one": 1, ":limit": limit, ":end": end, ":token": token},
                )
            )
        except ConditionFailed:
            counted = self._storage.get(rate_pk(project_id), f"{counter}#{start}", attributes="last_token") or {}
            if counted.get("last_token") != token:
                return max(1, math.ceil(end - now))
        return 0

    def uncount(self, project_id: str, counter: str, *, window_seconds: int, now: float) -> None:
        """Give back a call counted by `count` in the same window (another limit refused the call); once, also when
        the SDK sends the request again."""
        start = window_start(now, window_seconds)
        with contextlib.suppress(ConditionFailed):  # the window is gone or empty, or this very request landed already
            self._storage.write(
                update(
                    rate_pk(project_id),
                    f"{counter}#{start}",
                    "SET last_return = :token ADD calls :minus_one",
                    only_if="calls > :zero AND (attribute_not_exists(last_return) OR last_return <> :token)",
                    values={":minus_one": -1, ":zero": 0, ":token": uuid.uuid4().hex},
                )
            )

    def counted(self, project_id: str, counter: str, *, window_seconds: int, now: float) -> int:
        item = self._storage.get(rate_pk(project_id), f"{counter}#{window_start(now, window_seconds)}")
        return int(item.get("calls", 0)) if item else 0
