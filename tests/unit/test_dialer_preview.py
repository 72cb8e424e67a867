"""Preview campaigns' pure rules: claim and reservation ids, the screening of a claimed
contact, and the watchdog's patience with a preview's hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.agents.reconcile import WatchdogLimits, reconcile
from callcenter.agents.state import AgentState, AgentStatus, CallGone
from callcenter.config.campaign import Campaign
from callcenter.dialer.preview import (
    HELD_CALL_PREFIX,
    agent_of_claimer,
    claimer_for,
    contact_of_call,
    preview_call_id,
    screen,
)
from callcenter.storage.campaigns import DueContact

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
CAMPAIGN = Campaign.model_validate({
    "mode": "preview", "trunk": "carrier", "caller_id": "+15550100000", "abandon": None,
    "calling_windows": {"mon-fri": "09:00-20:00"}, "max_attempts": 3})


def _due(number: str = "+12125550100", zone: str | None = "America/New_York",
         attempts: int = 0) -> DueContact:
    return DueContact(1, number, zone, {}, attempts)


def test_claimer_and_reservation_ids_name_their_agent_and_contact() -> None:
    assert claimer_for("alice") == "preview:alice"
    assert agent_of_claimer("preview:alice") == "alice"
    for other in (None, "dialer:node1", "preview:", "alice"):
        assert agent_of_claimer(other) is None
    call = preview_call_id(42)
    assert call.startswith(HELD_CALL_PREFIX + "42-") and call != preview_call_id(42)
    assert contact_of_call(call) == 42
    for other in (None, "cc-dial-abc", "cc-preview-", "cc-preview-x-1", "cc-preview-42",
                  "cc-preview-٣-ab", "1701234567.42"):
        assert contact_of_call(other) is None, other


def test_a_contact_in_its_window_is_offered() -> None:
    screened = screen(_due(), CAMPAIGN, NOW)
    assert (screened.action, screened.verdict.rule) == ("offer", "ok")


def test_an_abandon_within_72_hours_does_not_hold_back_a_preview() -> None:
    """The agent is reserved before the dial: no abandon can follow."""
    screened = screen(_due(), CAMPAIGN, NOW, last_abandon_at=NOW - timedelta(hours=1))
    assert screened.action == "offer"


def test_outside_its_window_a_contact_goes_back_until_it_opens() -> None:
    night = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 22:00 in New York
    screened = screen(_due(), CAMPAIGN, night)
    assert (screened.action, screened.verdict.rule, screened.state) == (
        "later", "calling_window", "pending")
    assert screened.retry_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 NY


def test_a_zone_from_the_number_is_enough_and_none_at_all_closes_the_contact() -> None:
    no_assumption = CAMPAIGN.model_copy(update={"assume_timezone": None})
    # A UK number's zone is known from the number: London, 15:00, in the window.
    assert screen(_due("+442079460000", None), no_assumption, NOW).action == "offer"
    unknown = screen(_due("+8823", None), no_assumption, NOW)
    assert (unknown.action, unknown.verdict.rule, unknown.state) == (
        "close", "no_timezone", "exhausted")


@pytest.mark.parametrize(("dnc", "attempts", "rule", "state"), [
    (False, 3, "max_attempts", "exhausted"), (True, 0, "dnc", "do_not_call")])
def test_a_contact_the_rules_never_allow_is_closed(dnc: bool, attempts: int, rule: str,
                                                   state: str) -> None:
    screened = screen(_due(attempts=attempts), CAMPAIGN, NOW, dnc=dnc)
    assert (screened.action, screened.verdict.rule, screened.state, screened.retry_at) == (
        "close", rule, state, None)
    assert screened.dnc_blocked is dnc


def _reserved(agent: str, call: str, since: datetime) -> AgentState:
    return AgentState(agent=agent, status=AgentStatus.RESERVED, since=since, call=call,
                      version=3)


def test_the_watchdog_leaves_a_preview_hold_alone_until_its_time_limit() -> None:
    """A preview's reservation has no channel: it is judged by ``held`` only; any other
    reservation without a channel is freed as before."""
    limits = WatchdogLimits(held=timedelta(minutes=5))
    held = _reserved("alice", preview_call_id(7), NOW - timedelta(minutes=4))
    other = _reserved("bob", "1701234567.42", NOW - timedelta(seconds=1))
    fixes = reconcile([held, other], live_channels=set(), contacts={}, now=NOW, limits=limits)
    assert [(f.agent, f.event) for f in fixes] == [("bob", CallGone("1701234567.42"))]
    late = reconcile([held], set(), {}, NOW + timedelta(minutes=2), limits)
    assert [(f.agent, f.event) for f in late] == [("alice", CallGone(held.call or ""))]
    assert "never dialled" in late[0].reason
