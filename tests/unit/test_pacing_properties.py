"""Properties of the Pacer over arbitrary snapshots (hypothesis).

Never negative; never more calls in progress than ``max_ratio`` x the agents free soon;
progressive never past the free agents; more free agents never fewer calls; at or above
the abandon cap never more than progressive; the same snapshot, the same decision.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.dialer.pacing import (
    AgentState,
    AgentView,
    CallView,
    Distribution,
    Measured,
    Mode,
    PacingPolicy,
    Snapshot,
    calls_to_place,
)

ages = st.floats(min_value=0.0, max_value=900.0, allow_nan=False)
agents_st = st.lists(st.builds(AgentView, st.sampled_from(list(AgentState)), ages), max_size=40)
calls_st = st.lists(st.builds(CallView, st.floats(min_value=0.0, max_value=30.0), st.booleans()),
                    max_size=60)


def dist(max_value: float, min_size: int = 1) -> st.SearchStrategy[Distribution]:
    return st.lists(st.floats(min_value=0.0, max_value=max_value), min_size=min_size,
                    max_size=30).map(Distribution.from_samples)


@st.composite
def measured(draw: st.DrawFn) -> Measured:
    count = st.integers(min_value=0, max_value=5000)
    live = draw(count)
    window_live = draw(count)
    return Measured(
        live=live, machine=draw(count), busy=draw(count), no_answer=draw(count),
        failed=draw(st.integers(0, 50)),
        to_live=draw(st.none() | dist(40.0)),
        to_machine=draw(st.none() | dist(40.0)),
        to_busy=draw(st.none() | dist(10.0)),
        talk=draw(st.none() | dist(900.0)),
        wrap_up=draw(st.none() | dist(60.0)),
        window_live=window_live,
        window_abandoned=draw(st.integers(0, window_live)),
    )


@st.composite
def policies(draw: st.DrawFn, mode: Mode | None = None) -> PacingPolicy:
    return PacingPolicy(
        mode=mode or draw(st.sampled_from(list(Mode))),
        abandon_target=draw(st.floats(0.005, 0.2)),
        guard_from=draw(st.floats(0.0, 0.95)),
        risk=draw(st.floats(0.01, 1.0)),
        max_ratio=draw(st.floats(1.0, 10.0)),
        ring_timeout=draw(st.floats(5.0, 60.0)),
        patience=draw(st.floats(0.0, 5.0)),
        min_resolved=draw(st.integers(1, 100)),
        min_live=draw(st.integers(1, 50)),
        min_handled=draw(st.integers(1, 50)),
    )


snapshots = st.builds(lambda a, c, m: Snapshot(tuple(a), tuple(c), m), agents_st, calls_st,
                      measured())


@settings(max_examples=400, deadline=None)
@given(snapshots, policies())
def test_never_negative_and_never_past_max_ratio_times_agents_free_soon(
        snap: Snapshot, policy: PacingPolicy) -> None:
    d = calls_to_place(snap, policy)
    free = sum(1 for a in snap.agents if a.state is AgentState.AVAILABLE)
    assert d.calls >= 0
    assert free - 1e-9 <= d.free_soon <= len(snap.agents) + 1e-9
    limit = max(0, math.floor(policy.max_ratio * d.free_soon + 1e-9) - len(snap.calls))
    assert d.calls <= limit
    assert d.calls >= d.progressive == max(0, free - len(snap.calls))


@settings(max_examples=300, deadline=None)
@given(snapshots, policies(Mode.PROGRESSIVE))
def test_progressive_never_exceeds_the_free_agents(snap: Snapshot, policy: PacingPolicy) -> None:
    d = calls_to_place(snap, policy)
    free = sum(1 for a in snap.agents if a.state is AgentState.AVAILABLE)
    assert d.calls <= free
    assert d.calls + len(snap.calls) <= max(free, len(snap.calls))


@settings(max_examples=400, deadline=None)
@given(snapshots, policies(), st.integers(1, 5), st.data())
def test_more_free_agents_never_fewer_calls(snap: Snapshot, policy: PacingPolicy, more: int,
                                            data: st.DataObject) -> None:
    before = calls_to_place(snap, policy).calls
    added = Snapshot(snap.agents + (AgentView(AgentState.AVAILABLE, 0.0),) * more, snap.calls,
                     snap.measured)
    assert calls_to_place(added, policy).calls >= before
    busy = [i for i, a in enumerate(snap.agents) if a.state is not AgentState.AVAILABLE]
    if busy:  # one busy agent becoming free
        i = data.draw(st.sampled_from(busy))
        freed = list(snap.agents)
        freed[i] = AgentView(AgentState.AVAILABLE, 0.0)
        assert calls_to_place(Snapshot(tuple(freed), snap.calls, snap.measured),
                              policy).calls >= before


@settings(max_examples=300, deadline=None)
@given(snapshots, policies(Mode.PREDICTIVE), st.floats(1.0, 3.0))
def test_at_or_above_the_cap_the_guard_allows_no_more_than_progressive(
        snap: Snapshot, policy: PacingPolicy, over: float) -> None:
    live = max(snap.measured.window_live, 100)
    abandoned = math.ceil(policy.abandon_target * over * live)
    m = snap.measured
    capped = Measured(m.live, m.machine, m.busy, m.no_answer, m.failed, m.to_live, m.to_machine,
                      m.to_busy, m.talk, m.wrap_up, window_live=live, window_abandoned=abandoned)
    d = calls_to_place(Snapshot(snap.agents, snap.calls, capped), policy)
    assert capped.abandon_rate >= policy.abandon_target
    assert d.calls == d.progressive


@settings(max_examples=200, deadline=None)
@given(snapshots, policies())
def test_the_same_snapshot_gives_the_same_decision(snap: Snapshot, policy: PacingPolicy) -> None:
    again = Snapshot(tuple(AgentView(a.state, a.for_s) for a in snap.agents),
                     tuple(CallView(c.ringing_for, c.answered) for c in snap.calls),
                     snap.measured)
    assert calls_to_place(snap, policy) == calls_to_place(again, policy)
