"""The time range and interval of a report, from what a manager types (pure).

``--from``/``--to`` take ISO 8601 (``2026-11-30``, ``2026-11-30T09:00``,
``2026-11-30T14:00:00Z``); a time without an offset is the center's local time
(``settings.timezone``). ``--last`` and ``--interval`` take a duration: a number and a
unit, ``s``, ``m``, ``h``, ``d`` or ``w`` (``90m``, ``1h``, ``7d``). Without any, the
report covers today, from the center's local midnight until now.

Every value is bounded before any arithmetic: a duration is at most :data:`MAX_RANGE`,
a time lies in the years :data:`FIRST_YEAR` to :data:`LAST_YEAR`. Python's ``datetime``
ends at the years 1 and 9999, and a report adds to its edges (interval edges, the wrap-up
read past the end), so ``999999w`` or ``9999-12-31`` would otherwise raise
``OverflowError`` deep inside a report: a crash of the command and a 500 of the HTTP API
instead of an error naming the option.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "MAX_RANGE",
    "WindowError",
    "interval",
    "parse_duration",
    "parse_time",
    "window",
]

_DURATION = re.compile(r"^\s*([0-9]{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest range a report may cover, and the longest duration (``--last``, ``--interval``).
MAX_RANGE = timedelta(days=3660)
#: The years a time given for a report may be in (the records hold nothing outside them).
FIRST_YEAR, LAST_YEAR = 1970, 2999


class WindowError(ValueError):
    """A bad range or interval; the message names the option and the value."""

    def __init__(self, option: str, value: str, why: str) -> None:
        super().__init__(f"{option} {value!r}: {why}")
        self.option, self.value, self.why = option, value, why


def parse_duration(option: str, text: str) -> timedelta:
    """``"15m"`` -> 15 minutes.

    Raises:
        WindowError: not a positive number and a unit.
    """
    match = _DURATION.match(text)
    if match is None:
        raise WindowError(option, text, "expected a number and a unit s, m, h, d or w "
                                        "(15m, 1h, 7d)")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise WindowError(option, text, "must be longer than zero")
    if seconds > MAX_RANGE.total_seconds():
        raise WindowError(option, text, f"longer than {MAX_RANGE.days} days")
    return timedelta(seconds=seconds)


def parse_time(option: str, text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 date or time; without an offset, in *tz*.

    Raises:
        WindowError: not ISO 8601, or not in the years :data:`FIRST_YEAR` to
            :data:`LAST_YEAR`.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WindowError(option, text, "expected an ISO 8601 date or time "
                                        "(2026-11-30, 2026-11-30T09:00, "
                                        "2026-11-30T14:00:00Z)") from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise WindowError(option, text, f"expected a time in the years {FIRST_YEAR} to "
                                        f"{LAST_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def window(*, start: str | None, end: str | None, last: str | None, now: datetime,
           tz: tzinfo) -> tuple[datetime, datetime]:
    """The report's ``[start, end)``.

    Raises:
        WindowError: ``--last`` together with ``--from``/``--to``, an unparsable value,
            a start not before the end, or a range longer than :data:`MAX_RANGE`.
    """
    if last is not None:
        if start is not None or end is not None:
            given = "--from" if start is not None else "--to"
            raise WindowError("--last", last, f"give either --last or --from/--to, not "
                                              f"both (got {given} too)")
        length = parse_duration("--last", last)  # at most MAX_RANGE
        return now - length, now
    begin = (parse_time("--from", start, tz) if start is not None
             else now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0))
    finish = parse_time("--to", end, tz) if end is not None else now
    if not begin < finish:
        option, value = ("--to", end) if end is not None else ("--from", start or "")
        raise WindowError(option, value, f"the range is empty: {begin.isoformat()} is not "
                                         f"before {finish.isoformat()}")
    if finish - begin > MAX_RANGE:
        raise WindowError("--from", start or "", f"the range is longer than {MAX_RANGE.days} days")
    return begin, finish


def interval(text: str, start: datetime, end: datetime) -> timedelta:
    """The ``--interval`` length for a report of ``[start, end)``.

    Raises:
        WindowError: not a duration, or more than
            :data:`~callcenter.stats.compute.MAX_INTERVALS` intervals in the range.
    """
    from callcenter.stats.compute import MAX_INTERVALS

    length = parse_duration("--interval", text)
    count = -(-(end - start) // length) + 1
    if count > MAX_INTERVALS:
        raise WindowError("--interval", text, f"{count} intervals in the range (at most "
                                              f"{MAX_INTERVALS}): choose a longer interval "
                                              "or a shorter range")
    return length
