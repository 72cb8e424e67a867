"""The HTTP API against the real Asterisk and the queue router: real SIP callers (sipp)
through the example IVR into sales, an agent on a real softphone (baresip); calls in
progress are listed per role, and a supervisor's hang-up ends the real call (Asterisk
sends the caller a BYE, the router closes the record and frees the agent), while an
agent's token and another team's supervisor are refused and the call goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from callcenter.agents.state import AgentStatus
from callcenter.config.models import ApiUser as ApiUserConfig
from callcenter.web import TokenBook, create_api_app, users_from_config
from callcenter.web.api import ari_hang_up
from tests.conftest import PBX
from tests.integration.router_harness import RunningRouter, place_call, running, waiting

__all__ = ["running"]  # the fixture, imported for pytest

TOKENS = {"admin": "admin-token-0123456789abcdefghijklmnopqrstu",
          "sue": "sue-token-0123456789abcdefghijklmnopqrstuvw",
          "sam": "sam-token-0123456789abcdefghijklmnopqrstuvw",
          "carmen_phone": "carmen-token-0123456789abcdefghijklmnopqr"}


@asynccontextmanager
async def api_on(pbx: PBX, running: RunningRouter) -> AsyncIterator[TestClient]:
    """The API on loopback over the router's store and database, hanging up through ARI
    as the service does."""
    config = pbx.loaded.config.model_copy(update={"api_users": {
        "sue": ApiUserConfig(role="supervisor", queues=("sales",)),
        "sam": ApiUserConfig(role="supervisor", queues=("tech_support",)),
        "carmen_phone": ApiUserConfig(role="agent", agent="carmen"),
    }})
    router = running.router
    app = create_api_app(config=config, store=router.store, sessions=router.sessions,
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS),
                         clock=router.clock, on_agent_change=router.agent_changed,
                         hang_up=ari_hang_up(running.ari))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _ask(client: TestClient, user: str, method: str, path: str, status: int) -> dict:
    async with client.request(method, path,
                              headers={"Authorization": f"Bearer {TOKENS[user]}"}) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def test_a_supervisor_hangs_up_a_waiting_caller_of_its_queue(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """Nobody logged in: the caller waits in sales. sam (tech_support) and carmen's agent
    token are refused and the caller still waits; sue (sales) hangs it up: Asterisk sends
    the caller a BYE long before its 25 s hold ends, and the record is closed."""
    caller = "15558881001"
    async with api_on(clean_pbx, running) as api:
        call = asyncio.create_task(place_call(clean_pbx, caller, hold_ms=25_000))
        try:
            await waiting(running, 1)
            channel = next(c for c, n in running.numbers.items() if n == caller)
            listed = await _ask(api, "sue", "GET", "/api/v1/calls", 200)
            assert [(c["channel"], c["queue"], c["state"]) for c in listed["calls"]] == [
                (channel, "sales", "waiting")]
            assert (await _ask(api, "sam", "GET", "/api/v1/calls", 200))["calls"] == []
            queue = await _ask(api, "sue", "GET", "/api/v1/queues/sales/calls", 200)
            assert [c["channel"] for c in queue["calls"]] == [channel]

            await _ask(api, "carmen_phone", "POST", f"/api/v1/calls/{channel}/hangup", 403)
            await _ask(api, "sam", "POST", f"/api/v1/calls/{channel}/hangup", 403)
            assert [ch.id for ch in await running.ari.channels.list()] == [channel]

            hung = await _ask(api, "sue", "POST", f"/api/v1/calls/{channel}/hangup", 200)
            assert (hung["channel"], hung["state"]) == (channel, "waiting")
            async with asyncio.timeout(20):
                result = await call
        finally:
            if not call.done():
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
        assert result.returncode == 0, result.stderr
        assert result.remote_hangup, "the caller hung up itself: the API did not end the call"
        queued = await running.queued(caller)
        assert queued.ended_at is not None and queued.answered_at is None
        assert await running.ari.channels.list() == []
        await _ask(api, "sue", "POST", f"/api/v1/calls/{channel}/hangup", 404)
        assert (await _ask(api, "admin", "GET", "/api/v1/calls", 200))["calls"] == []


async def test_an_admin_hangs_up_a_connected_call_and_the_agent_is_freed(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """carmen answers on her softphone; the call is listed as connected to her (for her
    own token too); the admin hangs it up: her phone's call closes, the caller gets a
    BYE, the record is answered-and-ended and carmen goes to wrap-up."""
    caller = "15558881002"
    async with api_on(clean_pbx, running) as api, clean_pbx.agent_phone("carmen") as carmen:
        await running.login("carmen")
        call = asyncio.create_task(place_call(clean_pbx, caller, hold_ms=25_000))
        try:
            await running.wait_state("carmen", AgentStatus.ON_CALL, timeout=30)
            mine = await _ask(api, "carmen_phone", "GET", "/api/v1/calls", 200)
            assert [(c["state"], c["agent"]) for c in mine["calls"]] == [("connected", "carmen")]
            channel = mine["calls"][0]["channel"]
            await _ask(api, "carmen_phone", "POST", f"/api/v1/calls/{channel}/hangup", 403)
            hung = await _ask(api, "admin", "POST", f"/api/v1/calls/{channel}/hangup", 200)
            assert (hung["state"], hung["agent"]) == ("connected", "carmen")
            async with asyncio.timeout(20):
                result, phone = await asyncio.gather(call, carmen.call())
        finally:
            if not call.done():
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
        assert result.returncode == 0 and result.remote_hangup, result.stderr
        assert phone.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], phone.stderr
        queued = await running.queued(caller)
        assert (queued.agent, queued.outcome) == ("carmen", "answered")
        await running.wait_state("carmen", AgentStatus.WRAP_UP)
        agent = await _ask(api, "carmen_phone", "GET", "/api/v1/agents/carmen", 200)
        assert agent["status"] == "wrap_up"
