"""The agent state machine: explicit cases, then properties over random event sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.agents import (
    PHONE_LOST_REASON,
    AgentState,
    AgentStatus,
    Answer,
    CallGone,
    CancelOffer,
    EndWrapUp,
    Hangup,
    IllegalTransition,
    Login,
    Logout,
    OfferFailed,
    Pause,
    PhoneBack,
    PhoneLost,
    ReadyForCalls,
    Reserve,
    Ring,
    Rules,
    ScheduleWrapUpEnd,
    Tick,
    UnknownPauseReason,
    Unpause,
    WrongCall,
    logged_out,
    transition,
)
from callcenter.agents.state import AgentEvent, Outcome

T0 = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
RULES = Rules(frozenset({"lunch", "training"}))
BUSY = {AgentStatus.RESERVED, AgentStatus.RINGING, AgentStatus.ON_CALL}


def run(*events: AgentEvent, state: AgentState | None = None, now: datetime = T0) -> Outcome:
    outcome = Outcome(state or logged_out("alice", T0), changed=False)
    for event in events:
        outcome = transition(outcome.state, event, now, RULES)
    return outcome


# ----------------------------------------------------------------------------- cases


def test_a_call_from_login_to_wrap_up_end() -> None:
    seen = []
    state = logged_out("alice", T0)
    for i, event in enumerate(
        [Login(), Reserve("c1"), Ring("c1"), Answer("c1"), Hangup("c1", timedelta(seconds=30))]
    ):
        outcome = transition(state, event, T0 + timedelta(seconds=i), RULES)
        state = outcome.state
        seen.append((state.status, state.version, outcome.effects))
    assert seen == [
        (AgentStatus.AVAILABLE, 1, (ReadyForCalls("alice"),)),
        (AgentStatus.RESERVED, 2, ()),
        (AgentStatus.RINGING, 3, ()),
        (AgentStatus.ON_CALL, 4, ()),
        (AgentStatus.WRAP_UP, 5, (ScheduleWrapUpEnd("alice", T0 + timedelta(seconds=34)),)),
    ]
    assert state.since == T0 + timedelta(seconds=4)
    early = transition(state, Tick(), T0 + timedelta(seconds=33), RULES)
    assert (early.changed, early.state) == (False, state)
    done = transition(state, Tick(), T0 + timedelta(seconds=34), RULES)
    assert (done.state.status, done.state.version, done.effects) == (
        AgentStatus.AVAILABLE, 6, (ReadyForCalls("alice"),))


@pytest.mark.parametrize("result", ["no_answer", "busy", "rejected"])
def test_an_unanswered_offer_frees_the_agent(result: str) -> None:
    outcome = run(Login(), Reserve("c1"), Ring("c1"), OfferFailed("c1", result))
    assert outcome.state.status is AgentStatus.AVAILABLE and outcome.state.call is None
    assert outcome.effects == (ReadyForCalls("alice"),)


def test_only_an_available_agent_is_reserved() -> None:
    with pytest.raises(IllegalTransition, match="only an available agent"):
        run(Login(), Reserve("c1"), Reserve("c2"))
    with pytest.raises(IllegalTransition):
        run(Reserve("c1"))
    with pytest.raises(IllegalTransition):
        run(Login(), Pause("lunch"), Reserve("c1"))


def test_events_for_another_caller_are_refused() -> None:
    with pytest.raises(WrongCall, match="holds caller 'c1', not 'c2'"):
        run(Login(), Reserve("c1"), Answer("c2"))


def test_a_pause_during_a_call_is_taken_after_it() -> None:
    on_call = run(Login(), Reserve("c1"), Pause("lunch"), Answer("c1")).state
    assert (on_call.status, on_call.pending_pause) == (AgentStatus.ON_CALL, "lunch")
    after = transition(on_call, Hangup("c1"), T0, RULES)
    assert (after.state.status, after.state.pause_reason, after.effects) == (
        AgentStatus.PAUSED, "lunch", ())
    dropped = run(Unpause(), Hangup("c1"), state=on_call)
    assert dropped.state.status is AgentStatus.AVAILABLE


def test_pause_reasons_come_from_the_config() -> None:
    with pytest.raises(UnknownPauseReason, match=r"'smoke' \(known: lunch, no_answer, training\)"):
        run(Login(), Pause("smoke"))
    with pytest.raises(UnknownPauseReason):
        run(Login(), Pause(PHONE_LOST_REASON))
    assert run(Login(), Pause("no_answer")).state.pause_reason == "no_answer"


def test_logout_is_refused_while_a_caller_is_tied_to_the_agent() -> None:
    for events in ([Reserve("c1")], [Reserve("c1"), Ring("c1")], [Reserve("c1"), Answer("c1")]):
        with pytest.raises(IllegalTransition, match="end the call first"):
            run(Login(), *events, Logout())
    assert run(Login(), Pause("lunch"), Logout()).state.status is AgentStatus.LOGGED_OUT


def test_a_lost_phone_cancels_the_offer_and_only_its_return_unpauses() -> None:
    ringing = run(Login(), Pause("lunch"), Unpause(), Reserve("c1"), Ring("c1")).state
    lost = transition(ringing, PhoneLost(), T0, RULES)
    assert lost.state.status is AgentStatus.PAUSED
    assert lost.state.pause_reason == PHONE_LOST_REASON and lost.state.phone_lost
    assert lost.effects == (CancelOffer("alice", "c1"),)
    with pytest.raises(IllegalTransition, match="phone is not registered"):
        transition(lost.state, Unpause(), T0, RULES)
    back = transition(lost.state, PhoneBack(), T0, RULES)
    assert back.state.status is AgentStatus.AVAILABLE and not back.state.phone_lost


def test_a_lost_phone_keeps_the_chosen_pause_for_its_return() -> None:
    state = run(Login(), Pause("lunch"), PhoneLost(), Pause("training")).state
    assert (state.pause_reason, state.pending_pause) == (PHONE_LOST_REASON, "training")
    back = transition(state, PhoneBack(), T0, RULES).state
    assert (back.status, back.pause_reason) == (AgentStatus.PAUSED, "training")


def test_a_lost_phone_does_not_cut_a_call() -> None:
    state = run(Login(), Reserve("c1"), Answer("c1"), PhoneLost()).state
    assert (state.status, state.call, state.phone_lost) == (AgentStatus.ON_CALL, "c1", True)
    after = transition(state, Hangup("c1"), T0, RULES).state
    assert (after.status, after.pause_reason) == (AgentStatus.PAUSED, PHONE_LOST_REASON)


def test_call_gone_frees_the_agent_and_cancels_an_offer() -> None:
    ringing = run(Login(), Reserve("c1"), Ring("c1")).state
    assert transition(ringing, CallGone("c1"), T0, RULES).effects == (
        CancelOffer("alice", "c1"), ReadyForCalls("alice"))
    on_call = transition(ringing, Answer("c1"), T0, RULES).state
    assert transition(on_call, CallGone("c1"), T0, RULES).effects == (ReadyForCalls("alice"),)


def test_an_inconsistent_state_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="a call is held exactly"):
        AgentState("alice", AgentStatus.AVAILABLE, T0, call="c1")
    with pytest.raises(ValueError, match="a pause reason is set exactly"):
        AgentState("alice", AgentStatus.PAUSED, T0)
    with pytest.raises(ValueError, match="a lost phone leaves"):
        AgentState("alice", AgentStatus.AVAILABLE, T0, phone_lost=True)
    with pytest.raises(ValueError, match="timezone-aware"):
        AgentState("alice", AgentStatus.LOGGED_OUT, T0.replace(tzinfo=None))


def test_the_error_names_agent_event_and_state() -> None:
    with pytest.raises(IllegalTransition) as caught:
        run(Login(), Reserve("c1"), Logout())
    assert str(caught.value) == (
        "agent 'alice': logout is not allowed while reserved "
        "(a caller is tied to the agent; end the call first)"
    )
    assert caught.value.status is AgentStatus.RESERVED


# ------------------------------------------------------------------------- properties

CALLS = st.sampled_from(["c1", "c2"])
REASONS = st.sampled_from(["lunch", "training", "no_answer", "smoke"])
EVENTS: st.SearchStrategy[AgentEvent] = st.one_of(
    st.just(Login()), st.just(Logout()), st.builds(Pause, REASONS), st.just(Unpause()),
    st.builds(Reserve, CALLS), st.builds(Ring, CALLS), st.builds(Answer, CALLS),
    st.builds(OfferFailed, CALLS, st.sampled_from(["no_answer", "busy"])),
    st.builds(Hangup, CALLS, st.sampled_from([timedelta(0), timedelta(seconds=20)])),
    st.just(EndWrapUp()), st.just(Tick()), st.builds(CallGone, CALLS),
    st.just(PhoneLost()), st.just(PhoneBack()),
)
STEPS = st.lists(st.tuples(EVENTS, st.integers(0, 30)), max_size=60)

# Where an agent tied to a caller may go next: a reservation ends in a call or back in
# available/paused, never in wrap-up or logged out.
LEAVING = {
    AgentStatus.RESERVED: {AgentStatus.RINGING, AgentStatus.ON_CALL, AgentStatus.AVAILABLE,
                           AgentStatus.PAUSED},
    AgentStatus.RINGING: {AgentStatus.ON_CALL, AgentStatus.AVAILABLE, AgentStatus.PAUSED},
    AgentStatus.ON_CALL: {AgentStatus.WRAP_UP, AgentStatus.AVAILABLE, AgentStatus.PAUSED},
}


def _legal(state: AgentState) -> None:
    """The invariants, written out again so the test does not trust ``__post_init__``."""
    assert (state.call is not None) == (state.status in BUSY)
    assert (state.pause_reason is not None) == (state.status is AgentStatus.PAUSED)
    assert (state.wrap_up_until is not None) == (state.status is AgentStatus.WRAP_UP)
    if state.phone_lost:
        assert state.status in {AgentStatus.ON_CALL, AgentStatus.WRAP_UP, AgentStatus.PAUSED}
    if state.status is AgentStatus.PAUSED:
        assert state.pause_reason in {"lunch", "training", "no_answer", PHONE_LOST_REASON}
        assert (state.pause_reason == PHONE_LOST_REASON) == state.phone_lost


@settings(max_examples=400, deadline=None)
@given(STEPS)
def test_random_sequences_never_reach_an_illegal_state(steps: list[tuple[AgentEvent, int]]) -> None:
    state, now = logged_out("alice", T0), T0
    for event, seconds in steps:
        now += timedelta(seconds=seconds)
        try:
            outcome = transition(state, event, now, RULES)
        except (IllegalTransition, UnknownPauseReason):
            continue
        new = outcome.state
        _legal(new)
        if not outcome.changed:
            assert isinstance(event, Tick) and new == state
            continue
        assert new.version == state.version + 1
        assert new.since == (now if new.status is not state.status else state.since)
        if state.status in LEAVING and new.status is not state.status:
            assert new.status in LEAVING[state.status], (state, event, new)
        if new.status is AgentStatus.RESERVED and state.status is not AgentStatus.RESERVED:
            assert state.status is AgentStatus.AVAILABLE  # one caller at a time
        # The router learns every change it must act on, and nothing else.
        became_available = (
            new.status is AgentStatus.AVAILABLE and state.status is not AgentStatus.AVAILABLE
        )
        assert (ReadyForCalls("alice") in outcome.effects) == became_available
        for effect in outcome.effects:
            if isinstance(effect, CancelOffer):
                assert state.status in {AgentStatus.RESERVED, AgentStatus.RINGING}
                assert effect.call == state.call and new.call is None
        state = new


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_wrap_up_always_ends_and_a_reservation_never_outlives_its_call(
    steps: list[tuple[AgentEvent, int]],
) -> None:
    state, now = logged_out("alice", T0), T0
    for event, seconds in steps:
        now += timedelta(seconds=seconds)
        try:
            state = transition(state, event, now, RULES).state
        except (IllegalTransition, UnknownPauseReason):
            pass
    later = now + timedelta(seconds=20)
    ended = transition(state, Tick(), later, RULES).state
    assert ended.status is not AgentStatus.WRAP_UP
    if state.call is not None:
        freed = transition(state, CallGone(state.call), later, RULES).state
        assert freed.status in {AgentStatus.AVAILABLE, AgentStatus.PAUSED}
        assert freed.call is None


@settings(max_examples=200, deadline=None)
@given(STEPS, EVENTS)
def test_a_refused_event_changes_nothing(steps: list[tuple[AgentEvent, int]], last: AgentEvent) -> None:
    state = logged_out("alice", T0)
    for event, _ in steps:
        try:
            state = transition(state, event, T0, RULES).state
        except (IllegalTransition, UnknownPauseReason):
            pass
    before = replace(state)
    try:
        transition(state, last, T0, RULES)
    except IllegalTransition as error:
        assert error.status is state.status and error.agent == "alice"
    except UnknownPauseReason:
        assert isinstance(last, Pause) and last.reason == "smoke"
    assert state == before
