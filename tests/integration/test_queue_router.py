"""The queue router against the real Asterisk: real SIP callers through the example IVR,
agents on real registered softphones (baresip), the router's own records and Asterisk's
view of what is left (channels, bridges) after each call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from ari_apps.queue_router import QueueRouter
from callcenter.agents.state import AgentStatus, EndWrapUp, IllegalTransition, Login, Logout
from callcenter.asterisk.ari import ARIClient
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.models import CallOffer, QueuedCall
from callcenter.testing.sipp import Caller, Keypress, SippResult, run_call
from tests.conftest import PBX

SALES = (Keypress("1", 2500), Keypress("2", 1200))  # English, then sales


class RunningRouter:
    def __init__(self, router: QueueRouter, ari: ARIClient) -> None:
        self.router, self.ari = router, ari

    async def login(self, *agents: str) -> None:
        for agent in agents:
            await self.router.store.apply(agent, Login(), self.router.clock(), reason="test")
            self.router.agent_changed(agent)

    async def state(self, agent: str):  # type: ignore[no-untyped-def]
        return await self.router.store.get(agent, self.router.clock())

    async def wait_state(self, agent: str, status: AgentStatus, timeout: float = 15) -> None:
        """Wait for the router to move *agent* to *status* (its records are the truth)."""
        async with asyncio.timeout(timeout):
            while (await self.state(agent)).status is not status:
                await asyncio.sleep(0.05)

    async def queued(self, caller_id: str) -> QueuedCall:
        """The queued call of the caller whose number is *caller_id* (via its channel)."""
        async with self.router.sessions() as session:
            rows = (await session.execute(select(QueuedCall))).scalars().all()
        by_number = [r for r in rows if r.channel_id in self.numbers
                     and self.numbers[r.channel_id] == caller_id]
        assert len(by_number) == 1, (caller_id, rows)
        return by_number[0]

    numbers: dict[str, str] = {}

    async def offers(self, queued: QueuedCall) -> list[CallOffer]:
        async with self.router.sessions() as session:
            result = await session.execute(select(CallOffer).where(
                CallOffer.queued_call_id == queued.id).order_by(CallOffer.id))
            return list(result.scalars().all())


@pytest.fixture
async def running(clean_pbx: PBX) -> AsyncIterator[RunningRouter]:
    engine = make_engine(clean_pbx.db_url)
    creds = clean_pbx.instance.credentials
    config = clean_pbx.loaded.config
    async with ARIClient(clean_pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=config.settings.queue_app) as ari:
        router = QueueRouter(config, ari, make_sessionmaker(engine), node="test")
        task = asyncio.create_task(router.run(), name="queue-router")
        try:
            async with asyncio.timeout(20):
                await router.ready.wait()
            handle = RunningRouter(router, ari)
            # Which caller number each queued channel carries (for assertions).
            original = router._admit

            async def admit(channel, call, entered_at=None, row=None):  # type: ignore[no-untyped-def]
                handle.numbers[channel.id] = channel.caller.number
                return await original(channel, call, entered_at, row)

            router._admit = admit  # type: ignore[method-assign]
            yield handle
            left = await ari.bridges.list()
            assert [b.id for b in left] == [], "bridges left after the test"
        finally:
            now = router.clock()
            for agent in config.agents:
                for event in (EndWrapUp(), Logout()):
                    try:
                        await router.store.apply(agent, event, now, reason="test cleanup")
                    except IllegalTransition:
                        pass
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await engine.dispose()


async def _call(pbx: PBX, caller_id: str, keys: tuple[Keypress, ...] = SALES,
                hold_ms: int = 3000) -> SippResult:
    sip, media = pbx.sipp_ports()
    return await run_call(Caller("5551000", caller_id=caller_id, keys=keys, hold_ms=hold_ms),
                          sip_port=pbx.sip_port, local_port=sip, media_port=media, timeout=60)


async def test_sales_call_reaches_the_agent_with_the_skill(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """alice (sales 3) and carmen (sales 9) are both logged in on registered phones;
    sales requires sales >= 5: carmen's phone answers, alice's never rings."""
    async with clean_pbx.agent_phone("alice") as alice, clean_pbx.agent_phone("carmen") as carmen:
        await running.login("alice", "carmen")
        caller = "15558880001"
        result, call = await asyncio.gather(_call(clean_pbx, caller), carmen.call())
        assert result.returncode == 0, result.stderr
        assert call.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], call.stderr
        assert call.peer_uri.startswith(f"sip:{caller}@"), call.peer_uri
        assert not [e for e in alice.seen if e.get("type", "").startswith("CALL_")], alice.seen
        queued = await running.queued(caller)
        assert (queued.queue, queued.agent, queued.outcome) == ("sales", "carmen", "answered")
        assert queued.answered_at is not None and queued.ended_at is not None
        offers = await running.offers(queued)
        assert [(o.agent, o.result) for o in offers] == [("carmen", "answered")]
        state = await running.state("carmen")
        assert state.status is AgentStatus.WRAP_UP
        assert state.wrap_up_until - queued.ended_at == timedelta(  # type: ignore[operator]
            seconds=clean_pbx.loaded.config.queues["sales"].wrapup)
        assert (await running.state("alice")).status is AgentStatus.AVAILABLE
