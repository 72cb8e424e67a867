"""Every ARI REST wrapper against the real Asterisk, judged by the events Asterisk sends.

Most calls are Local channels: ``Local/sales@cc-queue`` runs the generated queue context
on its ``;2`` half, so that half enters the queue app with the real Stasis args of the
contract. One call rings an agent's registered softphone (baresip as carmen).
Ids are chosen by the test, as the router will choose them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from callcenter.asterisk.ari import (
    ARIClient,
    ARIConflict,
    ARINotFound,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelEnteredBridge,
    ChannelLeftBridge,
    DeviceStateChanged,
    Dial,
    EndpointStateChange,
    Event,
    StasisEnd,
    StasisStart,
)
from callcenter.asterisk.stasis_args import QueueCall
from tests.aio import cancel_and_wait
from tests.conftest import PBX

pytestmark = pytest.mark.integration

E = TypeVar("E", bound=Event)


class Recorder:
    """Every event of the app's websocket, and a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = asyncio.Condition()

    async def run(self, ari: ARIClient) -> None:
        async with ari.events() as stream:
            self.connected.set()
            async for event in stream:
                self.events.append(event)
                async with self._cond:
                    self._cond.notify_all()

    connected = asyncio.Event  # replaced per instance below

    async def wait_for(self, kind: type[E], pred: Callable[[E], bool] = lambda e: True,
                       timeout: float = 10.0) -> E:
        try:
            async with asyncio.timeout(timeout), self._cond:
                while True:
                    for event in self.events:
                        if isinstance(event, kind) and pred(event):
                            return event
                    await self._cond.wait()
        except TimeoutError:
            raise AssertionError(f"no such {kind.__name__} within {timeout:g} s; got: "
                                 f"{[(e.type, _ids(e)) for e in self.events]}") from None


def _ids(event: Event) -> str:
    for attr in ("channel", "peer", "bridge", "endpoint", "device_state"):
        value = getattr(event, attr, None)
        if value is not None:
            return str(getattr(value, "id", None) or getattr(value, "name", None) or
                       getattr(value, "resource", ""))
    return ""


@contextlib.asynccontextmanager
async def recording(ari: ARIClient) -> AsyncIterator[Recorder]:
    """A :class:`Recorder` of *ari*'s app, connected on entry."""
    rec = Recorder()
    rec.connected = asyncio.Event()  # type: ignore[assignment]
    task = asyncio.create_task(rec.run(ari), name="ari-recorder")
    try:
        async with asyncio.timeout(10):
            await rec.connected.wait()  # type: ignore[attr-defined]
        yield rec
    finally:
        await cancel_and_wait(task)


@pytest.fixture
async def recorder(clean_pbx: PBX, ari_app: ARIClient) -> AsyncIterator[Recorder]:
    try:
        async with recording(ari_app) as rec:
            yield rec
    finally:
        # A failed test must not leave its channels to fail the next one's check.
        for channel in await ari_app.channels.list():
            if channel.id.startswith("cc-test-"):
                try:
                    await ari_app.channels.hangup(channel.id)
                except ARINotFound:
                    pass


def new_id(what: str) -> str:
    return f"cc-test-{what}-{uuid.uuid4().hex[:12]}"


QUEUE_VARS = {"CC_QUEUE_SKILLS": "sales", "CC_QUEUE_PRIORITY": "5", "CC_PRIORITY": "2",
              "CC_ENTRY": "main_line"}


async def queued_local_call(ari: ARIClient, rec: Recorder, app: str) -> tuple[str, str]:
    """A Local channel pair: ``;1`` (ours, in Stasis), ``;2`` running ``sales@cc-queue``
    into the queue app. Returns both ids once ``;2`` is in Stasis."""
    one, two = new_id("local1"), new_id("local2")
    channel = await ari.channels.create("Local/sales@cc-queue", channel_id=one,
                                        other_channel_id=two, app=app,
                                        app_args=["offer"], variables=QUEUE_VARS)
    assert channel.id == one and channel.state == "Down"
    # The created channel enters Stasis asynchronously: dial only after its StasisStart
    # (a dial before it is a 409, seen here), found by the id we chose.
    start = await rec.wait_for(StasisStart, lambda e: e.channel.id == one)
    assert start.args == ("offer",)
    await ari.channels.dial(one, timeout=10)
    await rec.wait_for(StasisStart, lambda e: e.channel.id == two)
    return one, two


async def hang_up_both(ari: ARIClient, rec: Recorder, *ids: str) -> None:
    for channel_id in ids:
        try:
            await ari.channels.hangup(channel_id)
        except ARINotFound:
            pass  # the other half's hangup took it down first
    # StasisEnd, not ChannelDestroyed: a channel that entered Stasis from the dialplan
    # is no longer ours once it leaves, so its ChannelDestroyed is not sent to us.
    for channel_id in ids:
        await rec.wait_for(StasisEnd, lambda e, c=channel_id: e.channel.id == c)


async def test_create_and_dial_with_our_ids_reach_stasis_with_contract_args(
    clean_pbx: PBX, ari_app: ARIClient, recorder: Recorder
) -> None:
    app = clean_pbx.loaded.config.settings.queue_app
    one, two = await queued_local_call(ari_app, recorder, app)
    start = await recorder.wait_for(StasisStart, lambda e: e.channel.id == two)
    # The generated cc-queue context formatted the args; the contract parses them.
    assert QueueCall.parse(start.args) == QueueCall(
        queue="sales", skills=("sales",), priority=7, language="en", entry="main_line")
    answered = await recorder.wait_for(
        Dial, lambda e: e.peer.id == one and e.dialstatus == "ANSWER")
    assert answered.caller is None  # dialled by ARI, not by a channel
    # ring / ring_stop / answer are accepted on a channel in Stasis.
    await ari_app.channels.ring(two)
    await ari_app.channels.ring_stop(two)
    await ari_app.channels.answer(two)
    await ari_app.channels.hangup(one, "busy")
    # ;1 is the channel we created: its end is reported to us, with its Q.850 cause.
    gone = await recorder.wait_for(ChannelDestroyed, lambda e: e.channel.id == one)
    assert (gone.cause, gone.cause_txt) == (17, "User busy")
    # ;2 entered Stasis from the dialplan: StasisEnd is the last we hear of it.
    await recorder.wait_for(StasisEnd, lambda e: e.channel.id == two)
    # A channel that has gone is a typed 404, not a crash.
    with pytest.raises(ARINotFound):
        await ari_app.channels.hangup(two)
    with pytest.raises(ARINotFound):
        await ari_app.channels.dial(two)


async def test_snoop_channel_enters_stasis_with_our_id(
    clean_pbx: PBX, ari_app: ARIClient, recorder: Recorder
) -> None:
    app = clean_pbx.loaded.config.settings.queue_app
    one, two = await queued_local_call(ari_app, recorder, app)
    snoop_id = new_id("snoop")
    snoop = await ari_app.channels.snoop(two, snoop_id=snoop_id, spy="both", app=app,
                                         app_args=["supervisor"])
    assert snoop.id == snoop_id
    start = await recorder.wait_for(StasisStart, lambda e: e.channel.id == snoop_id)
    assert start.args == ("supervisor",)
    assert start.channel.name.startswith("Snoop/")
    await hang_up_both(ari_app, recorder, snoop_id, two, one)
    with pytest.raises(ARINotFound):
        await ari_app.channels.snoop(two, snoop_id=new_id("snoop"), app=app)


async def test_bridge_lifecycle_with_our_id(
    clean_pbx: PBX, ari_app: ARIClient, recorder: Recorder
) -> None:
    app = clean_pbx.loaded.config.settings.queue_app
    one, two = await queued_local_call(ari_app, recorder, app)
    bridge_id = new_id("bridge")
    bridge = await ari_app.bridges.create("mixing", bridge_id=bridge_id, name="queue-sales")
    assert bridge.id == bridge_id and bridge.bridge_type == "mixing"
    subscribed = await ari_app.applications.subscribe(app, f"bridge:{bridge_id}")
    assert bridge_id in subscribed.bridge_ids
    await ari_app.bridges.add_channel(bridge_id, two)
    entered = await recorder.wait_for(
        ChannelEnteredBridge, lambda e: e.channel.id == two and e.bridge.id == bridge_id)
    assert two in entered.bridge.channels
    await ari_app.bridges.start_moh(bridge_id)
    await ari_app.bridges.stop_moh(bridge_id)
    await ari_app.bridges.remove_channel(bridge_id, two)
    await recorder.wait_for(ChannelLeftBridge,
                            lambda e: e.channel.id == two and e.bridge.id == bridge_id)
    await ari_app.bridges.destroy(bridge_id)
    await recorder.wait_for(BridgeDestroyed, lambda e: e.bridge.id == bridge_id)
    with pytest.raises(ARINotFound):
        await ari_app.bridges.destroy(bridge_id)
    with pytest.raises(ARINotFound):
        await ari_app.bridges.add_channel(bridge_id, two)
    await hang_up_both(ari_app, recorder, two, one)


async def test_endpoints_and_endpoint_subscription(clean_pbx: PBX) -> None:
    """On an app of its own: Asterisk keeps an app's subscriptions while the app is
    known to it, so the queue app may still be subscribed to carmen's endpoint by a
    router an earlier test ran (the router subscribes to every agent's endpoint), and
    the unsubscribe below would then leave it subscribed."""
    app = new_id("endpoints")
    creds = clean_pbx.instance.credentials
    async with ARIClient(clean_pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=app) as ari, \
            recording(ari) as recorder:
        everything = await ari.endpoints.list()
        pjsip = await ari.endpoints.list("PJSIP")
        assert ("PJSIP", "carmen") in {(e.technology, e.resource) for e in everything}
        assert {e.technology for e in pjsip} == {"PJSIP"}
        carmen = await ari.endpoints.get("PJSIP", "carmen")
        assert carmen.resource == "carmen" and carmen.channel_ids == ()
        with pytest.raises(ARINotFound):
            await ari.endpoints.get("PJSIP", "nobody")

        assert "PJSIP/carmen" not in (await ari.applications.get(app)).endpoint_ids
        subscribed = await ari.applications.subscribe(app, "endpoint:PJSIP/carmen")
        assert "PJSIP/carmen" in subscribed.endpoint_ids
        offer = new_id("offer")
        try:
            # carmen's softphone registered: a channel to her can be created (not rung),
            # and it changes the endpoint's channel list.
            async with clean_pbx.agent_phone("carmen"):
                await ari.channels.create("PJSIP/carmen", channel_id=offer, app=app)
                await recorder.wait_for(StasisStart, lambda e: e.channel.id == offer)
                changed = await recorder.wait_for(
                    EndpointStateChange, lambda e: offer in e.endpoint.channel_ids)
                assert (changed.endpoint.technology, changed.endpoint.resource) == (
                    "PJSIP", "carmen")
                await ari.channels.hangup(offer)
                await recorder.wait_for(ChannelDestroyed, lambda e: e.channel.id == offer)
        finally:
            with contextlib.suppress(ARINotFound):  # a failed test's channel
                await ari.channels.hangup(offer)
            after = await ari.applications.unsubscribe(app, "endpoint:PJSIP/carmen")
        assert "PJSIP/carmen" not in after.endpoint_ids
        with pytest.raises(ARINotFound):
            await ari.applications.get("cc-no-such-app")


async def test_device_states_set_read_subscribe_delete(
    clean_pbx: PBX, ari_app: ARIClient, recorder: Recorder
) -> None:
    app = clean_pbx.loaded.config.settings.queue_app
    device = f"Stasis:{new_id('agent')}"
    await ari_app.device_states.update(device, "NOT_INUSE")
    assert (await ari_app.device_states.get(device)).state == "NOT_INUSE"
    subscribed = await ari_app.applications.subscribe(app, f"deviceState:{device}")
    assert device in subscribed.device_names
    await ari_app.device_states.update(device, "INUSE")
    changed = await recorder.wait_for(
        DeviceStateChanged,
        lambda e: e.device_state.name == device and e.device_state.state == "INUSE")
    assert changed.device_state.state == "INUSE"
    assert device in {d.name for d in await ari_app.device_states.list()}
    after = await ari_app.applications.unsubscribe(app, f"deviceState:{device}")
    assert device not in after.device_names
    await ari_app.device_states.delete(device)
    assert device not in {d.name for d in await ari_app.device_states.list()}
    # Asterisk answers any device name with a state: UNKNOWN once ours is deleted.
    assert (await ari_app.device_states.get(device)).state == "UNKNOWN"
    # A phone's own device state is Asterisk's, not ours to set.
    with pytest.raises(ARIConflict):
        await ari_app.device_states.update("PJSIP/carmen", "INUSE")


async def test_create_and_dial_a_real_softphone(
    clean_pbx: PBX, ari_app: ARIClient, recorder: Recorder
) -> None:
    """The router's agent offer: create PJSIP/carmen with our id, dial, her registered
    softphone (baresip) answers; the router hangs up and the phone gets the BYE."""
    app = clean_pbx.loaded.config.settings.queue_app
    offer = new_id("offer")
    async with clean_pbx.agent_phone("carmen") as phone:
        await ari_app.channels.create("PJSIP/carmen", channel_id=offer, app=app,
                                      app_args=["offer", "sales"])
        await recorder.wait_for(StasisStart, lambda e: e.channel.id == offer)
        await ari_app.channels.dial(offer, timeout=15)
        statuses = [(await recorder.wait_for(
            Dial, lambda e, s=s: e.peer.id == offer and e.dialstatus == s)).dialstatus
            for s in ("RINGING", "ANSWER")]
        assert statuses == ["RINGING", "ANSWER"]
        await ari_app.channels.hangup(offer)
        gone = await recorder.wait_for(ChannelDestroyed, lambda e: e.channel.id == offer)
        call = await phone.call()
    assert gone.cause == 16
    # Answered, then the BYE from Asterisk (baresip's words for a far-end hangup).
    assert call.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], call.stderr
    assert call.close_reason == "Connection reset by peer", call.stderr
