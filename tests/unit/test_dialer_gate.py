"""The dialer obeys the rules and leaves an audit trail: the pure glue (a refused
contact's next state, the next step after a call with its history) and one pass of the
dialer on a real SQLite database (refused contacts not dialled and moved on, a DNC one
counted blocked, the allowed one's attempt written with its verdict and pacing rule)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.dialer import CampaignDialer
from callcenter.agents.state import Login
from callcenter.config.campaign import Campaign
from callcenter.config.loader import load_config
from callcenter.dialer.compliance import compliance_report
from callcenter.dialer.eligibility import Verdict
from callcenter.dialer.gate import next_step, outcome_counts, refusal_step
from callcenter.storage import (
    default_sqlite_url,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from callcenter.storage import models as M
from callcenter.storage.campaigns import CampaignRepository, NewContact

UTC = dt.UTC
# Tuesday 1 December 2026, 15:00 UTC = 10:00 in New York, 07:00 in Los Angeles.
NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "config" / "example"


def _campaign(**changes: object) -> Campaign:
    base = {"mode": "progressive", "trunk": "carrier", "caller_id": "+15550100000",
            "safe_harbor": "tt-weasels", "agents": ["carmen"], "skills": [],
            "calling_windows": {"mon-sun": "09:00-20:00"},
            "assume_timezone": "America/New_York",
            "retry": {"busy": "10m", "failed": {"delay": "1h", "max_attempts": 2}}}
    return Campaign.model_validate(base | changes)


# -- pure ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("verdict", "state", "at", "blocked"), [
    (Verdict(False, "dnc", "listed"), "do_not_call", None, True),
    (Verdict(False, "max_attempts", "5 of 5"), "exhausted", None, False),
    (Verdict(False, "no_timezone", "no zone"), "exhausted", None, False),
    (Verdict(False, "calling_window", "closed", NOW), "pending", NOW, False),
    (Verdict(False, "abandon_72h", "quiet", NOW + dt.timedelta(days=3)), "pending",
     NOW + dt.timedelta(days=3), False),
])
def test_a_refused_contact_goes_where_its_verdict_says(
        verdict: Verdict, state: str, at: dt.datetime | None, blocked: bool) -> None:
    refusal = refusal_step(verdict)
    assert (refusal.state, refusal.next_attempt_at, refusal.dnc_blocked) == (
        state, at, blocked)


def test_an_allowed_verdict_is_no_refusal() -> None:
    with pytest.raises(ValueError, match="allows the call"):
        refusal_step(Verdict(True, "ok", "fine"))


def test_the_next_step_counts_the_history_against_a_rules_own_max_attempts() -> None:
    campaign = _campaign()
    once = next_step(campaign, number="+1", timezone=None, attempts=1, outcome="failed",
                     at=NOW)
    assert (once.state, once.next_attempt_at) == ("pending", NOW + dt.timedelta(hours=1))
    twice = next_step(campaign, number="+1", timezone=None, attempts=2, outcome="cancelled",
                      at=NOW, earlier=[(M.AttemptOutcome.FAILED, None)])
    assert twice.state == "exhausted" and "retry.failed.max_attempts" in twice.reason
    answered = next_step(campaign, number="+1", timezone=None, attempts=1,
                         outcome=M.AttemptOutcome.ANSWERED, at=NOW)
    assert (answered.state, answered.next_attempt_at) == ("done", None)


def test_outcome_counts_read_dispositions_asking_for_a_callback() -> None:
    campaign = _campaign()
    assert outcome_counts(campaign, [("busy", None), ("answered", "callback"),
                                     ("busy", None), (None, None)]) == {
        "busy": 2, "callback_requested": 1}


def test_the_report_shows_the_dnc_numbers_blocked() -> None:
    report = compliance_report("x", _campaign(), [], [], NOW, dnc_blocked=3)
    assert ("dnc_numbers_blocked", "3") in report.rows()
    assert report.as_json()["dnc_numbers_blocked"] == 3 and report.compliant


# -- one pass of the dialer on a real database ------------------------------------------------

class _Channels:
    async def hangup(self, channel_id: str) -> None: ...


class _Ari:
    channels = _Channels()


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_one_pass_refuses_by_rule_and_dials_the_allowed_contact_with_its_reasons(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """Four contacts due: one on the DNC list, one in Los Angeles (07:00 there), one
    abandoned an hour ago, one in New York (10:00). Only the last is claimed for carmen,
    its attempt written with ``ok``, its reason and the pacing rule; the others are not
    dialled: DNC closed and counted, the others due when the rules allow them."""
    config = load_config(EXAMPLE).config
    config = config.model_copy(update={"campaigns": {"renewals": _campaign()}})
    dialer = CampaignDialer(config, "renewals", _Ari(), sessions,  # type: ignore[arg-type]
                            node="d1", clock=lambda: NOW)
    dialed: list[str] = []

    async def owned(call: object, caller_id: str) -> None:  # no call placed in a unit test
        dialed.append(call.contact.number)  # type: ignore[attr-defined]

    dialer._owned = owned  # type: ignore[method-assign]
    await dialer.store.ensure(config.agents, NOW - dt.timedelta(seconds=10))
    await dialer.store.apply("carmen", Login(), NOW - dt.timedelta(seconds=10))
    listed, west, abandoned, east = ("+12125550101", "+13105550102", "+12125550103",
                                     "+12125550104")
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        await repo.import_contacts("renewals", [
            NewContact(listed, "America/New_York"), NewContact(west, "America/Los_Angeles"),
            NewContact(abandoned, "America/New_York"),
            NewContact(east, "America/New_York")])
        await repo.add_dnc([listed], source="test", at=NOW - dt.timedelta(days=1))
    async with sessions.begin() as session:  # imported again after the listing: pending
        await CampaignRepository(session).import_contacts("renewals", [
            NewContact(listed, "America/New_York")])
        contact = await session.scalar(select(M.Contact).where(M.Contact.number == listed))
        assert contact is not None
        contact.state = M.ContactState.PENDING
    async with sessions.begin() as session:  # an abandoned call an hour ago
        repo = CampaignRepository(session)
        (due,) = [c for c in await repo.claim_due("renewals", NOW, 4)
                  if c.number == abandoned]
        attempt = await repo.start_attempt(due.id, at=NOW - dt.timedelta(hours=1))
        await repo.end_attempt(attempt, outcome=M.AttemptOutcome.ABANDONED,
                               at=NOW - dt.timedelta(hours=1),
                               next_state=M.ContactState.PENDING,
                               next_attempt_at=NOW - dt.timedelta(minutes=1))
    async with sessions.begin() as session:  # the others claimed above go back, after it
        for c in await session.scalars(select(M.Contact).where(
                M.Contact.state == M.ContactState.DIALING)):
            c.state, c.claimed_by, c.next_attempt_at = M.ContactState.PENDING, None, NOW

    async with asyncio.TaskGroup() as tg:
        await dialer._pass(tg)

    assert dialed == [east]
    async with sessions() as session:
        contacts = {c.number: c for c in await session.scalars(select(M.Contact))}
        (placed,) = await session.scalars(select(M.ContactAttempt).where(
            M.ContactAttempt.number == east))
        blocked = await CampaignRepository(session).dnc_blocked("renewals")
    assert (placed.rule, placed.pacing_rule) == ("ok", "progressive")
    assert placed.reason is not None and "America/New_York" in placed.reason
    assert contacts[listed].state is M.ContactState.DO_NOT_CALL and blocked == 1
    assert contacts[west].state is M.ContactState.PENDING
    assert contacts[west].next_attempt_at == dt.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert contacts[abandoned].state is M.ContactState.PENDING
    assert contacts[abandoned].next_attempt_at is not None and \
        contacts[abandoned].next_attempt_at >= NOW + dt.timedelta(hours=71)
    assert all(c.claimed_by is None for n, c in contacts.items() if n != east)
    assert (contacts[west].attempts, contacts[listed].attempts) == (0, 0)
