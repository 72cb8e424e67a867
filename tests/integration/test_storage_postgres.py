"""Storage layer against a real PostgreSQL: migrations, no drift, repositories.

The database comes from the shared fixtures ``pg_url`` / ``fresh_pg_url``
(``tests/conftest.py``): a private, throw-away cluster (:mod:`tests.integration.postgres`)
for the session, a new database per test. When PostgreSQL or asyncpg is missing the
tests FAIL: a PostgreSQL-ready claim that silently skips is no claim at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents import Login
from callcenter.agents.store import AgentStore
from callcenter.storage import (
    Account,
    AccountRepository,
    AccountStatus,
    Call,
    CallEvent,
    CallEventKind,
    CallRepository,
    DestinationKind,
    OfferResult,
    QueuedCallRepository,
    QueueOutcome,
    current_revision,
    downgrade,
    head_revision,
    import_csv,
    make_engine,
    make_sessionmaker,
    schema_differences,
    seed_demo_accounts,
    upgrade,
)
from tests.agent_store_scenarios import (
    concurrent_pauses_lose_no_update,
    concurrent_reservers_one_winner,
    concurrent_upgrades_apply_once,
    many_callers_many_agents,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 10, 26, 0, 59, 58, tzinfo=UTC)


@pytest.fixture
async def sessions(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_migrations_reach_head_without_drift(pg_url: str) -> None:
    assert await current_revision(pg_url) == head_revision()
    assert await schema_differences(pg_url) == []


async def test_postgres_gets_its_native_types(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        async with engine.connect() as connection:
            types = dict(
                (
                    await connection.execute(
                        text(
                            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'public'"
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert types["calls.id"] == "bigint"
    assert types["call_events.call_id"] == "bigint"
    assert types["call_events.detail"] == "jsonb"
    assert types["calls.started_at"] == "timestamp with time zone"
    assert types["agent_transitions.id"] == "bigint"
    assert types["queued_calls.matched_skills"] == "jsonb"
    assert types["agent_states.since"] == "timestamp with time zone"


async def test_downgrade_to_base_and_up_again(pg_url: str) -> None:
    await downgrade(pg_url, "base")
    engine = make_engine(pg_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(
                lambda sync: inspect(sync).get_table_names()
            )
    finally:
        await engine.dispose()
    assert set(tables) == {"alembic_version"}
    await upgrade(pg_url)
    assert await schema_differences(pg_url) == []


# ------------------------------------------------ agent states: one router wins, always


async def test_concurrent_upgrades_of_a_fresh_database_apply_once(fresh_pg_url: str) -> None:
    await concurrent_upgrades_apply_once(fresh_pg_url, count=6)
    assert await schema_differences(fresh_pg_url) == []


async def test_concurrent_reservers_on_two_engines_one_wins(pg_url: str) -> None:
    await concurrent_reservers_one_winner(pg_url, tasks=30, rounds=5)


async def test_concurrent_writers_lose_no_update(pg_url: str) -> None:
    await concurrent_pauses_lose_no_update(pg_url, tasks=12, each=5)


async def test_many_callers_never_share_an_agent(pg_url: str) -> None:
    await many_callers_many_agents(pg_url, agents=8, callers=20)


async def test_agent_state_and_queued_calls_round_trip(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AgentStore(sessions, node="pbx1")
    await store.apply("alice", Login(), T0)
    reserved = await store.try_reserve("alice", "1700.9", T0 + timedelta(seconds=1))
    assert reserved is not None and reserved.since == T0 + timedelta(seconds=1)
    assert await store.get("alice", T0) == reserved

    async with sessions.begin() as session:
        calls = QueuedCallRepository(session)
        queued = await calls.enter_by_id("1700.9", "sales", entered_at=T0, priority=3)
        offer = await calls.add_offer_by_id(queued, "alice", offered_at=T0 + timedelta(seconds=1))
        await calls.answered_by_id(queued, offer, "alice", at=T0 + timedelta(seconds=4),
                                   matched_skills={"billing": 5}, relaxation_step=0)
        assert await calls.finish_by_id(queued, QueueOutcome.ANSWERED,
                                        at=T0 + timedelta(seconds=60))
    async with sessions() as session:
        calls = QueuedCallRepository(session)
        loaded = await calls.get_by_channel("1700.9")
        assert loaded is not None
        assert (loaded.agent, loaded.matched_skills, loaded.outcome, loaded.ended_at) == (
            "alice", {"billing": 5}, QueueOutcome.ANSWERED, T0 + timedelta(seconds=60))
        assert [(o.agent, o.result) for o in await calls.offers(loaded)] == [
            ("alice", OfferResult.ANSWERED)]


async def test_accounts_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        assert await seed_demo_accounts(session) == ["100200", "100300", "100400"]
    async with sessions.begin() as session:
        assert await seed_demo_accounts(session) == []

    async with sessions() as session:
        accounts = AccountRepository(session)
        ada = await accounts.find_by_phone("15551230001")
        assert ada is not None and (ada.account_number, ada.vip, ada.language) == (
            "100200",
            True,
            "en",
        )
        suspended = await accounts.find_by_number("100400")
        assert suspended is not None and suspended.status is AccountStatus.SUSPENDED
        assert ada.created_at.utcoffset() == timedelta(0)

    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await AccountRepository(session).add("100200", "Duplicate")


async def test_csv_import_keeps_good_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    csv_text = "account_number,name,vip\n1,Good,yes\n2,Bad,maybe\n3,Also Good,\n"
    async with sessions.begin() as session:
        report = await import_csv(session, csv_text.splitlines())
    assert [row.account_number for row in report.accepted] == ["1", "3"]
    assert [str(e) for e in report.errors] == [
        "line 3: column 'vip': expected true/false, got 'maybe'"
    ]
    async with sessions() as session:
        assert len((await session.execute(select(Account.id))).all()) == 2


async def test_calls_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        account = await AccountRepository(session).add("9", "Caller")
        calls = CallRepository(session)
        call = await calls.start_call(
            "1711111111.7", "main", account_id=account.id, started_at=T0
        )
        await calls.add_event(
            call, CallEventKind.COLLECT, name="account", detail={"digits": "9"}, at=T0
        )
        await calls.finish_call(
            call,
            DestinationKind.VOICEMAIL,
            destination="100@default",
            ended_at=T0 + timedelta(seconds=90),
        )

    async with sessions() as session:
        calls = CallRepository(session)
        loaded = await calls.get_by_uniqueid("1711111111.7")
        assert loaded is not None
        assert (loaded.started_at, loaded.ended_at) == (T0, T0 + timedelta(seconds=90))
        assert loaded.final_destination_kind is DestinationKind.VOICEMAIL
        events = await calls.events(loaded)
        assert [(e.kind, e.detail) for e in events] == [
            (CallEventKind.COLLECT, {"digits": "9"})
        ]

    async with sessions.begin() as session:
        await session.execute(delete(Account))
    async with sessions.begin() as session:
        kept = await CallRepository(session).get_by_uniqueid("1711111111.7")
        assert kept is not None and kept.account_id is None
        await session.execute(delete(Call))
    async with sessions() as session:
        assert (await session.execute(select(CallEvent.id))).first() is None


async def test_account_directory_reads_postgres(
    pg_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The IVR's look-up path (sync driver in a worker thread) on PostgreSQL."""
    from callcenter.storage.directory import AccountDirectory

    async with sessions.begin() as session:
        await seed_demo_accounts(session)
    directory = AccountDirectory(pg_url)
    try:
        ada = await directory.by_phone("+1 555 123 0001")
        assert ada is not None and (ada.account_number, ada.vip, ada.active) == (
            "100200", True, True)
        suspended = await directory.by_number("100400")
        assert suspended is not None and not suspended.active
        assert await directory.by_number("999999") is None
    finally:
        await directory.close()
