"""Chaos: a few hundred queued calls, a random leg hung up at a random moment of each.

Callers are Local channels originated by the test into ``cc-queue`` (the ``;2`` half runs
the generated queue extension and enters the router's Stasis app; the ``;1`` half is the
caller's side, held in the test's own app). Three agents answer on registered softphones
(baresip). For every call the test picks, at random, whom to hang up and when: the caller's
side, the caller's channel in the router's app, the agent's leg (while it rings or talks),
or nobody until the call's end. Afterwards Asterisk must hold zero channels and zero
bridges, the router nothing, every queued call and offer must be closed, and every agent
must be in a state with no caller tied to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

from sqlalchemy import select

from callcenter.agents.state import BUSY_STATUSES, AgentStatus
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.ari.client import ARIError
from callcenter.storage.models import CallOffer, QueuedCall
from tests.conftest import PBX
from tests.integration.router_harness import RunningRouter, start_router, with_queue

CALLS = 240
CONCURRENCY = 8
QUEUES = ("sales", "customer_service", "tech_support")
APP = "cc-chaos-callers"


@contextlib.asynccontextmanager
async def caller_app(pbx: PBX) -> AsyncIterator[ARIClient]:
    """The test's own Stasis app, holding the callers' side of each Local channel."""
    creds = pbx.instance.credentials
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=APP) as ari, ari.events() as events:
        async def drain() -> None:
            async for _ in events:
                pass

        task = asyncio.create_task(drain())
        try:
            yield ari
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def one_call(n: int, rng: random.Random, callers: ARIClient,
                   running: RunningRouter) -> str:
    """Place call *n*, hang up one leg at a random moment; return what was hung up."""
    queue = rng.choice(QUEUES)
    side, queued = f"chaos-{n}-{uuid.uuid4().hex[:8]}", f"chaos-{n}-q"
    await callers.channels.originate(
        f"Local/{queue}@cc-queue", app=APP, channel_id=side, other_channel_id=queued,
        caller_id=f'"chaos {n}" <1555700{n:04d}>', timeout=10)
    await asyncio.sleep(rng.uniform(0.0, 3.0))  # the random moment (chaos, not a wait)
    choice = rng.choice(("caller", "queued", "agent", "agent", "none"))
    target: str | None = {"caller": side, "queued": queued}.get(choice)
    if choice == "agent":
        caller = running.router.callers.get(queued)
        legs = [leg.channel_id for leg in caller.legs.values() if not leg.ended] if caller else []
        target = legs[0] if legs else side
        choice = "agent" if legs else "caller (no agent leg)"
    elif choice == "none":
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        target = side
    with contextlib.suppress(ARIError):
        await callers.channels.hangup(target)  # type: ignore[arg-type]
    if target != side:
        # Every call ends: a leg hung up before it existed (an agent leg not created yet,
        # 404) must not leave the caller talking forever.
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        with contextlib.suppress(ARIError):
            await callers.channels.hangup(side)
    return choice


async def test_random_hangups_leave_nothing_behind(clean_pbx: PBX) -> None:
    config = clean_pbx.loaded.config
    for queue in QUEUES:  # short, so many calls are answered; misses never pause anyone
        config = with_queue(config, queue, wrapup=0, auto_pause_after=0, relax=(),
                            requires=None)
    rng = random.Random(20261130)
    agents = ("alice", "bob", "carmen")
    async with start_router(clean_pbx, config) as running, caller_app(clean_pbx) as callers, \
            clean_pbx.agent_phone("alice"), clean_pbx.agent_phone("bob"), \
            clean_pbx.agent_phone("carmen"):
        await running.login(*agents)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def bounded(n: int) -> str:
            async with limit:
                return await one_call(n, random.Random(rng.random()), callers, running)

        async with asyncio.timeout(600):
            choices = Counter(await asyncio.gather(*(bounded(n) for n in range(CALLS))))
            router = running.router
            await router.wait_until(lambda: not router.callers and not router.legs)
        left = await clean_pbx.wait_no_channels(timeout=20)
        assert left == 0, f"{left} channel(s) left"
        assert await running.ari.bridges.list() == []
        states = {agent: await running.state(agent) for agent in agents}
        async with running.router.sessions() as session:
            rows = (await session.execute(select(QueuedCall).where(
                QueuedCall.channel_id.like("chaos-%")))).scalars().all()
            offers = (await session.execute(select(CallOffer).where(
                CallOffer.queued_call_id.in_([r.id for r in rows])))).scalars().all()
    # A caller hung up before its channel reached the queue has no record; every one
    # the router admitted has exactly one.
    admitted = {c for c in running.numbers if c.startswith("chaos-")}
    assert {r.channel_id for r in rows} == admitted
    assert len(rows) > CALLS * 0.7, len(rows)
    assert [r.channel_id for r in rows if r.ended_at is None] == []
    assert [o.id for o in offers if o.result is None or o.ended_at is None] == []
    outcomes = Counter(r.outcome for r in rows)
    assert outcomes["answered"] > 0 and outcomes["abandoned"] > 0, outcomes
    busy = {a: s.status for a, s in states.items() if s.status in BUSY_STATUSES}
    assert busy == {}, busy
    assert all(s.status is AgentStatus.AVAILABLE for s in states.values()), states
    print(f"chaos: {dict(choices)}; outcomes {dict(outcomes)}; offers "
          f"{dict(Counter(o.result for o in offers))}")
