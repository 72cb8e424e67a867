"""Asterisk restarts under the router: every channel dies with it and ARI's websocket
drops. The router must reconnect by itself (backoff with jitter), close the records of
the calls that died, and reconcile every agent (carmen was on a call that no longer
exists: she is available again), then route the next caller to her.

A private Asterisk like the session PBX's (``tests/integration/nodes.py``), so the
restart disturbs no other test; its own SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.agents.state import AgentStatus, Login
from callcenter.asterisk.ari import ARIClient
from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.migrate import upgrade
from callcenter.storage.models import QueuedCall
from tests.conftest import OPEN_TIME, PBX
from tests.integration.nodes import Node, another_node, node_router, phone_on_every_node
from tests.integration.router_harness import with_queue


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The router's INFO lines in a failure's report (offers, answers, the phone's
    reachability after the restart): a timeout alone does not say which step never
    came (seen once in a loaded full run)."""
    caplog.set_level(logging.INFO)


CALLERS_APP = "cc-restart-callers"


@contextlib.asynccontextmanager
async def callers(node: Node) -> AsyncIterator[ARIClient]:
    """The test's own Stasis app holding the callers' side of Local channels into
    ``cc-queue``; it reconnects by itself after the restart."""
    async with node.ari(CALLERS_APP) as ari:
        task = asyncio.create_task(ari.run_event_loop(_ignore, reconnect_delay=0.2))
        try:
            yield ari
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _ignore(event: object) -> None:
    return None


async def _caller(ari: ARIClient, name: str) -> None:
    await ari.channels.originate("Local/sales@cc-queue", app=CALLERS_APP, channel_id=name,
                                 other_channel_id=f"{name}-q", caller_id=f"<{name}>")


async def test_router_reconnects_after_an_asterisk_restart_and_reconciles_agents(
        pbx: PBX, tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url, sqlite_immediate=True)
    # No wrap-up: the agent of the cut call is free as soon as the router knows.
    config = with_queue(pbx.loaded.config, "sales", wrapup=0)
    try:
        async with another_node(pbx, tmp_path / "node", OPEN_TIME, restartable=True) as node, \
                node_router(node, config, make_sessionmaker(engine)) as router, \
                phone_on_every_node(pbx, "carmen", [node]), callers(node) as ari:
            states = router.states
            await router.store.apply("carmen", Login(), router.clock(), reason="test")
            router.agent_changed("carmen")
            await _caller(ari, "15558882001")
            async with asyncio.timeout(20):
                await router.wait_until(lambda: states["carmen"].status is AgentStatus.ON_CALL)
            connections = router.connections

            # stop() returns once the ports can be bound again: start() right after works.
            await asyncio.to_thread(node.instance.stop)
            await asyncio.to_thread(node.instance.start)

            # Reconnected (a new resync), the dead call closed, carmen free again.
            async with asyncio.timeout(60):
                await router.wait_until(lambda: router.connections > connections
                                        and states["carmen"].status is AgentStatus.AVAILABLE)
            async with asyncio.timeout(10):
                await router.finished("15558882001-q").wait()
            # ...and the next caller reaches her on the restarted Asterisk.
            await _caller(ari, "15558882002")
            async with asyncio.timeout(30):
                await router.wait_until(lambda: states["carmen"].status is AgentStatus.ON_CALL
                                        and states["carmen"].call == "15558882002-q")
            await ari.channels.hangup("15558882002")
            async with asyncio.timeout(10):
                await router.finished("15558882002-q").wait()
            assert await node.wait_no_channels() == 0
        async with make_sessionmaker(engine)() as session:
            rows = {r.channel_id: r for r in (await session.execute(select(QueuedCall)))
                    .scalars()}
    finally:
        await engine.dispose()
    dead, next_one = rows["15558882001-q"], rows["15558882002-q"]
    assert (dead.agent, dead.outcome) == ("carmen", "answered")  # answered, then cut
    assert dead.ended_at is not None
    assert (next_one.agent, next_one.outcome) == ("carmen", "answered")
