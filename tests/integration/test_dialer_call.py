"""The dialer places real calls through a real trunk to the test carrier.

Our PBX (127.0.0.1) and the carrier (:mod:`callcenter.testing.carrier`, 127.0.0.2), each a
real Asterisk, joined by the PJSIP trunk ``carrier`` from YAML. Every carrier number class
is called with :func:`callcenter.dialer.placer.place_call` and must give its
:class:`~callcenter.dialer.outcome.Outcome`, AMD (``cc-dialer-amd``) telling the
answering machine's greeting from a person's "hello". What the placer returns is checked
against what the carrier's own AMI saw (the number dialled, the caller ID it received).
The placer waits on ARI events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from callcenter.apply import apply_files
from callcenter.asterisk import variables as V
from callcenter.asterisk.ami.client import AMIClient
from callcenter.asterisk.ari.client import ARIClient
from callcenter.asterisk.secrets import set_trunk_password, trunk_passwords
from callcenter.config.loader import load_config
from callcenter.dialer.amd import DIALER_APP
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.placer import ChannelInboxes, PlacedCall, new_channel_id, place_call
from callcenter.testing.aio import cancel_and_wait
from callcenter.testing.carrier import Carrier
from dialplan.generator import render
from dialplan.trunks import auth_trunks
from tests.integration.scratch_pbx import ScratchPBX, scratch_pbx

pytestmark = pytest.mark.integration

TRUNK_CALLER_ID = "+15550100000"


@dataclass
class Dialer:
    ours: ScratchPBX
    carrier: Carrier
    carrier_ami: AMIClient
    ari: ARIClient
    inboxes: ChannelInboxes

    async def call(self, number: str, *, ring_seconds: int = 10, amd: bool = True,
                   caller_id: str | None = None) -> PlacedCall:
        channel_id = new_channel_id()
        with self.inboxes.open(channel_id) as inbox:
            return await place_call(self.ari, inbox, number=number, trunk="carrier",
                                    caller_id=caller_id, ring_seconds=ring_seconds, amd=amd,
                                    channel_id=channel_id)


async def _registered(ours: ScratchPBX, registry) -> None:
    """Our trunk's registration to the carrier: its Registry event, or already done."""
    async with asyncio.timeout(30):
        while True:
            _, out = await asyncio.to_thread(ours.instance.cli, "pjsip show registrations")
            if "Registered" in out:
                return
            event = await registry.get()
            if event.get("Status") == "Registered":
                return


@pytest.fixture(scope="module")
async def dialer(tmp_path_factory: pytest.TempPathFactory,
                 asterisk_installation) -> AsyncIterator[Dialer]:
    carrier = Carrier(tmp_path_factory.mktemp("carrier-home"))
    carrier.setup(asterisk_installation)
    await asyncio.to_thread(carrier.start)
    try:
        creds = carrier.instance.credentials
        host, port = carrier.instance.ami_address
        async with AMIClient(host, port, username=creds.ami_user,
                             secret=creds.ami_secret) as carrier_ami, \
                scratch_pbx(tmp_path_factory.mktemp("our-home"), asterisk_installation) as ours:
            directory = tmp_path_factory.mktemp("config")
            (directory / "main.yaml").write_text(dedent("""\
                entry_points:
                  main: {numbers: ["7000"], flow: hello}
                flows:
                  hello:
                    steps:
                      - play: hello-world
                      - hangup: true
                """))
            (directory / "trunks.yaml").write_text(
                carrier.trunk_yaml(dids={"+15550109000": "main"}, caller_id=TRUNK_CALLER_ID))
            loaded = load_config(directory, sounds=asterisk_installation.sound_languages())
            set_trunk_password(ours.instance.secrets_file, "carrier", carrier.password)
            files = render(loaded.config, loaded.where, agent_passwords={},
                           trunk_passwords=trunk_passwords(ours.instance.secrets_file,
                                                           auth_trunks(loaded.config)))
            with ours.ami.subscribe("Registry") as registry:
                await asyncio.to_thread(apply_files, ours.instance, files)
                await _registered(ours, registry)
            ari_creds = ours.instance.credentials
            async with ARIClient(ours.instance.ari_url, username=ari_creds.ari_user,
                                 password=ari_creds.ari_password, app=DIALER_APP) as ari, \
                    ari.events() as events:
                inboxes = ChannelInboxes()

                async def read() -> None:
                    async for event in events:
                        inboxes.put(event)

                reader = asyncio.create_task(read())
                try:
                    yield Dialer(ours, carrier, carrier_ami, ari, inboxes)
                finally:
                    await cancel_and_wait(reader)
    finally:
        await asyncio.to_thread(carrier.stop)


@contextlib.asynccontextmanager
async def _hung_up(dialer: Dialer, call: PlacedCall) -> AsyncIterator[None]:
    """Hang a live call up when the test is done with it."""
    try:
        yield
    finally:
        if call.channel is not None:
            with contextlib.suppress(Exception):
                await dialer.ari.channels.hangup(call.channel_id)


async def test_explore(dialer: Dialer) -> None:
    import logging
    logging.basicConfig(level=logging.INFO)
    for number, amd in [("+15550100008", True), ("+15550104005", True),
                        ("+15550105000", True), ("+15550101000", False),
                        ("+15550103000", False), ("+15550102000", False),
                        ("+15559999999", False)]:
        call = await dialer.call(number, amd=amd, ring_seconds=3)
        print(number, amd, call.outcome, call.observation)
        if call.channel is not None:
            await dialer.ari.channels.hangup(call.channel_id)
