"""``callcenter stats`` against the calls a test made through the real queue router:
sipp callers through the example IVR, carmen's registered softphone (baresip) answering.
Counts are asserted exactly; times against the router's own records (queued calls, agent
transitions) and the moments the test itself chose. The stats table is printed (-s).

The same queries on PostgreSQL give the same figures as on SQLite.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from callcenter.agents.state import AgentStatus, Pause, Unpause
from callcenter.cli import main
from callcenter.config.models import ServiceLevel
from callcenter.stats import queries
from callcenter.stats.compute import build_report
from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.models import AgentStateRecord, AgentTransition, QueuedCall
from tests.conftest import PBX
from tests.integration.router_harness import (
    RunningRouter,
    place_call,
    start_router,
    talk_then_hang_up,
    waiting,
    with_queue,
)

pytestmark = pytest.mark.integration

THRESHOLD, SHORT_ABANDON, WRAP_UP = 4, 2, 1
#: The three quick calls: how long each caller stays after keying sales (ms).
HOLDS = (1500, 2000, 2500)
QUICK = tuple(f"1555777000{n}" for n in range(len(HOLDS)))
LATE, GONE = "15557770010", "15557770011"


def stats_config(source: Path, dest: Path) -> Path:
    """The session's example config with sales judged against a 4 s threshold and 2 s
    short abandons, written in YAML as an admin would."""
    shutil.copytree(source, dest)
    queues = dest / "queues.yaml"
    text = queues.read_text()
    assert "\n  sales:\n" in text, "example queues.yaml changed: update the test"
    queues.write_text(text.replace("\n  sales:\n", "\n  sales:\n    service_level: {threshold: "
                                   f"{THRESHOLD}, short_abandon: {SHORT_ABANDON}}}\n", 1))
    return dest


async def cli(pbx: PBX, config_dir: Path, *args: str) -> str:
    """``callcenter --home <the PBX's home> stats ...`` (in a thread: it runs its own loop)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, main,
        ["--home", str(pbx.instance.home), "stats", str(config_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


async def served(running: RunningRouter, caller: str) -> QueuedCall:
    """The caller's record once the call has ended and carmen's wrap-up is over."""
    queued = await running.queued(caller)
    await running.wait_state("carmen", AgentStatus.AVAILABLE)
    return queued


def seconds(later: datetime | None, earlier: datetime | None) -> float:
    assert later is not None and earlier is not None
    return (later - earlier).total_seconds()


async def test_stats_equal_the_calls_made(clean_pbx: PBX, tmp_path: Path) -> None:
    """Three calls answered at once (talk 1.5-2.5 s), then carmen pauses: one caller
    waits, another gives up after about 4 s, carmen comes back, answers the first one
    past the 4 s threshold and hangs up once connected. Service level 3/5, abandon rate 1/5, ASA, AHT and carmen's
    occupancy as the records say."""
    assert default_sqlite_url(clean_pbx.instance.home) == clean_pbx.db_url  # the service's
    config_dir = stats_config(clean_pbx.config_dir, tmp_path / "config")
    config = with_queue(clean_pbx.loaded.config, "sales", wrapup=WRAP_UP,
                        service_level=ServiceLevel(threshold=THRESHOLD,
                                                   short_abandon=SHORT_ABANDON))
    start = datetime.now(UTC)
    before = json.loads(await cli(clean_pbx, config_dir, "--last", "1m", "--format", "json"))
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        await running.login("carmen")
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        for caller, hold in zip(QUICK, HOLDS, strict=True):
            result, call = await asyncio.gather(place_call(clean_pbx, caller, hold_ms=hold),
                                                carmen.call())
            assert result.returncode == 0 and call.answered, (result.stderr, call.flow())
            await served(running, caller)

        paused_at = running.router.clock()
        await running.router.store.apply("carmen", Pause("lunch"), paused_at, reason="test")
        running.router.agent_changed("carmen")
        await running.wait_state("carmen", AgentStatus.PAUSED)
        late = asyncio.create_task(place_call(clean_pbx, LATE, hold_ms=20000))
        await waiting(running, 1)
        gone = asyncio.create_task(place_call(clean_pbx, GONE, hold_ms=4000))
        await waiting(running, 2)
        live = json.loads(await cli(clean_pbx, config_dir, "--last", "1m", "--format", "json"))
        gave_up = await gone
        assert gave_up.returncode == 0 and not gave_up.remote_hangup, gave_up.stderr
        abandoned = await running.queued(GONE)
        unpaused_at = running.router.clock()
        await running.router.store.apply("carmen", Unpause(), unpaused_at, reason="test")
        running.router.agent_changed("carmen")
        result, call = await asyncio.gather(late, talk_then_hang_up(running, "carmen", carmen))
        assert result.returncode == 0 and call.peer_uri.startswith(f"sip:{LATE}@"), call.peer_uri
        last = await served(running, LATE)
        end = datetime.now(UTC)
        async with running.router.sessions() as session:
            calls = (await session.execute(select(QueuedCall).where(
                QueuedCall.entered_at >= start, QueuedCall.entered_at < end)
                .order_by(QueuedCall.entered_at))).scalars().all()
            moves = (await session.execute(select(AgentTransition).where(
                AgentTransition.agent == "carmen", AgentTransition.at >= start)
                .order_by(AgentTransition.version))).scalars().all()

    # -- what the records say happened -------------------------------------------
    by_number = {running.numbers[c.channel_id]: c for c in calls}
    assert set(by_number) == {*QUICK, LATE, GONE}
    answered = [by_number[n] for n in (*QUICK, LATE)]
    assert [c.outcome for c in answered] == ["answered"] * 4 and abandoned.outcome == "abandoned"
    waits = [seconds(c.answered_at, c.entered_at) for c in answered]
    talks = [seconds(c.ended_at, c.answered_at) for c in answered]
    assert [w <= THRESHOLD for w in waits] == [True, True, True, False], waits
    # The late caller waited at least while the one who gave up was in the queue.
    gave_up_after = seconds(abandoned.ended_at, abandoned.entered_at)
    assert SHORT_ABANDON <= gave_up_after < waits[3], (gave_up_after, waits)
    assert waits[3] >= seconds(unpaused_at, last.entered_at) > 0
    for talk, hold in zip(talks, (*HOLDS, 20000), strict=True):
        assert 0 < talk < hold / 1000, (talk, hold)
    # carmen's wrap-ups: from each hang-up to her next change (the router's timer).
    wraps = {}
    for move, following in itertools.pairwise(moves):
        if move.cause == "hangup":
            wraps[move.detail["call"]] = seconds(following.at, move.at)  # type: ignore[index]
    assert set(wraps) == {c.channel_id for c in answered}
    assert all(WRAP_UP <= w < WRAP_UP + 2 for w in wraps.values()), wraps
    handle = [talk + wraps[c.channel_id] for talk, c in zip(talks, answered, strict=True)]

    # -- what callcenter stats says ----------------------------------------------
    window = ["--from", start.isoformat(), "--to", end.isoformat()]
    data = json.loads(await cli(clean_pbx, config_dir, *window, "--format", "json"))
    sales = next(row for row in data["rows"] if row["queue"] == "sales")
    assert {k: sales[k] for k in ("offered", "answered", "abandoned", "short_abandoned",
                                  "overflowed", "waiting")} == {
        "offered": 5, "answered": 4, "abandoned": 1, "short_abandoned": 0, "overflowed": 0,
        "waiting": 0}
    assert (sales["service_level"], sales["abandon_rate"]) == (0.6, 0.2)
    assert sales["asa"] == pytest.approx(sum(waits) / 4, abs=0.002)
    assert sales["aht"] == pytest.approx(sum(handle) / 4, abs=0.002)
    assert sales["longest_wait"] == pytest.approx(max(*waits, gave_up_after), abs=0.002)
    assert data["total"]["offered"] == 5
    assert data["service_level"]["sales"] == {"threshold": THRESHOLD,
                                              "short_abandon": SHORT_ABANDON,
                                              "count_short_abandons": False}

    agents = json.loads(await cli(clean_pbx, config_dir, *window, "--by", "agent",
                                  "--format", "json"))
    row = next(r for r in agents["rows"] if r["agent"] == "carmen")
    logged_in = next(m.at for m in moves if m.cause == "login")
    paused = seconds(unpaused_at, paused_at)
    assert row["answered"] == 4
    assert row["paused"] == pytest.approx(paused, abs=0.002)
    assert row["staffed"] == pytest.approx(seconds(end, logged_in) - paused, abs=0.002)
    assert row["wrap_up"] == pytest.approx(sum(wraps.values()), abs=0.002)
    # On a call from the agent's answer to the hang-up: the queued call's talk, give or
    # take the moments the router stamped the two records (same event, two writes).
    assert abs(row["on_call"] - sum(talks)) < 0.5, (row["on_call"], talks)
    assert row["occupancy"] == pytest.approx(
        (row["on_call"] + row["wrap_up"]) / row["staffed"], abs=0.0002)

    intervals = json.loads(await cli(clean_pbx, config_dir, *window, "--by", "interval",
                                     "--interval", "10s", "--format", "json"))
    assert len(intervals["rows"]) >= 2
    assert sum(r["offered"] for r in intervals["rows"]) == 5
    assert sum(r["answered"] for r in intervals["rows"]) == 4

    # -- real time: while the two callers waited, with carmen paused ----------------
    assert live["now"]["waiting"]["sales"] == before["now"]["waiting"]["sales"] + 2
    assert live["now"]["agents"]["paused"] >= 1
    if before["now"]["waiting"]["sales"] == 0:  # no caller left over by another test
        assert live["now"]["longest_wait"]["sales"] >= seconds(
            datetime.fromisoformat(live["now"]["at"]), last.entered_at) - 0.002

    for by in ("queue", "agent"):
        print("\n" + await cli(clean_pbx, config_dir, *window, "--by", by, "--queue", "sales"))
    print(await cli(clean_pbx, config_dir, *window, "--by", "interval", "--interval", "10s"))


# -- the queries on PostgreSQL ---------------------------------------------------------

T0 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


async def _seed(url: str) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            session.add(AgentStateRecord(agent="bob", status=AgentStatus.AVAILABLE, version=4,
                                         since=T0))
            await session.flush()
            for version, (status, cause, detail, second) in enumerate([
                    (AgentStatus.AVAILABLE, "login", None, -60),  # before the range
                    (AgentStatus.ON_CALL, "answer", {"call": "a"}, 10),
                    (AgentStatus.WRAP_UP, "hangup", {"call": "a", "wrap_up": 10.0}, 70),
                    (AgentStatus.AVAILABLE, "tick", None, 80)], start=1):
                session.add(AgentTransition(
                    agent="bob", version=version, at=T0 + timedelta(seconds=second), cause=cause,
                    from_status=AgentStatus.LOGGED_OUT, to_status=status, detail=detail))
            for channel, entered, answered, ended, outcome in (
                    ("a", 5, 10, 70, "answered"), ("b", 20, None, 50, "abandoned"),
                    ("c", 30, None, None, None), ("old", -100, -90, -80, "answered")):
                session.add(QueuedCall(
                    channel_id=channel, queue="sales", entered_at=T0 + timedelta(seconds=entered),
                    answered_at=T0 + timedelta(seconds=answered) if answered is not None else None,
                    ended_at=T0 + timedelta(seconds=ended) if ended is not None else None,
                    outcome=outcome, agent="bob" if answered is not None else None))
    finally:
        await engine.dispose()


async def _figures(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            calls = await queries.calls_entered(session, T0, T0 + timedelta(hours=1))
            initial, changes = await queries.status_changes(session, T0, T0 + timedelta(hours=1))
            waiting_now = await queries.waiting_calls(session)
            statuses = await queries.agent_statuses(session)
    finally:
        await engine.dispose()
    report = build_report(calls, initial, changes, rules={"sales": ServiceLevel()}, start=T0,
                          end=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1), by="agent")
    return {"calls": calls, "initial": initial, "changes": changes, "waiting": waiting_now,
            "statuses": statuses, "bob": report.rows[0]}


async def test_the_queries_give_the_same_records_on_postgresql_and_sqlite(
        pg_url: str, tmp_path: Path) -> None:
    from callcenter.storage.migrate import upgrade

    sqlite_url = default_sqlite_url(tmp_path)
    await upgrade(sqlite_url)
    for url in (pg_url, sqlite_url):
        await _seed(url)
    on_pg, on_sqlite = await _figures(pg_url), await _figures(sqlite_url)
    assert on_pg == on_sqlite
    assert [c.channel for c in on_pg["calls"]] == ["a", "b", "c"]
    assert on_pg["initial"] == {"bob": AgentStatus.AVAILABLE}
    assert [c.call for c in on_pg["changes"]] == [None, "a", None]  # the wrap-up's call
    bob = on_pg["bob"]
    assert (bob.calls.answered, bob.calls.aht, bob.time.on_call, bob.time.staffed) == (
        1, 70.0, 60.0, 3600.0)
