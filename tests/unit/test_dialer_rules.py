"""The decisions between calls: may this contact be dialled now (eligibility), what
happens to it after a call (retry), and the compliance report over attempts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.config.campaign import Campaign
from callcenter.dialer.compliance import AttemptRecord, ContactRecord, compliance_report
from callcenter.dialer.eligibility import (
    ABANDON_QUIET,
    contact_zones,
    may_dial,
    next_window_open,
    window_open_everywhere,
)
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.retry import NextStep, after_attempt

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
# Tuesday 1 December 2026, 15:00 UTC = 10:00 in New York, 07:00 in Los Angeles.
NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def campaign(**over: object) -> Campaign:
    base: dict[str, object] = {"mode": "progressive", "trunk": "carrier",
                               "caller_id": "+15550100000", "safe_harbor": "tt-weasels"}
    base.update(over)
    return Campaign.model_validate(base)


@dataclass(frozen=True)
class C:
    number: str = "+12125550100"
    timezone: str | None = "America/New_York"
    attempts: int = 0


# -- eligibility ------------------------------------------------------------------

@pytest.mark.parametrize(("contact", "kw", "now", "rule"), [
    (C(), {}, NOW, "ok"),
    (C(), {"dnc": True}, NOW, "dnc"),
    (C(attempts=5), {}, NOW, "max_attempts"),
    (C(attempts=4), {}, NOW, "ok"),
    (C(timezone="America/Los_Angeles"), {}, NOW, "calling_window"),   # 07:00 there
    (C(), {}, NOW.replace(hour=2), "calling_window"),                  # 21:00 the eve
    (C(), {"last_abandon_at": NOW - dt.timedelta(hours=71)}, NOW, "abandon_72h"),
    (C(), {"last_abandon_at": NOW - dt.timedelta(hours=71), "agent_reserved": True},
     NOW, "ok"),
    (C(), {"last_abandon_at": NOW - dt.timedelta(hours=72)}, NOW, "ok"),
    # the DNC list wins over every other rule
    (C(attempts=9, timezone="Asia/Tokyo"), {"dnc": True}, NOW, "dnc"),
    # Sunday: no window at all
    (C(), {}, dt.datetime(2026, 12, 6, 16, 0, tzinfo=UTC), "calling_window"),
])
def test_verdict_names_the_rule(contact: C, kw: dict[str, object], now: dt.datetime,
                                rule: str) -> None:
    kw = {"dnc": False, **kw}
    verdict = may_dial(contact, campaign(), now, **kw)  # type: ignore[arg-type]
    assert (verdict.rule, verdict.allowed) == (rule, rule == "ok")
    assert verdict.reason


def test_zone_from_number_else_assumed_else_never() -> None:
    # +1 212 is New York: derived from the number
    assert contact_zones(None, "+12125550100", campaign()) == ("America/New_York",)
    # +1 555 tells no zone: the campaign's assumption, or none
    assert contact_zones(None, "+15550100001", campaign(assume_timezone="Europe/London")) \
        == ("Europe/London",)
    assert contact_zones(None, "+15550100001", campaign()) == ()
    verdict = may_dial(C("+15550100001", None), campaign(), NOW, dnc=False)
    assert (verdict.allowed, verdict.rule, verdict.retry_at) == (False, "no_timezone", None)


def test_outside_the_window_says_when_it_opens() -> None:
    verdict = may_dial(C(timezone="America/Los_Angeles"), campaign(), NOW, dnc=False)
    assert verdict.retry_at == dt.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 09:00 LA
    # Saturday 17:00 in New York: next opening Monday 09:00
    sat = dt.datetime(2026, 12, 5, 17, 0, tzinfo=NY)
    verdict = may_dial(C(), campaign(), sat, dnc=False)
    assert verdict.retry_at == dt.datetime(2026, 12, 7, 9, 0, tzinfo=NY)


def test_abandon_quiet_period_reschedules_into_a_window() -> None:
    abandoned = dt.datetime(2026, 12, 1, 19, 30, tzinfo=NY)   # Tuesday evening
    verdict = may_dial(C(), campaign(), NOW + dt.timedelta(hours=10), dnc=False,
                       last_abandon_at=abandoned)
    assert verdict.rule == "abandon_72h"
    # 72 h later is Friday 19:30, still open
    assert verdict.retry_at == abandoned + ABANDON_QUIET
    late = dt.datetime(2026, 12, 2, 19, 59, tzinfo=NY)       # Wednesday 19:59
    verdict = may_dial(C(), campaign(), late, dnc=False, last_abandon_at=late)
    # Saturday 19:59 is closed (10-16): next opening is Monday 09:00
    assert verdict.retry_at == dt.datetime(2026, 12, 7, 9, 0, tzinfo=NY)


def test_a_number_in_several_zones_needs_the_window_open_in_all() -> None:
    c = campaign(calling_windows={"mon-sun": "09:00-20:00"})
    zones = ("America/New_York", "America/Chicago")
    ten_ny = dt.datetime(2026, 12, 1, 9, 30, tzinfo=NY)      # 08:30 in Chicago
    assert not window_open_everywhere(c, zones, ten_ny)
    assert next_window_open(c, zones, ten_ny) == dt.datetime(2026, 12, 1, 10, 0, tzinfo=NY)


def test_no_common_hours_means_never() -> None:
    c = campaign(calling_windows={"mon-sun": "09:00-10:00"})
    assert next_window_open(c, ("America/New_York", "Asia/Tokyo"), NOW) is None
    verdict = may_dial(C(), c, NOW.replace(hour=3), dnc=False)
    assert verdict.rule == "calling_window"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        may_dial(C(), campaign(), NOW.replace(tzinfo=None), dnc=False)


_ZONES = st.sampled_from(["America/New_York", "America/Los_Angeles", "Europe/London",
                          "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"])
_TIMES = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 1, 1),
                      timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(zone=_ZONES, now=_TIMES, attempts=st.integers(0, 8), dnc=st.booleans(),
       abandon_ago=st.none() | st.integers(0, 200), reserved=st.booleans())
def test_allowed_only_when_every_rule_holds(zone: str, now: dt.datetime, attempts: int,
                                            dnc: bool, abandon_ago: int | None,
                                            reserved: bool) -> None:
    c = campaign()
    last = None if abandon_ago is None else now - dt.timedelta(hours=abandon_ago)
    verdict = may_dial(C(timezone=zone, attempts=attempts), c, now, dnc=dnc,
                       last_abandon_at=last, agent_reserved=reserved)
    expected = (not dnc and attempts < c.max_attempts and c.window_open(zone, now)
                and (last is None or reserved or now - last >= ABANDON_QUIET))
    assert verdict.allowed == expected
    if verdict.retry_at is not None:
        assert verdict.retry_at > now
        assert c.window_open(zone, verdict.retry_at)
        # nothing earlier opened: a minute before, the window was still closed
        if verdict.rule == "calling_window":
            assert not c.window_open(zone, verdict.retry_at - dt.timedelta(minutes=1))


# -- retry --------------------------------------------------------------------------

def _after(outcome: object, disposition: str | None = None, attempts: int = 1,
           camp: Campaign | None = None, **kw: object) -> NextStep:
    return after_attempt(C(attempts=attempts), camp or campaign(), outcome,  # type: ignore[arg-type]
                         disposition, NOW, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("outcome", "disposition", "state", "delay"), [
    (Outcome.BUSY, None, "pending", dt.timedelta(minutes=15)),
    (Outcome.NO_ANSWER, None, "pending", dt.timedelta(hours=4)),
    (Outcome.HANGUP_AT_ONCE, None, "pending", dt.timedelta(hours=4)),
    (Outcome.MACHINE, None, "pending", dt.timedelta(days=1)),
    (Outcome.FAILED, None, "pending", dt.timedelta(hours=1)),
    (Outcome.CANCELLED, None, "pending", dt.timedelta(hours=1)),
    ("abandoned", None, "pending", dt.timedelta(hours=4)),
    (Outcome.INVALID_NUMBER, None, "done", None),
    (Outcome.LIVE, None, "done", None),
    (Outcome.LIVE, "sale", "done", None),
    (Outcome.LIVE, "callback", "pending", dt.timedelta(hours=1)),
    ("answered", "not_interested", "done", None),
    (Outcome.LIVE, "do_not_call", "do_not_call", None),
])
def test_next_step_by_outcome_and_disposition(outcome: object, disposition: str | None,
                                              state: str, delay: dt.timedelta | None) -> None:
    step = _after(outcome, disposition)
    assert step.state == state
    assert step.next_attempt_at == (None if delay is None else NOW + delay)
    assert step.add_dnc == (disposition == "do_not_call")
    assert step.reason


def test_callback_at_the_time_asked() -> None:
    at = NOW + dt.timedelta(days=2)
    assert _after(Outcome.LIVE, "callback", callback_at=at).next_attempt_at == at
    # a time already past is now, never before
    assert _after(Outcome.LIVE, "callback",
                  callback_at=NOW - dt.timedelta(hours=1)).next_attempt_at == NOW


def test_attempt_limits() -> None:
    assert _after(Outcome.BUSY, attempts=5).state == "exhausted"
    assert _after(Outcome.LIVE, "callback", attempts=5).state == "exhausted"
    # failed: at most 2 calls ending so
    assert _after(Outcome.FAILED, outcome_counts={"failed": 2}).state == "exhausted"
    assert _after(Outcome.FAILED, outcome_counts={"failed": 1}).state == "pending"
    off = campaign(retry={"busy": False})
    assert _after(Outcome.BUSY, camp=off).state == "done"


def test_machine_per_amd_setting() -> None:
    leave = campaign(amd={"enabled": True, "on_machine": "leave_message",
                          "message": "vm-goodbye"})
    assert _after(Outcome.MACHINE, camp=leave).state == "done"
    assert _after(Outcome.MACHINE).state == "pending"


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown disposition"):
        _after(Outcome.LIVE, "frobnicate")
    with pytest.raises(ValueError, match="unknown outcome"):
        _after("exploded")
    with pytest.raises(ValueError, match="aware"):
        after_attempt(C(), campaign(), Outcome.BUSY, None, NOW.replace(tzinfo=None))


_DISPOSITIONS = st.none() | st.sampled_from(sorted(campaign().dispositions))


@settings(max_examples=300, deadline=None)
@given(outcome=st.sampled_from(list(Outcome)), disposition=_DISPOSITIONS,
       attempts=st.integers(1, 10), same=st.integers(1, 10))
def test_next_step_invariants(outcome: Outcome, disposition: str | None, attempts: int,
                              same: int) -> None:
    c = campaign()
    counts = {k: same for k in ("busy", "no_answer", "machine", "failed",
                                "callback_requested")}
    step = _after(outcome, disposition, attempts=attempts, outcome_counts=counts)
    # a retry only while attempts remain, and never in the past
    assert (step.state == "pending") == (step.next_attempt_at is not None)
    if step.state == "pending":
        assert attempts < c.max_attempts
        assert step.next_attempt_at is not None and step.next_attempt_at >= NOW
    assert step.add_dnc == (step.state == "do_not_call")
    if disposition is not None and c.dispositions[disposition].final:
        assert step.state in ("done", "do_not_call")


# -- compliance ---------------------------------------------------------------------

def test_compliance_report_counts() -> None:
    c = campaign(abandon={"rule": "uk_24_hours", "max_percent": 3})
    contacts = [ContactRecord(1, "+12125550100", "America/New_York", 3),
                ContactRecord(2, "+13105550100", "America/Los_Angeles", 1),
                ContactRecord(3, "+12125550101", None, 0)]
    in_window = NOW - dt.timedelta(hours=1)      # 09:00 NY
    attempts = [
        AttemptRecord(1, 1, in_window, "busy"),
        AttemptRecord(2, 1, in_window, "answered"),
        AttemptRecord(3, 1, NOW - dt.timedelta(days=3), "abandoned"),   # outside 24 h
        AttemptRecord(4, 2, NOW, "answered"),                          # 07:00 in LA
        AttemptRecord(5, 2, in_window, "abandoned", on_dnc=True),      # 06:00 in LA
    ]
    report = compliance_report("renewals", c, contacts, attempts, NOW)
    assert (report.attempts, report.live_answers, report.abandons) == (5, 4, 2)
    assert (report.window_live_answers, report.window_abandons) == (3, 1)
    assert report.window_hours == 24
    assert report.outside_window == (4, 5)
    assert report.dnc_calls == (5,)
    assert report.attempts_histogram == {0: 1, 1: 1, 3: 1}
    assert report.max_attempts_per_contact == 3
    assert not report.compliant
    assert dict(report.rows())["calls_outside_window"] == "2"
    assert report.as_json()["calls_to_dnc_numbers"] == [5]


def test_an_empty_campaign_is_compliant() -> None:
    report = compliance_report("x", campaign(), [], [], NOW)
    assert report.compliant and report.window_abandon_percent == 0
    assert report.max_attempts_per_contact == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60 * 24 * 40), st.sampled_from(
    ["answered", "abandoned", "busy", "machine", None])), max_size=40))
def test_window_counts_never_exceed_totals(calls: list[tuple[int, str | None]]) -> None:
    attempts = [AttemptRecord(i, 1, NOW - dt.timedelta(minutes=m), o)
                for i, (m, o) in enumerate(calls)]
    report = compliance_report("x", campaign(), [ContactRecord(1, "+12125550100",
                                                               "America/New_York", 1)],
                               attempts, NOW)
    assert report.window_abandons <= report.window_live_answers <= report.live_answers
    assert report.window_abandons <= report.abandons <= report.live_answers
    assert report.attempts == len(calls)
    assert len(report.outside_window) == sum(
        1 for a in attempts if not campaign().window_open("America/New_York", a.started_at))
