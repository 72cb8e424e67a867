"""The statistics' pure computations (callcenter.stats.compute): each definition on
hand-made records, then invariants over generated ones (hypothesis)."""

from __future__ import annotations

import itertools
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.agents.state import AgentStatus as S
from callcenter.config.models import ServiceLevel
from callcenter.stats.compute import (
    agent_segments,
    agent_times,
    build_report,
    classify,
    interval_edges,
    realtime,
    wrap_ups,
)
from callcenter.stats.records import (
    AgentTime,
    CallFigures,
    CallRecord,
    StatusChange,
    WaitingRecord,
)

T0 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 in New York
NY = ZoneInfo("America/New_York")
RULE = ServiceLevel()  # 20 s, short abandons under 5 s not counted


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered(channel: str, entered: float, wait: float, talk: float | None,
             agent: str = "carmen", queue: str = "sales") -> CallRecord:
    return CallRecord(queue, channel, at(entered), at(entered + wait),
                      at(entered + wait + talk) if talk is not None else None,
                      "answered" if talk is not None else None, agent)


def abandoned(channel: str, entered: float, wait: float, queue: str = "sales") -> CallRecord:
    return CallRecord(queue, channel, at(entered), None, at(entered + wait), "abandoned")


def report(calls, changes=(), initial=None, by="queue", end=3600.0, now=None, **kw):
    return build_report(calls, initial or {}, list(changes),
                        rules=kw.pop("rules", {"sales": RULE}), start=T0, end=at(end),
                        now=now or at(end), by=by, **kw)


# -- one call -----------------------------------------------------------------------

def test_an_answer_at_the_threshold_meets_the_service_level_one_after_does_not() -> None:
    assert classify(answered("a", 0, 20, 60), RULE).answered_in_threshold == 1
    assert classify(answered("a", 0, 20.001, 60), RULE).answered_in_threshold == 0


def test_short_abandons_are_left_out_unless_the_queue_counts_them() -> None:
    short = abandoned("a", 0, 4.9)
    assert classify(short, RULE) == CallFigures(offered=1, abandoned=1, short_abandoned=1)
    counted = classify(short, ServiceLevel(count_short_abandons=True))
    assert (counted.abandoned_counted, counted.judged) == (1, 1)
    long = classify(abandoned("b", 0, 5), RULE)
    assert (long.short_abandoned, long.abandoned_counted, long.judged) == (0, 1, 1)


def test_a_call_still_talking_is_answered_but_not_yet_handled() -> None:
    figures = classify(answered("a", 0, 3, None), RULE, wrap_up=7)
    assert (figures.answered, figures.handled, figures.talk, figures.wrap_up) == (1, 0, 0, 0)


def test_overflowed_and_timed_out_calls_miss_the_service_level() -> None:
    for outcome in ("overflowed", "timed_out"):
        call = CallRecord("sales", "a", at(0), None, at(30), outcome)
        assert classify(call, RULE) == CallFigures(offered=1, unanswered_other=1, judged=1)


# -- a queue ------------------------------------------------------------------------

def test_queue_figures_follow_the_definitions() -> None:
    """3 answered in 2, 4, 6 s (talk 30, 60, 90 s; wrap-up 10 s each), one answered
    after 25 s (talk 40 s, no wrap-up), one abandoned after 12 s, one short abandon."""
    calls = [answered("a", 0, 2, 30), answered("b", 100, 4, 60), answered("c", 200, 6, 90),
             answered("d", 300, 25, 40), abandoned("e", 400, 12), abandoned("f", 500, 3)]
    changes = []
    for call in calls[:3]:
        assert call.ended_at is not None
        changes += [StatusChange("carmen", call.ended_at, S.WRAP_UP, call.channel),
                    StatusChange("carmen", call.ended_at + timedelta(seconds=10), S.AVAILABLE)]
    sales = report(calls, changes).rows[0]
    c = sales.calls
    assert (c.offered, c.answered, c.abandoned, c.short_abandoned, c.judged) == (6, 4, 2, 1, 5)
    assert c.service_level == pytest.approx(3 / 5)
    assert c.abandon_rate == pytest.approx(1 / 5)
    assert c.asa == pytest.approx((2 + 4 + 6 + 25) / 4)
    assert c.average_talk == pytest.approx((30 + 60 + 90 + 40) / 4)
    assert c.aht == pytest.approx((30 + 60 + 90 + 40 + 30) / 4)
    assert sales.longest_wait == 25


def test_each_call_is_judged_by_its_own_queues_threshold() -> None:
    calls = [answered("a", 0, 8, 10, queue="sales"), answered("b", 0, 8, 10, queue="vip")]
    rules = {"sales": ServiceLevel(threshold=10), "vip": ServiceLevel(threshold=5, short_abandon=2)}
    result = report(calls, rules=rules)
    assert [(r.key, r.calls.service_level) for r in result.rows] == [("sales", 1.0), ("vip", 0.0)]
    assert result.total.calls.service_level == 0.5


def test_calls_outside_the_range_are_not_counted() -> None:
    calls = [answered("before", -10, 2, 30), answered("in", 10, 2, 30), answered("after", 3600, 1, 1)]
    assert report(calls).total.calls.offered == 1


def test_configured_queues_and_agents_get_rows_even_without_calls() -> None:
    result = report([], queues=["sales", "support"])
    assert [r.key for r in result.rows] == ["sales", "support"]
    agents = report([], by="agent", agents=["alice", "bob"])
    assert [r.key for r in agents.rows] == ["alice", "bob"]


# -- agents ------------------------------------------------------------------------

def test_occupancy_is_calls_and_wrap_up_over_time_logged_in_and_not_paused() -> None:
    """Logged in at 0; on a call 100-400; wrap-up 400-460; paused 1000-1600; logged out
    at 2000: staffed 1400 s, busy 360 s."""
    changes = [StatusChange("carmen", at(0), S.AVAILABLE),
               StatusChange("carmen", at(90), S.RESERVED),
               StatusChange("carmen", at(95), S.RINGING),
               StatusChange("carmen", at(100), S.ON_CALL),
               StatusChange("carmen", at(400), S.WRAP_UP, "a"),
               StatusChange("carmen", at(460), S.AVAILABLE),
               StatusChange("carmen", at(1000), S.PAUSED),
               StatusChange("carmen", at(1600), S.AVAILABLE),
               StatusChange("carmen", at(2000), S.LOGGED_OUT)]
    times = agent_times(agent_segments({}, changes, T0, at(3600)))
    assert times["carmen"] == AgentTime(staffed=1400, on_call=300, wrap_up=60, paused=600)
    assert times["carmen"].occupancy == pytest.approx(360 / 1400)
    assert wrap_ups(changes, at(3600)) == {"a": 60}


def test_the_status_at_the_start_of_the_range_counts_from_the_start() -> None:
    """On a call since before the range; the range starts at T0, the call ends at 60."""
    changes = [StatusChange("bob", at(60), S.WRAP_UP, "x"), StatusChange("bob", at(70), S.AVAILABLE)]
    times = agent_times(agent_segments({"bob": S.ON_CALL}, changes, T0, at(100)))
    assert times["bob"] == AgentTime(staffed=100, on_call=60, wrap_up=10)


def test_agent_time_stops_at_now_and_a_running_wrap_up_counts_until_now() -> None:
    changes = [StatusChange("bob", at(0), S.ON_CALL),
               StatusChange("bob", at(50), S.WRAP_UP, "x")]
    call = answered("x", 0, 0, 50, agent="bob")
    result = report([call], changes, by="agent", now=at(80))
    bob = result.rows[0]
    assert bob.time == AgentTime(staffed=80, on_call=50, wrap_up=30)
    assert bob.calls.aht == 80


# -- intervals ----------------------------------------------------------------------

def test_intervals_are_aligned_on_the_centers_local_clock() -> None:
    start = datetime(2026, 11, 30, 14, 7, tzinfo=UTC)  # 09:07 in New York
    edges = interval_edges(start, start + timedelta(minutes=30), timedelta(minutes=15), NY)
    assert [e.astimezone(NY).strftime("%H:%M") for e in edges] == [
        "09:00", "09:15", "09:30", "09:45"]


def test_interval_edges_are_evenly_spaced_across_a_dst_change() -> None:
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # midnight EDT, the night clocks go back
    edges = interval_edges(start, start + timedelta(hours=5), timedelta(hours=1), NY)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(edges))
    assert len(edges) == 6


def test_interval_rows_split_calls_and_agent_time() -> None:
    calls = [answered("a", 60, 2, 30), answered("b", 960, 2, 30), abandoned("c", 1000, 30)]
    changes = [StatusChange("carmen", at(0), S.AVAILABLE),
               StatusChange("carmen", at(800), S.ON_CALL),
               StatusChange("carmen", at(1000), S.AVAILABLE)]
    result = report(calls, changes, by="interval", end=1800, tz=UTC)
    assert [r.key for r in result.rows] == ["2026-11-30T14:00:00+00:00", "2026-11-30T14:15:00+00:00"]
    first, second = result.rows
    assert (first.calls.offered, second.calls.offered) == (1, 2)
    assert first.time == AgentTime(staffed=900, on_call=100)
    assert second.time == AgentTime(staffed=900, on_call=100)


def test_too_many_intervals_is_an_error_not_a_hang() -> None:
    with pytest.raises(ValueError, match="intervals"):
        interval_edges(T0, T0 + timedelta(days=365), timedelta(seconds=1), UTC)


# -- real time ---------------------------------------------------------------------

def test_realtime_counts_waiting_callers_longest_wait_and_agents_by_state() -> None:
    waiting = [WaitingRecord("sales", at(0)), WaitingRecord("sales", at(30)),
               WaitingRecord("support", at(50))]
    now = realtime(waiting, [S.AVAILABLE, S.ON_CALL, S.ON_CALL], at(60), ["billing", "sales"])
    assert now.waiting == {"billing": 0, "sales": 2, "support": 1}
    assert now.longest_wait == {"billing": 0.0, "sales": 60.0, "support": 10.0}
    assert now.agents["on_call"] == 2 and now.agents["paused"] == 0
    assert set(now.agents) == {s.value for s in S}


# -- invariants --------------------------------------------------------------------

def same(a: CallFigures, b: CallFigures) -> bool:
    """Equal counts, and sums of seconds equal but for the order of float additions."""
    return all(getattr(a, f.name) == pytest.approx(getattr(b, f.name)) for f in fields(a))


_seconds = st.floats(min_value=0, max_value=3000, allow_nan=False)


@st.composite
def calls(draw: st.DrawFn) -> CallRecord:
    entered = draw(st.floats(min_value=-100, max_value=3700, allow_nan=False))
    queue = draw(st.sampled_from(["sales", "support"]))
    kind = draw(st.sampled_from(["answered", "talking", "abandoned", "overflowed", "open"]))
    channel = f"c{draw(st.integers(0, 10**9))}"
    wait = draw(_seconds)
    if kind == "answered":
        return answered(channel, entered, wait, draw(_seconds), queue=queue)
    if kind == "talking":
        return answered(channel, entered, wait, None, queue=queue)
    if kind == "abandoned":
        return abandoned(channel, entered, wait, queue=queue)
    if kind == "overflowed":
        return CallRecord(queue, channel, at(entered), None, at(entered + wait), "overflowed")
    return CallRecord(queue, channel, at(entered))


@st.composite
def changes(draw: st.DrawFn) -> list[StatusChange]:
    result = []
    for agent in ("alice", "bob"):
        moments = sorted(draw(st.lists(st.floats(min_value=-50, max_value=4000, allow_nan=False),
                                       max_size=12)))
        for moment in moments:
            status = draw(st.sampled_from(list(S)))
            call = draw(st.sampled_from([None, "c1", "c2"])) if status is S.WRAP_UP else None
            result.append(StatusChange(agent, at(moment), status, call))
    return result


_RULES = st.builds(
    lambda threshold, short, count: ServiceLevel(threshold=threshold, short_abandon=short,
                                                 count_short_abandons=count),
    st.integers(6, 60), st.integers(0, 5), st.booleans())


@settings(max_examples=80, deadline=None)
@given(st.lists(calls(), max_size=25), changes(), _RULES, _RULES,
       st.sampled_from([timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=7)]),
       st.floats(min_value=1, max_value=3600, allow_nan=False),
       st.floats(min_value=0, max_value=5000, allow_nan=False))
def test_rates_are_fractions_and_every_grouping_adds_up_to_the_totals(
        records, agent_changes, sales_rule, support_rule, length, end, now) -> None:
    rules = {"sales": sales_rule, "support": support_rule}
    initial = {"alice": S.AVAILABLE}
    reports = {by: report(records, agent_changes, initial, by=by, end=end, now=at(now),
                          rules=rules, interval=length, tz=NY)
               for by in ("queue", "agent", "interval")}
    total = reports["queue"].total.calls
    for result in reports.values():
        for row in (*result.rows, result.total):
            c = row.calls
            for rate in (c.service_level, c.abandon_rate):
                assert 0 <= rate <= 1
            assert c.offered == c.answered + c.abandoned + c.unanswered_other + c.open
            assert c.judged <= c.offered and c.answered_in_threshold <= c.answered
            assert c.short_abandoned <= c.abandoned
            if row.time is not None:
                assert 0 <= row.time.occupancy <= 1
                assert row.time.busy <= row.time.staffed + 1e-6
    by_interval = reports["interval"]
    summed = sum((r.calls for r in by_interval.rows), CallFigures())
    assert same(summed, total)
    assert by_interval.total.calls == total
    summed_time = sum((r.time for r in by_interval.rows if r.time), AgentTime())
    agents_time = sum((r.time for r in reports["agent"].rows if r.time), AgentTime())
    for attribute in ("staffed", "on_call", "wrap_up", "paused"):
        expected = getattr(by_interval.total.time, attribute)
        assert getattr(summed_time, attribute) == pytest.approx(expected, abs=1e-6)
        assert getattr(agents_time, attribute) == pytest.approx(expected, abs=1e-6)
    summed_queues = sum((r.calls for r in reports["queue"].rows), CallFigures())
    assert same(summed_queues, total)
    window = max(0.0, min(end, now))
    for row in reports["agent"].rows:
        assert row.time is not None
        assert row.time.staffed + row.time.paused <= window + 1e-6


def test_an_empty_range_gives_zeros() -> None:
    for by in ("queue", "agent", "interval"):
        result = report([], by=by, queues=["sales"], agents=["bob"])
        c = result.total.calls
        assert (c.offered, c.service_level, c.abandon_rate, c.asa, c.aht) == (0, 0, 0, 0, 0)
        if result.total.time is not None:
            assert result.total.time.occupancy == 0


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        build_report([], {}, [], rules={}, start=T0, end=T0, now=T0, by="queue")
