"""The HTTP API's live parts on the real PBX: the queue router on the session Asterisk,
its events bus feeding the API's event stream, its supervision behind the API's listen;
a real caller (sipp, through the example IVR to sales) answered by carmen (baresip).

- A websocket of sue (supervisor of sales) sees CallerEntered -> OfferRinging ->
  CallConnected -> CallCompleted of that call, in that order, with carmen; the websocket of
  alice's agent token sees none of it (then its own login, which comes after).
- ``POST /api/v1/agents/carmen/listen`` with sue's token rings bob's phone (bob: an agent
  with role supervisor of sales) and answers once the ARI snoop on carmen's leg is bridged
  to him, which ``GET /channels`` shows; alice's agent token is refused (403) and rings
  nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agents.state import AgentStatus
from callcenter.config.models import ApiUser, CallCenterConfig
from callcenter.web import TokenBook, create_api_app, users_from_config
from callcenter.web.stream import StreamHub
from callcenter.web.supervise import router_hook
from tests.conftest import PBX
from tests.integration.router_harness import RunningRouter, place_call, start_router
from tests.integration.test_supervision import carmen_on_a_call, gone, supervised, until

TOKENS = {"admin": "admin-live-token-0123456789abcdefghijklmnop",
          "sue": "sue-live-token-0123456789abcdefghijklmnopqr",
          "alice_phone": "alice-live-token-0123456789abcdefghijklmno"}
CALL_EVENTS = ("CallerEntered", "OfferRinging", "CallConnected", "CallCompleted")


def live(config: CallCenterConfig) -> CallCenterConfig:
    """The example with bob supervising sales, sue the API's supervisor of sales and
    alice_phone the API user of the agent alice (who does not take sales calls)."""
    return supervised(config).model_copy(update={"api_users": {
        "sue": ApiUser(role="supervisor", queues=("sales",)),
        "alice_phone": ApiUser(role="agent", agent="alice")}})


@asynccontextmanager
async def api_of(running: RunningRouter, hub: StreamHub) -> AsyncIterator[TestClient]:
    """The service's API wired as ``callcenter serve`` wires it, on the test's router."""
    router = running.router
    app = create_api_app(config=router.config, store=router.store, sessions=router.sessions,
                         clock=router.clock, on_agent_change=router.agent_changed,
                         tokens=TokenBook.fixed(users_from_config(router.config), TOKENS),
                         events=hub, supervise=router_hook(router.supervision))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


async def stream(client: TestClient, user: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/api/v1/events", headers=auth(user))
    hello = await ws.receive_json(timeout=10)
    assert (hello["type"], hello["user"]) == ("subscribed", user), hello
    return ws


async def until_message(ws: aiohttp.ClientWebSocketResponse, seen: list[dict[str, Any]],
                        done: Any, timeout: float = 40) -> dict[str, Any]:
    """Read *ws* into *seen* until a message for which ``done(message)`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            seen.append(message)
            if done(message):
                return message


async def test_a_supervisors_stream_follows_a_real_call_an_agents_does_not(
        clean_pbx: PBX) -> None:
    hub = StreamHub()
    caller = "15558870001"
    async with start_router(clean_pbx, live(clean_pbx.loaded.config),
                            listeners=[hub]) as running, api_of(running, hub) as client, \
            clean_pbx.agent_phone("carmen") as carmen:
        sue, alice = await stream(client, "sue"), await stream(client, "alice_phone")
        async with client.post("/api/v1/agents/carmen/login", headers=auth("sue")) as response:
            assert response.status == 200, await response.text()
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        call = asyncio.create_task(place_call(clean_pbx, caller, hold_ms=2000))
        phone = asyncio.create_task(carmen.call())
        seen: list[dict[str, Any]] = []
        entered = await until_message(sue, seen, lambda m: m["type"] == "CallerEntered"
                                      and m["caller_number"] == caller)
        channel = entered["call"]
        await until_message(sue, seen, lambda m: m["type"] == "CallCompleted"
                            and m["call"] == channel)
        result, answered = await call, await phone
        assert result.returncode == 0, result.stderr[-800:]
        assert answered.answered, answered.stderr
        of_the_call = [m for m in seen if m.get("call") == channel and m["type"] in CALL_EVENTS]
        assert [m["type"] for m in of_the_call] == list(CALL_EVENTS), seen
        assert {m["agent"] for m in of_the_call[1:]} == {"carmen"}
        assert {m["queue"] for m in of_the_call} == {"sales"}
        assert (await running.queued(caller)).agent == "carmen"
        # alice's own login comes after the call's events in her stream: nothing of
        # carmen's call (nor carmen) came before it.
        async with client.post("/api/v1/agents/alice/login",
                               headers=auth("alice_phone")) as response:
            assert response.status == 200, await response.text()
        heard: list[dict[str, Any]] = []
        await until_message(alice, heard, lambda m: m["type"] == "AgentLoggedIn")
        assert all(m.get("agent") == "alice" for m in heard), heard
        assert not [m for m in heard if m.get("call") == channel], heard
        await sue.close()
        await alice.close()


async def test_listen_from_the_api_snoops_on_the_real_call_and_an_agent_may_not(
        clean_pbx: PBX) -> None:
    async with start_router(clean_pbx, live(clean_pbx.loaded.config)) as running, \
            api_of(running, StreamHub()) as client, clean_pbx.agent_phone("bob") as bob:
        supervision = running.router.supervision
        async with carmen_on_a_call(clean_pbx, running, "15558870002", hold_ms=12000):
            async with client.post("/api/v1/agents/carmen/listen", json={"supervisor": "bob"},
                                   headers=auth("alice_phone")) as response:
                refused = await response.json()
                assert response.status == 403, refused
            assert "may not listen" in refused["error"]
            assert supervision.sessions == {} and supervision.refusals == []
            async with client.post("/api/v1/agents/carmen/listen", json={"supervisor": "bob"},
                                   headers=auth("sue")) as response:
                started = await response.json()
                assert response.status == 200, started
            assert (started["supervisor"], started["agent"], started["mode"]) == (
                "bob", "carmen", "listen")
            # In Asterisk: the snoop on carmen's leg, bridged with bob's channel.
            leg = next(c.agent_channel for c in running.router.callers.values()
                       if c.agent == "carmen")
            channels = {c.id: c for c in await running.ari.channels.list()}
            assert started["snoop"] in channels and started["channel"] in channels
            assert channels[started["snoop"]].name.startswith(f"Snoop/{leg}-")
            bridge = await running.ari.bridges.get(started["bridge"])
            assert set(bridge.channels) == {started["channel"], started["snoop"]}
            session = supervision.sessions[started["channel"]]
            assert session.snoop_args[:3] == ("snoop", "spy=both", "whisper=none")
        # The caller hung up: the call ended, so did the snoop and bob's leg.
        supervisor_call = await bob.call()
        assert supervisor_call.answered, supervisor_call.stderr
        await until(supervision, lambda: not supervision.sessions)
        assert session.ended_by == "call"
        await gone(running, session)
