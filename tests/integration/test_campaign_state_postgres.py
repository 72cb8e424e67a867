"""A campaign's run state on a real PostgreSQL, written by several processes at once (two
engines, as two nodes): the first heartbeats and state changes of a campaign with no row
yet create one row and never fail on its unique name; simultaneous ``pause`` requests
(the API and the CLI, two supervisors) store and audit one change. The database comes
from the shared ``pg_url`` fixture (``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaign_state import CampaignStateRepository
from callcenter.storage.models import CampaignRecord, CampaignStateChange, DialerNode

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
#: Campaigns tried (each a fresh race), and writers at once on each.
ROUNDS = 6
WRITERS = 8


async def test_first_writers_of_a_campaign_share_one_row(pg_url: str) -> None:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        sessions = [make_sessionmaker(engine) for engine in engines]

        async def writer(campaign: str, index: int) -> None:
            async with sessions[index % 2].begin() as session:
                repo = CampaignStateRepository(session)
                if index % 4 == 3:
                    await repo.set(campaign, "pause", by=f"ops{index}", at=NOW, via="api")
                else:
                    await repo.beat(campaign, f"dialer:{index}", host="h", pid=index, at=NOW)

        for round_ in range(ROUNDS):
            async with asyncio.timeout(60):
                await asyncio.gather(*(writer(f"fresh{round_}", i) for i in range(WRITERS)))
        async with sessions[0]() as session:
            names = list(await session.scalars(select(CampaignRecord.name)))
            beats = await session.scalar(select(func.count()).select_from(DialerNode))
        assert sorted(names) == [f"fresh{r}" for r in range(ROUNDS)]
        assert beats == ROUNDS * (WRITERS - WRITERS // 4)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_simultaneous_pauses_store_and_audit_one_change(pg_url: str) -> None:
    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        sessions = [make_sessionmaker(engine) for engine in engines]
        async with sessions[0].begin() as session:
            await CampaignStateRepository(session).beat("renewals", "dialer:a", host="h",
                                                        pid=1, at=NOW)

        async def pause(index: int) -> bool:
            async with sessions[index % 2].begin() as session:
                done = await CampaignStateRepository(session).set(
                    "renewals", "pause", by=f"sup{index}", at=NOW, via="api")
            return done.change.changed

        async with asyncio.timeout(60):
            changed = await asyncio.gather(*(pause(i) for i in range(WRITERS)))
        async with sessions[1]() as session:
            audit = list(await session.scalars(select(CampaignStateChange)))
            stored = await CampaignStateRepository(session).state("renewals")
        assert changed.count(True) == 1, changed
        assert [(a.previous, a.state) for a in audit] == [("running", "paused")]
        assert stored.state == "paused" and stored.changed_by == audit[0].changed_by
    finally:
        for engine in engines:
            await engine.dispose()


async def test_simultaneous_hand_offs_of_one_call_are_claimed_once(pg_url: str) -> None:
    """Dispositions naming a queue, from two processes at once: one claims the live
    attempt (and goes to the PBX), the others are refused before it."""
    from callcenter.dialer.dispose import claim_handoff
    from callcenter.dialer.handoff import HandoffPlan
    from callcenter.storage.campaigns import CampaignRepository, NewContact

    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        sessions = [make_sessionmaker(engine) for engine in engines]
        async with sessions[0].begin() as session:
            await CampaignRepository(session).import_contacts(
                "renewals", [NewContact("+12125550100", "America/New_York")])
        async with sessions[0].begin() as session:
            repo = CampaignRepository(session)
            (due,) = await repo.claim_due("renewals", NOW, 1)
            attempt = await repo.start_attempt(due.id, at=NOW, channel_id="cc-dial-1")
            await repo.mark_answered(attempt, at=NOW, agent="alice")
        plan = HandoffPlan(attempt_id=attempt, campaign="renewals", contact_id=due.id,
                           channel_id="cc-dial-1", number="+12125550100",
                           disposition="warm_transfer_sales", queue="sales",
                           skills=("sales",), priority=0)
        async with asyncio.timeout(60):
            claimed = await asyncio.gather(*(claim_handoff(sessions[i % 2], plan)
                                             for i in range(WRITERS)))
        assert claimed.count(True) == 1, claimed
    finally:
        for engine in engines:
            await engine.dispose()
