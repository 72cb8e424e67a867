"""The queue router's offer path on a real AgentStore (SQLite) and a real ARI client aimed
at a loopback port nobody listens on (what an Asterisk that is down looks like to the
router): an offer ARI never answered is not the agent's miss; an answered leg whose end
was judged as a failed offer (the agent hung up a few ms after answering) ends the call
as answered. A callback's reserved agent is not freed by the watchdog because the
caller's channel is gone, and an agent lost between the reservation and the ringing is
never rung for the callback and never makes the router raise: the callback waits again."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.callback import Pending
from ari_apps.queue_router import Caller, Leg, QueueRouter
from callcenter.agents import ContactStatus, reconcile
from callcenter.agents.state import AgentStatus, CallGone, Login, Ring
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.loader import load_config
from callcenter.config.models import Callback
from callcenter.routing.policy import WaitingCall
from callcenter.storage.callbacks import CallbackRepository
from callcenter.storage.models import (
    CallbackAttempt,
    CallbackResult,
    CallOffer,
    OfferResult,
    QueuedCall,
    QueueOutcome,
)
from callcenter.storage.queued_calls import QueuedCallRepository

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"


def closed_port() -> int:
    """A loopback port with no listener (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def router(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[QueueRouter]:
    """The example's router on node pbx1 at a frozen NOW, its ARI client aimed at a port
    nobody listens on, with carmen logged in (available)."""
    config = load_config(EXAMPLE).config
    async with ARIClient(f"http://127.0.0.1:{closed_port()}/ari", username="u", password="p",
                         app=config.settings.queue_app, request_timeout=2) as ari:
        router = QueueRouter(config, ari, sessions, node="pbx1", clock=lambda: NOW)
        await router.store.ensure(config.agents, NOW)
        await router.store.apply("carmen", Login(), NOW)
        yield router


async def offering(router: QueueRouter, channel: str) -> Caller:
    """A sales caller on *channel* the router owns, recorded as entered, with carmen
    reserved for it: the state the router is in just before it rings her."""
    async with router.sessions.begin() as session:
        row = await QueuedCallRepository(session).enter_by_id(
            channel, "sales", entered_at=NOW, node="pbx1")
    waiting = WaitingCall(channel, "sales", NOW.timestamp(), 5, ("sales",), None, 0)
    caller = Caller(channel, QueueCall("sales"), row, waiting, bridge_id=f"cc-{channel}",
                    phase="offering")
    router.callers[channel] = caller
    reserved = await router.store.try_reserve("carmen", channel, NOW)
    assert reserved is not None
    router.states["carmen"] = reserved
    return caller


async def test_an_offer_ari_never_answered_is_not_the_agents_miss(
    router: QueueRouter, sessions: async_sessionmaker[AsyncSession],
) -> None:
    caller = await offering(router, "c1")

    await router._offer(caller, "carmen", 0)

    state = await router.store.get("carmen", NOW)
    assert state.status is AgentStatus.AVAILABLE and state.call is None
    assert router.misses.get("carmen", 0) == 0
    assert "carmen" not in router._cooling
    assert caller.phase == "waiting"  # offered again to the next agent
    async with sessions() as session:
        offers = (await session.execute(select(CallOffer))).scalars().all()
    assert [(o.agent, o.result) for o in offers] == [("carmen", OfferResult.FAILED)]


async def test_an_agent_hanging_up_just_after_answering_ends_the_call_as_answered(
    router: QueueRouter, sessions: async_sessionmaker[AsyncSession],
) -> None:
    caller = await offering(router, "c2")
    async with sessions.begin() as session:
        offer = await QueuedCallRepository(session).add_offer_by_id(
            caller.row, "carmen", offered_at=NOW, channel_id="c2-o1")
    leg = Leg("c2-o1", "carmen", caller, offer, 0)
    caller.legs[leg.channel_id], router.legs[leg.channel_id] = leg, leg
    router.states["carmen"] = (await router.store.apply("carmen", Ring("c2"), NOW)).state
    # The answer is handled (the call is connected) ...
    async with caller.lock:
        await router._connect(caller, leg, NOW)
    # ... while the leg's ChannelDestroyed, judged before it, ends it as an offer.
    await router._offer_failed(leg, OfferResult.FAILED)

    state = await router.store.get("carmen", NOW)
    assert state.status is AgentStatus.WRAP_UP and state.call is None
    assert router.misses.get("carmen", 0) == 0
    assert "c2" not in router.callers and router.finished("c2").is_set()
    async with sessions() as session:
        queued = await session.get(QueuedCall, caller.row)
        offers = (await session.execute(select(CallOffer))).scalars().all()
    assert queued is not None and queued.outcome is QueueOutcome.ANSWERED
    assert [(o.agent, o.result) for o in offers] == [("carmen", OfferResult.ANSWERED)]


async def callback_offering(router: QueueRouter, channel: str) -> Caller:
    """A confirmed callback on *channel* whose caller hung up (its usual state), with
    carmen reserved for it: the router between its reservation and the offer's task."""
    caller = await offering(router, channel)
    async with router.sessions.begin() as session:
        callback_id = await CallbackRepository(session).request(
            caller.row, "sales", "15550001", source="caller_id", at=NOW)
    router.callbacks.pending[channel] = Pending(
        caller, callback_id, "15550001", Callback(dial="PJSIP/{number}@trunk"),
        caller_gone=True)
    return caller


async def offers_and_attempts(sessions: async_sessionmaker[AsyncSession]
                              ) -> tuple[list[tuple[str, OfferResult | None]], list[str]]:
    async with sessions() as session:
        offers = (await session.execute(select(CallOffer))).scalars().all()
        attempts = (await session.execute(select(CallbackAttempt))).scalars().all()
    return [(o.agent, o.result) for o in offers], [a.result for a in attempts]


async def test_the_watchdog_keeps_an_agent_reserved_for_a_callback_whose_caller_is_gone(
    router: QueueRouter,
) -> None:
    """Before its offer's task runs, a callback has no attempt: the watchdog judged its
    reservation by the caller's channel (gone: it is a callback) and freed carmen."""
    await callback_offering(router, "cb1")

    live = router.callbacks.live_calls()  # what the watchdog adds to Asterisk's channels
    fixes = reconcile(await router.store.all(), live,
                      {"carmen": ContactStatus.REACHABLE}, NOW)

    assert "cb1" in live
    assert not fixes


async def test_a_callback_offer_never_rings_an_agent_reserved_for_another_caller(
    router: QueueRouter, sessions: async_sessionmaker[AsyncSession],
) -> None:
    """carmen was freed from callback cb2 and reserved for caller c3 before the offer's
    task ran: the callback waits again in its place and carmen's phone is not called."""
    caller = await callback_offering(router, "cb2")
    await router._apply("carmen", CallGone("cb2"), NOW)  # what the watchdog did
    other = await router.store.try_reserve("carmen", "c3", NOW, known=router.states["carmen"])
    assert other is not None
    router.states["carmen"] = other

    await router._offer(caller, "carmen", 0)

    state = await router.store.get("carmen", NOW)
    assert (state.status, state.call) == (AgentStatus.RESERVED, "c3")
    assert caller.phase == "waiting" and router.callbacks.pending["cb2"].attempt is None
    assert "cb2" in {call.id for call in router.index.waiting()}
    assert await offers_and_attempts(sessions) == ([], [])


async def test_an_agent_lost_while_its_callback_leg_was_dialled_is_hung_up_not_raised(
    router: QueueRouter, sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another node frees carmen and reserves her while the callback's leg to her is being
    created (the router's copy of her state is stale): the Ring is refused (WrongCall);
    the offer ends, cancelled, and the callback waits again; nothing is raised."""
    caller = await callback_offering(router, "cb4")

    async def create(endpoint: str, *, channel_id: str, **_: object) -> None:
        await router.store.apply("carmen", CallGone("cb4"), NOW)  # the other node
        assert await router.store.try_reserve("carmen", "c5", NOW) is not None
        router.callbacks._legs[channel_id].agent_started.set()  # its StasisStart

    async def dial(channel_id: str, *, caller: str | None = None,
                   timeout: int | None = None) -> None:
        return None

    monkeypatch.setattr(router.ari.channels, "create", create)
    monkeypatch.setattr(router.ari.channels, "dial", dial)

    await router._offer(caller, "carmen", 0)

    state = await router.store.get("carmen", NOW)
    assert (state.status, state.call) == (AgentStatus.RESERVED, "c5")
    assert caller.phase == "waiting" and router.callbacks.pending["cb4"].attempt is None
    assert "cb4" in {call.id for call in router.index.waiting()}
    assert await offers_and_attempts(sessions) == (
        [("carmen", OfferResult.CANCELLED)], [CallbackResult.AGENT_MISSED])
    assert router.misses.get("carmen", 0) == 0
