"""The callback SLA in working time (`domain.working_hours`): nights, weekends, other time zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from iptelefon.domain.working_hours import WorkingHours

MOSCOW = WorkingHours()  # Europe/Moscow, Monday-Friday 09:00-18:00 (UTC+3)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_call_in_working_hours_is_due_sla_minutes_later() -> None:
    # Tuesday 2026-12-01 12:00 Moscow = 09:00 UTC
    assert MOSCOW.add_working_minutes(utc("2026-12-01T09:00"), 15) == utc("2026-12-01T09:15")


def test_the_sla_carries_over_the_night() -> None:
    # 17:55 Moscow (14:55 UTC): 5 minutes today, 10 tomorrow from 09:00 (06:00 UTC)
    assert MOSCOW.add_working_minutes(utc("2026-12-01T14:55"), 15) == utc("2026-12-02T06:10")


def test_a_night_call_is_due_after_the_opening() -> None:
    # 03:00 Moscow Wednesday
    assert MOSCOW.add_working_minutes(utc("2026-12-02T00:00"), 15) == utc("2026-12-02T06:15")


def test_a_friday_evening_call_is_due_on_monday() -> None:
    # Friday 2026-12-04 19:00 Moscow -> Monday 2026-12-07 09:15 Moscow
    assert MOSCOW.add_working_minutes(utc("2026-12-04T16:00"), 15) == utc("2026-12-07T06:15")
    assert not MOSCOW.is_working_time(utc("2026-12-05T09:00"))  # Saturday noon


def test_another_time_zone_counts_its_own_hours() -> None:
    vladivostok = WorkingHours(time_zone="Asia/Vladivostok", days=[1, 2, 3, 4, 5, 6], start="10:00", end="19:00")
    # Saturday 2026-12-05 18:50 Vladivostok (UTC+10) = 08:50 UTC: 10 minutes Saturday, 5 on Monday from 10:00
    assert vladivostok.add_working_minutes(utc("2026-12-05T08:50"), 15) == utc("2026-12-07T00:05")
    assert vladivostok.is_working_time(utc("2026-12-05T01:00"))  # Saturday 11:00 there
    assert not MOSCOW.is_working_time(utc("2026-12-05T01:00"))


def test_a_dst_zone_keeps_local_hours() -> None:
    berlin = WorkingHours(time_zone="Europe/Berlin")
    # Friday 2026-03-27 17:50 CET (16:50 UTC); Monday 2026-03-30 is CEST (UTC+2): 09:05 local = 07:05 UTC
    assert berlin.add_working_minutes(utc("2026-03-27T16:50"), 15) == utc("2026-03-30T07:05")


def test_a_long_sla_spans_days() -> None:
    # 9 working hours a day: 10 hours from Monday 09:00 is Tuesday 10:00
    assert MOSCOW.add_working_minutes(utc("2026-11-30T06:00"), 600) == utc("2026-12-01T07:00")


@pytest.mark.parametrize(
    "fields",
    [
        {"time_zone": "Mars/Olympus"},
        {"days": [0]},
        {"days": []},
        {"start": "18:00", "end": "09:00"},
        {"start": "9am"},
        {"holidays": []},
    ],
)
def test_bad_working_hours_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WorkingHours.model_validate(fields)
