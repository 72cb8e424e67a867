"""The queue router against the real Asterisk: real SIP callers through the example IVR,
agents on real registered softphones (baresip), the router's own records and Asterisk's
view of what is left (channels, bridges) after each call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from ari_apps.queue_router import QueueRouter
from callcenter.agents.state import (
    AgentStatus,
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
    Unpause,
)
from callcenter.asterisk.ari import ARIClient
from callcenter.config.models import CallCenterConfig, RelaxStep
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.models import CallOffer, QueuedCall
from callcenter.testing.sipp import Caller, Keypress, SippResult, run_call
from tests.conftest import PBX

SALES = (Keypress("1", 2500), Keypress("2", 1200))  # English, then sales


class RunningRouter:
    def __init__(self, router: QueueRouter, ari: ARIClient) -> None:
        self.router, self.ari = router, ari
        #: caller channel id -> the caller's number
        self.numbers: dict[str, str] = {}

    async def login(self, *agents: str) -> None:
        for agent in agents:
            await self.router.store.apply(agent, Login(), self.router.clock(), reason="test")
            self.router.agent_changed(agent)

    async def state(self, agent: str):  # type: ignore[no-untyped-def]
        return await self.router.store.get(agent, self.router.clock())

    async def wait_state(self, agent: str, status: AgentStatus, timeout: float = 15) -> None:
        """Wait for the router to move *agent* to *status* (its records are the truth)."""
        states = self.router.states
        async with asyncio.timeout(timeout):
            await self.router.wait_until(
                lambda: agent in states and states[agent].status is status)

    async def queued(self, caller_id: str, timeout: float = 15) -> QueuedCall:
        """The queued call of the caller whose number is *caller_id*, once it has ended."""
        channels = [c for c, number in self.numbers.items() if number == caller_id]
        assert len(channels) == 1, (caller_id, self.numbers)
        async with asyncio.timeout(timeout):
            await self.router.finished(channels[0]).wait()
        async with self.router.sessions() as session:
            return (await session.execute(select(QueuedCall).where(
                QueuedCall.channel_id == channels[0]))).scalar_one()

    async def offers(self, queued: QueuedCall) -> list[CallOffer]:
        async with self.router.sessions() as session:
            result = await session.execute(select(CallOffer).where(
                CallOffer.queued_call_id == queued.id).order_by(CallOffer.id))
            return list(result.scalars().all())


@contextlib.asynccontextmanager
async def start_router(pbx: PBX, config: CallCenterConfig | None = None
                       ) -> AsyncIterator[RunningRouter]:
    """The queue router on the session PBX (``config``: the example's unless given: a
    router-side change such as shorter relax steps needs no new dialplan)."""
    engine = make_engine(pbx.db_url)
    creds = pbx.instance.credentials
    config = config or pbx.loaded.config
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
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
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            now = router.clock()
            for agent in config.agents:
                for event in (EndWrapUp(), Unpause(), Logout()):
                    with contextlib.suppress(IllegalTransition):
                        await router.store.apply(agent, event, now, reason="test cleanup")
            await engine.dispose()


@pytest.fixture
async def running(clean_pbx: PBX) -> AsyncIterator[RunningRouter]:
    async with start_router(clean_pbx) as handle:
        yield handle


def with_queue(config: CallCenterConfig, queue: str, **changes: object) -> CallCenterConfig:
    """*config* with queue *queue* changed (router-side keys only)."""
    queues = dict(config.queues)
    queues[queue] = queues[queue].model_copy(update=changes)
    return config.model_copy(update={"queues": queues})


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


async def _waiting(running: RunningRouter, count: int, timeout: float = 30) -> None:
    """Wait until the router holds *count* callers waiting for an agent."""
    callers = running.router.callers
    async with asyncio.timeout(timeout):
        await running.router.wait_until(
            lambda: sum(c.phase == "waiting" for c in callers.values()) >= count)


async def test_caller_who_hangs_up_while_waiting_is_recorded_abandoned(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """Nobody logged in: the caller waits with music, gives up; nothing is left behind."""
    caller = "15558880002"
    result = await _call(clean_pbx, caller, hold_ms=1500)
    assert result.returncode == 0 and not result.remote_hangup, result.stderr
    queued = await running.queued(caller)
    assert (queued.outcome, queued.agent, queued.answered_at) == ("abandoned", None, None)
    assert await running.offers(queued) == []
    assert running.router.callers == {}


async def test_vip_is_served_before_an_earlier_caller(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """Both wait (nobody logged in); the VIP arrived second but is answered first."""
    ordinary, vip = "15558880003", "+15551230001"
    async with clean_pbx.agent_phone("carmen") as carmen:
        first = asyncio.create_task(_call(clean_pbx, ordinary, hold_ms=30000))
        await _waiting(running, 1)
        second = asyncio.create_task(_call(clean_pbx, vip, hold_ms=6000))
        await _waiting(running, 2)
        await running.login("carmen")
        served_first = await carmen.call()
        assert served_first.peer_uri.startswith(f"sip:{vip}@"), served_first.peer_uri
        # The VIP hung up: carmen ends wrap-up at once and takes the other caller.
        await running.wait_state("carmen", AgentStatus.WRAP_UP)
        await running.router.store.apply("carmen", EndWrapUp(), running.router.clock())
        running.router.agent_changed("carmen")
        served_second = await carmen.call()
        assert served_second.peer_uri.startswith(f"sip:{ordinary}@"), served_second.peer_uri
        for task in (first, second):
            assert (await task).returncode == 0
    a, b = await running.queued(ordinary), await running.queued(vip)
    assert a.entered_at < b.entered_at and b.priority > a.priority
    assert b.answered_at < a.answered_at  # type: ignore[operator]
    assert (a.outcome, b.outcome) == ("answered", "answered")


async def test_agent_whose_phone_unregisters_is_paused_until_it_is_back(
        clean_pbx: PBX, running: RunningRouter) -> None:
    async with clean_pbx.agent_phone("carmen"):
        await running.login("carmen")
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
    # baresip unregistered on exit: Asterisk's ContactStatusChange (Removed) pauses carmen.
    await running.wait_state("carmen", AgentStatus.PAUSED)
    state = await running.state("carmen")
    assert (state.pause_reason, state.phone_lost) == ("unregistered", True)
    caller = "15558880004"
    result = await _call(clean_pbx, caller, hold_ms=2000)
    assert result.returncode == 0
    queued = await running.queued(caller)
    assert await running.offers(queued) == [], "an unregistered phone was offered a call"
    async with clean_pbx.agent_phone("carmen"):
        await running.wait_state("carmen", AgentStatus.AVAILABLE)


async def test_requirements_relax_for_a_caller_already_waiting(clean_pbx: PBX) -> None:
    """sales requires sales >= 5 (carmen), relaxed to any agent of the queue after 3 s:
    with only alice (sales 3) logged in, the caller waits, then alice gets it at step 1."""
    config = with_queue(clean_pbx.loaded.config, "sales",
                        relax=(RelaxStep(after=3, any_agent=True),))
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("alice") as alice:
        await running.login("alice")
        caller = "15558880005"
        result, call = await asyncio.gather(_call(clean_pbx, caller, hold_ms=8000), alice.call())
        assert result.returncode == 0
        assert call.peer_uri.startswith(f"sip:{caller}@")
        queued = await running.queued(caller)
    assert (queued.agent, queued.relaxation_step, queued.outcome) == ("alice", 1, "answered")
    waited = (queued.answered_at - queued.entered_at).total_seconds()  # type: ignore[operator]
    assert 3 <= waited < 6, waited
