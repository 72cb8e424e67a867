"""A second, private Asterisk for tests that apply configs of their own.

The session ``pbx`` runs ``config/example`` for every other test; tests that
load other configs (hostile file names, the simulator/PBX agreement config)
get their own instance on free loopback ports here, so they cannot disturb it.
Where a call went is read from Asterisk's own AMI events, and a call counts as
over when AMI reports its ``Hangup`` (every ``Newexten`` of the channel comes
before it on the same connection): no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.asterisk.ami.client import AMIClient, AMIMessage
from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port
from callcenter.testing.route import route_of

__all__ = ["CallTrace", "ScratchPBX", "scratch_pbx"]


@dataclass
class CallTrace:
    """The dialplan steps one caller's channel ran, and how it hung up."""

    steps: list[AMIMessage] = field(default_factory=list)
    hangup: AMIMessage | None = None

    @property
    def route(self) -> list[str]:
        """Flows and menus entered, as ``callcenter simulate`` reports them."""
        return list(route_of(self.steps, self.hangup).route)

    def app(self, name: str) -> AMIMessage | None:
        return next((s for s in self.steps if s.get("Application") == name), None)

    def apps(self) -> list[str]:
        return [f"{s.get('Context')},{s.get('Extension')}: {s.get('Application')}"
                f"({s.get('AppData', '')})" for s in self.steps]


@dataclass
class ScratchPBX:
    instance: AsteriskInstance
    ami: AMIClient

    @property
    def sip_port(self) -> int:
        return self.instance.settings.sip_port

    async def trace(self, caller: str, call: asyncio.Future | object, timeout: float = 60) -> CallTrace:
        """Run ``call`` (an awaitable placing it) and collect caller's channel events."""
        trace = CallTrace()
        with self.ami.subscribe("Newexten", "Hangup") as events:
            task = asyncio.ensure_future(call)  # type: ignore[arg-type]
            try:
                async with asyncio.timeout(timeout):
                    while trace.hangup is None:
                        event = await events.get()
                        if event.get("CallerIDNum") != caller:
                            continue
                        if event.event == "Newexten":
                            trace.steps.append(event)
                        elif event.event == "Hangup":
                            trace.hangup = event
                await task
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        return trace


@contextlib.asynccontextmanager
async def scratch_pbx(home: Path, installation: AsteriskInstallation) -> AsyncIterator[ScratchPBX]:
    """Asterisk in ``home`` on free loopback ports, started, with an AMI connection."""
    instance = AsteriskInstance(home)
    rtp_start, rtp_end = free_udp_range(40)
    instance.setup(installation, InstanceSettings(
        sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
        rtp_start=rtp_start, rtp_end=rtp_end,
    ))
    await asyncio.to_thread(instance.start)
    try:
        creds = instance.credentials
        async with AMIClient("127.0.0.1", instance.settings.ami_port,
                             username=creds.ami_user, secret=creds.ami_secret) as ami:
            yield ScratchPBX(instance, ami)
    finally:
        await asyncio.to_thread(instance.stop)
