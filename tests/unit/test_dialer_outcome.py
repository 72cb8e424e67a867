"""How a placed call ended: :func:`callcenter.dialer.outcome.decide` over a table of what
ARI shows (causes as the carrier's numbers give them, measured in
``tests/integration/test_dialer_call.py``), AMD's verdicts parsed, and properties that
hold for every observation (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.dialer.amd import (
    AMD_STATUSES,
    AmdResult,
    AmdSettings,
    amd_value,
    parse_amd,
)
from callcenter.dialer.outcome import AT_ONCE_SECONDS, Observation, Outcome, decide

T0 = 1_796_120_000.0
HUMAN = AmdResult("HUMAN", "HUMAN", (800, 800))
MACHINE = AmdResult("MACHINE", "LONGGREETING", (1500, 1500))
NOTSURE = AmdResult("NOTSURE", "TOOLONG", (5000,))
AMD_HANGUP = AmdResult("HANGUP", "", ())


def answered(talk: float | None, amd: AmdResult | None = None, cause: int | None = 16,
             ) -> Observation:
    return Observation(answered_at=T0, ended_at=None if talk is None else T0 + talk,
                       cause=None if talk is None else cause, dial_status="ANSWER", amd=amd)


def ended(cause: int | None, status: str | None = None, *, cancelled: bool = False,
          ) -> Observation:
    return Observation(ended_at=T0, cause=cause, dial_status=status, cancelled=cancelled)


TABLE: list[tuple[str, Observation, Outcome]] = [
    # answered
    ("human, still up", answered(None, HUMAN), Outcome.LIVE),
    ("answered, no AMD, still up", answered(None), Outcome.LIVE),
    ("AMD not sure: a person is not dropped", answered(None, NOTSURE), Outcome.LIVE),
    ("machine, hung up by the dialer soon after", answered(1.6, MACHINE), Outcome.MACHINE),
    ("machine, still up", answered(None, MACHINE), Outcome.MACHINE),
    ("machine hung up itself later", answered(30, MACHINE), Outcome.MACHINE),
    ("AMD heard the hangup", answered(3.0, AMD_HANGUP), Outcome.HANGUP_AT_ONCE),
    ("AMD heard the hangup, end unknown", answered(None, AMD_HANGUP), Outcome.HANGUP_AT_ONCE),
    ("answered and cleared in 0.5 s", answered(0.5), Outcome.HANGUP_AT_ONCE),
    ("answered and cleared in 0.5 s, AMD human", answered(0.5, HUMAN), Outcome.HANGUP_AT_ONCE),
    ("just under the limit", answered(AT_ONCE_SECONDS - 0.001), Outcome.HANGUP_AT_ONCE),
    ("at the limit", answered(AT_ONCE_SECONDS), Outcome.LIVE),
    ("a talk that ended", answered(60, HUMAN), Outcome.LIVE),
    ("answered, ended before answer (clock skew)", Observation(
        answered_at=T0, ended_at=T0 - 1, cause=16), Outcome.HANGUP_AT_ONCE),
    # not answered: the network's causes
    ("486 busy", ended(17), Outcome.BUSY),
    ("rang out (dial context: 19)", ended(19), Outcome.NO_ANSWER),
    ("no user responding", ended(18), Outcome.NO_ANSWER),
    ("subscriber absent", ended(20), Outcome.NO_ANSWER),
    ("404 unallocated", ended(1), Outcome.INVALID_NUMBER),
    ("no route", ended(3), Outcome.INVALID_NUMBER),
    ("number changed", ended(22), Outcome.INVALID_NUMBER),
    ("refused by the dial context", ended(28), Outcome.INVALID_NUMBER),
    ("503: congestion", ended(34), Outcome.FAILED),
    ("temporary failure", ended(41), Outcome.FAILED),
    ("channel unavailable", ended(0, "CHANUNAVAIL"), Outcome.FAILED),
    ("call rejected", ended(21), Outcome.FAILED),
    ("normal clearing, never answered", ended(16), Outcome.FAILED),
    ("no cause at all (originate refused)", Observation(), Outcome.FAILED),
    # not answered: DIALSTATUS when no cause is known
    ("BUSY, no cause", ended(None, "BUSY"), Outcome.BUSY),
    ("NOANSWER, no cause", ended(None, "noanswer"), Outcome.NO_ANSWER),
    ("INVALIDARGS, no cause", ended(None, "INVALIDARGS"), Outcome.INVALID_NUMBER),
    ("CONGESTION, no cause", ended(None, "CONGESTION"), Outcome.FAILED),
    ("the cause wins over DIALSTATUS", ended(17, "NOANSWER"), Outcome.BUSY),
    # we gave up
    ("cancelled while ringing", ended(16, cancelled=True), Outcome.CANCELLED),
    ("cancelled, busy came anyway", ended(17, "BUSY", cancelled=True), Outcome.CANCELLED),
]


@pytest.mark.parametrize("what, observation, expected", TABLE, ids=[t[0] for t in TABLE])
def test_decide(what: str, observation: Observation, expected: Outcome) -> None:
    assert decide(observation) is expected, what


def test_every_outcome_is_reachable() -> None:
    assert {expected for _, _, expected in TABLE} == set(Outcome)


def test_outcome_values_are_the_names_the_campaigns_store() -> None:
    assert [o.value for o in Outcome] == [
        "live", "machine", "busy", "no_answer", "invalid_number", "failed",
        "hangup_at_once", "cancelled"]
    assert {o for o in Outcome if o.answered} == {
        Outcome.LIVE, Outcome.MACHINE, Outcome.HANGUP_AT_ONCE}


# -- properties --------------------------------------------------------------------------------

times = st.one_of(st.none(), st.floats(min_value=0, max_value=1e10, allow_nan=False))
amd_results = st.one_of(st.none(), st.builds(
    AmdResult, st.sampled_from(AMD_STATUSES), st.text(max_size=20),
    st.lists(st.integers(0, 10**6), max_size=3).map(tuple)))
observations = st.builds(
    Observation, answered_at=times, ended_at=times,
    cause=st.one_of(st.none(), st.integers(0, 127)),
    dial_status=st.one_of(st.none(), st.sampled_from(
        ["ANSWER", "BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL", "DONTCALL",
         "TORTURE", "INVALIDARGS", ""]), st.text(max_size=12)),
    amd=amd_results, cancelled=st.booleans())


@given(observations)
def test_decide_is_total_and_answered_matches(observation: Observation) -> None:
    outcome = decide(observation)
    assert isinstance(outcome, Outcome)
    # Only an answered call can be live, a machine or hung up at once; an unanswered one
    # is never any of them, and CANCELLED only when we cancelled it.
    assert outcome.answered == observation.answered
    if outcome is Outcome.CANCELLED:
        assert observation.cancelled and not observation.answered


@given(observations)
def test_machine_exactly_when_amd_says_so(observation: Observation) -> None:
    said_machine = observation.answered and observation.amd is not None \
        and observation.amd.status == "MACHINE"
    assert (decide(observation) is Outcome.MACHINE) == said_machine


@given(observations)
def test_a_live_answer_lasted_or_lasts(observation: Observation) -> None:
    if decide(observation) is Outcome.LIVE:
        talk = observation.talk_seconds
        assert talk is None or talk >= AT_ONCE_SECONDS
        assert observation.amd is None or observation.amd.status in ("HUMAN", "NOTSURE")


@given(observations, st.booleans())
def test_cancelling_changes_only_unanswered_calls(observation: Observation, flag: bool) -> None:
    from dataclasses import replace
    other = replace(observation, cancelled=flag)
    if observation.answered:
        assert decide(other) is decide(observation)
    else:
        assert (decide(other) is Outcome.CANCELLED) == flag


# -- AMD's verdict, as CC_AMD holds it ----------------------------------------------------------

@pytest.mark.parametrize("value, status, cause, figures", [
    ("MACHINE:MAXWORDS-3-3", "MACHINE", "MAXWORDS", (3, 3)),
    ("MACHINE:LONGGREETING-1500-1500", "MACHINE", "LONGGREETING", (1500, 1500)),
    ("MACHINE:INITIALSILENCE-2500-2500", "MACHINE", "INITIALSILENCE", (2500, 2500)),
    ("MACHINE:MAXWORDLENGTH-5001", "MACHINE", "MAXWORDLENGTH", (5001,)),
    ("HUMAN:HUMAN-800-800", "HUMAN", "HUMAN", (800, 800)),
    ("NOTSURE:TOOLONG-5000", "NOTSURE", "TOOLONG", (5000,)),
    ("HANGUP:", "HANGUP", "", ()),
    ("machine:maxwords-3-3", "MACHINE", "MAXWORDS", (3, 3)),
    (" HUMAN:HUMAN-800-800 ", "HUMAN", "HUMAN", (800, 800)),
    # Not app_amd's: kept as NOTSURE with the raw text, never an error.
    ("FAX:CNG", "NOTSURE", "", ()),
    ("MACHINE:MAXWORDS-x-3", "MACHINE", "MAXWORDS", ()),
    ("MACHINE:${SHELL(id)}", "MACHINE", "", ()),
    ("HUMAN:HUMAN-99999999999-1", "HUMAN", "HUMAN", ()),
])
def test_parse_amd(value: str, status: str, cause: str, figures: tuple[int, ...]) -> None:
    result = parse_amd(value)
    assert result is not None
    assert (result.status, result.cause, result.figures) == (status, cause, figures)
    assert result.raw == value.strip()


@pytest.mark.parametrize("value", [None, "", "  ", ":"])
def test_no_verdict(value: str | None) -> None:
    result = parse_amd(value)
    assert result is None or result.status == "NOTSURE"


@given(st.text(max_size=60))
def test_parse_amd_never_raises(value: str) -> None:
    result = parse_amd(value)
    assert result is None or result.status in AMD_STATUSES


@given(st.sampled_from(AMD_STATUSES), st.sampled_from(
    ["MAXWORDS", "LONGGREETING", "HUMAN", "TOOLONG", "INITIALSILENCE"]),
    st.lists(st.integers(0, 99999), max_size=2))
def test_what_the_dialplan_sets_parses_back(status: str, cause: str, figures: list[int]) -> None:
    text = "-".join([cause, *map(str, figures)])
    result = parse_amd(amd_value(status, text))
    assert result is not None
    assert (result.status, result.cause, result.figures) == (status, cause, tuple(figures))


def test_amd_arguments_are_app_amds_nine_in_order() -> None:
    assert AmdSettings().arguments() == "2500,1500,800,5000,100,50,3,256,5000"
    assert AmdSettings(maximum_number_of_words=2).arguments().split(",")[6] == "2"
