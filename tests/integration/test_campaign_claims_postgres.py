"""Campaign contacts on a real PostgreSQL: two dialers (two engines, as two nodes) claiming
from one campaign never get the same contact, and a claim in progress never blocks the
other (``FOR UPDATE SKIP LOCKED``); imports and the DNC list on JSONB and real
constraints. The database comes from the shared ``pg_url`` fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import Contact, ContactState

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
CONTACTS = 300


def _contacts(n: int) -> list[NewContact]:
    return [NewContact(f"+1212555{i:04d}", "America/New_York", {"row": str(i)})
            for i in range(n)]


async def test_two_claimers_never_get_the_same_contact(pg_url: str) -> None:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        sessions = [make_sessionmaker(engine) for engine in engines]
        async with sessions[0].begin() as session:
            repo = CampaignRepository(session)
            done = await repo.import_contacts("renewals", _contacts(CONTACTS))
            assert (done.inserted, done.merged) == (CONTACTS, 0)
            assert await repo.add_dnc({"+12125550007": "asked"}, source="test") == 1

        async def claimer(index: int, task: int) -> list[int]:
            got: list[int] = []
            for _ in range(CONTACTS):  # bounded: each round claims at least one or stops
                async with sessions[index].begin() as session:
                    claimed = await CampaignRepository(session).claim_due(
                        "renewals", NOW, 7, claimer=f"node{index}-{task}")
                if not claimed:
                    return got
                got += [c.id for c in claimed]
            return got

        results = await asyncio.wait_for(asyncio.gather(
            *(claimer(index, task) for index in (0, 1) for task in range(3))), timeout=120)
        every = [contact for got in results for contact in got]
        assert len(every) == len(set(every)) == CONTACTS - 1  # one number is on the DNC list
        assert all(results[:3]) and all(results[3:]), "both nodes claimed"
        async with sessions[1]() as session:
            states = dict((await session.execute(
                select(Contact.state, func.count()).group_by(Contact.state))).all())
        assert states == {ContactState.DIALING: CONTACTS - 1, ContactState.DO_NOT_CALL: 1}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_claim_in_progress_is_skipped_not_waited_for(pg_url: str) -> None:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        first, second = (make_sessionmaker(engine) for engine in engines)
        async with first.begin() as session:
            await CampaignRepository(session).import_contacts("renewals", _contacts(10))
        async with first.begin() as holding:
            held = await CampaignRepository(holding).claim_due("renewals", NOW, 4)
            # The first transaction still holds its rows' locks: the second claimer takes
            # the others at once instead of waiting for the commit.
            async with second.begin() as session:
                other = await asyncio.wait_for(
                    CampaignRepository(session).claim_due("renewals", NOW, 10), timeout=10)
        assert len(held) == 4 and len(other) == 6
        assert not {c.id for c in held} & {c.id for c in other}
        async with second.begin() as session:
            stored = await CampaignRepository(session).contacts("renewals")
        assert stored[0].data == {"row": "0"}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_do_not_call_disposition_and_the_compliance_inputs(pg_url: str) -> None:
    """dispose() lists the number in its own transaction, and the report's query (an
    EXISTS per attempt against the DNC list's dates) runs on PostgreSQL."""
    from datetime import timedelta

    from callcenter.config.campaign import Campaign
    from callcenter.storage.models import AttemptOutcome

    campaigns = {"renewals": Campaign.model_validate({
        "mode": "progressive", "trunk": "carrier", "caller_id": "+15550100000",
        "safe_harbor": "tt-weasels"})}
    engine = make_engine(pg_url)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions.begin() as session:
            await CampaignRepository(session).import_contacts("renewals", _contacts(2))
        async with sessions.begin() as session:
            repo = CampaignRepository(session)
            first, _ = await repo.claim_due("renewals", NOW, 2)
            attempt = await repo.start_attempt(first.id, at=NOW)
            await repo.end_attempt(attempt, outcome=AttemptOutcome.ANSWERED,
                                   at=NOW + timedelta(seconds=40),
                                   next_state=ContactState.DONE, agent="alice")
        async with sessions.begin() as session:
            done = await CampaignRepository(session).dispose(
                attempt, "do_not_call", campaigns=campaigns, agent="alice",
                now=NOW + timedelta(minutes=1))
        assert (done.state, done.added_dnc) == ("do_not_call", True)
        async with sessions() as session:
            repo = CampaignRepository(session)
            assert await repo.is_dnc(first.number)
            contacts, attempts = await repo.compliance_inputs("renewals")
            status = await repo.status("renewals", NOW)
        assert [(a.id, a.outcome, a.on_dnc) for a in attempts] == [
            (attempt, "answered", False)]  # listed after the call, not before
        assert len(contacts) == 2
        assert (status["do_not_call"], status["dialing"], status["attempts"]) == (1, 1, 1)
    finally:
        await engine.dispose()
