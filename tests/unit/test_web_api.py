"""The HTTP API (callcenter/web/) with aiohttp's test client against a real migrated
SQLite database: agent states change through the AgentStore's state machine, the
router's hook hears of each change, and every error is a JSON answer with the right
status, never a 500."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import AgentStatus, Answer, Hangup, Login, Reserve
from callcenter.storage.models import AgentTransition, QueueOutcome
from callcenter.storage.queued_calls import QueuedCallRepository
from tests.unit.test_cli_agents import KNOWN_REASONS
from tests.web_api import REASON, T0, TOKEN, Api, config_with_pause_reason, running_api


@pytest.fixture(scope="module")
def config():
    return config_with_pause_reason()


@pytest.fixture
async def api(config, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    async with running_api(config, sessions) as running:
        yield running


async def _json(api: Api, method: str, path: str, status: int, **kwargs) -> dict:
    kwargs.setdefault("headers", api.headers())
    async with api.client.request(method, path, **kwargs) as response:
        body = await response.json()
        assert response.status == status, body
        assert response.content_type == "application/json"
        return body


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer é€"},
    {"Authorization": TOKEN},
], ids=["none", "longer", "shorter", "basic", "empty", "non-ascii", "no-scheme"])
async def test_a_request_without_the_token_is_refused(api: Api, headers: dict) -> None:
    for method, path in [("GET", "/api/v1/agents"), ("POST", "/api/v1/agents/alice/login"),
                         ("GET", "/api/v1/calls/waiting"), ("GET", "/no/such/route")]:
        body = await _json(api, method, path, 401, headers=headers)
        assert "Authorization: Bearer <token>" in body["error"]
    assert (await api.store.get("alice", T0)).status is AgentStatus.LOGGED_OUT
    assert api.changed == []


async def test_the_scheme_is_case_insensitive(api: Api) -> None:
    await _json(api, "GET", "/api/v1/agents", 200, headers={"Authorization": f"bearer {TOKEN}"})


async def test_agents_are_listed_with_their_state(api: Api) -> None:
    body = await _json(api, "GET", "/api/v1/agents", 200)
    assert [a["name"] for a in body["agents"]] == ["alice", "bob", "carmen"]
    assert body["agents"][0] == {
        "name": "alice", "status": "logged_out", "since": T0.isoformat(), "pause_reason": None,
        "pending_pause": None, "call": None, "phone_lost": False, "wrap_up_until": None,
        "version": 0,
    }


async def test_login_pause_unpause_logout_go_through_the_state_machine(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    api.clock.now = T0 + dt.timedelta(seconds=5)
    alice = await _json(api, "POST", "/api/v1/agents/alice/login", 200)
    assert (alice["status"], alice["version"], alice["since"]) == (
        "available", 1, api.clock.now.isoformat())
    assert (await api.store.get("alice", T0)).status is AgentStatus.AVAILABLE
    assert api.changed == ["alice"]

    alice = await _json(api, "POST", "/api/v1/agents/alice/pause", 200, json={"reason": REASON})
    assert (alice["status"], alice["pause_reason"], alice["version"]) == ("paused", REASON, 2)
    assert (await _json(api, "GET", "/api/v1/agents/alice", 200)) == alice
    alice = await _json(api, "POST", "/api/v1/agents/alice/unpause", 200, data=b"{}")
    assert alice["status"] == "available"
    alice = await _json(api, "POST", "/api/v1/agents/alice/logout", 200)
    assert (alice["status"], alice["version"]) == ("logged_out", 4)
    assert api.changed == ["alice"] * 4

    async with sessions() as session:
        log = (await session.execute(select(AgentTransition).where(
            AgentTransition.agent == "alice").order_by(AgentTransition.version))).scalars().all()
    assert [(t.cause, t.to_status, t.reason) for t in log] == [
        ("login", "available", "api"), ("pause", "paused", "api"),
        ("unpause", "available", "api"), ("logout", "logged_out", "api")]
    assert log[1].detail == {"reason": REASON}


async def test_a_transition_the_state_machine_refuses_is_a_409_with_its_message(api: Api) -> None:
    store = api.store
    await store.apply("bob", Login(), T0)
    await store.apply("bob", Reserve("caller-1"), T0)
    await store.apply("bob", Answer("caller-1"), T0)
    body = await _json(api, "POST", "/api/v1/agents/bob/logout", 409)
    assert body["error"] == ("agent 'bob': logout is not allowed while on_call (a caller is "
                             "tied to the agent; end the call first)")
    body = await _json(api, "POST", "/api/v1/agents/carmen/unpause", 409)
    assert body["error"].startswith("agent 'carmen': unpause is not allowed while logged_out")
    state = await store.get("bob", T0)
    assert (state.status, state.call, state.version) == (AgentStatus.ON_CALL, "caller-1", 3)
    assert api.changed == []


async def test_a_pause_during_a_call_is_pending_and_end_wrapup_ends_the_wrap_up(api: Api) -> None:
    store = api.store
    await store.apply("bob", Login(), T0)
    await store.apply("bob", Reserve("caller-1"), T0)
    await store.apply("bob", Answer("caller-1"), T0)
    bob = await _json(api, "POST", "/api/v1/agents/bob/pause", 200, json={"reason": REASON})
    assert (bob["status"], bob["pending_pause"]) == ("on_call", REASON)
    bob = await _json(api, "POST", "/api/v1/agents/bob/unpause", 200)
    assert (bob["status"], bob["pending_pause"]) == ("on_call", None)
    await store.apply("bob", Hangup("caller-1", dt.timedelta(seconds=30)), T0)
    bob = await _json(api, "GET", "/api/v1/agents/bob", 200)
    assert (bob["status"], bob["wrap_up_until"]) == (
        "wrap_up", (T0 + dt.timedelta(seconds=30)).isoformat())
    bob = await _json(api, "POST", "/api/v1/agents/bob/end-wrapup", 200)
    assert bob["status"] == "available"
    assert api.changed == ["bob"] * 3


@pytest.mark.parametrize(("kwargs", "field", "message"), [
    ({}, "reason", "reason: required: the pause reason"),
    ({"json": {"reason": "siesta"}}, "reason",
     f"reason: unknown pause reason 'siesta' (known: {KNOWN_REASONS})"),
    ({"json": {"reason": "unregistered"}}, "reason", "reason: unknown pause reason 'unregistered'"),
    ({"json": {"reason": 5}}, "reason", "reason: expected a string, got a number"),
    ({"json": {"reason": ""}}, "reason", "reason: expected 1 to 64 characters"),
    ({"json": {"reason": REASON, "until": "5pm"}}, "until", "until: unknown field for pause"),
    ({"json": [REASON]}, "body", "body: expected a JSON object, got an array"),
    ({"data": b"{reason: lunch}"}, "body", "body: not JSON"),
    ({"data": b"\xff\xfe"}, "body", "body: not UTF-8 text"),
    ({"data": b"[" * 7000 + b"]" * 7000}, "body", "body: JSON nested too deeply"),
])
async def test_a_bad_pause_body_is_a_422_naming_the_field(
        api: Api, kwargs: dict, field: str, message: str) -> None:
    await api.store.apply("alice", Login(), T0)
    body = await _json(api, "POST", "/api/v1/agents/alice/pause", 422, **kwargs)
    assert body["field"] == field
    assert body["error"].startswith(message), body
    assert (await api.store.get("alice", T0)).status is AgentStatus.AVAILABLE
    assert api.changed == []


async def test_a_body_for_an_action_without_fields_is_a_422(api: Api) -> None:
    body = await _json(api, "POST", "/api/v1/agents/alice/login", 422, json={"force": True})
    assert (body["field"], body["error"]) == ("force", "force: unknown field for login "
                                                       "(expected none)")


async def test_unknown_agents_actions_routes_and_methods(api: Api) -> None:
    body = await _json(api, "GET", "/api/v1/agents/zoe", 404)
    assert body["error"] == "no agent 'zoe' (agents: alice, bob, carmen)"
    body = await _json(api, "POST", "/api/v1/agents/zoe/login", 404)
    assert body["error"] == "no agent 'zoe' (agents: alice, bob, carmen)"
    body = await _json(api, "POST", "/api/v1/agents/alice/dance", 404)
    assert body["error"] == ("no action 'dance' (actions: login, logout, pause, unpause, "
                             "end-wrapup)")
    body = await _json(api, "GET", "/api/v1/nothing", 404)
    assert body["error"] == "no such route: GET /api/v1/nothing"
    async with api.client.get("/api/v1/agents/alice/login", headers=api.headers()) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert "method GET not allowed" in (await response.json())["error"]
    await _json(api, "POST", "/api/v1/agents/alice/pause", 413, data=b" " * 20_000)
    assert api.changed == []


async def test_waiting_calls_are_the_unanswered_unended_ones_in_service_order(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        repo = QueuedCallRepository(session)
        await repo.enter_by_id("c-early", "sales", entered_at=T0, priority=0, language="en")
        vip = await repo.enter_by_id("c-vip", "support", entered_at=T0 + dt.timedelta(seconds=20),
                                     priority=10, node="pbx1")
        await repo.add_offer_by_id(vip, "alice", offered_at=T0 + dt.timedelta(seconds=21))
        answered = await repo.enter_by_id("c-answered", "sales", entered_at=T0)
        offer = await repo.add_offer_by_id(answered, "bob", offered_at=T0)
        await repo.answered_by_id(answered, offer, "bob", at=T0)
        gone = await repo.enter_by_id("c-gone", "sales", entered_at=T0)
        await repo.finish_by_id(gone, QueueOutcome.ABANDONED, at=T0)
    api.clock.now = T0 + dt.timedelta(seconds=62, milliseconds=340)
    body = await _json(api, "GET", "/api/v1/calls/waiting", 200)
    assert body["calls"] == [
        {"queue": "support", "channel": "c-vip", "priority": 10, "language": None,
         "entered_at": (T0 + dt.timedelta(seconds=20)).isoformat(),
         "offered_at": (T0 + dt.timedelta(seconds=21)).isoformat(), "waited": 42.3,
         "node": "pbx1"},
        {"queue": "sales", "channel": "c-early", "priority": 0, "language": "en",
         "entered_at": T0.isoformat(), "offered_at": None, "waited": 62.3, "node": None},
    ]


async def test_a_failing_hook_does_not_undo_the_change(
        config, sessions: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(agent: str) -> None:
        raise RuntimeError("router gone")

    async with running_api(config, sessions, hook=broken) as api:
        with caplog.at_level(logging.ERROR, logger="callcenter.web"):
            alice = await _json(api, "POST", "/api/v1/agents/alice/login", 200)
        assert alice["status"] == "available"
        assert (await api.store.get("alice", T0)).status is AgentStatus.AVAILABLE
        assert "telling the router about agent alice failed" in caplog.text


async def test_the_token_is_never_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await _json(api, "GET", "/api/v1/agents", 200)
        await _json(api, "POST", "/api/v1/agents/alice/login", 200)
        await _json(api, "GET", "/api/v1/agents", 401, headers=api.headers(TOKEN + "x"))
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert TOKEN not in caplog.text
