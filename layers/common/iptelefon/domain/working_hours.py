"""A project's working hours and the callback SLA counted in working time (issue 23). No I/O.

Working hours are an IANA time zone, the working weekdays (1 = Monday … 7 = Sunday) and one daily window
[start, end) in local time, the same every working day. A due time is `sla_minutes` of WORKING time after the missed
call: a call at 17:55 with a 15-minute SLA and a window 09:00–18:00 is due at 09:10 the next working day; a call at
night is due 15 minutes after the next opening. Local wall-clock time is what counts (a DST day has its window at the
same local hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_TIME_ZONE = "Europe/Moscow"
DEFAULT_SLA_MINUTES = 15
MAX_SLA_MINUTES = 7 * 24 * 60
_MAX_DAYS_SEARCHED = 8  # one week and a day: some working day always comes (at least one day is required)


def zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError naming the field when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as 'Europe/Moscow'") from None


class WorkingHours(BaseModel):
    """When a project's employees are there to call back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_zone: str = Field(default=DEFAULT_TIME_ZONE, min_length=1, max_length=64)
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1, max_length=7)
    start: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(default="18:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day not in range(1, 8) for day in value):
            raise ValueError("days are weekdays 1 (Monday) to 7 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _window(self) -> WorkingHours:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError("start must be before end (one window a day, e.g. 09:00-18:00)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.time_zone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def is_working_time(self, moment: datetime) -> bool:
        local = self.local(moment)
        minute = local.hour * 60 + local.minute
        return local.isoweekday() in self.days and _minutes(self.start) <= minute < _minutes(self.end)

    def _window_of(self, day: datetime) -> tuple[datetime, datetime]:
        """[opening, closing) of the local calendar day of `day`, as aware datetimes in the zone."""
        base = day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        opening = (base + timedelta(minutes=_minutes(self.start))).replace(tzinfo=self.tz)
        closing = (base + timedelta(minutes=_minutes(self.end))).replace(tzinfo=self.tz)
        return opening, closing

    def add_working_minutes(self, moment: datetime, minutes: int) -> datetime:
        """`moment` plus `minutes` of working time (UTC): nights, days off and the time before opening skipped."""
        left = timedelta(minutes=minutes)
        day = self.local(moment)
        cursor = moment.astimezone(UTC)
        weekly = len(self.days) * (_minutes(self.end) - _minutes(self.start))
        for _ in range(_MAX_DAYS_SEARCHED + 7 * (minutes // weekly + 1)):
            opening, closing = self._window_of(day)
            if day.isoweekday() in self.days and cursor < closing:
                begin = max(cursor, opening.astimezone(UTC))
                room = closing.astimezone(UTC) - begin
                if left <= room:
                    return begin + left
                left -= room
            day = (day.replace(tzinfo=None) + timedelta(days=1)).replace(hour=0, minute=0, tzinfo=self.tz)
            cursor = max(cursor, day.astimezone(UTC))
        raise AssertionError("a working day always comes")


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)
