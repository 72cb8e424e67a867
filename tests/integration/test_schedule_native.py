"""The generated native schedule check agrees with ``schedule_state`` on the real PBX.

For each instant (boundaries, a DST change week, holidays, a special day) the
test sets ``CC_CLOCK_OVERRIDE``, runs ``cc-schedule-office_hours`` on a Local
channel and reads the ``Return(...)`` it executed from AMI ``Newexten``; the
Python function ``callcenter.flows.schedule.schedule_state`` must say the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.asterisk.ami.client import AMIClient
from callcenter.flows.schedule import schedule_state
from tests.conftest import PBX

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")


def _ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


INSTANTS = [
    _ny(2026, 11, 25, 7, 59, 59), _ny(2026, 11, 25, 8, 0), _ny(2026, 11, 25, 19, 59),
    _ny(2026, 11, 25, 20, 0), _ny(2026, 11, 28, 8, 59), _ny(2026, 11, 28, 9, 0),
    _ny(2026, 11, 28, 12, 59), _ny(2026, 11, 28, 13, 0), _ny(2026, 11, 29, 12, 0),
    _ny(2026, 12, 24, 8, 0), _ny(2026, 12, 24, 11, 59), _ny(2026, 12, 24, 12, 0),
    _ny(2026, 12, 25, 10, 0), _ny(2026, 12, 31, 0, 0), _ny(2027, 1, 1, 23, 59),
    _ny(2027, 1, 2, 10, 0), _ny(2027, 1, 4, 10, 0),
    # DST: clocks go forward on 2027-03-14 02:00 and back on 2026-11-01 02:00.
    _ny(2027, 3, 12, 19, 30), _ny(2027, 3, 15, 7, 59), _ny(2027, 3, 15, 8, 1),
    dt.datetime(2026, 11, 2, 12, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 2, 13, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 30, 11, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 30, 12, 0, tzinfo=dt.UTC),
]


async def _native_state(pbx: PBX, ami: AMIClient, when: dt.datetime, n: int) -> str:
    await asyncio.to_thread(pbx.set_clock, when)
    caller = f"5557000{n:04d}"
    with ami.subscribe("Newexten") as events:
        await ami.action("Originate", Channel="Local/s@cc-schedule-office_hours/n",
                         Application="Wait", Data="1", CallerID=f"sched <{caller}>",
                         Async="true")
        async with asyncio.timeout(10):
            while True:
                event = await events.get()
                if (event.get("Context") == "cc-schedule-office_hours"
                        and event.get("Application") == "Return"):
                    return event.get("AppData", "")


async def test_native_schedule_matches_python(clean_pbx: PBX, ami: AMIClient) -> None:
    schedule = clean_pbx.loaded.config.schedules["office_hours"]
    tz = clean_pbx.loaded.config.settings.timezone
    mismatches = []
    for n, when in enumerate(INSTANTS):
        native = await _native_state(clean_pbx, ami, when, n)
        expected = schedule_state(schedule, when, tz)
        if native != expected:
            mismatches.append(f"{when.isoformat()}: dialplan {native}, Python {expected}")
    states = {schedule_state(schedule, w, tz) for w in INSTANTS}
    assert states == {"open", "closed", "holiday"}  # the table covers every state
    assert not mismatches, "\n".join(mismatches)
