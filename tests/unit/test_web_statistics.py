"""Statistics over the HTTP API on a real SQLite database seeded with the router's records
(tests/unit/test_stats_cli.py's ``seed``): ``GET /api/v1/stats`` gives an admin exactly
what ``callcenter stats --format json`` prints, scopes the others to their queues and
agents, refuses a bad range with a 422 naming the parameter; ``GET
/api/v1/queues/{queue}/stats`` counts the callers waiting, the longest wait, the queue's
agents by state and today's service level."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.stats import collect, render, window
from callcenter.storage.queued_calls import QueuedCallRepository
from tests.unit.test_stats_cli import at, seed
from tests.web_live import LiveApi, assert_schema, live_api, live_config

CONFIG = live_config()
#: Range of the seeded calls (New York time, the example's zone), as the CLI test's.
RANGE = "from=2026-11-30T09:00&to=2026-11-30T10:00"
NOW = at(3600)


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[LiveApi]:
    await seed(sessions)
    async with live_api(CONFIG, sessions) as running:
        running.clock.now = NOW
        yield running


async def _get(api: LiveApi, user: str, path: str, status: int = 200) -> dict:
    async with api.client.get(path, headers=api.as_user(user)) as response:
        answer = await response.json()
        assert response.status == status, answer
        return answer


@pytest.mark.parametrize("by", ["queue", "agent", "interval"])
async def test_an_admin_gets_what_callcenter_stats_prints(api: LiveApi, db_url: str,
                                                          by: str) -> None:
    answer = await _get(api, "admin", f"/api/v1/stats?{RANGE}&by={by}")
    # What the CLI computes for --from 2026-11-30T09:00 --to 2026-11-30T10:00 (New York).
    start, end = window(start="2026-11-30T09:00", end="2026-11-30T10:00", last=None,
                        now=NOW, tz=ZoneInfo(CONFIG.settings.timezone))
    report = await collect(db_url, CONFIG, start=start, end=end, by=by, now=NOW)
    rules = {name: q.service_level for name, q in CONFIG.queues.items()}
    assert answer == json.loads(render(report, "json", rules))
    assert_schema(answer, "StatsReport")
    assert answer["total"]["answered"] == 2  # the seed's a and b, answered by carmen


async def test_a_supervisor_sees_its_queues_and_agents_only(api: LiveApi) -> None:
    by_queue = await _get(api, "sam", f"/api/v1/stats?{RANGE}")
    assert [row["queue"] for row in by_queue["rows"]] == ["tech_support"]
    assert by_queue["total"]["offered"] == 0  # the seed's calls are all in sales
    assert list(by_queue["service_level"]) == ["tech_support"]
    by_agent = await _get(api, "sue", f"/api/v1/stats?{RANGE}&by=agent")
    assert [row["agent"] for row in by_agent["rows"]] == ["alice", "carmen"]
    assert by_agent["total"]["answered"] == 2


async def test_an_agent_sees_its_own_row_and_a_total_of_it_alone(api: LiveApi) -> None:
    answer = await _get(api, "alice_phone", f"/api/v1/stats?{RANGE}&by=agent")
    assert [row["agent"] for row in answer["rows"]] == ["alice"]
    (alice,) = answer["rows"]
    assert answer["total"] | {"agent": "alice"} == alice  # carmen's two calls not in it
    assert alice["answered"] == 0


@pytest.mark.parametrize(("query", "field"), [
    ("from=yesterday", "from"),
    ("from=2026-11-30T10:00&to=2026-11-30T09:00", "to"),
    ("last=1h&from=2026-11-30T09:00", "last"),
    ("last=0m", "last"),
    ("by=interval&interval=999999w", "interval"),  # an OverflowError, a 500, before
    ("interval=999999w", "interval"),
    ("last=999999w", "last"),
    ("to=9999-12-31", "to"),
    ("from=0001-01-01", "from"),
    ("by=month", "by"),
    ("by=interval&interval=1s&last=7d", "interval"),
    ("interval=often", "interval"),
    ("queue=nope", "queue"),
    ("format=csv", "format"),
    ("by=queue&by=agent", "by"),
])
async def test_a_bad_range_is_a_422_naming_the_parameter(api: LiveApi, query: str,
                                                         field: str) -> None:
    answer = await _get(api, "admin", f"/api/v1/stats?{query}", 422)
    assert answer["field"] == field
    assert answer["error"].startswith(f"{field}: "), answer


async def test_a_queue_the_user_may_not_see_is_a_403(api: LiveApi) -> None:
    await _get(api, "sue", "/api/v1/stats?queue=tech_support", 403)
    await _get(api, "sue", "/api/v1/queues/tech_support/stats", 403)
    await _get(api, "sue", "/api/v1/queues/nope/stats", 404)


async def test_a_queue_now_and_today(api: LiveApi, sessions, db_url: str) -> None:
    async with sessions.begin() as session:
        repo = QueuedCallRepository(session)
        await repo.enter_by_id("w-1", "sales", entered_at=NOW - timedelta(seconds=40))
        await repo.enter_by_id("w-2", "sales", entered_at=NOW - timedelta(seconds=5))
        await repo.enter_by_id("w-3", "tech_support", entered_at=NOW - timedelta(seconds=90))
    answer = await _get(api, "alice_phone", "/api/v1/queues/sales/stats")
    assert (answer["queue"], answer["waiting"], answer["longest_wait"]) == ("sales", 2, 40.0)
    # sales' agents: alice (available in the seed) and carmen (logged out at 2000 s).
    assert sum(answer["agents"].values()) == 2
    assert (answer["agents"]["available"], answer["agents"]["logged_out"]) == (1, 1)
    assert_schema(answer, "QueueStats")
    today = answer["today"]
    assert today["from"] == "2026-11-30T00:00:00-05:00"  # New York's midnight
    # The same figures as callcenter stats --queue sales from midnight: the seed's a, b
    # and e answered, c and d abandoned, and the two waiting now.
    midnight = datetime.fromisoformat(today["from"])
    report = await collect(db_url, CONFIG, start=midnight, end=NOW, by="queue", now=NOW,
                           queue="sales")
    (row,) = json.loads(render(report, "json", {}))["rows"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (7, 3, 2)
    for key in ("offered", "answered", "abandoned", "service_level", "asa", "aht",
                "abandon_rate"):
        assert today[key] == row[key], key
    assert answer["service_level_definition"] == CONFIG.queues["sales"].service_level.model_dump()
