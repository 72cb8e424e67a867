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
