"""The queue router on the session PBX, for tests: start it, log agents in, read what it
recorded, wait on its change pulses (never on time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import pytest
from sqlalchemy import select

from ari_apps.queue_router import QueueRouter
from callcenter.agents.state import (
    AgentState,
    AgentStatus,
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
    Unpause,
)
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.ari.events import Event
from callcenter.config.models import CallCenterConfig
from callcenter.events import EventListener
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.models import CallOffer, QueuedCall
from callcenter.testing.aio import cancel_and_wait
from callcenter.testing.sipp import Caller, Keypress, SippResult, run_call
from callcenter.testing.softphone import Softphone, SoftphoneCall
from tests.conftest import PBX

_T = TypeVar("_T")

__all__ = ["SALES", "RunningRouter", "decline", "holds_callers", "place_call", "running",
           "start_router", "talk_then_hang_up", "waiting", "with_queue"]

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

    async def login_in_turn(self, *agents: str) -> None:
        """Log *agents* in one at a time, each once the router has seen the one before
        available: under ``longest_idle`` the first is offered a call first."""
        for agent in agents:
            await self.login(agent)
            await self.wait_state(agent, AgentStatus.AVAILABLE)

    async def state(self, agent: str) -> AgentState:
        return await self.router.store.get(agent, self.router.clock())

    async def wait_state(self, agent: str, status: AgentStatus, timeout: float = 15) -> None:
        """Wait for the router to move *agent* to *status* (its records are the truth)."""
        states = self.router.states
        async with asyncio.timeout(timeout):
            await self.router.wait_until(
                lambda: agent in states and states[agent].status is status)

    async def queued(self, caller_id: str, timeout: float = 15) -> QueuedCall:
        """The queued call of the caller whose number is *caller_id*, once it has ended."""
        def channels() -> list[str]:
            return [c for c, number in self.numbers.items() if number == caller_id]

        async with asyncio.timeout(timeout):
            # The caller may have hung up before the router got to admit it (a loaded
            # machine): wait for the admission the test's call must have caused.
            await self.router.wait_until(lambda: bool(channels()))
            assert len(channels()) == 1, (caller_id, self.numbers)
            channel = channels()[0]
            await self.router.finished(channel).wait()
        async with self.router.sessions() as session:
            return (await session.execute(select(QueuedCall).where(
                QueuedCall.channel_id == channel))).scalar_one()

    async def offers(self, queued: QueuedCall) -> list[CallOffer]:
        async with self.router.sessions() as session:
            result = await session.execute(select(CallOffer).where(
                CallOffer.queued_call_id == queued.id).order_by(CallOffer.id))
            return list(result.scalars().all())


@contextlib.asynccontextmanager
async def start_router(pbx: PBX, config: CallCenterConfig | None = None,
                       listeners: Sequence[EventListener] = ()
                       ) -> AsyncIterator[RunningRouter]:
    """The queue router on the session PBX (``config``: the example's unless given: a
    router-side change such as shorter relax steps needs no new dialplan; ``listeners``
    hear its events)."""
    engine = make_engine(pbx.db_url, sqlite_immediate=True)
    creds = pbx.instance.credentials
    config = config or pbx.loaded.config
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password,
                         app=(config.settings.queue_app, config.settings.agent_app)) as ari:
        router = QueueRouter(config, ari, make_sessionmaker(engine), node="test",
                             listeners=listeners)
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
            assert [b.id for b in left] == [], f"bridges left after the test: {left}"
        finally:
            # Stopped, not cancelled: a transaction cut by a cancel can keep SQLite's
            # write lock on its connection and block the next test's writes.
            router.stop()
            async with asyncio.timeout(30):
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


async def holds_callers(router: QueueRouter, count: int, *,
                        phase: str | None = None, timeout: float = 30) -> None:
    """Wait until *router* holds at least *count* callers (in *phase*, or in any)."""
    callers = router.callers
    async with asyncio.timeout(timeout):
        await router.wait_until(lambda: sum(
            phase is None or c.phase == phase for c in callers.values()) >= count)


async def waiting(running: RunningRouter, count: int, timeout: float = 30) -> None:
    """Wait until the router holds *count* callers waiting for an agent."""
    await holds_callers(running.router, count, phase="waiting", timeout=timeout)


async def talk_then_hang_up(running: RunningRouter, agent: str,
                            phone: Softphone) -> SoftphoneCall:
    """*agent*'s next call, hung up by the agent (a BYE from *phone*) as soon as the
    router has connected it (``on_call``): for a test that needs the call answered, not
    a talk of any length. Not sooner: a leg that ends before the router has seen the
    answer is a failed offer, and the caller waits again."""
    call = asyncio.create_task(phone.call())
    try:
        await running.wait_state(agent, AgentStatus.ON_CALL)
        await phone.hangup()
    except BaseException:
        await cancel_and_wait(call)
        raise
    return await call


async def decline(phone: Softphone) -> None:
    """Reject the call once *phone* rings (an agent who declines the offer)."""
    await phone.event("CALL_INCOMING")
    await phone.hangup()


@contextlib.asynccontextmanager
async def channel_events(pbx: PBX, app: str,
                         keep: Callable[[Event], _T | None]) -> AsyncIterator[list[_T]]:
    """What *keep* makes of every event of every channel (None: not kept), in the order
    Asterisk sent them, from an ARI app *app* of the test's own (not the router's
    websocket): what the caller heard, which legs were dialled."""
    creds = pbx.instance.credentials
    seen: list[_T] = []
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=app) as ari, \
            ari.events() as stream:
        await ari.applications.subscribe(app, "channel:")

        async def read() -> None:
            async for event in stream:
                if (kept := keep(event)) is not None:
                    seen.append(kept)

        task = asyncio.create_task(read(), name=f"{app} observer")
        try:
            yield seen
        finally:
            await cancel_and_wait(task)


def with_queue(config: CallCenterConfig, queue: str, **changes: object) -> CallCenterConfig:
    """*config* with queue *queue* changed (router-side keys only)."""
    queues = dict(config.queues)
    queues[queue] = queues[queue].model_copy(update=changes)
    return config.model_copy(update={"queues": queues})


async def place_call(pbx: PBX, caller_id: str, keys: tuple[Keypress, ...] = SALES,
                hold_ms: int = 3000) -> SippResult:
    sip, media = pbx.sipp_ports()
    return await run_call(Caller("5551000", caller_id=caller_id, keys=keys, hold_ms=hold_ms),
                          sip_port=pbx.sip_port, local_port=sip, media_port=media, timeout=60)


