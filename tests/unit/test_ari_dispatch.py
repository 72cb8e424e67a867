"""EventDispatcher: events ordered per channel, channels concurrent, a failing handler
isolated (logged with the channel id, fallback run), no task left after shutdown.

The event source is a plain list of real Asterisk 22 payloads (recorded in
test_ari_events) with the channel id changed; synchronisation is by asyncio events and
futures, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from callcenter.asterisk.ari import (
    APP_KEY,
    ARIClient,
    ChannelDestroyed,
    Event,
    EventDispatcher,
    StasisEnd,
    StasisStart,
    dialplan_fallback,
    event_key,
    parse_event,
)
from tests.unit.test_ari_events import RECORDED


def ev(name: str, channel_id: str) -> Event:
    """A recorded event of channel ``channel_id``."""
    data = json.loads(RECORDED[name])
    for field in ("channel", "peer"):
        if field in data:
            data[field]["id"] = channel_id
    if "playback" in data:
        data["playback"]["target_uri"] = f"channel:{channel_id}"
    event = parse_event(data)
    assert event.type == name
    return event


def owner_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("ari-owner ")}


def test_event_keys_follow_the_owner() -> None:
    assert event_key(ev("StasisStart", "A")) == "channel:A"
    assert event_key(ev("PlaybackFinished", "A")) == "channel:A"
    assert event_key(ev("ChannelEnteredBridge", "A")) == "channel:A"
    assert event_key(ev("ChannelDialplan", "A")) == "channel:A"  # unmodelled, still A's
    bridge = json.loads(RECORDED["ChannelEnteredBridge"])["bridge"]
    destroyed = parse_event({"type": "BridgeDestroyed", "bridge": bridge})
    assert event_key(destroyed) == f"bridge:{bridge['id']}"
    dial = parse_event({"type": "Dial", "dialstatus": "RINGING",
                        "peer": json.loads(RECORDED["StasisStart"])["channel"] | {"id": "O"}})
    assert event_key(dial) == "channel:O"
    device = parse_event({"type": "DeviceStateChanged",
                          "device_state": {"name": "PJSIP/carmen", "state": "INUSE"}})
    assert event_key(device) == APP_KEY
    assert event_key(parse_event({"type": "ChannelVarset", "variable": "G",
                                  "value": "1"})) == APP_KEY


async def test_events_of_one_channel_are_handled_in_order_one_at_a_time() -> None:
    seen: list[str] = []
    release = asyncio.get_running_loop().create_future()
    destroyed = asyncio.Event()
    other_done = asyncio.Event()

    async def handler(event: Event) -> None:
        if event.channel.id == "other":  # type: ignore[attr-defined]
            other_done.set()
            return
        seen.append(f"{event.type}:start")
        if isinstance(event, StasisStart):
            await release  # a slow REST call for this channel
        seen.append(f"{event.type}:end")
        if isinstance(event, ChannelDestroyed):
            destroyed.set()

    async with EventDispatcher(handler) as dispatcher, asyncio.timeout(5):
        # (dispatch itself is inside the timeout: a dispatcher that awaited handlers
        # would block here, and must fail, not hang.)
        for name in ("StasisStart", "StasisEnd", "ChannelDestroyed"):
            await dispatcher.dispatch(ev(name, "A"))
        # Dispatched after A's three: once it is handled, A's later events had every
        # chance to start had they not been queued behind A's StasisStart.
        await dispatcher.dispatch(ev("StasisStart", "other"))
        await other_done.wait()
        assert seen == ["StasisStart:start"]
        release.set_result(None)
        async with asyncio.timeout(5):
            await destroyed.wait()
    assert seen == ["StasisStart:start", "StasisStart:end", "StasisEnd:start",
                    "StasisEnd:end", "ChannelDestroyed:start", "ChannelDestroyed:end"]


async def test_a_slow_channel_does_not_delay_another() -> None:
    a_blocked = asyncio.Event()
    b_done = asyncio.Event()
    release_a = asyncio.get_running_loop().create_future()

    async def handler(event: Event) -> None:
        if isinstance(event, StasisStart) and event.channel.id == "A":
            a_blocked.set()
            await release_a
        elif event.channel.id == "B":  # type: ignore[attr-defined]
            b_done.set()

    async with EventDispatcher(handler) as dispatcher:
        async with asyncio.timeout(5):
            await dispatcher.dispatch(ev("StasisStart", "A"))
            await dispatcher.dispatch(ev("StasisStart", "B"))
            await a_blocked.wait()
            await b_done.wait()  # B handled while A's handler is still blocked
        assert not release_a.done()
        assert dispatcher.keys == {"channel:A", "channel:B"}
        release_a.set_result(None)


async def test_a_failing_handler_is_isolated_logged_and_falls_back(caplog) -> None:
    fallbacks: list[tuple[str, str, str]] = []
    handled: list[str] = []
    b_done = asyncio.Event()

    async def handler(event: Event) -> None:
        channel_id = event.channel.id  # type: ignore[attr-defined]
        if isinstance(event, StasisStart) and channel_id == "A":
            raise RuntimeError("routing bug")
        handled.append(f"{channel_id}:{event.type}")
        if channel_id == "B" and isinstance(event, StasisEnd):
            b_done.set()

    async def fallback(key: str, event: Event, error: Exception) -> None:
        fallbacks.append((key, event.type, str(error)))
        raise OSError("fallback failed too")  # must not end anything either

    with caplog.at_level(logging.ERROR, logger="callcenter.asterisk.ari.dispatch"):
        async with EventDispatcher(handler, fallback=fallback) as dispatcher:
            for name in ("StasisStart", "StasisEnd"):
                await dispatcher.dispatch(ev(name, "A"))
                await dispatcher.dispatch(ev(name, "B"))
            async with asyncio.timeout(5):
                await b_done.wait()
    assert fallbacks == [("channel:A", "StasisStart", "routing bug")]
    # A's owner carried on with A's next event; B never noticed.
    assert sorted(handled) == ["A:StasisEnd", "B:StasisEnd", "B:StasisStart"]
    messages = [r.getMessage() for r in caplog.records]
    assert "ARI StasisStart handler failed for channel:A" in messages
    assert "ARI fallback failed for channel:A after StasisStart" in messages


async def test_owner_ends_when_its_channel_is_destroyed() -> None:
    async def handler(event: Event) -> None:
        pass

    async with EventDispatcher(handler) as dispatcher:
        await dispatcher.dispatch(ev("StasisStart", "A"))
        await dispatcher.dispatch(ev("ChannelDestroyed", "A"))
        await dispatcher.dispatch(ev("StasisStart", "B"))
        (task_a,) = [t for t in owner_tasks() if t.get_name() == "ari-owner channel:A"]
        async with asyncio.timeout(5):
            await task_a
        assert dispatcher.keys == {"channel:B"}  # B's call is still up


async def test_owner_ends_when_idle() -> None:
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(event: Event) -> None:
        handled.put_nowait(event.type)

    async with EventDispatcher(handler, idle_timeout=0.01) as dispatcher:
        await dispatcher.dispatch(ev("StasisStart", "A"))
        (task,) = owner_tasks()
        async with asyncio.timeout(5):
            await task
        assert dispatcher.keys == frozenset()
        # A later event for the same channel gets a new owner.
        await dispatcher.dispatch(ev("StasisEnd", "A"))
        async with asyncio.timeout(5):
            assert [await handled.get(), await handled.get()] == ["StasisStart", "StasisEnd"]


async def test_shutdown_drains_inboxes_and_leaves_no_task() -> None:
    handled: list[str] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        handled.append(event.channel.id)  # type: ignore[attr-defined]

    async with EventDispatcher(handler) as dispatcher:
        for i in range(20):
            await dispatcher.dispatch(ev("StasisStart", f"C{i}"))
    assert sorted(handled) == sorted(f"C{i}" for i in range(20))
    assert owner_tasks() == set()
    assert dispatcher.keys == frozenset()
    # An event the reader delivers once shutdown began is dropped, never raised.
    await dispatcher.dispatch(ev("StasisStart", "late"))
    assert "late" not in handled and owner_tasks() == set()


async def test_an_event_before_the_dispatcher_started_is_a_programming_error() -> None:
    dispatcher = EventDispatcher(lambda event: asyncio.sleep(0))  # type: ignore[arg-type,return-value]
    with pytest.raises(RuntimeError, match="not running"):
        await dispatcher.dispatch(ev("StasisStart", "early"))


async def test_cancelling_the_owner_cancels_every_task() -> None:
    started = asyncio.Event()

    async def handler(event: Event) -> None:
        started.set()
        await asyncio.get_running_loop().create_future()  # never done

    async def app() -> None:
        async with EventDispatcher(handler) as dispatcher:
            await dispatcher.dispatch(ev("StasisStart", "A"))
            await asyncio.get_running_loop().create_future()

    task = asyncio.create_task(app())
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert owner_tasks() == set()


class FallbackARI:
    """Answers ``continue`` and ``DELETE /channels/{id}`` with chosen statuses; records
    every request as (method, path, query)."""

    def __init__(self, continue_status: int, hangup_status: int) -> None:
        self.statuses = {"POST": continue_status, "DELETE": hangup_status}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        app = web.Application()
        app.router.add_route("*", "/ari/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, dict(request.query)))
        status = self.statuses[request.method]
        if status == 204:
            return web.Response(status=204)
        return web.json_response({"message": f"status {status}"}, status=status)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[ARIClient]:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        try:
            async with ARIClient(f"http://127.0.0.1:{self.runner.addresses[0][1]}",
                                 username="cc", password="pw", app="cc-queue") as ari:
                yield ari
        finally:
            await self.runner.cleanup()


@pytest.mark.parametrize(("continue_status", "hangup_status", "expected"), [
    (204, 204, [("POST", "/ari/channels/A/continue",
                 {"context": "helper-stasis", "extension": "s", "label": "fallback"})]),
    # Label missing (404): hang up with the fallback's reason.
    (404, 204, [("POST", "/ari/channels/A/continue",
                 {"context": "helper-stasis", "extension": "s", "label": "fallback"}),
                ("DELETE", "/ari/channels/A", {"reason": "normal_unspecified"})]),
    # Already out of Stasis (409): nothing more to do.
    (409, 204, [("POST", "/ari/channels/A/continue",
                 {"context": "helper-stasis", "extension": "s", "label": "fallback"})]),
    # Label missing and the channel gone meanwhile (404 on hangup): normal, no error.
    (404, 404, [("POST", "/ari/channels/A/continue",
                 {"context": "helper-stasis", "extension": "s", "label": "fallback"}),
                ("DELETE", "/ari/channels/A", {"reason": "normal_unspecified"})]),
])
async def test_dialplan_fallback_continues_or_hangs_up(
    continue_status: int, hangup_status: int, expected: list[tuple[str, str, dict[str, str]]]
) -> None:
    fake = FallbackARI(continue_status, hangup_status)
    async with fake.client() as ari:
        fallback = dialplan_fallback(ari)
        await fallback("channel:A", ev("StasisStart", "A"), RuntimeError("bug"))
    assert fake.requests == expected


async def test_dialplan_fallback_hangs_up_a_channel_outside_the_dialplan() -> None:
    """A channel whose snapshot shows no Stasis() app (one we created) has no label to
    continue to: straight to hangup."""
    fake = FallbackARI(204, 204)
    event = ev("ChannelDestroyed", "A")  # its snapshot's app_name is ""
    async with fake.client() as ari:
        await dialplan_fallback(ari, reason="congestion")("channel:A", event, RuntimeError())
        await dialplan_fallback(ari)(APP_KEY, event, RuntimeError())  # not a call: nothing
    assert fake.requests == [("DELETE", "/ari/channels/A", {"reason": "congestion"})]


async def test_an_error_in_the_body_propagates_as_itself_and_stops_the_owners() -> None:
    started = asyncio.Event()

    async def handler(event: Event) -> None:
        started.set()
        await asyncio.get_running_loop().create_future()  # a call in progress

    with pytest.raises(ValueError, match="app failed"):
        async with EventDispatcher(handler) as dispatcher:
            await dispatcher.dispatch(ev("StasisStart", "A"))
            async with asyncio.timeout(5):
                await started.wait()
            raise ValueError("app failed")
    assert owner_tasks() == set()
