"""A campaign's run state: the pure rules (what a dialer pass may do, what start, pause
and stop lead to), the storage on a real migrated SQLite database (the audit, the
dialers' heartbeats), the dialer's one call (StateWatch), the ``campaigns start|pause|
stop|status`` commands and the HTTP API's routes (roles, 404, 422)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.campaign_state_cli import os_user
from callcenter.cli import main
from callcenter.dialer.campaign_state import (
    DEFAULT,
    Permit,
    RunState,
    change,
    claimer_of,
    node_in_use,
    permit,
    run_refusal,
)
from callcenter.dialer.state_watch import StateWatch, read_permit
from callcenter.storage import (
    default_sqlite_url,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from callcenter.storage.campaign_state import CampaignStateRepository, DialerSeen
from callcenter.storage.models import CampaignStateChange, DialerNode
from tests.web_api import Api, config_with_pause_reason, running_api

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "config" / "example"


# -- the pure rules ---------------------------------------------------------------------

@pytest.mark.parametrize(("state", "place", "leave"), [
    (None, True, False), ("running", True, False), (RunState.PAUSED, False, False),
    ("stopped", False, True), ("frozen", False, False)])
def test_what_a_pass_may_do_in_each_state(state: Any, place: bool, leave: bool) -> None:
    verdict = permit(state, "renewals")
    assert (verdict.place_calls, verdict.exit) == (place, leave)
    assert "renewals" in verdict.reason


def test_a_campaign_never_changed_runs_as_it_did_before() -> None:
    assert DEFAULT is RunState.RUNNING
    assert permit(None, "x") == Permit(True, False, "campaign x is running")
    assert "unknown state 'frozen'" in permit("frozen", "x").reason


@pytest.mark.parametrize(("current", "action", "state", "changed"), [
    (None, "pause", RunState.PAUSED, True), (None, "start", RunState.RUNNING, False),
    ("paused", "start", RunState.RUNNING, True), ("paused", "pause", RunState.PAUSED, False),
    ("running", "stop", RunState.STOPPED, True), ("stopped", "pause", RunState.PAUSED, True),
    ("stopped", "start", RunState.RUNNING, True), ("frozen", "start", RunState.RUNNING, True),
])
def test_start_pause_and_stop(current: str | None, action: str, state: RunState,
                              changed: bool) -> None:
    done = change(current, action)
    assert (done.state, done.changed) == (state, changed)


def test_an_unknown_action_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown campaign action 'halt' \(known: start, "
                                         r"pause, stop\)"):
        change("running", "halt")


def test_run_refuses_only_a_stopped_campaign() -> None:
    assert run_refusal(None, "x") is None and run_refusal("paused", "x") is None
    refused = run_refusal("stopped", "x")
    assert refused is not None and "campaigns start x" in refused


# -- storage ---------------------------------------------------------------------------

@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _set(sessions: async_sessionmaker[AsyncSession], action: str, by: str = "ops",
               at: datetime = NOW) -> Any:
    async with sessions.begin() as session:
        return await CampaignStateRepository(session).set("renewals", action, by=by, at=at,
                                                          via="cli", reason="test")


async def test_changes_are_stored_with_who_and_when_and_audited(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        fresh = await CampaignStateRepository(session).state("renewals")
    assert (fresh.state, fresh.changed_by, fresh.changed_at) == ("running", None, None)
    paused = await _set(sessions, "pause", "alice")
    assert paused.change.changed and paused.stored.state == "paused"
    again = await _set(sessions, "pause", "bob", NOW + timedelta(minutes=1))
    assert not again.change.changed
    assert (again.stored.changed_by, again.stored.changed_at) == ("alice", NOW)
    await _set(sessions, "stop", "bob", NOW + timedelta(minutes=2))
    async with sessions() as session:
        repo = CampaignStateRepository(session)
        stored = await repo.state("renewals")
        history = await repo.history("renewals")
    assert (stored.state, stored.changed_by, stored.changed_at) == (
        "stopped", "bob", NOW + timedelta(minutes=2))
    assert [(h.previous, h.state, h.changed_by, h.via, h.reason) for h in history] == [
        ("paused", "stopped", "bob", "cli", "test"), ("running", "paused", "alice", "cli",
                                                      "test")]
    assert (await read_permit(sessions, "renewals")).exit


async def test_a_change_made_meanwhile_by_another_writer_is_read_not_overwritten(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """A supervisor pauses from the API while an operator's ``campaigns pause`` has read
    ``running``: the operator's write finds the row changed, reads it again, and changes
    nothing (no second audit entry, the supervisor's name kept)."""
    from sqlalchemy import update

    from callcenter.storage.models import CampaignRecord

    async with sessions.begin() as session:
        repo = CampaignStateRepository(session)
        await repo.state("renewals")
        await repo._campaign_id("renewals")
    async with sessions.begin() as session:
        execute = session.execute
        raced: list[str] = []

        async def other_writer_first(statement: Any, *args: Any, **kwargs: Any) -> Any:
            if not raced and getattr(statement, "is_update", False) \
                    and statement.table.name == "campaigns":
                raced.append("sue")
                await execute(update(CampaignRecord).values(
                    state="paused", state_changed_by="sue", state_changed_at=NOW))
            return await execute(statement, *args, **kwargs)

        session.execute = other_writer_first  # type: ignore[method-assign]
        done = await CampaignStateRepository(session).set(
            "renewals", "pause", by="ops", at=NOW + timedelta(seconds=1), via="cli")
    assert raced == ["sue"]
    assert not done.change.changed and done.stored.changed_by == "sue"
    async with sessions() as session:
        history = await CampaignStateRepository(session).history("renewals")
    assert [h.changed_by for h in history] == []


async def test_heartbeats_show_the_dialers_alive(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        repo = CampaignStateRepository(session)
        await repo.beat("renewals", "dialer:a", host="h1", pid=1, at=NOW)
        await repo.beat("renewals", "dialer:b", host="h2", pid=2, at=NOW - timedelta(minutes=5))
        await repo.beat("renewals", "dialer:a", host="h1", pid=1, at=NOW + timedelta(seconds=5))
    async with sessions() as session:
        seen = await CampaignStateRepository(session).dialers(
            "renewals", now=NOW + timedelta(seconds=10), within=timedelta(seconds=30))
    assert [(d.node, d.host, d.pid, d.started_at, d.seen_at) for d in seen] == [
        ("dialer:a", "h1", 1, NOW, NOW + timedelta(seconds=5))]
    async with sessions.begin() as session:
        await CampaignStateRepository(session).leave("renewals", "dialer:a")
    async with sessions() as session:
        assert [row.node for row in await session.scalars(select(DialerNode))] == ["dialer:b"]


async def test_the_watch_reads_the_state_each_pass_and_beats(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    watch = StateWatch(sessions, "renewals", "dialer:t", clock=lambda: NOW, heartbeat=3600)
    first = await watch.check()
    assert first.place_calls and watch.permit == first
    await _set(sessions, "pause")
    assert not (await watch.check()).place_calls
    await _set(sessions, "stop")
    assert (await watch.check()).exit
    async with sessions() as session:
        rows = list(await session.scalars(select(DialerNode)))
    assert [(r.node, r.seen_at) for r in rows] == [("dialer:t", NOW)]
    await watch.leave()
    async with sessions() as session:
        assert list(await session.scalars(select(DialerNode))) == []


# -- the commands ------------------------------------------------------------------------

def test_the_state_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)

    config = ("--config", str(EXAMPLE))
    status = run("campaigns", "status", "renewals", *config, "--format", "json")
    assert status.exit_code == 0, status.output
    doc = json.loads(status.stdout)
    assert (doc["state"], doc["state_changed_by"], doc["dialers"]) == ("running", None, [])
    result = run("campaigns", "pause", "renewals", *config, "--reason", "system test")
    assert result.exit_code == 0, result.output
    assert f"renewals: paused (was running), by {os_user()} at " in result.stdout
    result = run("campaigns", "pause", "renewals", *config)
    assert result.exit_code == 0 and "paused already (by " in result.stdout
    # run on a paused campaign says so (then needs an Asterisk this home has not).
    result = run("campaigns", "run", "renewals", *config)
    assert "Campaign renewals is paused: no call until" in result.stdout, result.output
    assert run("campaigns", "stop", "renewals", *config).exit_code == 0
    doc = json.loads(run("campaigns", "status", "renewals", *config, "--format",
                         "json").stdout)
    assert (doc["state"], doc["state_changed_by"]) == ("stopped", os_user())
    assert doc["state_changed_at"] is not None and "pending" in doc
    table = run("campaigns", "status", "renewals", *config).stdout
    assert "state " in table and "stopped" in table and "dialers " in table
    # run refuses a stopped campaign, before it needs an Asterisk.
    result = run("campaigns", "run", "renewals", *config)
    assert result.exit_code == 1
    assert "campaign renewals is stopped" in result.stderr
    assert f"stopped by {os_user()}" in result.stderr
    assert run("campaigns", "start", "renewals", *config).exit_code == 0
    assert json.loads(run("campaigns", "status", "renewals", *config, "--format",
                          "json").stdout)["state"] == "running"


@pytest.mark.parametrize(("args", "code", "message"), [
    (("campaigns", "pause", "nope"), 1, "unknown campaign 'nope'"),
    (("campaigns", "pause"), 2, "Missing argument 'CAMPAIGN'"),
    (("campaigns", "stop", "renewals", "--reason", ""), 2, "--reason"),
    (("campaigns", "start", "renewals", "--reason", "a\nb"), 2, "--reason"),
    (("campaigns", "status", "nope"), 1, "unknown campaign 'nope'"),
])
def test_bad_state_commands_say_what_is_wrong(tmp_path: Path, args: tuple[str, ...],
                                              code: int, message: str) -> None:
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), *args,
                                       "--config", str(EXAMPLE)])
    assert result.exit_code == code, result.output
    assert message in result.stderr


# -- the HTTP API ------------------------------------------------------------------------

async def _post(api: Api, user: str, path: str, body: Any = None) -> tuple[int, dict]:
    async with api.client.post(path, json=body, headers=api.as_user(user)) as response:
        return response.status, await response.json()


async def test_the_api_changes_the_state_as_roles_allow(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with running_api(config_with_pause_reason(), sessions) as api:
        api.clock.now = NOW
        status, answer = await _post(api, "alice_phone", "/api/v1/campaigns/renewals/pause")
        assert status == 403 and "admins and supervisors only" in answer["error"], answer
        status, answer = await _post(api, "sam", "/api/v1/campaigns/renewals/pause",
                                     {"reason": "carrier outage"})
        assert (status, answer) == (200, {
            "campaign": "renewals", "state": "paused", "previous": "running",
            "changed": True, "changed_by": "sam", "changed_at": NOW.isoformat()})
        status, answer = await _post(api, "admin", "/api/v1/campaigns/renewals/pause")
        assert (status, answer["changed"], answer["changed_by"]) == (200, False, "sam")
        status, answer = await _post(api, "sue", "/api/v1/campaigns/renewals/stop", {})
        assert (status, answer["state"], answer["previous"]) == (200, "stopped", "paused")
        status, answer = await _post(api, "boss", "/api/v1/campaigns/renewals/start")
        assert (status, answer["state"], answer["changed_by"]) == (200, "running", "boss")
        # unknown campaign: 404 whoever asks (an agent learns nothing more)
        for user in ("admin", "alice_phone"):
            status, answer = await _post(api, user, "/api/v1/campaigns/nope/stop")
            assert status == 404 and "no campaign 'nope'" in answer["error"], answer
        for body, field in [({"reason": 5}, "reason"), ({"reason": ""}, "reason"),
                            ({"reason": "a\nb"}, "reason"), ({"why": "x"}, "why"),
                            ([1], "body")]:
            status, answer = await _post(api, "admin", "/api/v1/campaigns/renewals/pause",
                                         body)
            assert (status, answer.get("field")) == (422, field), (body, answer)
        async with api.client.post("/api/v1/campaigns/renewals/pause", data=b"{",
                                   headers=api.as_user("admin")) as response:
            assert response.status == 422
    async with sessions() as session:
        audit = [(r.state, r.changed_by, r.via, r.reason)
                 for r in await session.scalars(select(CampaignStateChange)
                                                .order_by(CampaignStateChange.id))]
    assert audit == [("paused", "sam", "api", "carrier outage"),
                     ("stopped", "sue", "api", None), ("running", "boss", "api", None)]


# -- one process per dialer name -----------------------------------------------------------

def _seen(node: str, host: str, pid: int, ago: float = 3.0) -> DialerSeen:
    at = NOW_UTC - timedelta(seconds=ago)
    return DialerSeen(node, host, pid, at, at)


NOW_UTC = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("seen, alive, taken", [
    ([], set(), None),
    ([_seen("dialer:other", "east", 10)], {10}, None),            # another name
    ([_seen("dialer:east", "here", 99)], set(), None),             # our crashed run
    ([_seen("dialer:east", "here", 99)], {99}, "this machine"),    # our name, alive
    ([_seen("dialer:east", "here", 42)], {42}, None),              # that is us
    ([_seen("dialer:east", "west", 7)], set(), "west"),            # another machine
])
def test_a_dialer_name_runs_in_one_process_at_a_time(
        seen: list[DialerSeen], alive: set[int], taken: str | None) -> None:
    refused = node_in_use(seen, claimer_of("east"), campaign="renewals", host="here", pid=42,
                          alive=alive.__contains__, now=NOW_UTC)
    if taken is None:
        assert refused is None
    else:
        assert refused is not None and f"on {taken} (pid" in refused
        assert "seen 3 s ago" in refused and "--node" in refused


async def test_run_refuses_a_node_name_another_machine_is_dialling_with(
        tmp_path: Path) -> None:
    """``campaigns run --node east`` while a dialer named east beats from another host:
    exit 1 before any Asterisk is needed; the same name from a dead local process is a
    crash to recover from, and runs on (then fails only for want of an instance)."""
    from callcenter.storage.models import utcnow

    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await CampaignStateRepository(session).beat(
                "renewals", claimer_of("east"), host="elsewhere.example", pid=4242,
                at=utcnow())
    finally:
        await engine.dispose()
    config = Path(__file__).resolve().parents[2] / "config" / "example"
    args = ["--home", str(tmp_path / "home"), "campaigns", "run", "renewals", "--config",
            str(config), "--db", url]
    result = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--node", "east"])
    assert result.exit_code == 1, result.output
    assert "dialer dialer:east already runs campaign renewals on elsewhere.example " \
           "(pid 4242" in result.output
    other = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--node", "west"])
    assert "already runs" not in other.output
