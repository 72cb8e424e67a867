"""The predictive dialer's pure inputs: measures from attempt history, the Pacer's
snapshot from agent states and calls in progress, the campaign's policy, and who takes a
live answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.agents.state import AgentState, AgentStatus
from callcenter.config.campaign import AbandonRule
from callcenter.config.loader import load_config
from callcenter.dialer.pacing import AgentState as PacerState
from callcenter.dialer.pacing import Pacer, Rule
from callcenter.dialer.predictive import (
    AttemptRow,
    Dialing,
    longest_idle,
    measured,
    policy,
    snapshot,
)
from tests.unit.test_dialer_progressive import EXAMPLE

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WORKING = frozenset({"alice", "bob", "carmen"})
DAY = timedelta(days=1)


def _answered(ago: timedelta, ring: float = 5, talk: float = 30) -> AttemptRow:
    s = NOW - ago
    return AttemptRow("answered", s, s + timedelta(seconds=ring + talk),
                      s + timedelta(seconds=ring))


def _ended(outcome: str, ago: timedelta, ring: float = 15) -> AttemptRow:
    s = NOW - ago
    return AttemptRow(outcome, s, s + timedelta(seconds=ring))


def _history(live: int = 30, no_answer: int = 30, abandoned: int = 0,
             ago: timedelta = timedelta(hours=1)) -> list[AttemptRow]:
    return ([_answered(ago) for _ in range(live)]
            + [_ended("abandoned", ago, 6) for _ in range(abandoned)]
            + [_ended("no_answer", ago) for _ in range(no_answer)])


def test_measured_counts_outcomes_ring_and_talk_times() -> None:
    rows = [_answered(DAY, ring=4, talk=60), _ended("abandoned", DAY, 6),
            _ended("machine", DAY, 9), _ended("busy", DAY, 2), _ended("failed", DAY, 1),
            _ended("invalid_number", DAY, 1), _ended("no_answer", DAY, 25),
            _ended("hangup_at_once", DAY, 3), _ended("cancelled", DAY, 3)]
    m = measured(rows, NOW, window=timedelta(days=30), wrap_up=timedelta(seconds=10))
    assert (m.live, m.machine, m.busy, m.failed, m.no_answer) == (2, 1, 1, 2, 2)
    assert m.resolved == 8  # cancelled does not count
    assert m.to_live is not None and (m.to_live.samples, m.to_live.mean) == (1, 4.0)
    assert m.talk is not None and m.talk.mean == 60.0
    assert m.to_machine is not None and m.to_machine.mean == 9.0
    assert m.to_busy is not None and m.to_busy.samples == 3
    assert m.wrap_up is not None and m.wrap_up.mean == 10.0
    assert (m.window_live, m.window_abandoned, m.abandon_rate) == (2, 1, 0.5)


def test_the_abandon_window_is_the_rules_30_days_or_24_hours() -> None:
    rows = [_ended("abandoned", timedelta(hours=30), 6), _answered(timedelta(hours=1)),
            _answered(timedelta(hours=30))]
    us = measured(rows, NOW, window=timedelta(days=30), wrap_up=timedelta(0))
    uk = measured(rows, NOW, window=timedelta(hours=24), wrap_up=timedelta(0))
    assert (us.window_live, us.window_abandoned) == (3, 1)
    assert (uk.window_live, uk.window_abandoned) == (1, 0)
    assert uk.live == 3  # the distributions keep the older history


def test_an_empty_history_is_a_cold_start() -> None:
    m = measured([], NOW, window=timedelta(days=30), wrap_up=timedelta(seconds=5))
    assert m.resolved == 0 and m.to_live is None and m.talk is None
    snap = snapshot([AgentState("carmen", AgentStatus.AVAILABLE, NOW - DAY)], WORKING, NOW,
                    [], m)
    decision = Pacer(policy(_campaign())).calls_to_place(snap)
    assert (decision.calls, decision.rule) == (1, Rule.COLD_START)


def _campaign(**update: object):  # type: ignore[no-untyped-def]
    campaign = load_config(EXAMPLE).config.campaigns["renewals"]
    return campaign.model_copy(update={"mode": "predictive", "ring_seconds": 15, **update})


def _states(free_for: float = 10, on_call: tuple[str, ...] = ("alice", "bob")) -> list[AgentState]:
    states = [AgentState("carmen", AgentStatus.AVAILABLE, NOW - timedelta(seconds=free_for))]
    states += [AgentState(a, AgentStatus.ON_CALL, NOW - timedelta(seconds=1000), call=f"c-{a}")
               for a in on_call]
    return states


def test_snapshot_maps_agent_states_and_calls_in_progress() -> None:
    states = [
        AgentState("alice", AgentStatus.RINGING, NOW - timedelta(seconds=3), call="x"),
        AgentState("bob", AgentStatus.WRAP_UP, NOW - timedelta(seconds=4),
                   wrap_up_until=NOW + timedelta(seconds=6)),
        AgentState("carmen", AgentStatus.AVAILABLE, NOW - timedelta(seconds=30)),
        AgentState("dave", AgentStatus.AVAILABLE, NOW - timedelta(seconds=30)),  # not working
        AgentState("erin", AgentStatus.AVAILABLE, NOW - timedelta(seconds=1)),
        AgentState("fred", AgentStatus.LOGGED_OUT, NOW - DAY),
        AgentState("gina", AgentStatus.AVAILABLE, NOW - timedelta(seconds=60)),
    ]
    working = frozenset({"alice", "bob", "carmen", "erin", "fred", "gina"})
    calls = [Dialing(NOW - timedelta(seconds=7)),
             Dialing(NOW - timedelta(seconds=9), NOW - timedelta(seconds=1))]
    m = measured([], NOW, window=DAY, wrap_up=timedelta(0))
    snap = snapshot(states, working, NOW, calls, m, busy=frozenset({"gina"}))
    assert [(a.state, a.for_s) for a in snap.agents] == [
        (PacerState.ON_CALL, 3.0), (PacerState.WRAP_UP, 4.0), (PacerState.AVAILABLE, 30.0),
        (PacerState.WRAP_UP, 1e6),  # erin: just freed, the router's for 2 s
        (PacerState.ON_CALL, 60.0)]  # gina: this dialer handles her call
    assert [(c.ringing_for, c.answered) for c in snap.calls] == [(7.0, False), (8.0, True)]
    assert snap.measured is m


def test_with_history_past_cold_start_it_places_more_calls_than_free_agents() -> None:
    m = measured(_history(), NOW, window=timedelta(days=30), wrap_up=timedelta(seconds=2))
    decision = Pacer(policy(_campaign())).calls_to_place(
        snapshot(_states(), WORKING, NOW, [], m))
    assert decision.free_agents == 1 and decision.rule is Rule.PREDICTIVE
    assert decision.calls > 1


def test_at_the_measured_abandon_cap_it_places_what_progressive_does() -> None:
    m = measured(_history(live=97, abandoned=3), NOW, window=timedelta(days=30),
                 wrap_up=timedelta(seconds=2))
    assert m.abandon_rate == pytest.approx(0.03)
    decision = Pacer(policy(_campaign())).calls_to_place(
        snapshot(_states(), WORKING, NOW, [], m))
    assert (decision.calls, decision.rule) == (1, Rule.GUARD_PROGRESSIVE)
    # The abandons were a day and a half ago: out of the UK window, the guard lets go.
    old = measured(_history(live=97, abandoned=3, ago=timedelta(hours=36))
                   + _history(live=20, no_answer=0), NOW, window=DAY,
                   wrap_up=timedelta(seconds=2))
    assert old.abandon_rate == 0.0


def test_policy_takes_the_campaigns_cap_and_ring_time() -> None:
    p = policy(_campaign(abandon=AbandonRule(rule="uk_24_hours", max_percent=2.5)))
    assert (p.abandon_target, p.ring_timeout, p.patience) == (0.025, 15.0, 2.0)
    assert policy(_campaign()).abandon_target == 0.03


def test_a_live_answer_goes_to_the_longest_idle_available_agent() -> None:
    states = [AgentState("alice", AgentStatus.AVAILABLE, NOW - timedelta(seconds=5)),
              AgentState("bob", AgentStatus.AVAILABLE, NOW - timedelta(seconds=50)),
              AgentState("carmen", AgentStatus.AVAILABLE, NOW - timedelta(seconds=0.5)),
              AgentState("dave", AgentStatus.AVAILABLE, NOW - DAY)]
    assert longest_idle(states, WORKING) == "bob"
    assert longest_idle(states, WORKING, busy=frozenset({"bob"})) == "alice"
    assert longest_idle(_states(on_call=("alice", "bob"))[1:], WORKING) is None
