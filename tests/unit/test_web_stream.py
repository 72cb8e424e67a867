"""The live event stream, ``GET /api/v1/events``: the events as JSON, who sees which
(pure :func:`visible`, then over real websockets on aiohttp's test server), the filters,
the token in the query for browsers (hidden from the access log), a slow client that
loses its oldest events and is told so while the publisher never waits, unsubscribe on
close, and 1001 to every client when the service stops.

Users (tests.web_api): sue supervises sales, sam tech_support, alice_phone is alice;
alice and carmen serve sales and customer_service, bob tech_support."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import make_mocked_request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import events as ev
from callcenter.agents.state import AgentStatus
from callcenter.web.access import Access, users_from_config
from callcenter.web.server import RedactingAccessLogger
from callcenter.web.stream import CLIENT_INBOX, Selection, event_json, visible
from tests.web_api import T0, TOKENS
from tests.web_live import LiveApi, assert_schema, live_api, live_config

CONFIG = live_config()
USERS = users_from_config(CONFIG)
ACCESS = Access(CONFIG)


def entered(queue: str = "sales", call: str = "c-1") -> ev.CallerEntered:
    return ev.CallerEntered(at=T0, queue=queue, call=call, caller_number="15551230001",
                            caller_name="Ada", position=1)


def ringing(agent: str, queue: str = "sales", call: str = "c-1") -> ev.OfferRinging:
    return ev.OfferRinging(at=T0, queue=queue, call=call, agent=agent, leg=f"{call}-o1")


def connected(agent: str, queue: str = "sales", call: str = "c-1") -> ev.CallConnected:
    return ev.CallConnected(at=T0, queue=queue, call=call, agent=agent, agent_channel="l-1",
                            wait_seconds=3.5, ring_seconds=1.0, position=1)


def logged_in(agent: str) -> ev.AgentLoggedIn:
    return ev.AgentLoggedIn(at=T0, agent=agent, queues=tuple(sorted(ACCESS.queues_of(agent))))


def status(agent: str) -> ev.AgentStateChanged:
    return ev.AgentStateChanged(at=T0, agent=agent, status=AgentStatus.AVAILABLE,
                                previous=AgentStatus.LOGGED_OUT)


def test_an_event_is_its_type_time_and_fields_in_plain_json() -> None:
    assert event_json(connected("carmen")) == {
        "type": "CallConnected", "at": "2026-11-30T21:00:00+00:00", "queue": "sales",
        "call": "c-1", "agent": "carmen", "agent_channel": "l-1", "wait_seconds": 3.5,
        "ring_seconds": 1.0, "position": 1}
    assert event_json(status("bob")) == {
        "type": "AgentStateChanged", "at": "2026-11-30T21:00:00+00:00", "agent": "bob",
        "status": "available", "previous": "logged_out"}
    assert event_json(logged_in("alice"))["queues"] == ["customer_service", "sales"]


EVENTS = {
    "sales caller": entered(),
    "tech caller": entered("tech_support", "c-2"),
    "sales ring carmen": ringing("carmen"),
    "sales call alice": connected("alice"),
    "tech call bob": connected("bob", "tech_support", "c-2"),
    "alice logs in": logged_in("alice"),
    "bob logs in": logged_in("bob"),
    "carmen available": status("carmen"),
}
SEES = {
    "admin": set(EVENTS),
    "sue": {"sales caller", "sales ring carmen", "sales call alice", "alice logs in",
            "carmen available"},
    "sam": {"tech caller", "tech call bob", "bob logs in"},
    "alice_phone": {"sales call alice", "alice logs in"},
}


@pytest.mark.parametrize("user", sorted(SEES))
def test_each_role_sees_its_own_events_only(user: str) -> None:
    seen = {name for name, event in EVENTS.items() if visible(event, USERS[user], ACCESS)}
    assert seen == SEES[user]


@pytest.mark.parametrize(("selection", "names"), [
    (Selection(queues=frozenset({"tech_support"})),
     {"tech caller", "tech call bob", "bob logs in"}),
    (Selection(agents=frozenset({"carmen"})), {"sales ring carmen", "carmen available"}),
    (Selection(queues=frozenset({"sales"}), agents=frozenset({"alice"})),
     {"sales call alice", "alice logs in"}),
])
def test_a_filter_narrows_the_admins_stream(selection: Selection, names: set[str]) -> None:
    seen = {name for name, event in EVENTS.items()
            if visible(event, USERS["admin"], ACCESS, selection)}
    assert seen == names


# -- over websockets -----------------------------------------------------------------

@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[LiveApi]:
    async with live_api(CONFIG, sessions) as running:
        yield running


async def _next(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    async with asyncio.timeout(5):
        message = await ws.receive()
    assert message.type is WSMsgType.TEXT, message
    return message.json()


async def _open(api: LiveApi, user: str, query: str = "") -> aiohttp.ClientWebSocketResponse:
    ws = await api.client.ws_connect(f"/api/v1/events{query}", headers=api.as_user(user))
    hello = await _next(ws)
    assert (hello["type"], hello["user"]) == ("subscribed", user), hello
    return ws


async def test_each_client_gets_what_its_user_may_see_in_publish_order(api: LiveApi) -> None:
    clients = {user: await _open(api, user) for user in SEES}
    assert api.hub.clients == len(SEES)
    for event in EVENTS.values():
        await api.hub.handle(event)
    # Then one event each user sees: nothing it may not see came before it.
    marker = entered(call="end")
    last = {"admin": marker, "sue": marker, "alice_phone": logged_in("alice"),
            "sam": logged_in("bob")}
    for event in (marker, logged_in("alice"), logged_in("bob")):
        await api.hub.handle(event)
    for user, ws in clients.items():
        expected = [event_json(e) for name, e in EVENTS.items() if name in SEES[user]]
        got = [await _next(ws) for _ in expected]
        assert got == expected, user
        for message in got:
            assert_schema(message, "StreamMessage")
        assert await _next(ws) == event_json(last[user]), user
        await ws.close()


async def test_the_filter_is_checked_before_the_upgrade(api: LiveApi) -> None:
    for user, query, status, field in [
        ("sue", "?queues=tech_support", 403, None),
        ("alice_phone", "?agents=carmen", 403, None),
        ("admin", "?queues=nope", 422, "queues"),
        ("admin", "?queues=sales,,", 422, "queues"),
        ("admin", "?agents=zoe", 422, "agents"),
        ("admin", "?queue=sales", 422, "queue"),
        ("admin", "?queues=sales&queues=sales", 422, "queues"),
    ]:
        async with api.client.get(f"/api/v1/events{query}",
                                  headers=api.as_user(user)) as response:
            body = await response.json()
            assert (response.status, body.get("field")) == (status, field), (query, body)


async def test_a_filtered_stream_says_its_filter_and_keeps_to_it(api: LiveApi) -> None:
    ws = await api.client.ws_connect("/api/v1/events?agents=carmen,alice&queues=sales",
                                     headers=api.as_user("sue"))
    hello = await _next(ws)
    assert (hello["queues"], hello["agents"]) == (["sales"], ["alice", "carmen"])
    for event in (entered(), ringing("carmen"), status("carmen")):
        await api.hub.handle(event)
    assert (await _next(ws))["type"] == "OfferRinging"
    assert (await _next(ws))["type"] == "AgentStateChanged"
    await ws.close()


async def test_a_plain_get_is_told_to_upgrade(api: LiveApi) -> None:
    async with api.client.get("/api/v1/events", headers=api.as_user("admin")) as response:
        assert response.status == 426
        assert "websocket" in (await response.json())["error"]


async def test_the_token_may_come_in_the_query_and_is_never_logged(
        api: LiveApi, caplog: pytest.LogCaptureFixture) -> None:
    ws = await api.client.ws_connect(f"/api/v1/events?token={TOKENS['sam']}")
    assert (await _next(ws))["user"] == "sam"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await api.client.ws_connect("/api/v1/events?token=not-a-token")
    assert refused.value.status == 401
    # Only on the stream: elsewhere the query's token is no credential.
    async with api.client.get(f"/api/v1/me?token={TOKENS['admin']}") as response:
        assert response.status == 401
    logger = logging.getLogger("test.access")
    request = make_mocked_request("GET", f"/api/v1/events?queues=sales&%74oken={TOKENS['sam']}")
    with caplog.at_level(logging.INFO, logger="test.access"):
        RedactingAccessLogger(logger, "").log(request, web.Response(status=101), 0.5)
    assert TOKENS["sam"] not in caplog.text
    assert "/api/v1/events?<query hidden: it holds a token>" in caplog.text


async def test_a_slow_client_loses_its_oldest_events_and_is_told_how_many(
        api: LiveApi) -> None:
    ws = await _open(api, "admin")
    total = CLIENT_INBOX + 250
    calls = [entered(call=f"c-{n}") for n in range(total)]
    started = asyncio.get_running_loop().time()
    for event in calls:  # no await yields here: the client cannot read in between
        await api.hub.handle(event)
    # The publisher never waited for the client.
    assert asyncio.get_running_loop().time() - started < 1.0
    assert await _next(ws) == {"type": "dropped", "at": T0.isoformat(), "count": 250}
    first = await _next(ws)
    assert first["call"] == "c-250"
    for n in range(251, total):
        assert (await _next(ws))["call"] == f"c-{n}"
    await ws.close()


async def test_a_closed_client_is_unsubscribed(api: LiveApi) -> None:
    ws = await _open(api, "sue")
    other = await _open(api, "sam")
    assert api.hub.clients == 2
    await ws.close()
    for _ in range(1000):  # the server's handler ends after the close handshake
        if api.hub.clients == 1:
            break
        await asyncio.sleep(0)
    assert api.hub.clients == 1
    await api.hub.handle(connected("bob", "tech_support"))
    assert (await _next(other))["agent"] == "bob"
    await other.close()


async def test_every_client_is_closed_with_1001_when_the_service_stops(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with live_api(CONFIG, sessions) as running:
        ws = await _open(running, "admin")
        await running.client.server.close()  # what ApiServer.stop does: the app's shutdown
        async with asyncio.timeout(5):
            message = await ws.receive()
        assert message.type is WSMsgType.CLOSE, message
        assert message.data == aiohttp.WSCloseCode.GOING_AWAY
        assert running.hub.clients == 0
        await ws.close()
