"""Reconciliation with Asterisk: cases, then a property over random agents and channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.agents import (
    PHONE_LOST_REASON,
    AgentState,
    AgentStatus,
    Answer,
    CallGone,
    ContactStatus,
    Correction,
    Hangup,
    IllegalTransition,
    Login,
    PhoneBack,
    PhoneLost,
    Reserve,
    Ring,
    Rules,
    Tick,
    UnknownPauseReason,
    WatchdogLimits,
    logged_out,
    reconcile,
    transition,
)
from callcenter.agents.state import AgentEvent
from tests.unit.test_agent_state import EVENTS

T0 = datetime(2026, 10, 25, 0, 59, tzinfo=UTC)
RULES = Rules(frozenset({"lunch", "training"}))
UP = ContactStatus.REACHABLE
LIMITS = WatchdogLimits(reserved=timedelta(seconds=10), ringing=timedelta(seconds=60))


def agent(name: str, *events: AgentEvent, at: datetime = T0) -> AgentState:
    state = logged_out(name, at)
    for event in events:
        state = transition(state, event, at, RULES).state
    return state


def test_an_agent_tied_to_a_vanished_caller_is_freed() -> None:
    states = [
        agent("alice", Login(), Reserve("c1")),
        agent("bob", Login(), Reserve("c2"), Ring("c2")),
        agent("carol", Login(), Reserve("c3"), Answer("c3")),
        agent("dave", Login(), Reserve("c4"), Answer("c4")),
    ]
    fixes = reconcile(states, {"c4"}, dict.fromkeys(["alice", "bob", "carol", "dave"], UP),
                      T0 + timedelta(seconds=1), LIMITS)
    assert fixes == (
        Correction("alice", CallGone("c1"), "caller channel c1 no longer exists"),
        Correction("bob", CallGone("c2"), "caller channel c2 no longer exists"),
        Correction("carol", CallGone("c3"), "caller channel c3 no longer exists"),
    )


def test_the_watchdog_expires_a_reservation_that_never_rings() -> None:
    states = [agent("alice", Login(), Reserve("c1")), agent("bob", Login(), Reserve("c2"), Ring("c2"))]
    contacts = {"alice": UP, "bob": UP}
    assert reconcile(states, {"c1", "c2"}, contacts, T0 + timedelta(seconds=10), LIMITS) == ()
    assert reconcile(states, {"c1", "c2"}, contacts, T0 + timedelta(seconds=11), LIMITS) == (
        Correction("alice", CallGone("c1"), "reserved 11 s without ringing"),
    )
    assert [f.agent for f in reconcile(states, {"c1", "c2"}, contacts,
                                       T0 + timedelta(seconds=61), LIMITS)] == ["alice", "bob"]


def test_a_long_call_is_left_alone_and_an_expired_wrap_up_ends() -> None:
    talking = agent("alice", Login(), Reserve("c1"), Answer("c1"))
    wrapping = agent("bob", Login(), Reserve("c2"), Answer("c2"), Hangup("c2", timedelta(seconds=30)))
    contacts = {"alice": UP, "bob": UP}
    later = T0 + timedelta(hours=3)
    assert reconcile([talking, wrapping], {"c1"}, contacts, later, LIMITS) == (
        Correction("bob", Tick(), "wrap-up time is over"),
    )
    assert reconcile([wrapping], set(), contacts, T0 + timedelta(seconds=29), LIMITS) == ()


def test_an_unregistered_phone_stops_offers_and_its_return_restores_them() -> None:
    states = [agent(n, Login()) for n in ("alice", "bob", "carol", "dave", "erin")]
    contacts: dict[str, ContactStatus | None] = {
        "alice": ContactStatus.REACHABLE,
        "bob": ContactStatus.UNREACHABLE,
        "carol": ContactStatus.NON_QUALIFIED,
        "dave": ContactStatus.REMOVED,
        "erin": None,  # no contact at all
    }
    fixes = reconcile(states, set(), contacts, T0, LIMITS)
    assert [(f.agent, f.event, f.reason) for f in fixes] == [
        ("bob", PhoneLost(), "phone Unreachable"),
        ("dave", PhoneLost(), "phone Removed"),
        ("erin", PhoneLost(), "phone no contact"),
    ]
    lost = transition(states[1], PhoneLost(), T0, RULES).state
    assert reconcile([lost], set(), {"bob": UP}, T0, LIMITS) == (
        Correction("bob", PhoneBack(), "phone Reachable"),
    )
    assert reconcile([agent("zed")], set(), {"zed": None}, T0, LIMITS) == ()  # logged out


def test_another_nodes_phones_and_callers_are_left_to_it() -> None:
    """Two nodes: bob's phone registers on the other one, and carol talks to a caller
    the other node owns; this node judges neither, except by the watchdog's clock."""
    states = [
        agent("alice", Login(), Reserve("mine")),
        agent("bob", Login()),
        agent("carol", Login(), Reserve("theirs"), Answer("theirs")),
        agent("dave", Login(), Reserve("theirs2")),
    ]
    fixes = reconcile(states, {"other"}, {"alice": UP, "carol": UP}, T0 + timedelta(seconds=5),
                      LIMITS, owned_calls={"mine"})
    assert fixes == (Correction("alice", CallGone("mine"), "caller channel mine no longer exists"),)
    late = reconcile(states, {"other"}, {"alice": UP}, T0 + timedelta(seconds=11), LIMITS,
                     owned_calls={"mine"})
    assert [(f.agent, f.reason) for f in late] == [
        ("alice", "caller channel mine no longer exists"),
        ("dave", "reserved 11 s without ringing"),
    ]


def test_a_vanished_call_and_a_lost_phone_come_in_the_order_to_apply() -> None:
    reserved = agent("alice", Login(), Reserve("c1"))
    fixes = reconcile([reserved], set(), {"alice": None}, T0, LIMITS)
    assert [f.event for f in fixes] == [CallGone("c1"), PhoneLost()]
    state = reserved
    for fix in fixes:
        state = transition(state, fix.event, T0, RULES).state
    assert (state.status, state.pause_reason) == (AgentStatus.PAUSED, PHONE_LOST_REASON)


AGENTS = ["a0", "a1", "a2", "a3"]
CONTACT = st.one_of(st.none(), st.sampled_from(list(ContactStatus)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(EVENTS, max_size=12), min_size=len(AGENTS), max_size=len(AGENTS)),
    st.sets(st.sampled_from(["c1", "c2", "c9"])),
    st.lists(CONTACT, min_size=len(AGENTS), max_size=len(AGENTS)),
    st.integers(0, 200),
)
def test_corrections_are_legal_and_leave_nothing_stuck(
    sequences: list[list[AgentEvent]],
    live: set[str],
    contact_list: list[ContactStatus | None],
    elapsed: int,
) -> None:
    states = {}
    for name, events in zip(AGENTS, sequences, strict=True):
        state = logged_out(name, T0)
        for event in events:
            try:
                state = transition(state, event, T0, RULES).state
            except (IllegalTransition, UnknownPauseReason):
                pass
        states[name] = state
    contacts = dict(zip(AGENTS, contact_list, strict=True))
    now = T0 + timedelta(seconds=elapsed)

    for fix in reconcile(states.values(), live, contacts, now, LIMITS):
        states[fix.agent] = transition(states[fix.agent], fix.event, now, RULES).state  # legal

    for name, state in states.items():
        if state.call is not None:
            assert state.call in live
        if state.status is AgentStatus.RESERVED:
            assert now - state.since <= LIMITS.reserved
        if state.status is AgentStatus.WRAP_UP:
            assert state.wrap_up_until is not None and now < state.wrap_up_until
        contact = contacts[name]
        usable = contact is not None and contact.usable
        if not usable and state.status is not AgentStatus.LOGGED_OUT:
            assert state.phone_lost
            assert state.status not in {AgentStatus.AVAILABLE, AgentStatus.RESERVED,
                                        AgentStatus.RINGING}
        if usable:
            assert not state.phone_lost
    assert reconcile(states.values(), live, contacts, now, LIMITS) == ()  # a fixpoint
