"""Users and roles on the HTTP API (aiohttp's test server on loopback, a real migrated
SQLite database): an agent acts on itself only, a supervisor on the agents and calls of
its queues, an admin on everything; 401 for a bad token, 403 for a role that may not.
The example's queues: alice and carmen serve sales and customer_service, bob
tech_support; sue supervises sales, sam tech_support, alice_phone is alice."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import AgentStatus, Login
from callcenter.storage.models import QueueOutcome
from callcenter.storage.queued_calls import QueuedCallRepository
from tests.web_api import T0, TOKENS, Api, config_with_pause_reason, running_api


@pytest.fixture(scope="module")
def config():
    return config_with_pause_reason()


class Asterisk:
    """Stands in for ARI's ``DELETE /channels/{id}``: the channels that exist, and the
    ones hung up (a hang-up of a channel that is gone answers ``False``, as ARI's 404)."""

    def __init__(self, channels: set[str]) -> None:
        self.channels = set(channels)
        self.hung_up: list[str] = []

    async def hang_up(self, channel: str) -> bool:
        if channel not in self.channels:
            return False
        self.channels.discard(channel)
        self.hung_up.append(channel)
        return True


@pytest.fixture
async def pbx() -> Asterisk:
    return Asterisk({"c-sales", "c-tech", "c-talk"})


@pytest.fixture
async def api(config, sessions: async_sessionmaker[AsyncSession],
              pbx: Asterisk) -> AsyncIterator[Api]:
    async with sessions.begin() as session:
        repo = QueuedCallRepository(session)
        await repo.enter_by_id("c-sales", "sales", entered_at=T0, priority=0)
        await repo.enter_by_id("c-tech", "tech_support", entered_at=T0 + dt.timedelta(seconds=5))
        talk = await repo.enter_by_id("c-talk", "sales", entered_at=T0 + dt.timedelta(seconds=1))
        offer = await repo.add_offer_by_id(talk, "carmen",
                                           offered_at=T0 + dt.timedelta(seconds=2))
        await repo.answered_by_id(talk, offer, "carmen", at=T0 + dt.timedelta(seconds=4))
        gone = await repo.enter_by_id("c-gone", "sales", entered_at=T0)
        await repo.finish_by_id(gone, QueueOutcome.ABANDONED, at=T0)
    async with running_api(config, sessions, hang_up=pbx.hang_up) as running:
        running.clock.now = T0 + dt.timedelta(seconds=30)
        yield running


async def _json(api: Api, user: str, method: str, path: str, status: int, **kwargs) -> dict:
    async with api.client.request(method, path, headers=api.as_user(user), **kwargs) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def test_each_token_is_its_user(api: Api) -> None:
    assert await _json(api, "admin", "GET", "/api/v1/me", 200) == {
        "name": "admin", "role": "admin", "agent": None, "queues": []}
    assert await _json(api, "sue", "GET", "/api/v1/me", 200) == {
        "name": "sue", "role": "supervisor", "agent": None, "queues": ["sales"]}
    assert await _json(api, "alice_phone", "GET", "/api/v1/me", 200) == {
        "name": "alice_phone", "role": "agent", "agent": "alice", "queues": []}


@pytest.mark.parametrize(("user", "agents"), [
    ("admin", ["alice", "bob", "carmen"]), ("boss", ["alice", "bob", "carmen"]),
    ("sue", ["alice", "carmen"]), ("sam", ["bob"]), ("alice_phone", ["alice"]),
])
async def test_each_user_lists_the_agents_it_may_act_on(api: Api, user: str,
                                                        agents: list[str]) -> None:
    body = await _json(api, user, "GET", "/api/v1/agents", 200)
    assert [a["name"] for a in body["agents"]] == agents


@pytest.mark.parametrize(("user", "agent", "status"), [
    ("alice_phone", "alice", 200), ("alice_phone", "bob", 403), ("alice_phone", "carmen", 403),
    ("sue", "alice", 200), ("sue", "carmen", 200), ("sue", "bob", 403),
    ("sam", "bob", 200), ("sam", "alice", 403),
    ("admin", "bob", 200), ("boss", "carmen", 200),
])
async def test_an_action_is_allowed_by_role_only(api: Api, user: str, agent: str,
                                                 status: int) -> None:
    body = await _json(api, user, "POST", f"/api/v1/agents/{agent}/login", status)
    state = await api.store.get(agent, T0)
    if status == 200:
        assert body["status"] == "available"
        assert state.status is AgentStatus.AVAILABLE
        assert api.changed == [agent]
    else:
        role = "agent" if user == "alice_phone" else "supervisor"
        assert body["error"] == f"user {user!r} ({role}) may not act on agent {agent!r}"
        assert state.status is AgentStatus.LOGGED_OUT
        assert api.changed == []
        await _json(api, user, "GET", f"/api/v1/agents/{agent}", 403)


async def test_a_refused_user_cannot_learn_more_than_that_the_agent_exists(api: Api) -> None:
    body = await _json(api, "alice_phone", "POST", "/api/v1/agents/zoe/login", 404)
    assert body["error"].startswith("no agent 'zoe'")


@pytest.mark.parametrize(("user", "queues"), [
    ("admin", ["customer_service", "sales", "tech_support"]),
    ("sue", ["sales"]), ("sam", ["tech_support"]),
    ("alice_phone", ["customer_service", "sales"]),
])
async def test_queues_are_listed_with_their_waiting_callers(api: Api, user: str,
                                                            queues: list[str]) -> None:
    body = await _json(api, user, "GET", "/api/v1/queues", 200)
    assert [q["name"] for q in body["queues"]] == queues
    by_name = {q["name"]: q for q in body["queues"]}
    if "sales" in by_name:
        # c-talk was answered and c-gone abandoned: only c-sales waits, since T0.
        assert by_name["sales"] | {"description": ""} == {
            "name": "sales", "description": "", "agents": ["alice", "carmen"],
            "waiting": 1, "longest_wait": 30.0}
    if "tech_support" in by_name:
        assert (by_name["tech_support"]["waiting"], by_name["tech_support"]["longest_wait"],
                by_name["tech_support"]["agents"]) == (1, 25.0, ["bob"])


async def test_a_queues_waiting_callers_are_for_who_may_see_the_queue(api: Api) -> None:
    body = await _json(api, "sue", "GET", "/api/v1/queues/sales/calls", 200)
    assert [c["channel"] for c in body["calls"]] == ["c-sales"]
    body = await _json(api, "alice_phone", "GET", "/api/v1/queues/sales/calls", 200)
    assert [c["channel"] for c in body["calls"]] == ["c-sales"]
    body = await _json(api, "sue", "GET", "/api/v1/queues/tech_support/calls", 403)
    assert body["error"] == "user 'sue' (supervisor) may not see queue 'tech_support'"
    await _json(api, "alice_phone", "GET", "/api/v1/queues/tech_support/calls", 403)
    body = await _json(api, "admin", "GET", "/api/v1/queues/nope/calls", 404)
    assert body["error"] == "no queue 'nope' (queues: customer_service, sales, tech_support)"
    body = await _json(api, "sam", "GET", "/api/v1/calls/waiting", 200)
    assert [c["channel"] for c in body["calls"]] == ["c-tech"]


@pytest.mark.parametrize(("user", "calls"), [
    ("admin", ["c-sales", "c-talk", "c-tech"]),
    ("sue", ["c-sales", "c-talk"]), ("sam", ["c-tech"]),
    ("alice_phone", []),
])
async def test_calls_in_progress_are_listed_for_who_may_see_them(api: Api, user: str,
                                                                 calls: list[str]) -> None:
    body = await _json(api, user, "GET", "/api/v1/calls", 200)
    assert [c["channel"] for c in body["calls"]] == calls


async def test_a_connected_call_shows_its_agent(api: Api) -> None:
    body = await _json(api, "admin", "GET", "/api/v1/calls", 200)
    talk = next(c for c in body["calls"] if c["channel"] == "c-talk")
    assert talk == {
        "queue": "sales", "channel": "c-talk", "state": "connected", "agent": "carmen",
        "priority": 0, "language": None, "entered_at": (T0 + dt.timedelta(seconds=1)).isoformat(),
        "answered_at": (T0 + dt.timedelta(seconds=4)).isoformat(), "duration": 29.0,
        "node": None}
    waiting = next(c for c in body["calls"] if c["channel"] == "c-sales")
    assert (waiting["state"], waiting["agent"]) == ("waiting", None)


async def test_an_agent_sees_its_own_call(api: Api, config,
                                          sessions: async_sessionmaker[AsyncSession],
                                          pbx: Asterisk) -> None:
    async with sessions.begin() as session:
        repo = QueuedCallRepository(session)
        mine = await repo.enter_by_id("c-mine", "sales", entered_at=T0)
        offer = await repo.add_offer_by_id(mine, "alice", offered_at=T0)
        await repo.answered_by_id(mine, offer, "alice", at=T0)
    body = await _json(api, "alice_phone", "GET", "/api/v1/calls", 200)
    assert [(c["channel"], c["agent"]) for c in body["calls"]] == [("c-mine", "alice")]
    body = await _json(api, "alice_phone", "POST", "/api/v1/calls/c-mine/hangup", 403)
    assert body["error"] == "user 'alice_phone' (agent) may not hang up calls of queue 'sales'"
    assert pbx.hung_up == []


@pytest.mark.parametrize(("user", "channel", "status"), [
    ("admin", "c-tech", 200), ("boss", "c-sales", 200), ("sue", "c-talk", 200),
    ("sam", "c-tech", 200), ("sue", "c-tech", 403), ("sam", "c-sales", 403),
    ("alice_phone", "c-sales", 403),
])
async def test_hang_up_is_for_admins_and_the_queues_supervisors(
        api: Api, pbx: Asterisk, user: str, channel: str, status: int) -> None:
    body = await _json(api, user, "POST", f"/api/v1/calls/{channel}/hangup", status)
    if status == 200:
        assert (body["channel"], pbx.hung_up) == (channel, [channel])
    else:
        assert "may not hang up calls of queue" in body["error"]
        assert pbx.hung_up == []


async def test_hang_up_of_an_unknown_ended_or_vanished_call_is_a_404(api: Api,
                                                                     pbx: Asterisk) -> None:
    body = await _json(api, "admin", "POST", "/api/v1/calls/c-nobody/hangup", 404)
    assert body["error"] == "no call in progress on channel 'c-nobody'"
    await _json(api, "admin", "POST", "/api/v1/calls/c-gone/hangup", 404)
    pbx.channels.discard("c-sales")  # the caller hung up; the router has not seen it yet
    body = await _json(api, "admin", "POST", "/api/v1/calls/c-sales/hangup", 404)
    assert body["error"] == "no call in progress on channel 'c-sales' (it just ended)"
    body = await _json(api, "admin", "POST", "/api/v1/calls/c-tech/hangup", 422,
                       json={"cause": 17})
    assert (body["field"], body["error"]) == ("cause", ("cause: unknown field for hangup "
                                                       "(expected none)"))
    assert pbx.hung_up == []


async def test_hang_up_without_asterisk_or_when_it_fails_is_a_503(
        config, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await QueuedCallRepository(session).enter_by_id("c-1", "sales", entered_at=T0)
    async with running_api(config, sessions) as api:
        body = await _json(api, "admin", "POST", "/api/v1/calls/c-1/hangup", 503)
        assert body["error"] == ("this service has no Asterisk connection: it cannot hang up "
                                 "calls")

    async def broken(channel: str) -> bool:
        raise ConnectionResetError("ARI went away")

    async with running_api(config, sessions, hang_up=broken) as api:
        body = await _json(api, "sue", "POST", "/api/v1/calls/c-1/hangup", 503)
        assert body["error"] == ("the PBX did not hang up the call (ConnectionResetError); "
                                 "try again")


async def test_a_token_of_no_user_is_a_401_for_every_route(api: Api) -> None:
    from callcenter.web import ROUTES

    for route in ROUTES:
        if route.public:
            continue
        path = route.path.format(name="alice", action="login", queue="sales", channel="c-1",
                                 recording="1", attempt="1", campaign="renewals",
                                 contact="1")
        for token in ("", TOKENS["sue"][:-1], TOKENS["sue"] + TOKENS["sam"], "admin"):
            async with api.client.request(route.method, path, headers={
                    "Authorization": f"Bearer {token}"}) as response:
                assert response.status == 401, (route.path, token)
                assert response.headers["WWW-Authenticate"] == 'Bearer realm="callcenter"'
    assert (await api.store.get("alice", T0)).status is AgentStatus.LOGGED_OUT


async def test_a_supervisor_pauses_its_agent_during_a_call(api: Api) -> None:
    await api.store.apply("carmen", Login(), T0)
    body = await _json(api, "sue", "POST", "/api/v1/agents/carmen/pause", 422, json={})
    assert body["field"] == "reason"
    body = await _json(api, "sue", "POST", "/api/v1/agents/carmen/logout", 200)
    assert body["status"] == "logged_out"


async def test_no_users_token_is_ever_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    # The callcenter logger too: a CLI test earlier in the session may have set its level.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="callcenter"):
        for user, token in TOKENS.items():
            await _json(api, user, "GET", "/api/v1/agents", 200)
            await _json(api, user, "GET", "/api/v1/calls", 200)
            async with api.client.get("/api/v1/me", headers=api.headers(token + "x")) as r:
                assert r.status == 401
        await _json(api, "sue", "POST", "/api/v1/calls/c-sales/hangup", 200)
        await _json(api, "sue", "POST", "/api/v1/agents/alice/login", 200)
    assert "user sue hung up channel c-sales (queue sales)" in caplog.text
    for token in TOKENS.values():
        assert token not in caplog.text
