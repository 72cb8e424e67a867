"""Concurrency scenarios of the agent store and the migrations, run on SQLite
(tests/unit/test_agent_store.py) and on the real PostgreSQL
(tests/integration/test_storage_postgres.py): the same code must hold on both.

Each scenario is bounded (a fixed number of tasks and rounds) and waits on the tasks
themselves, never on a sleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from callcenter.agents import (
    AgentStatus,
    Answer,
    Login,
    OfferFailed,
    Pause,
    Reserve,
    Rules,
)
from callcenter.agents.store import AgentStore
from callcenter.storage import AgentStateRepository, make_engine, make_sessionmaker
from callcenter.storage.migrate import head_revision, upgrade

__all__ = [
    "T0",
    "concurrent_pauses_lose_no_update",
    "concurrent_reservers_one_winner",
    "concurrent_upgrades_apply_once",
    "many_callers_many_agents",
    "stores",
]

T0 = datetime(2026, 3, 29, 0, 59, 58, tzinfo=UTC)
RULES = Rules(frozenset({"lunch", "training"}))


@asynccontextmanager
async def stores(url: str, count: int = 2) -> AsyncIterator[list[AgentStore]]:
    """*count* stores, each on its own engine: as many router instances."""
    engines = [make_engine(url) for _ in range(count)]
    try:
        yield [
            # Each lost compare-and-set means another writer committed: with at most a few
            # hundred writes per scenario, 1000 attempts can never run out.
            AgentStore(make_sessionmaker(engine), RULES, node=f"pbx{i + 1}", max_attempts=1000)
            for i, engine in enumerate(engines)
        ]
    finally:
        for engine in engines:
            await engine.dispose()


async def _log(store: AgentStore, agent: str) -> list[tuple[int, str, str | None]]:
    async with store._sessions() as session:
        rows = await AgentStateRepository(session).transitions(agent)
    return [(row.version, row.cause, (row.detail or {}).get("call")) for row in rows]


async def concurrent_reservers_one_winner(url: str, *, tasks: int, rounds: int) -> None:
    """*tasks* reservers on two engines race for one agent, *rounds* times: exactly one
    wins each round, and the stored log shows exactly that winner's reservation."""
    async with stores(url) as (one, two):
        await one.ensure(["alice"], T0)
        await two.ensure(["alice"], T0)  # the second router starting: no duplicate row
        await one.apply("alice", Login(), T0)
        winners = []
        for round_ in range(rounds):
            now = T0 + timedelta(seconds=round_)
            calls = [f"r{round_}-c{i}" for i in range(tasks)]
            results = await asyncio.gather(
                *((one if i % 2 else two).try_reserve("alice", call, now)
                  for i, call in enumerate(calls))
            )
            won = [state for state in results if state is not None]
            assert len(won) == 1, f"round {round_}: {len(won)} reservers won"
            state = won[0]
            assert state.status is AgentStatus.RESERVED and state.version == 2 + 2 * round_
            stored = await one.get("alice", now)
            assert stored == state
            winners.append(state.call)
            await two.apply("alice", OfferFailed(state.call, "no_answer"), now)

        log = await _log(one, "alice")
        assert [version for version, _, _ in log] == list(range(1, 2 * rounds + 2))
        assert [call for _, cause, call in log if cause == "reserve"] == winners


async def concurrent_pauses_lose_no_update(url: str, *, tasks: int, each: int) -> None:
    """*tasks* writers on two engines each apply *each* changes to one agent (a pause
    asked for during a call, legal in any order): every change lands once, with its own
    version, none lost."""
    async with stores(url) as (one, two):
        await one.apply("bob", Login(), T0)
        await one.apply("bob", Reserve("c1"), T0)
        start = (await one.apply("bob", Answer("c1"), T0)).state.version

        async def writer(i: int) -> list[int]:
            store = one if i % 2 else two
            versions = []
            for j in range(each):
                reason = "lunch" if (i + j) % 2 else "training"
                versions.append((await store.apply("bob", Pause(reason), T0)).state.version)
            return versions

        results = await asyncio.gather(*(writer(i) for i in range(tasks)))
        versions = sorted(v for vs in results for v in vs)
        assert versions == list(range(start + 1, start + 1 + tasks * each))
        final = await two.get("bob", T0)
        assert final.version == start + tasks * each and final.status is AgentStatus.ON_CALL
        log = await _log(one, "bob")
        assert Counter(cause for _, cause, _ in log)["pause"] == tasks * each
        assert [v for v, _, _ in log] == list(range(1, final.version + 1))


async def many_callers_many_agents(url: str, *, agents: int, callers: int) -> None:
    """*callers* callers on two routers each take the first agent they can reserve among
    *agents*: no agent is reserved twice, and every agent is taken while callers remain."""
    names = [f"agent{i:02d}" for i in range(agents)]
    async with stores(url) as (one, two):
        await one.ensure(names, T0)
        for name in names:
            await two.apply(name, Login(), T0)

        async def caller(i: int) -> tuple[str, str] | None:
            store = one if i % 2 else two
            for name in names:
                state = await store.try_reserve(name, f"caller{i}", T0)
                if state is not None:
                    return name, f"caller{i}"
            return None

        taken = [t for t in await asyncio.gather(*(caller(i) for i in range(callers))) if t]
        agents_taken = [name for name, _ in taken]
        assert len(agents_taken) == len(set(agents_taken)) == min(agents, callers)
        by_agent = {state.agent: state.call for state in await one.all()}
        assert by_agent == {name: call for name, call in taken} | {
            name: None for name in names if name not in agents_taken
        }


class _Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.applied: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running upgrade"):
            self.applied.append(message)


async def concurrent_upgrades_apply_once(url: str, *, count: int) -> None:
    """*count* concurrent ``upgrade()`` calls on a fresh database all succeed; the
    migrations are applied exactly once."""
    logger = logging.getLogger("alembic.runtime.migration")
    handler, level = _Counting(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        results = await asyncio.gather(
            *(upgrade(url) for _ in range(count)), return_exceptions=True
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    failures = [repr(r) for r in results if r is not None]
    assert failures == [], failures
    assert [m.split(",")[0] for m in handler.applied] == [
        "Running upgrade  -> 0001",
        "Running upgrade 0001 -> 0002",
        "Running upgrade 0002 -> 0003",
        "Running upgrade 0003 -> 0004",
        "Running upgrade 0004 -> 0005",
        "Running upgrade 0005 -> 0006",
        "Running upgrade 0006 -> 0007",
        "Running upgrade 0007 -> 0008",
        "Running upgrade 0008 -> 0009",
        "Running upgrade 0009 -> 0010",
        "Running upgrade 0010 -> 0011",
    ]
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await engine.dispose()
    assert versions == [(head_revision(),)]
