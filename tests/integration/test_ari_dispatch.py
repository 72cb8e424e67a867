"""The event loop and dispatcher against the real Asterisk: calls run concurrently, a
handler that fails sends a real SIP call to its queue's fallback (never left in Stasis),
wrong credentials fail at once, ApplicationReplaced ends the loop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Self

import pytest

from callcenter.asterisk.ari import (
    ARIAuthError,
    ARIClient,
    ARINotFound,
    ChannelDestroyed,
    Event,
    EventDispatcher,
    Fallback,
    StasisEnd,
    StasisStart,
    dialplan_fallback,
)
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.conftest import PBX
from tests.integration.route import RouteObserver

pytestmark = pytest.mark.integration


def client(pbx: PBX, app: str, password: str | None = None,
           base_url: str | None = None) -> ARIClient:
    creds = pbx.instance.credentials
    return ARIClient(base_url or pbx.instance.ari_url, username=creds.ari_user,
                     password=creds.ari_password if password is None else password, app=app)


class FlakyProxy:
    """A TCP proxy to the real Asterisk's HTTP port that answers the first ``refuse``
    requests itself with 503 (as Asterisk does while it starts) and pipes the rest;
    :meth:`drop` cuts every piped connection (a lost websocket)."""

    def __init__(self, target_port: int, refuse: int) -> None:
        self.target_port = target_port
        self.refuse = refuse
        self.attempts: list[str] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.drop()
        await self._server.wait_closed()

    def drop(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if self.refuse > 0:
                self.refuse -= 1
                self.attempts.append("503")
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                await writer.drain()
                return
            self.attempts.append("piped")
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.add(up_writer)
            up_writer.write(head)

            async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(copy(reader, up_writer))
                    tg.create_task(copy(up_reader, writer))
            except* (ConnectionError, OSError):
                pass  # a side went away: the pipe is over
            finally:
                self._writers.discard(up_writer)
                up_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@asynccontextmanager
async def running_app(ari: ARIClient, handler: Callable[[Event], Awaitable[None]],
                      fallback: Fallback | None = None) -> AsyncIterator[EventDispatcher]:
    """The router's shape: run_event_loop reads, the dispatcher owns one task per call.
    The body runs once the app is registered."""
    connected = asyncio.Event()

    async def on_connected() -> None:
        connected.set()

    async with EventDispatcher(handler, fallback=fallback) as dispatcher:
        reader = asyncio.create_task(ari.run_event_loop(
            dispatcher.dispatch, reconnect_delay=0.2, on_connected=on_connected))
        try:
            async with asyncio.timeout(10):
                await connected.wait()
            yield dispatcher
        finally:
            reader.cancel()
            await asyncio.wait([reader])


async def test_a_blocked_call_does_not_hold_another(clean_pbx: PBX, ari_app: ARIClient) -> None:
    """Call A's handler waits until call B's StasisStart has been handled: with one
    event at a time this deadlocks (and times out); per-call owners let B through."""
    app = clean_pbx.loaded.config.settings.queue_app
    queued: list[str] = []
    b_handled = asyncio.get_running_loop().create_future()
    both_ended = asyncio.Event()
    ended: set[str] = set()

    async def handler(event: Event) -> None:
        if isinstance(event, StasisStart) and event.args and event.args[0] == "sales":
            queued.append(event.channel.id)
            if len(queued) == 1:
                async with asyncio.timeout(10):
                    await b_handled  # A is "slow" until B has been served
            else:
                b_handled.set_result(event.channel.id)
            await ari_app.channels.hangup(event.channel.id)
        elif isinstance(event, StasisEnd) and event.channel.id in queued:
            ended.add(event.channel.id)
            if len(ended) == 2:
                both_ended.set()

    async with running_app(ari_app, handler):
        for n in range(2):
            # ;2 of each Local pair runs the sales queue into Stasis; ;1 enters the
            # app too, with args ("offer",), which the handler leaves alone.
            await ari_app.channels.originate(
                "Local/sales@cc-queue", app=app, app_args=["offer"],
                channel_id=f"cc-test-{n}-{uuid.uuid4().hex[:8]}",
                variables={"CC_QUEUE_SKILLS": "sales", "CC_QUEUE_PRIORITY": "5",
                           "CC_PRIORITY": "0", "CC_ENTRY": "main_line"})
        async with asyncio.timeout(20):
            await both_ended.wait()
        assert len(set(queued)) == 2 and b_handled.result() == queued[1]


async def test_handler_error_sends_a_real_call_to_the_queue_fallback(
    clean_pbx: PBX, ari_app: ARIClient, ami_observer: RouteObserver, caplog
) -> None:
    pbx = clean_pbx
    starts: list[StasisStart] = []

    async def handler(event: Event) -> None:
        if isinstance(event, StasisStart):
            starts.append(event)
            QueueCall.parse(event.args)  # the contract holds for a real call...
            raise RuntimeError("router bug")  # noqa: TRY004 - ...then the router fails

    caller_id = "15559870001"
    observer = ami_observer.expect(caller_id)
    sip, media = pbx.sipp_ports()
    keys = (Keypress("1", 2500), Keypress("2", 1200))  # English, sales
    with caplog.at_level(logging.WARNING, logger="callcenter.asterisk.ari"):
        async with running_app(ari_app, handler, dialplan_fallback(ari_app)):
            result = await run_call(Caller("5551000", caller_id=caller_id, keys=keys,
                                           hold_ms=6000),
                                    sip_port=pbx.sip_port, local_port=sip, media_port=media,
                                    timeout=60)
            call = await ami_observer.wait_ended(caller_id, timeout=15)
    assert result.returncode == 0, result.stderr[-500:]
    assert len(starts) == 1
    channel_id = starts[0].channel.id
    assert QueueCall.parse(starts[0].args).queue == "sales"
    apps = [(s.get("Context"), s.get("Application")) for s in call.steps]
    stasis = apps.index(("cc-queue", "Stasis"))
    # After Stasis: the queue's fallback label, then the fallback destination (voicemail).
    assert ("cc-queue", "Log") in apps[stasis:], call.apps()
    assert ("cc-voicemail", "VoiceMail") in apps[stasis:], call.apps()
    assert ("cc-queue", "Hangup") not in apps[stasis:], call.apps()
    # Voicemail held the call until the caller left (a Hangup(16) would have sent BYE).
    assert observer is call and not result.remote_hangup
    messages = [r.getMessage() for r in caplog.records]
    assert f"ARI StasisStart handler failed for channel:{channel_id}" in messages
    assert any(m.startswith(f"ARI {channel_id} continued at cc-queue,sales,fallback")
               for m in messages), messages


async def test_fallback_hangs_up_a_channel_with_no_fallback_label(
    clean_pbx: PBX, ari_app: ARIClient
) -> None:
    """A channel we created never ran dialplan: the fallback hangs it up (cause 16 is
    not asserted: ``normal_unspecified`` is Q.850 31)."""
    app = clean_pbx.loaded.config.settings.queue_app
    destroyed = asyncio.get_running_loop().create_future()
    offer = f"cc-test-offer-{uuid.uuid4().hex[:8]}"

    async def handler(event: Event) -> None:
        if isinstance(event, StasisStart) and event.channel.id == offer:
            raise RuntimeError("offer handling bug")
        if (isinstance(event, ChannelDestroyed) and event.channel.id == offer
                and not destroyed.done()):
            destroyed.set_result(event)

    # carmen's softphone is registered: a channel to her can be created (not rung).
    async with (clean_pbx.agent_phone("carmen"),
                running_app(ari_app, handler, dialplan_fallback(ari_app))):
        await ari_app.channels.create("PJSIP/carmen", channel_id=offer, app=app)
        async with asyncio.timeout(10):
            gone = await destroyed
    assert gone.cause == 31  # normal_unspecified: the fallback's reason
    with pytest.raises(ARINotFound):
        await ari_app.channels.get(offer)


async def test_wrong_password_fails_at_once(pbx: PBX) -> None:
    async def handler(event: Event) -> None:
        raise AssertionError("no event expected")

    async with client(pbx, "cc-test-auth", password="not-the-password") as ari:
        with pytest.raises(ARIAuthError) as caught:
            # A retry would wait at least reconnect_delay/2 = 15 s: the timeout proves none.
            async with asyncio.timeout(5):
                await ari.run_event_loop(handler, reconnect_delay=30)
    assert caught.value.status == 401
    assert "not-the-password" not in str(caught.value)


async def test_application_replaced_ends_the_first_loop(pbx: PBX) -> None:
    app = f"cc-test-replaced-{uuid.uuid4().hex[:8]}"
    connected = asyncio.Event()

    async def on_connected() -> None:
        connected.set()

    async def handler(event: Event) -> None:
        pass

    async with client(pbx, app) as first, client(pbx, app) as second:
        loop = asyncio.create_task(first.run_event_loop(handler, on_connected=on_connected))
        try:
            async with asyncio.timeout(10):
                await connected.wait()
            async with second.events():
                async with asyncio.timeout(10):
                    await asyncio.wait([loop])  # returns: did not re-register
                assert loop.done() and loop.exception() is None
                # The app is still registered, by the second connection.
                assert (await second.applications.get(app)).name == app
        finally:
            loop.cancel()
            await asyncio.wait([loop])


async def test_event_loop_retries_503_registers_on_the_real_asterisk_and_reconnects(
    clean_pbx: PBX, ari_app: ARIClient
) -> None:
    """Handshakes answered 503 are retried until Asterisk itself answers; the app is then
    really registered (a queued call reaches it), and after the websocket is cut the
    loop registers again and the next call reaches it too."""
    pbx = clean_pbx
    app = pbx.loaded.config.settings.queue_app
    connections: asyncio.Queue[int] = asyncio.Queue()
    starts: asyncio.Queue[StasisStart] = asyncio.Queue()
    count = 0

    async def on_connected() -> None:
        nonlocal count
        count += 1
        connections.put_nowait(count)

    async def handler(event: Event) -> None:
        if isinstance(event, StasisStart) and event.args[:1] == ("sales",):
            starts.put_nowait(event)

    async def queued_call_reaches_us() -> None:
        one = f"cc-test-retry-{uuid.uuid4().hex[:8]}"
        await ari_app.channels.originate("Local/sales@cc-queue", app=app,
                                         app_args=["offer"], channel_id=one)
        async with asyncio.timeout(10):
            start = await starts.get()
        assert start.channel.id == f"{one};2"
        # Sent to cc-queue without the flow's variables: the queue's own skills and
        # base priority, filled in by the cc-queue context.
        assert QueueCall.parse(start.args) == QueueCall(
            queue="sales", skills=("sales",), priority=5, language="en")
        await ari_app.channels.hangup(start.channel.id)

    port = pbx.instance.settings.http_port
    async with FlakyProxy(port, refuse=2) as proxy, \
            client(pbx, app, base_url=proxy.url) as proxied:
        loop = asyncio.create_task(proxied.run_event_loop(
            handler, reconnect_delay=0.05, max_reconnect_delay=0.2, on_connected=on_connected))
        try:
            async with asyncio.timeout(10):
                assert await connections.get() == 1
            assert proxy.attempts == ["503", "503", "piped"]
            await queued_call_reaches_us()
            proxy.drop()  # the websocket is lost
            async with asyncio.timeout(10):
                assert await connections.get() == 2
            assert proxy.attempts == ["503", "503", "piped", "piped"]
            await queued_call_reaches_us()
        finally:
            loop.cancel()
            await asyncio.wait([loop])
