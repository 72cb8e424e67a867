"""``schedule_state``: open, closed or holiday at a given instant, with a fixed clock.

Times are given in the schedule's zone with its real offset (``at()``), so a
test reads like the opening hours an admin wrote.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.config.models import Schedule
from callcenter.flows.schedule import schedule_state

NY = ZoneInfo("America/New_York")
UTC = dt.UTC


def at(text: str, tz: dt.tzinfo = NY) -> dt.datetime:
    """``"2026-11-25 08:00"`` in ``tz`` (aware)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


OFFICE = Schedule.model_validate({
    "timezone": "America/New_York",
    "hours": {"mon-fri": "08:00-20:00", "sat": "09:00-13:00", "sun": "closed"},
    "holidays": [
        {"date": "2026-12-25", "name": "Christmas Day"},
        {"date": "2026-12-31", "until": "2027-01-01", "name": "New Year"},
    ],
    "special_days": [{"date": "2026-12-24", "hours": "08:00-12:00", "name": "Christmas Eve"}],
})


def state(when: dt.datetime, schedule: Schedule = OFFICE, default_tz: str = "UTC") -> str:
    return schedule_state(schedule, when, default_tz)


# 2026-11-25 is a Wednesday.
@pytest.mark.parametrize("when, expected", [
    ("2026-11-25 07:59", "closed"),
    ("2026-11-25 08:00", "open"),       # ranges are half-open: start included
    ("2026-11-25 12:30", "open"),
    ("2026-11-25 19:59", "open"),
    ("2026-11-25 20:00", "closed"),     # ... end excluded
    ("2026-11-25 23:59", "closed"),
    ("2026-11-28 08:59", "closed"),     # Saturday
    ("2026-11-28 09:00", "open"),
    ("2026-11-28 13:00", "closed"),
    ("2026-11-29 12:00", "closed"),     # Sunday: closed
])
def test_weekly_hours(when: str, expected: str) -> None:
    assert state(at(when)) == expected


def test_instant_is_converted_to_the_schedules_zone() -> None:
    # 13:00 UTC on a November Wednesday is 08:00 in New York (EST, -05:00).
    assert state(dt.datetime(2026, 11, 25, 13, 0, tzinfo=UTC)) == "open"
    assert state(dt.datetime(2026, 11, 25, 12, 59, tzinfo=UTC)) == "closed"
    # 00:30 UTC Thursday is still Wednesday 19:30 in New York.
    assert state(dt.datetime(2026, 11, 26, 0, 30, tzinfo=UTC)) == "open"
    assert state(dt.datetime(2026, 11, 26, 1, 0, tzinfo=UTC)) == "closed"


def test_dst_change_week() -> None:
    # US DST starts Sunday 2026-03-08: New York moves from -05:00 to -04:00.
    # Friday before: 08:00 local is 13:00 UTC.
    assert state(dt.datetime(2026, 3, 6, 13, 0, tzinfo=UTC)) == "open"
    assert state(dt.datetime(2026, 3, 6, 12, 0, tzinfo=UTC)) == "closed"
    # Monday after: 08:00 local is 12:00 UTC, and 13:00 UTC is 09:00 local.
    assert state(dt.datetime(2026, 3, 9, 12, 0, tzinfo=UTC)) == "open"
    assert state(dt.datetime(2026, 3, 9, 11, 59, tzinfo=UTC)) == "closed"
    # Closing: 20:00 local Monday is 00:00 UTC Tuesday.
    assert state(dt.datetime(2026, 3, 9, 23, 59, tzinfo=UTC)) == "open"
    assert state(dt.datetime(2026, 3, 10, 0, 0, tzinfo=UTC)) == "closed"


def test_dst_end_week() -> None:
    # DST ends Sunday 2026-11-01; the Monday after, 08:00 local is 13:00 UTC again.
    assert state(dt.datetime(2026, 10, 30, 12, 0, tzinfo=UTC)) == "open"     # Fri, EDT
    assert state(dt.datetime(2026, 11, 2, 12, 0, tzinfo=UTC)) == "closed"    # Mon, EST 07:00
    assert state(dt.datetime(2026, 11, 2, 13, 0, tzinfo=UTC)) == "open"


@pytest.mark.parametrize("when, expected", [
    ("2026-12-25 10:00", "holiday"),
    ("2026-12-25 00:00", "holiday"),    # the whole local day
    ("2026-12-25 23:59", "holiday"),
    ("2026-12-26 10:00", "open"),       # Saturday after Christmas
    ("2026-12-30 10:00", "open"),
    ("2026-12-31 10:00", "holiday"),    # range spanning New Year, first day
    ("2027-01-01 10:00", "holiday"),    # ... last day, inclusive
    ("2027-01-01 23:59", "holiday"),
    ("2027-01-02 10:00", "open"),       # Saturday 2027-01-02, 09:00-13:00
])
def test_holidays(when: str, expected: str) -> None:
    assert state(at(when)) == expected


def test_holiday_is_a_local_day() -> None:
    # 2026-12-25 03:00 UTC is still Christmas Eve evening in New York (closed after 12:00).
    assert state(dt.datetime(2026, 12, 25, 3, 0, tzinfo=UTC)) == "closed"
    # 2026-12-26 03:00 UTC is Christmas Day 22:00 in New York.
    assert state(dt.datetime(2026, 12, 26, 3, 0, tzinfo=UTC)) == "holiday"


@pytest.mark.parametrize("when, expected", [
    ("2026-12-24 07:59", "closed"),
    ("2026-12-24 08:00", "open"),
    ("2026-12-24 11:59", "open"),
    ("2026-12-24 12:00", "closed"),     # special day replaces Thursday's 08:00-20:00
    ("2026-12-24 15:00", "closed"),
    ("2026-12-17 15:00", "open"),       # the Thursday before: weekly hours
])
def test_special_day_replaces_hours(when: str, expected: str) -> None:
    assert state(at(when)) == expected


def test_special_day_closed() -> None:
    schedule = Schedule.model_validate({
        "hours": {"mon-fri": "08:00-18:00"},
        "special_days": [{"date": "2026-11-27", "hours": "closed"}],
    })
    paris = ZoneInfo("Europe/Paris")
    assert state(at("2026-11-27 10:00", paris), schedule, "Europe/Paris") == "closed"
    assert state(at("2026-11-26 10:00", paris), schedule, "Europe/Paris") == "open"


def test_special_day_on_a_weekend_opens() -> None:
    schedule = Schedule.model_validate({
        "hours": {"mon-fri": "08:00-18:00"},
        "special_days": [{"date": "2026-11-29", "hours": "10:00-12:00, 14:00-16:00"}],
    })
    assert state(at("2026-11-29 11:00", UTC), schedule) == "open"
    assert state(at("2026-11-29 13:00", UTC), schedule) == "closed"
    assert state(at("2026-11-29 15:00", UTC), schedule) == "open"


@pytest.mark.parametrize("when, expected", [
    ("2026-11-27 10:00", "open"),       # Friday
    ("2026-11-28 10:00", "open"),       # Saturday
    ("2026-11-29 10:00", "open"),       # Sunday
    ("2026-11-30 10:00", "open"),       # Monday
    ("2026-12-01 10:00", "closed"),     # Tuesday
    ("2026-11-26 10:00", "closed"),     # Thursday
])
def test_day_range_wraps_over_the_weekend(when: str, expected: str) -> None:
    schedule = Schedule.model_validate({"hours": {"fri-mon": "09:00-17:00"}})
    assert state(at(when, UTC), schedule) == expected


def test_default_time_zone_when_schedule_has_none() -> None:
    schedule = Schedule.model_validate({"hours": {"mon-fri": "09:00-17:00"}})
    when = dt.datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 10:00 New York, 00:00 Tokyo (Thu)
    assert schedule_state(schedule, when, "America/New_York") == "open"
    assert schedule_state(schedule, when, "Asia/Tokyo") == "closed"


def test_until_midnight() -> None:
    schedule = Schedule.model_validate({"hours": {"mon-sun": "20:00-24:00"}})
    assert state(at("2026-11-25 23:59:59", UTC), schedule) == "open"
    assert state(at("2026-11-26 00:00", UTC), schedule) == "closed"
    assert state(at("2026-11-25 19:59:59", UTC), schedule) == "closed"


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        schedule_state(OFFICE, dt.datetime(2026, 11, 25, 10, 0), "UTC")
