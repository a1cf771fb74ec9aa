"""The call rate limits against toll fraud and runaway bots: per client phone per hour
(`Project.calls_per_phone_per_hour`) and per project per minute (`Project.calls_per_project_per_minute`), counted in
fixed windows over a `RateCounters` store (DynamoDB in `data.rate_counters`, a dict in the unit tests)."""

from __future__ import annotations

from typing import Protocol

from iptelefon.domain.errors import RateLimited
from iptelefon.domain.models import Project

PHONE_WINDOW_SECONDS = 3600  # Project.calls_per_phone_per_hour
PROJECT_WINDOW_SECONDS = 60  # Project.calls_per_project_per_minute
PROJECT_COUNTER = "PROJECT"


class RateCounters(Protocol):
    """Fixed-window call counters of a project."""

    def count(self, project_id: str, counter: str, *, limit: int, window_seconds: int, now: float) -> int:
        """Count one call in the current window of `counter`: 0 when counted, else (the window is full, nothing
        counted) the seconds until the window ends (>= 1)."""
        ...

    def uncount(self, project_id: str, counter: str, *, window_seconds: int, now: float) -> None:
        """Give back a call counted in the same window (another limit refused the call)."""
        ...


def phone_counter(phone: str) -> str:
    return f"PHONE#{phone}"


def check_rate_limits(counters: RateCounters, project: Project, phone: str, now: float) -> None:
    """Count the call against the per-phone (hour) and per-project (minute) windows, or raise RateLimited."""
    per_phone = phone_counter(phone)
    wait = counters.count(
        project.id, per_phone, limit=project.calls_per_phone_per_hour, window_seconds=PHONE_WINDOW_SECONDS, now=now
    )
    if wait:
        raise RateLimited(
            f"too many calls to this client phone: at most {project.calls_per_phone_per_hour} an hour; "
            f"retry in {wait} s",
            retry_after_seconds=wait,
        )
    wait = counters.count(
        project.id,
        PROJECT_COUNTER,
        limit=project.calls_per_project_per_minute,
        window_seconds=PROJECT_WINDOW_SECONDS,
        now=now,
    )
    if wait:
        # This call is not made: give its slot back to the phone.
        counters.uncount(project.id, per_phone, window_seconds=PHONE_WINDOW_SECONDS, now=now)
        raise RateLimited(
            f"too many calls in this project: at most {project.calls_per_project_per_minute} a minute; "
            f"retry in {wait} s",
            retry_after_seconds=wait,
        )
