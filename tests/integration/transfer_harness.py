"""Transfers on the real PBX, for tests: the HTTP API over a running router (its
transfers reached as the service reaches them), a sales caller talking with carmen, and
what the records and the call's bridge say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.agents.state import AgentStatus
from callcenter.config.models import ApiUser as ApiUserConfig
from callcenter.storage.models import CallTransfer, QueuedCall
from callcenter.testing.sipp import SippResult
from callcenter.testing.softphone import Softphone, SoftphoneCall
from callcenter.web import TokenBook, create_api_app, users_from_config
from callcenter.web.api import ari_hang_up
from tests.conftest import PBX
from tests.integration.router_harness import RunningRouter, place_call

__all__ = ["TOKENS", "api_on", "ask", "bridged_with", "carmen_answers", "entered_at",
           "transfers_of"]

TOKENS = {"admin": "admin-token-0123456789abcdefghijklmnopqrstu",
          "sue": "sue-token-0123456789abcdefghijklmnopqrstuvw",
          "carmen_phone": "carmen-token-0123456789abcdefghijklmnopqr",
          "alice_phone": "alice-token-0123456789abcdefghijklmnopqrs"}


@asynccontextmanager
async def api_on(pbx: PBX, running: RunningRouter) -> AsyncIterator[TestClient]:
    """The API on loopback over the router, its transfers reached as the service does."""
    config = pbx.loaded.config.model_copy(update={"api_users": {
        "sue": ApiUserConfig(role="supervisor", queues=("sales",)),
        "carmen_phone": ApiUserConfig(role="agent", agent="carmen"),
        "alice_phone": ApiUserConfig(role="agent", agent="alice"),
    }})
    router = running.router
    app = create_api_app(config=config, store=router.store, sessions=router.sessions,
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS),
                         clock=router.clock, on_agent_change=router.agent_changed,
                         hang_up=ari_hang_up(running.ari), transfers=lambda: router.transfers)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def ask(client: TestClient, user: str, path: str, status: int,
              body: object = None) -> dict:
    async with client.post(path, json=body,
                           headers={"Authorization": f"Bearer {TOKENS[user]}"}) as response:
        answer = await response.json()
        assert response.status == status, answer
        return answer


@asynccontextmanager
async def carmen_answers(pbx: PBX, running: RunningRouter, caller: str, hold_ms: int
                         ) -> AsyncIterator[tuple[str, Softphone, asyncio.Task[SippResult],
                                                  asyncio.Task[SoftphoneCall]]]:
    """A sales caller talking with carmen: yields (call id, carmen's phone, the caller's
    sipp task, carmen's call task)."""
    async with pbx.agent_phone("carmen") as carmen:
        await running.login("carmen")
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        call = asyncio.create_task(place_call(pbx, caller, hold_ms=hold_ms))
        phone = asyncio.create_task(carmen.call())
        try:
            await running.wait_state("carmen", AgentStatus.ON_CALL, timeout=30)
            channel = next(c for c, n in running.numbers.items() if n == caller)
            yield channel, carmen, call, phone
        finally:
            for task in (call, phone):
                if not task.done():
                    task.cancel()
            await asyncio.gather(call, phone, return_exceptions=True)


async def bridged_with(running: RunningRouter, channel: str, agent: str) -> None:
    """The call's own bridge holds the caller and *agent*'s leg, nobody else."""
    caller = running.router.callers[channel]
    assert (caller.phase, caller.agent) == ("connected", agent)
    bridge = await running.ari.bridges.get(caller.bridge_id)
    assert set(bridge.channels) == {channel, caller.agent_channel}, bridge.channels
    leg = await running.ari.channels.get(caller.agent_channel or "")
    assert leg.name.startswith(f"PJSIP/{agent}-"), leg.name


async def transfers_of(running: RunningRouter, channel: str) -> list[CallTransfer]:
    async with running.router.sessions() as session:
        rows = await session.execute(select(CallTransfer).where(
            CallTransfer.channel_id == channel).order_by(CallTransfer.id))
        return list(rows.scalars().all())


async def entered_at(running: RunningRouter, channel: str) -> object:
    async with running.router.sessions() as session:
        return (await session.execute(select(QueuedCall.entered_at).where(
            QueuedCall.channel_id == channel))).scalar_one()
