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
from textwrap import dedent

import pytest

from callcenter.asterisk import variables as V
from callcenter.asterisk.ami.client import AMIClient
from callcenter.asterisk.ari.client import ARIClient, ARINotFound
from callcenter.dialer.amd import DIALER_APP
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.placer import (
    ChannelInboxes,
    PlacedCall,
    new_channel_id,
    place_call,
)
from callcenter.testing.aio import cancel_and_wait
from callcenter.testing.carrier import Carrier
from tests.integration.carrier_trunk import connect_trunk
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
                   caller_id: str | None = None, channel_id: str | None = None,
                   ) -> PlacedCall:
        channel_id = channel_id or new_channel_id()
        with self.inboxes.open(channel_id) as inbox:
            return await place_call(self.ari, inbox, number=number, trunk="carrier",
                                    caller_id=caller_id, ring_seconds=ring_seconds, amd=amd,
                                    channel_id=channel_id)


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
            await connect_trunk(ours, carrier, directory, asterisk_installation)
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


async def _carrier_saw(dialer: Dialer, place) -> tuple[PlacedCall, dict[str, str]]:
    """Place a call and the carrier's first step of it (``NoOp(carrier call from <caller
    ID> to <number>)``): what the network received."""
    with dialer.carrier_ami.subscribe("Newexten") as steps:
        call = await place
        seen = await steps.wait_for("Newexten", 10, Context="carrier-in", Application="NoOp")
    return call, dict(seen)


async def _gone(dialer: Dialer, channel_id: str) -> bool:
    return channel_id not in {c.id for c in await dialer.ari.channels.list()}


async def test_live_answer_is_handed_back_up_with_amd_saying_human(dialer: Dialer) -> None:
    number = "+15550100020"  # says "hello world", then listens for 20 s
    call, seen = await _carrier_saw(dialer, dialer.call(number, caller_id="+15557770001"))
    try:
        assert call.outcome is Outcome.LIVE, call
        assert call.observation.amd is not None and call.observation.amd.status == "HUMAN"
        # Up, still ours (in Stasis cc-dialer): ready to be bridged to an agent.
        assert call.channel is not None and call.channel.state == "Up"
        assert call.observation.ended_at is None
        assert (await dialer.ari.channels.get(call.channel_id)).state == "Up"
        assert await dialer.ari.channels.get_variable(call.channel_id, V.AMD) \
            == call.observation.amd.raw
        # The network got the number and the call's own caller ID, not the trunk's.
        assert seen["AppData"] == f"carrier call from +15557770001 to {number}"
    finally:
        await dialer.ari.channels.hangup(call.channel_id)


async def test_live_answer_without_amd_is_handed_back_at_once(dialer: Dialer) -> None:
    call, seen = await _carrier_saw(dialer, dialer.call("+15550100020", amd=False))
    try:
        assert call.outcome is Outcome.LIVE
        assert call.observation.amd is None and call.channel is not None
        assert seen["AppData"] == f"carrier call from {TRUNK_CALLER_ID} to +15550100020"
    finally:
        await dialer.ari.channels.hangup(call.channel_id)


async def test_app_amd_is_loaded(dialer: Dialer) -> None:
    _, out = await asyncio.to_thread(dialer.ours.instance.cli, "module show like app_amd")
    assert "app_amd.so" in out and "Running" in out, out


async def test_answering_machine_is_told_from_a_person_and_hung_up(dialer: Dialer) -> None:
    machine, person = await asyncio.gather(dialer.call("+15550104030"),
                                           dialer.call("+15550100030"))
    try:
        assert machine.outcome is Outcome.MACHINE, machine
        assert machine.observation.amd is not None
        assert machine.observation.amd.status == "MACHINE"
        # The greeting is 8.5 s of voice: AMD decides within its 5 s, and the dialer
        # hangs the machine up at once (it would talk for 30 s after the beep).
        assert machine.channel is None and machine.observation.talk_seconds is not None
        assert machine.observation.talk_seconds < 6, machine.observation
        assert await _gone(dialer, machine.channel_id)
        assert person.outcome is Outcome.LIVE, person
    finally:
        await dialer.ari.channels.hangup(person.channel_id)


async def test_busy_number(dialer: Dialer) -> None:
    call = await dialer.call("+15550101000")
    assert (call.outcome, call.observation.cause) == (Outcome.BUSY, 17)
    assert call.channel is None and not call.observation.answered


async def test_unanswered_number_gives_up_after_the_ring_limit(dialer: Dialer) -> None:
    call = await dialer.call("+15550102000", ring_seconds=2)
    assert (call.outcome, call.observation.cause) == (Outcome.NO_ANSWER, 19)
    assert call.channel is None and not call.observation.answered


async def test_failing_number_503(dialer: Dialer) -> None:
    call = await dialer.call("+15550103000")
    assert (call.outcome, call.observation.cause) == (Outcome.FAILED, 34)


async def test_number_the_network_does_not_know(dialer: Dialer) -> None:
    call = await dialer.call("+15559990000")  # the carrier answers 404
    assert (call.outcome, call.observation.cause) == (Outcome.INVALID_NUMBER, 1)


@pytest.mark.parametrize("amd", [True, False])
async def test_answer_then_hang_up_at_once(dialer: Dialer, amd: bool) -> None:
    call = await dialer.call("+15550105000", amd=amd)
    if not amd:
        # Without AMD the answer is handed back before the hangup can be seen; the
        # channel then ends within the second (cause 16) and is no one's to bridge.
        assert call.outcome is Outcome.LIVE and call.channel is not None
        with contextlib.suppress(ARINotFound):
            await dialer.ari.channels.hangup(call.channel_id)
        return
    assert call.outcome is Outcome.HANGUP_AT_ONCE, call
    assert call.channel is None and call.observation.cause == 16
    # Gone while AMD listened (app_amd logs HANGUP; CC_AMD is never set after a hangup).
    assert call.observation.amd is not None and call.observation.amd.status == "HANGUP"


@pytest.mark.parametrize("number", ["+1555;0100003", "1000@evil", "${SHELL(id)}",
                                    "+15550100003,Wait(9)", "", "+", "1" * 21, "+15550100003\n"])
async def test_hostile_numbers_are_refused_before_dialling(dialer: Dialer, number: str) -> None:
    before = {c.id for c in await dialer.ari.channels.list()}
    call = await dialer.call(number)
    assert call.outcome is Outcome.INVALID_NUMBER and call.channel is None
    assert {c.id for c in await dialer.ari.channels.list()} <= before


async def test_cancelling_the_placer_hangs_the_ringing_call_up(dialer: Dialer) -> None:
    with dialer.carrier_ami.subscribe("Newexten", "Hangup") as carrier_events:
        channel_id = new_channel_id()
        task = asyncio.create_task(dialer.call("+15550102000", ring_seconds=60,
                                               channel_id=channel_id))
        # The carrier rings its subscriber: the call is out on the network.
        await carrier_events.wait_for("Newexten", 10, Context="carrier-in",
                                      Application="Ringing")
        await cancel_and_wait(task)
        # And the network hears it end: the carrier's leg hangs up.
        await carrier_events.wait_for("Hangup", 10, Context="carrier-in")
    # The placer waited for our channel's ChannelDestroyed before it let go.
    assert await _gone(dialer, channel_id)
