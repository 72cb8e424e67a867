"""Is a schedule open now? One pure function, used by the ``schedule_check``
FastAGI script and by ``callcenter simulate``, so both always agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from callcenter.config.models import Schedule

__all__ = ["ScheduleState", "schedule_state"]

ScheduleState = Literal["open", "closed", "holiday"]


def schedule_state(schedule: Schedule, now: dt.datetime, default_tz: str) -> ScheduleState:
    """State of ``schedule`` at the aware datetime ``now``.

    Order: a holiday closes the whole (local) day; a special day replaces that
    day's weekly hours; otherwise the weekly hours apply. Ranges are
    half-open: 08:00-18:00 is open at 08:00 and closed at 18:00.
    """
    if now.tzinfo is None:
        raise ValueError("schedule_state needs an aware datetime")
    local = now.astimezone(ZoneInfo(schedule.timezone or default_tz))
    today = local.date()
    for holiday in schedule.holidays:
        if holiday.date <= today <= holiday.last:
            return "holiday"
    ranges = next((sd.hours for sd in schedule.special_days if sd.date == today), None)
    if ranges is None:
        ranges = schedule.weekly().get(today.weekday(), ())
    t = local.time().replace(tzinfo=None)
    return "open" if any(r.contains(t) for r in ranges) else "closed"
