"""When nobody can take calls: the pure decisions (:mod:`callcenter.routing.availability`)
and the router's gate over them (:mod:`ari_apps.unavailable`), on a fixed clock.

Hypothesis checks that the decisions do not change under inputs that mean the same
(members listed in another order, an agent busy in one way or another, the same instant
written in another time zone) and that every limit takes effect exactly at its boundary.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_apps.unavailable import Gate
from callcenter.agents.state import AgentStatus
from callcenter.config.models import CallCenterConfig, WhenUnavailable
from callcenter.routing.availability import (
    CLOSED,
    FULL,
    MAX_WAIT,
    NO_AGENTS,
    Waiting,
    empty_since,
    entry_reason,
    nobody_there,
    overflow_to,
    waiting_reason,
)

NY = ZoneInfo("America/New_York")
#: A Wednesday, 10:00 in New York (15:00 UTC): the office is open.
WEDNESDAY = dt.datetime(2026, 11, 25, 10, 0, tzinfo=NY)
#: What keeps an agent "there" whatever the rule: busy, about to be free, or free.
PRESENT = (AgentStatus.AVAILABLE, AgentStatus.RESERVED, AgentStatus.RINGING,
           AgentStatus.ON_CALL, AgentStatus.WRAP_UP)
ALL = tuple(AgentStatus)


def rule(**fields: object) -> WhenUnavailable:
    return WhenUnavailable.model_validate(fields)


# -- no agents -------------------------------------------------------------------------

@pytest.mark.parametrize(("no_agents", "statuses", "empty"), [
    ("logged_out", [], True),  # a queue nobody serves has nobody
    ("logged_out", ["logged_out", "logged_out"], True),
    ("logged_out", ["logged_out", "paused"], False),  # paused is logged in
    ("paused", ["logged_out", "paused"], True),
    ("paused", ["paused", "wrap_up"], False),  # wrap-up ends by itself
    ("paused", ["paused", "on_call"], False),
    ("never", ["logged_out"], False),
    ("never", [], False),
])
def test_no_agents_is_defined_per_rule(no_agents: str, statuses: list[str],
                                       empty: bool) -> None:
    assert nobody_there(rule(no_agents=no_agents), [AgentStatus(s) for s in statuses]) is empty


@given(no_agents=st.sampled_from(["logged_out", "paused", "never"]),
       statuses=st.lists(st.sampled_from(ALL), max_size=8), data=st.data())
def test_no_agents_is_stable_under_equivalent_inputs(
        no_agents: str, statuses: list[AgentStatus], data: st.DataObject) -> None:
    """The members' order, a member listed twice, or one present status swapped for
    another present status never changes the answer."""
    r = rule(no_agents=no_agents)
    answer = nobody_there(r, statuses)
    assert nobody_there(r, data.draw(st.permutations(statuses))) is answer
    assert nobody_there(r, statuses + statuses[:1]) is answer
    swapped = [data.draw(st.sampled_from(PRESENT)) if s in PRESENT else s for s in statuses]
    assert nobody_there(r, swapped) is answer
    # Anyone present keeps the queue staffed, whatever the rule.
    assert not nobody_there(r, [*statuses, data.draw(st.sampled_from(PRESENT))])


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 10, allow_nan=False)), max_size=20))
def test_empty_since_is_the_start_of_the_current_run_of_empty_passes(
        passes: list[tuple[bool, float]]) -> None:
    now, since, run_start = 0.0, None, None
    for empty, step in passes:
        now += step
        since = empty_since(since, empty, now)
        run_start = (run_start if run_start is not None else now) if empty else None
        assert since == run_start


# -- the decisions ---------------------------------------------------------------------

def test_at_entry_closed_comes_before_no_agents_before_full() -> None:
    r = rule(max_callers=2)
    assert entry_reason(r, open_now=False, empty=True, waiting=5) == CLOSED
    assert entry_reason(r, open_now=True, empty=True, waiting=5) == NO_AGENTS
    assert entry_reason(r, open_now=True, empty=False, waiting=2) == FULL
    assert entry_reason(r, open_now=True, empty=False, waiting=1) is None
    # Agents not read yet: not judged (the matchmaker judges the caller once they are).
    assert entry_reason(r, open_now=True, empty=None, waiting=0) is None
    assert entry_reason(rule(), open_now=True, empty=False, waiting=10_000) is None


@given(max_callers=st.integers(1, 50), waiting=st.integers(0, 100))
def test_full_exactly_when_max_callers_wait_already(max_callers: int, waiting: int) -> None:
    reason = entry_reason(rule(max_callers=max_callers), open_now=True, empty=False,
                          waiting=waiting)
    assert (reason == FULL) is (waiting >= max_callers)


@given(max_wait=st.integers(1, 3600), entered=st.floats(0, 1e9, allow_nan=False),
       offset=st.floats(-10, 10, allow_nan=False))
def test_max_wait_takes_effect_exactly_at_the_cap(max_wait: int, entered: float,
                                                  offset: float) -> None:
    now = entered + max_wait + offset
    reason = waiting_reason(rule(max_wait=max_wait), open_now=True, since=None,
                            entered_at=entered, now=now)
    assert (reason == MAX_WAIT) is (now - entered >= max_wait)


@given(grace=st.integers(0, 600), since=st.floats(0, 1e9, allow_nan=False),
       offset=st.floats(-10, 10, allow_nan=False))
def test_no_agents_while_waiting_after_the_grace(grace: int, since: float,
                                                 offset: float) -> None:
    now = since + grace + offset
    reason = waiting_reason(rule(grace=grace), open_now=True, since=since, entered_at=0.0,
                            now=now)
    assert (reason == NO_AGENTS) is (now - since >= grace)
    # With agents there, nothing moves the caller (no cap set).
    assert waiting_reason(rule(grace=grace), open_now=True, since=None, entered_at=0.0,
                          now=now) is None


def test_while_waiting_closed_comes_first_then_no_agents_then_max_wait() -> None:
    r = rule(grace=0, max_wait=10)
    assert waiting_reason(r, open_now=False, since=0, entered_at=0, now=100) == CLOSED
    assert waiting_reason(r, open_now=True, since=0, entered_at=0, now=100) == NO_AGENTS
    assert waiting_reason(r, open_now=True, since=None, entered_at=0, now=100) == MAX_WAIT
    assert overflow_to(MAX_WAIT) == "unavailable:max_wait"


# -- the gate over the router's state --------------------------------------------------

def center(**when_unavailable: object) -> CallCenterConfig:
    """sales (alice, carmen) with the rule; support (bob) without one."""
    return CallCenterConfig.model_validate({
        "entry_points": {"main": {"numbers": ["100"], "flow": "start"}},
        "flows": {"start": {"steps": [{"hangup": True}]}},
        "skills": ["sales", "internet"],
        "queues": {"sales": {"skills": ["sales"], "when_unavailable": when_unavailable},
                   "support": {"skills": ["internet"]}},
        "agents": {"alice": {"extension": "1001", "skills": {"sales": 5}},
                   "bob": {"extension": "1002", "skills": {"internet": 5}},
                   "carmen": {"extension": "1003", "skills": {"sales": 9}}},
        "schedules": {"office": {"timezone": "America/New_York",
                                 "hours": {"mon-fri": "08:00-20:00", "sat-sun": "closed"},
                                 "holidays": [{"date": "2026-12-25", "name": "Christmas"}]}},
    })


def statuses(**by_agent: str) -> dict[str, AgentStatus]:
    return {agent: AgentStatus(s) for agent, s in by_agent.items()}


def test_gate_judges_only_the_queues_members_and_queues_with_a_rule() -> None:
    gate = Gate(center())
    # bob (support) logged in does not staff sales; unknown agents count as logged out.
    assert gate.at_entry("sales", statuses(bob="available"), 0, WEDNESDAY) == NO_AGENTS
    assert gate.at_entry("sales", statuses(carmen="paused"), 0, WEDNESDAY) is None
    assert gate.at_entry("sales", None, 0, WEDNESDAY) is None  # agents not read yet
    assert gate.at_entry("support", {}, 0, WEDNESDAY) is None  # no rule: nothing changes


def test_gate_grace_counts_from_when_the_queue_emptied() -> None:
    gate = Gate(center(grace=5))
    caller = [Waiting("c1", "sales", WEDNESDAY.timestamp() - 60)]
    staffed, empty = statuses(alice="available"), statuses(alice="logged_out")
    t = WEDNESDAY
    assert gate.leaving(caller, staffed, t) == []
    assert gate.leaving(caller, empty, t + dt.timedelta(seconds=1)) == []
    assert gate.leaving(caller, empty, t + dt.timedelta(seconds=5.999)) == []
    # alice logs back in within the grace: the clock starts again at the next empty pass.
    assert gate.leaving(caller, staffed, t + dt.timedelta(seconds=6)) == []
    assert gate.leaving(caller, empty, t + dt.timedelta(seconds=7)) == []
    assert gate.leaving(caller, empty, t + dt.timedelta(seconds=11.9)) == []
    assert gate.leaving(caller, empty, t + dt.timedelta(seconds=12)) == [("c1", NO_AGENTS)]


def test_gate_moves_callers_in_the_order_given_each_with_its_reason() -> None:
    gate = Gate(center(max_wait=30, no_agents="never"))
    now = WEDNESDAY
    waiting = [Waiting("late", "sales", now.timestamp() - 31),
               Waiting("other", "support", now.timestamp() - 999),
               Waiting("fresh", "sales", now.timestamp() - 29),
               Waiting("cap", "sales", now.timestamp() - 30)]
    assert gate.leaving(waiting, {}, now) == [("late", MAX_WAIT), ("cap", MAX_WAIT)]


# New York: 08:00-20:00 Monday to Friday; 2026-11-25 is a Wednesday, 2026-12-25 a Friday.
@pytest.mark.parametrize(("local", "reason"), [
    ("2026-11-25 07:59:59.999", CLOSED),
    ("2026-11-25 08:00:00", None),  # ranges are half-open: the start is open...
    ("2026-11-25 19:59:59.999", None),
    ("2026-11-25 20:00:00", CLOSED),  # ... and the end closed
    ("2026-11-28 12:00:00", CLOSED),  # Saturday
    ("2026-12-25 12:00:00", CLOSED),  # a holiday is closed
])
def test_gate_schedule_boundaries(local: str, reason: str | None) -> None:
    gate = Gate(center(schedule="office", no_agents="never"))
    now = dt.datetime.fromisoformat(local).replace(tzinfo=NY)
    assert gate.at_entry("sales", {}, 0, now) == reason
    waiting = [Waiting("c", "sales", now.timestamp())]
    assert gate.leaving(waiting, {}, now) == ([] if reason is None else [("c", reason)])


@given(minutes=st.integers(0, 7 * 24 * 60 - 1),
       zone=st.sampled_from(["UTC", "Europe/Lisbon", "Asia/Tokyo", "America/Los_Angeles"]))
def test_gate_schedule_is_the_same_instant_in_any_zone(minutes: int, zone: str) -> None:
    """Any minute of the week of 2026-11-23 (Monday), given in New York time or the same
    instant in another zone: open exactly 08:00-20:00 New York time, Monday to Friday."""
    gate = Gate(center(schedule="office", no_agents="never"))
    local = dt.datetime(2026, 11, 23, tzinfo=NY) + dt.timedelta(minutes=minutes)
    local = local.astimezone(NY)  # the wall time (no DST change that week)
    expected = None if local.weekday() < 5 and 8 <= local.hour < 20 else CLOSED
    assert gate.at_entry("sales", {}, 0, local) == expected
    assert gate.at_entry("sales", {}, 0, local.astimezone(ZoneInfo(zone))) == expected
