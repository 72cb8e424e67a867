"""A campaign paused, started and stopped while its dialer runs, with real calls: our PBX,
the test carrier, carmen's softphone (the node of :mod:`tests.integration.carrier_trunk`,
as in ``test_dialer_progressive.py``).

The state is changed by the real ``callcenter campaigns pause|start|stop`` commands in
processes of their own, on the node's database: the only channel to the dialer, as
between machines. What is asserted is what happened: paused with carmen available, the
dialer passes and places nothing (the carrier's AMI sees no call, the contact untouched,
carmen still available, the dialer's heartbeat in ``campaigns status``); started, the
contact is dialled and bridged to carmen; stopped while they talk, the call goes on
until the contact hangs up (the carrier's ``Hangup(16)``: the contact's leg is destroyed with
cause 16, the attempt ends ``answered``) and only then does the dialer's ``run`` return, its heartbeat gone. Waits
are on the dialer's passes and pulses; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import select

from ari_apps.dialer import CampaignDialer
from callcenter.agents.state import (
    AgentStatus,
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
)
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami.client import AMIMessage
from callcenter.asterisk.ari.client import ARIClient
from callcenter.asterisk.ari.events import ChannelDestroyed
from callcenter.dialer.amd import DIALER_APP
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.aio import cancel_and_wait
from tests.conftest import PBX
from tests.integration.carrier_trunk import TRUNK_CALLER_ID, dialer_node
from tests.integration.carrier_trunk import DialerNode as Node

pytestmark = pytest.mark.integration

#: Answers, says "hello world", stays on the line and hangs up (cause 16) after 20 s.
TALKS_20S = "+15550100020"
CAMPAIGN = dedent("""\
    campaigns:
      outbound:
        mode: progressive
        agents: [carmen]
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        safe_harbor: tt-weasels
    """)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
               asterisk_installation) -> AsyncIterator[Node]:
    async with dialer_node(pbx, tmp_path_factory, asterisk_installation, "state",
                           {"campaigns.yaml": CAMPAIGN}) as joined:
        yield joined


async def campaigns(node: Node, home: Path, *args: str) -> str:
    """``callcenter campaigns ARGS outbound`` in a process of its own, on the node's
    database; its standard output (a non-zero exit fails the test)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from callcenter.cli import main; main()", "--home", str(home),
        "campaigns", *args, "outbound", "--config", str(node.pbx.config_dir),
        "--db", node.pbx.db_url, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, (args, out.decode(), err.decode())
    return out.decode()


async def _collect(subscription: Any, into: list[AMIMessage]) -> None:
    while True:
        into.append(await subscription.get())


def _carrier_calls(events: list[AMIMessage]) -> list[str]:
    """The carrier's ``NoOp(carrier call from <caller> to <number>)`` of each call."""
    return [e["AppData"] for e in events if e.event == "Newexten"
            and e.get("Context") == "carrier-in" and e.get("Application") == "NoOp"]


async def test_paused_places_nothing_start_dials_stop_lets_the_call_end_then_returns(
        node: Node, tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    assert "outbound: paused (was running)" in await campaigns(node, home, "pause")
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts("outbound",
                                                          [NewContact(TALKS_20S, "UTC")])
    creds = node.pbx.instance.credentials
    carrier_seen: list[AMIMessage] = []
    async with ARIClient(node.pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=DIALER_APP) as ari, \
            ari.events() as stream, node.pbx.agent_phone("carmen") as phone, \
            node.carrier_ami.subscribe("Newexten") as carrier_events:
        dialer = CampaignDialer(node.pbx.loaded.config, "outbound", ari, sessions,
                                node="state", wrap_up=timedelta(seconds=2), tick=0.2)

        destroyed: dict[str, int] = {}  # channel id -> Q.850 cause, as Asterisk said

        async def read() -> None:
            async for event in stream:
                if isinstance(event, ChannelDestroyed):
                    destroyed[event.channel.id] = event.cause
                await dialer.on_event(event)

        async def passes(n: int) -> None:
            target = dialer.passes + n
            async with asyncio.timeout(20):
                await dialer.wait_until(lambda: dialer.passes >= target)

        reader = asyncio.create_task(read(), name="dialer events")
        watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
        run = asyncio.create_task(dialer.run(), name="dialer")
        call = asyncio.create_task(phone.call())
        try:
            async with asyncio.timeout(20):
                await dialer.ready.wait()
            await dialer.store.apply("carmen", Login(), utc_now(), reason="test")
            # Paused, carmen free: pass after pass, nothing is placed.
            await passes(5)
            assert dialer.watch.permit is not None
            assert not dialer.watch.permit.place_calls, dialer.watch.permit
            assert _carrier_calls(carrier_seen) == [] and dialer.live == {}
            assert (await dialer.store.get("carmen", utc_now())).status \
                is AgentStatus.AVAILABLE
            async with sessions() as session:
                contact = await session.scalar(select(Contact))
            assert contact is not None
            assert (contact.state, contact.attempts) == (ContactState.PENDING, 0)
            status = json.loads(await campaigns(node, home, "status", "--format", "json"))
            assert (status["state"], status["pending"]) == ("paused", 1)
            assert [d["node"] for d in status["dialers"]] == ["dialer:state"]

            # Started: the contact is dialled and bridged to carmen.
            assert "outbound: running (was paused)" in await campaigns(node, home, "start")
            async with asyncio.timeout(60):
                await dialer.wait_until(lambda: "carmen" in dialer.talking)
            live = dialer.live["carmen"]
            bridge = await ari.bridges.get(dialer.talking["carmen"])
            assert set(bridge.channels) == {live.channel_id, f"{live.channel_id}-a"}
            assert (await ari.channels.get(live.channel_id)).state == "Up"

            # Stopped while they talk: the dialer stops placing calls at its next pass,
            # the call goes on, and run() returns only once it ended.
            assert "outbound: stopped (was running)" in await campaigns(node, home, "stop")
            async with asyncio.timeout(20):
                await dialer.wait_until(lambda: dialer.watch.permit is not None
                                        and dialer.watch.permit.exit)
            assert not run.done() and "carmen" in dialer.talking
            bridge = await ari.bridges.get(dialer.talking["carmen"])
            assert set(bridge.channels) == {live.channel_id, f"{live.channel_id}-a"}
            async with asyncio.timeout(60):
                await run  # the contact hangs up after its 20 s: then run() returns
            seen = await asyncio.wait_for(call, 30)
            assert seen.answered, seen.stderr
        finally:
            dialer.stop()
            async with asyncio.timeout(60):
                await asyncio.gather(run, return_exceptions=True)
            await cancel_and_wait(call)
            await cancel_and_wait(watcher)
            await cancel_and_wait(reader)
            now = utc_now()
            for event in (EndWrapUp(), Logout()):
                with contextlib.suppress(IllegalTransition):
                    await dialer.store.apply("carmen", event, now, reason="test cleanup")
    try:
        assert _carrier_calls(carrier_seen) == [
            f"carrier call from {TRUNK_CALLER_ID} to {TALKS_20S}"]
        async with sessions() as session:
            (attempt,) = list(await session.scalars(select(ContactAttempt)))
            contact = await session.scalar(select(Contact))
        assert (attempt.outcome, attempt.agent) == (AttemptOutcome.ANSWERED, "carmen")
        assert attempt.answered_at is not None and attempt.ended_at is not None
        # Its natural end: the contact hung up (the carrier's Hangup(16) after 20 s).
        assert destroyed.get(live.channel_id) == 16, destroyed
        assert attempt.cause == 16  # stored from the same event
        assert (attempt.ended_at - attempt.answered_at).total_seconds() > 12
        assert contact is not None and contact.state is ContactState.DONE
        status = json.loads(await campaigns(node, home, "status", "--format", "json"))
        assert (status["state"], status["dialers"], status["done"]) == ("stopped", [], 1)
    finally:
        await engine.dispose()
    left = await node.pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"
