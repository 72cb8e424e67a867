"""The Pacer's rules, one by one: progressive, cold start, predictive, the cap, the guard."""

from __future__ import annotations

import math

import pytest

from callcenter.dialer.pacing import (
    AgentState,
    AgentView,
    CallView,
    Distribution,
    Measured,
    Mode,
    Pacer,
    PacingPolicy,
    Rule,
    Snapshot,
    calls_to_place,
)

FREE = AgentView(AgentState.AVAILABLE, 5.0)


def talking(for_s: float) -> AgentView:
    return AgentView(AgentState.ON_CALL, for_s)


def wrapping(for_s: float) -> AgentView:
    return AgentView(AgentState.WRAP_UP, for_s)


def warm(live: int = 200, window_live: int = 200, window_abandoned: int = 0) -> Measured:
    """A campaign an hour in: 20 % live answers after 3-15 s, talk ~60-180 s, 10 s wrap-up."""
    return Measured(
        live=live, machine=100, busy=100, no_answer=600 * live // 200,
        to_live=Distribution.from_samples([3 + 12 * i / 99 for i in range(100)]),
        to_machine=Distribution.from_samples([6 + 12 * i / 99 for i in range(100)]),
        to_busy=Distribution.point(3.0, samples=100),
        talk=Distribution.from_samples([60 + 120 * i / 99 for i in range(100)]),
        wrap_up=Distribution.point(10.0, samples=100),
        window_live=window_live, window_abandoned=window_abandoned)


PREDICTIVE = PacingPolicy(mode=Mode.PREDICTIVE)
PROGRESSIVE = PacingPolicy(mode=Mode.PROGRESSIVE)


def test_distribution_cdf_is_interpolated_on_its_grid_and_conditions_on_age() -> None:
    d = Distribution.from_samples([2.0, 4.0, 4.0, 8.0])
    assert d.at(0) == 0.0 and d.at(2) == 0.25 and d.at(4) == 0.75 and d.at(8) == 1.0
    assert d.at(3) == pytest.approx(0.25)  # nothing in (2, 3]
    assert d.at(3.5) == pytest.approx(0.5)  # half-way to the mass at 4
    assert d.at(100) == 1.0 and d.mean == 4.5 and d.samples == 4
    assert d.quantile(0.5) == 4.0 and d.quantile(1.0) == 8.0
    # lasted 4 s: only the 8 s sample is left, done by 8 s for sure, not by 5 s, half-way
    # through the grid step that holds it at 7.5 s
    assert d.done_within(4.0, 4.0) == 1.0
    assert d.done_within(4.0, 1.0) == 0.0
    assert d.done_within(4.0, 3.5) == pytest.approx(0.5)
    assert d.done_within(50.0, 1.0) == 1.0  # older than anything measured: due now
    assert Distribution.from_samples([]).samples == 0
    with pytest.raises(ValueError, match="cdf must end at 1.0"):
        Distribution((0.0, 0.5))
    with pytest.raises(ValueError, match="non-decreasing"):
        Distribution((0.6, 0.5, 1.0))


def test_progressive_places_one_call_per_free_agent_not_covered_by_a_call() -> None:
    snap = Snapshot((FREE, FREE, FREE, talking(30)), (CallView(4.0),), warm())
    d = calls_to_place(snap, PROGRESSIVE)
    assert (d.calls, d.rule, d.free_agents, d.in_progress) == (2, Rule.PROGRESSIVE, 3, 1)
    # an answer waiting for an agent covers one too; more calls than free agents: none
    snap = Snapshot((FREE,), (CallView(4.0), CallView(9.0, answered=True)), warm())
    assert calls_to_place(snap, PROGRESSIVE).calls == 0
    assert calls_to_place(Snapshot(), PROGRESSIVE).calls == 0


def test_predictive_starts_cold_as_progressive() -> None:
    cold = Measured(live=3, machine=2, busy=2, no_answer=10)
    d = calls_to_place(Snapshot((FREE,) * 4, (), cold), PREDICTIVE)
    assert (d.calls, d.rule) == (4, Rule.COLD_START)
    few = warm(live=5)  # 5 live answers < min_live
    d = calls_to_place(Snapshot((FREE,) * 4, (), few), PREDICTIVE)
    assert (d.calls, d.rule) == (4, Rule.COLD_START)


def test_predictive_dials_ahead_of_free_agents_by_the_answer_rate() -> None:
    snap = Snapshot((FREE,) * 4 + (talking(30),) * 6, (), warm())
    d = calls_to_place(snap, PREDICTIVE)
    assert d.rule is Rule.PREDICTIVE
    # 20 % answer live: four free agents want several calls each, but the abandon bound
    # keeps the expected answers below the agents
    assert 4 < d.calls <= 4 / 0.2
    assert d.expected_shortfall <= PREDICTIVE.abandon_target * d.calls * 0.2 + 1e-9
    assert "rule predictive" in d.explain()


def test_predictive_counts_agents_in_wrap_up_as_about_to_be_free() -> None:
    busy = Snapshot((talking(5),) * 10, (), warm())
    soon = Snapshot((wrapping(8.0),) * 10, (), warm())
    assert calls_to_place(busy, PREDICTIVE).calls == 0  # nobody frees within the ring time
    d = calls_to_place(soon, PREDICTIVE)
    assert d.calls > 0 and d.free_agents == 0 and d.free_soon == pytest.approx(10)


def test_predictive_counts_the_calls_already_ringing() -> None:
    agents = (FREE,) * 4
    alone = calls_to_place(Snapshot(agents, (), warm()), PREDICTIVE).calls
    ringing = tuple(CallView(1.0) for _ in range(alone))
    assert calls_to_place(Snapshot(agents, ringing, warm()), PREDICTIVE).calls < alone
    # a call that rang 16 s without an answer is not going to be answered live
    late = tuple(CallView(16.0) for _ in range(alone))
    assert calls_to_place(Snapshot(agents, late, warm()), PREDICTIVE).calls == alone


def test_max_ratio_caps_the_calls_in_progress_per_agent_free_soon() -> None:
    policy = PacingPolicy(mode=Mode.PREDICTIVE, max_ratio=2.0)
    d = calls_to_place(Snapshot((FREE,) * 4, (), warm()), policy)
    assert (d.calls, d.rule, d.cap) == (8, Rule.MAX_RATIO, 8)
    assert d.model is not None and d.model > 8


def test_the_guard_falls_back_to_progressive_at_the_cap() -> None:
    agents = (FREE,) * 4 + (talking(30),) * 6
    free_run = calls_to_place(Snapshot(agents, (), warm(window_live=1000)), PREDICTIVE)
    near = calls_to_place(Snapshot(agents, (), warm(window_live=1000, window_abandoned=28)),
                          PREDICTIVE)
    at_cap = calls_to_place(Snapshot(agents, (), warm(window_live=1000, window_abandoned=30)),
                            PREDICTIVE)
    over = calls_to_place(Snapshot(agents, (), warm(window_live=1000, window_abandoned=90)),
                          PREDICTIVE)
    assert free_run.rule is Rule.PREDICTIVE and free_run.guard_weight == 1.0
    assert near.rule is Rule.GUARD_BLEND and 0 < near.guard_weight < 1
    assert 4 < near.calls < free_run.calls
    assert (at_cap.calls, at_cap.rule, at_cap.abandon_rate) == (4, Rule.GUARD_PROGRESSIVE, 0.03)
    assert (over.calls, over.rule) == (4, Rule.GUARD_PROGRESSIVE)


def test_bad_inputs_are_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="abandon_target must be in"):
        PacingPolicy(abandon_target=0.0)
    with pytest.raises(ValueError, match="max_ratio must be in"):
        PacingPolicy(max_ratio=0.5)
    with pytest.raises(ValueError, match="horizons are quantiles"):
        PacingPolicy(horizons=(0.0,))
    with pytest.raises(ValueError, match="time in state must be >= 0"):
        AgentView(AgentState.ON_CALL, -1.0)
    with pytest.raises(ValueError, match="ring time must be >= 0"):
        CallView(math.nan)
    with pytest.raises(ValueError, match="live must be >= 0"):
        Measured(live=-1)


def test_the_pacer_object_applies_its_policy() -> None:
    snap = Snapshot((FREE,) * 3, (), warm())
    assert Pacer(PROGRESSIVE).calls_to_place(snap) == calls_to_place(snap, PROGRESSIVE)
    assert Pacer().policy.mode is Mode.PREDICTIVE
