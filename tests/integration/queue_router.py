"""The queue router, played by a test: it takes the calls the dialplan hands to Stasis.

Registered over ARI as ``settings.queue_app`` before any call is placed, it records
each call's ``StasisStart`` (the hand-off contract's args) by caller number and hangs
the call up. Without it, ``Stasis()`` fails and the queue's fallback takes the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from callcenter.asterisk.ari import ARIClient, ARIEventStream, ARINotFound, StasisStart
from tests.aio import cancel_and_wait

__all__ = ["QueueRouterStub", "queue_outcome", "queue_router_stub"]


def queue_outcome(start: StasisStart) -> str:
    """``simulate``'s words for what the queue router received."""
    args = dict(a.split("=", 1) for a in start.args[1:] if "=" in a)
    return (f"queue {start.args[0]} skills={args.get('skills', '')} "
            f"priority={args.get('priority', '')} language={args.get('language', '')}")


class QueueRouterStub:
    """Plays the queue router (``settings.queue_app``): records each call's StasisStart
    by caller number, then hangs the call up (cause 16), as a router with no agent
    would after its own checks."""

    def __init__(self, ari: ARIClient) -> None:
        self.ari = ari
        self.starts: dict[str, StasisStart] = {}

    async def run(self, events: ARIEventStream) -> None:
        async for event in events:
            if isinstance(event, StasisStart):
                self.starts[event.channel.caller.number] = event
                try:
                    await self.ari.channels.hangup(event.channel.id)
                except ARINotFound:
                    pass  # the caller hung up first: normal


@asynccontextmanager
async def queue_router_stub(ari_url: str, *, username: str, password: str,
                            app: str) -> AsyncIterator[QueueRouterStub]:
    """A registered stub router: Asterisk knows the app before the body runs, so a
    ``Stasis()`` in the body cannot fail for lack of it."""
    async with ARIClient(ari_url, username=username, password=password, app=app) as ari, \
            ari.events() as events:
        await ari.applications.get(app)  # ARINotFound unless registered
        stub = QueueRouterStub(ari)
        task = asyncio.create_task(stub.run(events), name="queue-router-stub")
        try:
            yield stub
        finally:
            await cancel_and_wait(task)
