"""Agent states, queued calls and migrations on a real SQLite file (the PostgreSQL twin of
the concurrency scenarios is in tests/integration/test_storage_postgres.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents import (
    AgentState,
    AgentStatus,
    Answer,
    CallGone,
    CancelOffer,
    ContactStatus,
    Hangup,
    IllegalTransition,
    Login,
    OfferFailed,
    Pause,
    PhoneLost,
    ReadyForCalls,
    Reserve,
    Ring,
    UnknownPauseReason,
    Unpause,
    reconcile,
)
from callcenter.agents.store import AgentStore, not_before
from callcenter.storage import (
    AgentStateRepository,
    CallRepository,
    OfferResult,
    QueuedCallError,
    QueuedCallRepository,
    QueueOutcome,
    default_sqlite_url,
    downgrade,
    make_engine,
    make_sessionmaker,
    schema_differences,
    upgrade,
)
from tests.agent_store_scenarios import (
    RULES,
    T0,
    concurrent_pauses_lose_no_update,
    concurrent_reservers_one_winner,
    concurrent_upgrades_apply_once,
    many_callers_many_agents,
)

# ------------------------------------------------------------------------ concurrency


async def test_concurrent_reservers_on_two_engines_one_wins(db_url: str) -> None:
    await concurrent_reservers_one_winner(db_url, tasks=30, rounds=5)


async def test_concurrent_writers_lose_no_update(db_url: str) -> None:
    await concurrent_pauses_lose_no_update(db_url, tasks=12, each=5)


async def test_many_callers_never_share_an_agent(db_url: str) -> None:
    await many_callers_many_agents(db_url, agents=8, callers=20)


async def test_concurrent_upgrades_of_a_fresh_database_apply_once(tmp_path: Path) -> None:
    await concurrent_upgrades_apply_once(default_sqlite_url(tmp_path), count=6)


async def test_upgrade_from_0001_keeps_the_data(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path)
    await upgrade(url, "0001")
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await CallRepository(session).start_call("1.1", "main", started_at=T0)
        await upgrade(url)
        async with make_sessionmaker(engine)() as session:
            assert (await CallRepository(session).get_by_uniqueid("1.1")) is not None
    finally:
        await engine.dispose()
    assert await schema_differences(url) == []
    await downgrade(url, "0001")
    await upgrade(url)


# ---------------------------------------------------------------------------- store


async def test_every_transition_is_stored_with_time_and_cause(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AgentStore(sessions, RULES, node="pbx1")
    steps = [Login(), Reserve("c1"), Ring("c1"), Answer("c1"), Hangup("c1", timedelta(seconds=20))]
    for i, event in enumerate(steps):
        await store.apply("carol", event, T0 + timedelta(seconds=i))
    await store.apply("carol", Pause("lunch"), T0 + timedelta(seconds=9), reason="cli")

    state = await store.get("carol", T0)
    assert state == AgentState(
        "carol", AgentStatus.PAUSED, T0 + timedelta(seconds=9), version=6, pause_reason="lunch"
    )
    async with sessions() as session:
        log = await AgentStateRepository(session).transitions("carol")
    assert [(t.version, t.at, t.cause, t.from_status, t.to_status, t.detail, t.reason)
            for t in log] == [
        (1, T0, "login", "logged_out", "available", None, "pbx1"),
        (2, T0 + timedelta(seconds=1), "reserve", "available", "reserved", {"call": "c1"}, "pbx1"),
        (3, T0 + timedelta(seconds=2), "ring", "reserved", "ringing", {"call": "c1"}, "pbx1"),
        (4, T0 + timedelta(seconds=3), "answer", "ringing", "on_call", {"call": "c1"}, "pbx1"),
        (5, T0 + timedelta(seconds=4), "hangup", "on_call", "wrap_up",
         {"call": "c1", "wrap_up": 20.0}, "pbx1"),
        (6, T0 + timedelta(seconds=9), "pause", "wrap_up", "paused", {"reason": "lunch"}, "cli"),
    ]


async def test_a_refused_event_writes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = AgentStore(sessions, RULES)
    with pytest.raises(IllegalTransition):
        await store.apply("dave", Reserve("c1"), T0)
    with pytest.raises(UnknownPauseReason):
        await store.apply("dave", Pause("smoke"), T0)
    assert await store.try_reserve("dave", "c1", T0) is None
    state = await store.get("dave", T0)
    assert (state.status, state.version) == (AgentStatus.LOGGED_OUT, 0)
    async with sessions() as session:
        assert await AgentStateRepository(session).transitions("dave") == []


async def test_a_known_state_skips_the_read_and_a_stale_one_decides_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The router passes its copy of the state: a fresh copy writes with no SELECT; a
    stale copy neither wins an agent another router took nor refuses a legal event."""
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement.split()[0].upper())

    store = AgentStore(sessions, RULES, node="pbx1")
    await store.apply("gina", Login(), T0)
    idle = await store.get("gina", T0)
    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        reserved = await store.try_reserve("gina", "c1", T0, known=idle)
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert reserved is not None and reserved.call == "c1"
    assert "SELECT" not in statements and "UPDATE" in statements
    # Another router's view, stale: gina looks idle but is reserved for c1.
    assert await store.try_reserve("gina", "c2", T0, known=idle) is None
    assert (await store.get("gina", T0)).call == "c1"
    # A stale copy that would refuse (reserved, but the call has since failed): the
    # stored state decides, and gina is reserved for c3.
    await store.apply("gina", OfferFailed("c1", "no_answer"), T0)
    again = await store.try_reserve("gina", "c3", T0, known=reserved)
    assert again is not None and again.call == "c3"


async def test_also_commits_with_the_agents_change_and_only_then(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """``also`` (the router's call record) is written in the agent's transaction; a
    refused event writes neither; a record that fails takes the agent's change back."""
    async with sessions.begin() as session:
        row = await QueuedCallRepository(session).enter_by_id("1800.1", "sales", entered_at=T0)

    async def abandon(session: AsyncSession) -> None:
        await QueuedCallRepository(session).finish_by_id(row, QueueOutcome.ABANDONED, at=T0)

    async def fail(session: AsyncSession) -> None:
        raise QueuedCallError("recorded out of order")

    store = AgentStore(sessions, RULES, node="pbx1")
    with pytest.raises(IllegalTransition):
        await store.apply("hana", Reserve("1800.1"), T0, also=abandon)
    async with sessions() as session:
        assert (await QueuedCallRepository(session).get_by_channel("1800.1")).ended_at is None
    await store.apply("hana", Login(), T0)
    with pytest.raises(QueuedCallError):
        await store.apply("hana", Reserve("1800.1"), T0, also=fail)
    assert (await store.get("hana", T0)).status is AgentStatus.AVAILABLE
    await store.apply("hana", Reserve("1800.1"), T0, also=abandon)
    assert (await store.get("hana", T0)).call == "1800.1"
    async with sessions() as session:
        loaded = await QueuedCallRepository(session).get_by_channel("1800.1")
        assert loaded is not None and loaded.outcome is QueueOutcome.ABANDONED


async def test_compare_and_set_refuses_a_stale_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    base = AgentState("erin", AgentStatus.LOGGED_OUT, T0)
    available = AgentState("erin", AgentStatus.AVAILABLE, T0, version=1)
    async with sessions.begin() as session:
        repository = AgentStateRepository(session)
        assert await repository.create(base)
        assert not await repository.create(base)
        assert await repository.compare_and_set(base, available, cause="login", at=T0)
        assert not await repository.compare_and_set(base, available, cause="login", at=T0)
        with pytest.raises(ValueError, match="does not follow"):
            await repository.compare_and_set(base, replace(available, version=5), cause="x", at=T0)
    async with sessions() as session:
        assert await AgentStateRepository(session).get("erin") == available


async def test_an_inconsistent_row_is_reported_not_used(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await AgentStateRepository(session).create(AgentState("fred", AgentStatus.LOGGED_OUT, T0))
        await session.execute(text("UPDATE agent_states SET status = 'reserved' WHERE agent = 'fred'"))
    async with sessions() as session:
        with pytest.raises(ValueError, match="a call is held exactly"):
            await AgentStateRepository(session).get("fred")


# ----------------------------------------------------------------------- queued calls


async def test_a_queued_call_from_entry_to_end_as_the_router_records_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The router's writes by row id (no read first) record the whole stay, and refuse
    out-of-order writes."""
    async with sessions.begin() as session:
        calls = QueuedCallRepository(session)
        row = await calls.enter_by_id("1700.1", "sales", entered_at=T0, priority=5,
                                      language="es", node="pbx1")
        abandoned = await calls.enter_by_id("1700.3", "sales", entered_at=T0, language="en")
    async with sessions.begin() as session:
        calls = QueuedCallRepository(session)
        missed = await calls.add_offer_by_id(row, "alice", offered_at=T0 + timedelta(seconds=1),
                                             channel_id="offer-1")
        assert await calls.end_offer_by_id(missed, OfferResult.NO_ANSWER,
                                           at=T0 + timedelta(seconds=16))
        assert not await calls.end_offer_by_id(missed, OfferResult.FAILED, at=T0)
        taken = await calls.add_offer_by_id(row, "bob", offered_at=T0 + timedelta(seconds=17))
        await calls.answered_by_id(row, taken, "bob", at=T0 + timedelta(seconds=20),
                                   matched_skills={"spanish": 7}, relaxation_step=1)
    with pytest.raises(QueuedCallError, match="no longer waiting"):
        async with sessions.begin() as session:
            await QueuedCallRepository(session).add_offer_by_id(row, "carol", offered_at=T0)
    with pytest.raises(QueuedCallError, match="not open"):
        async with sessions.begin() as session:
            await QueuedCallRepository(session).answered_by_id(row, taken, "bob", at=T0)
    with pytest.raises(QueuedCallError, match="but answered"):
        async with sessions.begin() as session:
            await QueuedCallRepository(session).finish_by_id(row, QueueOutcome.OVERFLOWED,
                                                             at=T0)
    async with sessions.begin() as session:
        calls = QueuedCallRepository(session)
        assert await calls.finish_by_id(row, QueueOutcome.ANSWERED,
                                        at=T0 + timedelta(seconds=200))
        assert not await calls.finish_by_id(row, QueueOutcome.ANSWERED, at=T0)
        # nobody answered: "answered" (the router's end of a call) is recorded abandoned
        assert await calls.finish_by_id(abandoned, QueueOutcome.ANSWERED, at=T0)

    async with sessions() as session:
        calls = QueuedCallRepository(session)
        loaded = await calls.get_by_channel("1700.1")
        assert loaded is not None
        assert (loaded.id, loaded.queue, loaded.priority, loaded.language, loaded.node,
                loaded.agent) == (row, "sales", 5, "es", "pbx1", "bob")
        assert (loaded.entered_at, loaded.offered_at, loaded.answered_at, loaded.ended_at) == (
            T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=20), T0 + timedelta(seconds=200))
        assert (loaded.matched_skills, loaded.relaxation_step, loaded.outcome) == (
            {"spanish": 7}, 1, QueueOutcome.ANSWERED)
        offers = await calls.offers(loaded)
        assert [(o.id, o.agent, o.channel_id, o.result, o.ended_at) for o in offers] == [
            (missed, "alice", "offer-1", OfferResult.NO_ANSWER, T0 + timedelta(seconds=16)),
            (taken, "bob", None, OfferResult.ANSWERED, T0 + timedelta(seconds=20)),
        ]
        other = await calls.get_by_channel("1700.3")
        assert other is not None and other.outcome is QueueOutcome.ABANDONED
        assert (other.id, other.queue, other.entered_at, other.language) == (
            abandoned, "sales", T0, "en")
        assert await calls.waiting() == []


async def test_waiting_calls_come_back_by_priority_then_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        calls = QueuedCallRepository(session)
        await calls.enter_by_id("a", "sales", entered_at=T0 + timedelta(seconds=1))
        await calls.enter_by_id("b", "sales", entered_at=T0 + timedelta(seconds=5), priority=10)
        await calls.enter_by_id("c", "sales", entered_at=T0)
        await calls.enter_by_id("d", "support", entered_at=T0, node="pbx2")
        gone = await calls.enter_by_id("e", "sales", entered_at=T0)
        assert await calls.finish_by_id(gone, "abandoned", at=T0 + timedelta(seconds=3))
    async with sessions() as session:
        calls = QueuedCallRepository(session)
        assert [q.channel_id for q in await calls.waiting()] == ["b", "c", "d", "a"]
        assert [q.channel_id for q in await calls.waiting("sales")] == ["b", "c", "a"]
        assert [q.channel_id for q in await calls.waiting(node="pbx2")] == ["d"]


async def test_queued_calls_refuse_out_of_order_records(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        calls = QueuedCallRepository(session)
        queued = await calls.enter_by_id("x", "sales", entered_at=T0)
        with pytest.raises(ValueError):
            await calls.finish_by_id(queued, "hung_up", at=T0)
        assert await calls.finish_by_id(queued, QueueOutcome.OVERFLOWED, at=T0,
                                        overflow_to="voicemail:sales")
        assert not await calls.finish_by_id(queued, QueueOutcome.ABANDONED, at=T0)
        with pytest.raises(QueuedCallError, match="no longer waiting"):
            await calls.add_offer_by_id(queued, "alice", offered_at=T0)
    async with sessions() as session:
        loaded = await QueuedCallRepository(session).get_by_channel("x")
        assert loaded is not None
        assert (loaded.outcome, loaded.overflow_to) == (QueueOutcome.OVERFLOWED, "voicemail:sales")
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await QueuedCallRepository(session).enter_by_id("x", "sales", entered_at=T0)


async def test_reconcile_corrections_are_stored_and_stale_ones_skipped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AgentStore(sessions, RULES, node="pbx1")
    for name in ("alice", "bob"):
        await store.apply(name, Login(), T0)
        await store.try_reserve(name, f"{name}-caller", T0)
    states = await store.all()
    # Between the read and the corrections, another router ends bob's offer and reserves
    # him for a caller that is alive.
    await store.apply("bob", OfferFailed("bob-caller", "no_answer"), T0)
    await store.try_reserve("bob", "bob-caller2", T0)
    fixes = reconcile(states, {"bob-caller2"},
                      {"alice": None, "bob": ContactStatus.REACHABLE}, T0)
    assert [(f.agent, f.event) for f in fixes] == [
        ("alice", CallGone("alice-caller")), ("alice", PhoneLost()),
        ("bob", CallGone("bob-caller"))]

    applied = await store.apply_corrections(fixes, T0 + timedelta(seconds=1))

    assert [(fix.agent, outcome.state.status, outcome.effects) for fix, outcome in applied] == [
        ("alice", AgentStatus.AVAILABLE,
         (CancelOffer("alice", "alice-caller"), ReadyForCalls("alice"))),
        ("alice", AgentStatus.PAUSED, ()),
    ]
    bob = await store.get("bob", T0)
    assert (bob.status, bob.call) == (AgentStatus.RESERVED, "bob-caller2")
    async with sessions() as session:
        log = await AgentStateRepository(session).transitions("alice")
    assert [(t.cause, t.reason) for t in log][-2:] == [
        ("call_gone", "caller channel alice-caller no longer exists"),
        ("phone_lost", "phone no contact"),
    ]


def test_not_before_is_the_latest_of_the_clock_and_the_stored_change() -> None:
    idle = AgentState("erin", AgentStatus.AVAILABLE, T0, version=3)
    later = T0 + timedelta(seconds=5)
    assert not_before(idle, later) == later
    assert not_before(idle, T0 - timedelta(seconds=1)) == T0  # since, when changed_at unknown
    pending = replace(idle, changed_at=later)  # a change since that kept the status
    assert not_before(pending, T0 + timedelta(seconds=1)) == later
    assert not_before(pending, later + timedelta(seconds=1)) == later + timedelta(seconds=1)


async def test_a_change_decided_before_a_later_write_is_logged_after_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A reconcile pass reads its clock, then awaits (states, channels) while the router
    writes a later change: its correction is logged after that change, never before, so
    the log's times run forward and the statistics count no negative interval."""
    store = AgentStore(sessions, RULES, node="pbx1")
    await store.apply("erin", Login(), T0)
    await store.try_reserve("erin", "c1", T0 + timedelta(seconds=1))
    decided = T0 + timedelta(seconds=2)  # the pass's clock, read before the writes below
    states = await store.all()
    await store.apply("erin", OfferFailed("c1", "no_answer"), T0 + timedelta(seconds=5))
    reserved = await store.try_reserve("erin", "c2", T0 + timedelta(seconds=6))
    assert reserved is not None and reserved.changed_at == T0 + timedelta(seconds=6)
    late = await store.apply("erin", Pause("lunch"), decided, known=reserved)

    assert late.state.pending_pause == "lunch"
    assert late.state.changed_at == T0 + timedelta(seconds=6)
    # The same with a stale copy (read before the writes): the stored state decides.
    paused = await store.apply("erin", OfferFailed("c2", "no_answer"), T0 + timedelta(seconds=8))
    assert paused.state.status is AgentStatus.PAUSED
    stale = next(state for state in states if state.agent == "erin")
    back = await store.apply("erin", Unpause(), decided, known=stale)
    assert (back.state.status, back.state.since) == (
        AgentStatus.AVAILABLE, T0 + timedelta(seconds=8))

    async with sessions() as session:
        log = await AgentStateRepository(session).transitions("erin")
    times = [t.at for t in log]
    assert times == sorted(times), [(t.version, t.cause, t.at) for t in log]
    assert [(t.cause, t.at - T0) for t in log][-3:] == [
        ("pause", timedelta(seconds=6)), ("offer_failed", timedelta(seconds=8)),
        ("unpause", timedelta(seconds=8)),
    ]
    stored = await store.get("erin", T0)
    assert stored.changed_at == T0 + timedelta(seconds=8)
    assert stored == replace(stored, changed_at=None)  # bookkeeping, not state


async def test_a_migration_waits_for_the_lock_and_gives_up_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding the SQLite migration lock keeps upgrade() from touching
    the database; past the timeout it says who holds what."""
    import fcntl

    from callcenter.storage import MigrationError, current_revision, migrate

    url = default_sqlite_url(tmp_path)
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT_S", 0.2)
    lock = tmp_path / "callcenter.sqlite3.migrate-lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(MigrationError, match=r"migrate-lock for over 0 s"):
            await upgrade(url)
    assert not (tmp_path / "callcenter.sqlite3").exists()
    await upgrade(url)
    assert await current_revision(url) == "0011"


async def test_upgrades_in_separate_processes_apply_once(tmp_path: Path) -> None:
    """Four processes (as four services starting together) migrate one fresh SQLite file:
    all succeed and the migrations run in exactly one of them."""
    import asyncio
    import os
    import sys

    url = default_sqlite_url(tmp_path)
    program = (
        "import asyncio, logging, sys\n"
        "logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format='%(message)s')\n"
        "logging.getLogger('alembic.runtime.migration').setLevel(logging.INFO)\n"
        "from callcenter.storage.migrate import upgrade\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"  # every process imported: start together
        "asyncio.run(upgrade(sys.argv[1]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", program, url, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for _ in range(4)
    ]
    async with asyncio.timeout(120):
        for process in processes:
            assert process.stdout is not None
            assert await process.stdout.readline() == b"ready\n"
        outputs = await asyncio.gather(*(p.communicate(b"go\n") for p in processes))
    assert [process.returncode for process in processes] == [0] * 4, outputs
    applied = [line for _, err in outputs for line in err.decode().splitlines()
               if line.startswith("Running upgrade")]
    assert [line.split(",")[0] for line in applied] == [
        "Running upgrade  -> 0001", "Running upgrade 0001 -> 0002",
        "Running upgrade 0002 -> 0003", "Running upgrade 0003 -> 0004",
        "Running upgrade 0004 -> 0005", "Running upgrade 0005 -> 0006",
        "Running upgrade 0006 -> 0007",
        "Running upgrade 0007 -> 0008", "Running upgrade 0008 -> 0009",
        "Running upgrade 0009 -> 0010", "Running upgrade 0010 -> 0011"]
