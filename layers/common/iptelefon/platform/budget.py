"""How much of the Lambda invocation is left, so retries and fallbacks end inside it instead of in a Lambda timeout.

A handler wraps its work in `within_invocation(context, reserve_seconds=...)`. Storage then refuses to start an
operation (StorageUnavailable) when less than `reserve_seconds` would be left: the webhook reserves the time to put the
request into its durable inbox. Outside an invocation (the admin CLI, a test calling logic directly) there is no limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol


class _Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class _Invocation:
    deadline: float  # time.monotonic() when Lambda stops the invocation
    reserve_seconds: float  # kept free for what must run after storage gave up


_current: ContextVar[_Invocation | None] = ContextVar("invocation", default=None)


@contextmanager
def within_invocation(context: _Context, *, reserve_seconds: float = 0.0) -> Iterator[None]:
    invocation = _Invocation(time.monotonic() + context.get_remaining_time_in_millis() / 1000, reserve_seconds)
    token = _current.set(invocation)
    try:
        yield
    finally:
        _current.reset(token)


def spare_seconds() -> float:
    """Seconds left before the reserve is reached (infinite outside an invocation)."""
    invocation = _current.get()
    if invocation is None:
        return math.inf
    return invocation.deadline - time.monotonic() - invocation.reserve_seconds
