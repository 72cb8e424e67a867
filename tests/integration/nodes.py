"""More nodes of the session's call center: another Asterisk with the example config, the
same agents, their phones registered on every node, a queue router per node sharing one
PostgreSQL.

A node is what an operator adds to scale out: its own home (so its own node name, the
Asterisk ``systemname`` that prefixes its channel ids), its own free loopback ports, the
dialplan rendered from the same config with the SAME agent passwords (copied from the
first node's ``secrets.json``: one softphone account works on every node), the same
FastAGI server. The schedule clock is set as on the session PBX.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.queue_router import QueueRouter
from callcenter.agents.state import EndWrapUp, IllegalTransition, Logout, Unpause
from callcenter.apply import apply_files
from callcenter.asterisk import variables as V
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.secrets import AGENT_PASSWORDS, ensure_secrets, read_secrets
from callcenter.config.models import CallCenterConfig
from callcenter.testing.ports import (
    free_port,
    free_udp_range,
    free_udp_tcp_port,
    stable_port,
)
from callcenter.testing.sipp import Caller, Keypress, SippResult, run_call
from callcenter.testing.softphone import Softphone
from tests.conftest import PBX

__all__ = ["Node", "another_node", "node_router", "phone_on_every_node", "session_node"]


@dataclass
class Node:
    """One Asterisk of the call center (the session PBX is one, :func:`another_node`
    makes more). Ports for sipp and phones come from the session PBX's one sequence,
    so no two nodes hand out the same port."""

    instance: AsteriskInstance
    pbx: PBX

    @property
    def name(self) -> str:
        return self.instance.node

    @property
    def sip_port(self) -> int:
        return self.instance.settings.sip_port

    def ari(self, app: str) -> ARIClient:
        creds = self.instance.credentials
        return ARIClient(self.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=app)

    async def call(self, caller_id: str, keys: tuple[Keypress, ...], hold_ms: int) -> SippResult:
        """A real SIP caller (sipp) into this node's example IVR."""
        sip, media = self.pbx.sipp_ports()
        return await run_call(Caller("5551000", caller_id=caller_id, keys=keys, hold_ms=hold_ms),
                              sip_port=self.sip_port, local_port=sip, media_port=media,
                              timeout=90)

    async def wait_no_channels(self, timeout: float = 10.0) -> int:
        return await asyncio.to_thread(self.instance.wait_no_channels, timeout)


def session_node(pbx: PBX) -> Node:
    return Node(pbx.instance, pbx)


@contextlib.asynccontextmanager
async def another_node(pbx: PBX, home: Path, clock: dt.datetime, *,
                       restartable: bool = False) -> AsyncIterator[Node]:
    """Another Asterisk like the session PBX's, started in *home* (default node name).
    ``restartable``: its SIP, HTTP and AMI ports lie below the kernel's ephemeral range,
    so no outgoing connection takes one while it is stopped and it can start again."""
    instance = AsteriskInstance(home)
    # The agents' softphone passwords of the first node: the same accounts on every node.
    passwords = read_secrets(pbx.instance.secrets_file)[AGENT_PASSWORDS]
    ensure_secrets(instance.secrets_file, {AGENT_PASSWORDS: passwords})
    rtp_start, rtp_end = free_udp_range(40)
    if restartable:
        sip, http, ami = stable_port(udp_too=True), stable_port(), stable_port()
        rtp_start, rtp_end = free_udp_range(40, low=24000, high=28000)
    else:
        sip, http, ami = free_udp_tcp_port(), free_port(), free_port()
    instance.setup(pbx.instance.installation, InstanceSettings(
        sip_port=sip, http_port=http, ami_port=ami, rtp_start=rtp_start, rtp_end=rtp_end))
    from tests.passwords import instance_render

    apply_files(instance, instance_render(instance, pbx.loaded))
    await asyncio.to_thread(instance.start)
    try:
        await asyncio.to_thread(
            instance.cli, f"dialplan set global {V.CLOCK_OVERRIDE} {int(clock.timestamp())}")
        yield Node(instance, pbx)
    finally:
        await asyncio.to_thread(instance.stop)


def phone_on_every_node(pbx: PBX, agent: str, nodes: Sequence[Node]) -> Softphone:
    """Agent *agent*'s real softphone (baresip), one account per node (option (a) of the
    several-nodes design: each node rings its own registration)."""
    sip, media = pbx.sipp_ports()
    return Softphone(agent, pbx.agent_password(agent), registrar_port=nodes[0].sip_port,
                     more_registrars=tuple(n.sip_port for n in nodes[1:]), sip_port=sip,
                     ctrl_port=free_port(), rtp_port=media)


@contextlib.asynccontextmanager
async def node_router(node: Node, config: CallCenterConfig,
                      sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[QueueRouter]:
    """This node's queue router, in-process, with its own ARI client and the shared
    database; its node name is left to default (the Asterisk's systemname)."""
    async with node.ari(config.settings.queue_app) as ari:
        router = QueueRouter(config, ari, sessions)
        task = asyncio.create_task(router.run(), name=f"queue-router {node.name}")
        ready = asyncio.create_task(router.ready.wait())
        try:
            await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # the router's own error, not a timeout
            assert router.ready.is_set(), f"the router of {node.name} was not ready in 20 s"
            yield router
            left = await ari.bridges.list()
            assert [b.id for b in left] == [], f"bridges left on {node.name}"
        finally:
            for running in (ready, task):
                running.cancel()
            await asyncio.gather(ready, task, return_exceptions=True)
            now = router.clock()
            for agent in config.agents:
                for event in (EndWrapUp(), Unpause(), Logout()):
                    with contextlib.suppress(IllegalTransition):
                        await router.store.apply(agent, event, now, reason="test cleanup")
