"""Callbacks that keep the caller's place, on real calls: sipp callers through the example
IVR press the callback key and confirm with 1; carmen (a registered baresip phone) is
called first, then the customer: a real SIP phone played by a sipp UAS that Asterisk
reaches through ``PJSIP/cc-inbound/sip:<number>@127.0.0.1:<port>`` (the queue's
``callback.dial``). An ARI app of the test's own sees every ``Dial`` event, so the order
of the agent's and the customer's legs is Asterisk's, not the router's word.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from callcenter.agents.state import AgentStatus
from callcenter.asterisk.ari.events import Dial
from callcenter.config.models import Callback, CallCenterConfig
from callcenter.storage.models import CallbackAttempt, CallbackRequest
from callcenter.testing.sipp import Keypress, ok_to_request, reply, sdp
from callcenter.testing.softphone import Softphone
from tests.conftest import PBX
from tests.integration.router_harness import (
    SALES,
    RunningRouter,
    channel_events,
    place_call,
    start_router,
    waiting,
    with_queue,
)
from tests.integration.test_queue_announcements import playback_observer

OBSERVER_APP = "cc-test-dials"
#: After the IVR: the callback key once the caller is in the queue, then 1 (the caller
#: ID read back is right) while it is read back.
ASKS_CALLBACK = (*SALES, Keypress("5", 4000), Keypress("1", 3000))

#: The customer's phone adds its tag to the INVITE's To in every answer.
_TO_US = "[last_To:];tag=[pid]SIPpTag01[call_number]"

_ANSWER = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callback customer answers">
  <recv request="INVITE" crlf="true"/>
{reply("180 Ringing", _TO_US, contact=True)}\
{reply("200 OK", _TO_US, contact=True, body=sdp())}\
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
{ok_to_request()}\
</scenario>
"""

#: The first call is refused 486 Busy Here, the second answered (sipp counts calls).
_BUSY_THEN_ANSWER = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callback customer: busy, then answers">
  <recv request="INVITE" crlf="true"/>
  <nop>
    <action>
      <assignstr assign_to="s" value="[call_number]"/>
      <todouble assign_to="n" variable="s"/>
      <test assign_to="first" variable="n" compare="equal" value="1"/>
    </action>
  </nop>
  <nop next="busy" test="first"/>
{reply("200 OK", _TO_US, contact=True, body=sdp())}\
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
{ok_to_request(send_attrs='next="end"')}\
  <label id="busy"/>
{reply("486 Busy Here", _TO_US)}\
  <recv request="ACK" crlf="true"/>
  <label id="end"/>
</scenario>
"""


@dataclass
class Customer:
    """A sipp UAS on a port of its own: the customer's phone, for one call."""

    port: int
    media_port: int

    def dial(self) -> str:
        return f"PJSIP/cc-inbound/sip:{{number}}@127.0.0.1:{self.port}"

    async def take(self, scenario: str, calls: int = 1, timeout: float = 90) -> str:
        """Take *calls* calls as *scenario* says (one sipp process: the port stays
        bound between them); sipp's message trace."""
        sipp = shutil.which("sipp")
        assert sipp is not None, "sipp not found: apt-get install sip-tester"
        with tempfile.TemporaryDirectory(prefix="cc-uas-") as tmp:
            path = Path(tmp) / "uas.xml"
            path.write_text(scenario)
            trace = Path(tmp) / "messages.log"
            proc = await asyncio.create_subprocess_exec(
                sipp, "-sf", str(path), "-i", "127.0.0.1", "-p", str(self.port),
                "-mi", "127.0.0.1", "-mp", str(self.media_port), "-m", str(calls), "-nostdin",
                "-trace_msg", "-message_file", str(trace), "-timeout", f"{int(timeout)}s",
                "-timeout_error", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, cwd=tmp)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            text = trace.read_text(errors="replace") if trace.exists() else ""
        assert proc.returncode == 0, (out.decode(errors="replace"), err.decode(errors="replace"),
                                      text[-2000:])
        return text


def customer(pbx: PBX) -> Customer:
    port, media = pbx.sipp_ports()
    return Customer(port, media)


def callback_config(pbx: PBX, phone: Customer, **changes: object) -> CallCenterConfig:
    settings = Callback(key="5", after=0, dial=phone.dial(), retries=1, retry_delay=3,
                        ring_timeout=10)
    return with_queue(pbx.loaded.config, "sales", wrapup=1,
                      callback=settings.model_copy(update=changes))


def dial_observer(pbx: PBX) -> contextlib.AbstractAsyncContextManager[list[tuple[str, str]]]:
    """Every ``Dial`` event of every channel as (peer channel id, dialstatus), in the order
    Asterisk sent them, from an ARI app of the test's own."""
    return channel_events(pbx, OBSERVER_APP, lambda event: (
        (event.peer.id, event.dialstatus) if isinstance(event, Dial) else None))


async def take(phone: Softphone, running: RunningRouter, caller: str | None = None) -> str:
    """carmen answers the next call, talks until the router has connected it (both legs
    of a callback), hangs up; the other party's URI."""
    established = await phone.event("CALL_ESTABLISHED")
    if caller is not None:
        channel = _channel_of(running, caller)
        async with asyncio.timeout(30):
            await running.router.wait_until(
                lambda: channel not in running.router.callers
                or running.router.callers[channel].phase == "connected")
    await phone.hangup()
    await phone.event("CALL_CLOSED")
    return str(established.get("peeruri", ""))


def _channel_of(running: RunningRouter, number: str) -> str:
    return next(c for c, n in running.numbers.items() if n == number)


async def pending_callbacks(running: RunningRouter, count: int) -> None:
    """Until *count* callbacks are held with their callers gone."""
    callbacks = running.router.callbacks
    async with asyncio.timeout(40):
        await running.router.wait_until(
            lambda: sum(p.caller_gone for p in callbacks.pending.values()) >= count)


async def records(running: RunningRouter, number: str
                  ) -> tuple[CallbackRequest, list[CallbackAttempt]]:
    async with running.router.sessions() as session:
        request = (await session.execute(select(CallbackRequest).where(
            CallbackRequest.number == number))).scalar_one()
        attempts = (await session.execute(select(CallbackAttempt).where(
            CallbackAttempt.callback_id == request.id).order_by(CallbackAttempt.id))
                    ).scalars().all()
    return request, list(attempts)


async def test_a_callback_keeps_its_place_and_rings_the_agent_before_the_customer(
        clean_pbx: PBX) -> None:
    """A waits; B waits, presses 5 then 1 and is hung up after the thank-you; C waits.
    carmen logs in: A, then B's callback (carmen's phone first, then B's own number,
    answered by a real SIP phone), then C."""
    phone = customer(clean_pbx)
    a, b, c = "15558883001", "15558883002", "15558883003"
    async with dial_observer(clean_pbx) as dials, \
            start_router(clean_pbx, callback_config(clean_pbx, phone)) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        first = asyncio.create_task(place_call(clean_pbx, a, hold_ms=60000))
        await waiting(running, 1)
        second = asyncio.create_task(place_call(clean_pbx, b, ASKS_CALLBACK, hold_ms=20000))
        await pending_callbacks(running, 1)
        asked = await second
        assert asked.returncode == 0 and asked.remote_hangup, asked.stderr  # thanked, hung up
        third = asyncio.create_task(place_call(clean_pbx, c, hold_ms=60000))
        await waiting(running, 3)  # A, B's callback, C
        answering = asyncio.create_task(phone.take(_ANSWER))
        await running.login("carmen")
        served = [await take(carmen, running, a), await take(carmen, running, b),
                  await take(carmen, running, c)]
        trace = await answering
        for task in (first, third):
            assert (await task).returncode == 0
        assert [uri.split("@")[0] for uri in served] == [f"sip:{a}", f"sip:{b}", f"sip:{c}"]
        assert f"INVITE sip:{b}@127.0.0.1:{phone.port}" in trace
        request, attempts = await records(running, b)
        queued = {n: await running.queued(n) for n in (a, b, c)}
    assert [(x.agent, x.result, x.cause) for x in attempts] == [("carmen", "answered", None)]
    attempt = attempts[0]
    # Asterisk's Dial events: carmen's leg answered before the customer's leg was dialled.
    agent_leg, customer_leg = f"{_channel(queued[b])}-cb1a", attempt.customer_channel
    assert customer_leg == f"{_channel(queued[b])}-cb1c"
    assert (agent_leg, "ANSWER") in dials and (customer_leg, "ANSWER") in dials, dials
    first_customer = next(i for i, (peer, _) in enumerate(dials) if peer == customer_leg)
    assert dials.index((agent_leg, "ANSWER")) < first_customer, dials
    assert attempt.started_at < attempt.agent_answered_at <= attempt.answered_at  # type: ignore[operator]
    assert (request.status, request.number_source) == ("done", "caller_id")
    # The callback kept B's place: entered between A and C, answered between them.
    assert queued[a].entered_at < queued[b].entered_at < queued[c].entered_at
    assert [queued[n].outcome for n in (a, b, c)] == ["answered"] * 3
    assert queued[a].answered_at < queued[b].answered_at < queued[c].answered_at  # type: ignore[operator]
    assert queued[b].agent == "carmen"


def _channel(queued: object) -> str:
    return str(queued.channel_id)


async def test_a_busy_customer_is_called_again_and_every_attempt_is_stored(
        clean_pbx: PBX) -> None:
    """The customer's phone answers 486 Busy the first time: the attempt is stored with
    cause 17, carmen is free at once (no wrap-up), and 3 s later carmen then the
    customer are called again; the customer answers."""
    phone = customer(clean_pbx)
    number = "15558884001"
    async with start_router(clean_pbx, callback_config(clean_pbx, phone)) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        asked = await place_call(clean_pbx, number, ASKS_CALLBACK, hold_ms=20000)
        assert asked.returncode == 0 and asked.remote_hangup, asked.stderr
        await pending_callbacks(running, 1)
        customer_phone = asyncio.create_task(phone.take(_BUSY_THEN_ANSWER, calls=2))
        await running.login("carmen")
        first = await carmen.call()  # answered by carmen, hung up by the router
        assert first.peer_uri.startswith(f"sip:{number}@"), first.peer_uri
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        _, attempts = await records(running, number)
        assert [(x.agent, x.result, x.cause) for x in attempts] == [("carmen", "busy", 17)]
        assert (await take(carmen, running, number)).startswith(f"sip:{number}@")
        trace = await customer_phone
        assert trace.count(f"INVITE sip:{number}@127.0.0.1:{phone.port}") == 2, trace[-3000:]
        queued = await running.queued(number)
        request, attempts = await records(running, number)
    assert [(x.agent, x.result, x.cause) for x in attempts] == [
        ("carmen", "busy", 17), ("carmen", "answered", None)]
    gap = (attempts[1].started_at - attempts[0].ended_at).total_seconds()  # type: ignore[operator]
    assert gap >= 3, gap  # retry_delay
    assert request.status == "done"
    assert (queued.outcome, queued.agent) == ("answered", "carmen")


async def test_a_restarted_router_re_adopts_a_pending_callback_in_its_place(
        clean_pbx: PBX) -> None:
    """B asks for a callback while nobody is logged in; the router stops. A new router
    finds B's open queued call with its pending callback, queues it at B's original entry
    time, and when carmen logs in calls her, then B."""
    phone = customer(clean_pbx)
    number = "15558885001"
    config = callback_config(clean_pbx, phone)
    async with start_router(clean_pbx, config) as running:
        asked = await place_call(clean_pbx, number, ASKS_CALLBACK, hold_ms=20000)
        assert asked.returncode == 0 and asked.remote_hangup, asked.stderr
        await pending_callbacks(running, 1)
        channel = _channel_of(running, number)
        entered = running.router.callers[channel].waiting.enqueued_at
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        router = running.router
        assert set(router.callbacks.pending) == {channel}
        assert [c.id for c in router.index.waiting()] == [channel]
        assert router.callers[channel].waiting.enqueued_at == entered
        running.numbers[channel] = number
        answering = asyncio.create_task(phone.take(_ANSWER))
        await running.login("carmen")
        assert (await take(carmen, running, number)).startswith(f"sip:{number}@")
        await answering
        queued = await running.queued(number)
        request, attempts = await records(running, number)
    assert [(x.agent, x.result) for x in attempts] == [("carmen", "answered")]
    assert (request.status, queued.outcome, queued.agent) == ("done", "answered", "carmen")
    assert queued.entered_at.timestamp() == entered


async def test_a_hostile_caller_id_is_never_dialled_only_a_keyed_number_is(
        clean_pbx: PBX) -> None:
    """The caller ID is ``1555$PJSIP/evil,tT`` (a variable, a second destination and Dial
    options, if it reached a dial string): it is not read back; the caller keys 5551234#
    and only that number is dialled."""
    phone = customer(clean_pbx)
    hostile, keyed = "1555$PJSIP/evil,tT", "5551234"
    keys = (*SALES, Keypress("5", 4000), *(Keypress(k, 600) for k in keyed + "#"))
    async with start_router(clean_pbx, callback_config(clean_pbx, phone)) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        asked = await place_call(clean_pbx, hostile, keys, hold_ms=20000)
        assert asked.returncode == 0 and asked.remote_hangup, asked.stderr
        await pending_callbacks(running, 1)
        [pending] = running.router.callbacks.pending.values()
        assert pending.caller.number == hostile  # what Asterisk gave the router
        answering = asyncio.create_task(phone.take(_ANSWER))
        await running.login("carmen")
        assert (await take(carmen, running, hostile)).startswith(f"sip:{keyed}@")
        trace = await answering
        request, attempts = await records(running, keyed)
        await running.queued(hostile)
    assert f"INVITE sip:{keyed}@127.0.0.1:{phone.port}" in trace
    assert "evil" not in trace
    assert (request.number, request.number_source) == (keyed, "keyed")
    assert [(x.agent, x.result) for x in attempts] == [("carmen", "answered")]


async def test_a_callback_whose_last_attempt_fails_leaves_the_queue(clean_pbx: PBX) -> None:
    """``retries: 0`` and the customer is busy: the callback fails (stored ``failed``
    with its one attempt, busy, cause 17), the queued call ends abandoned (never
    served), carmen is free at once, the router holds nothing more."""
    phone = customer(clean_pbx)
    number = "15558886001"
    config = callback_config(clean_pbx, phone, retries=0)
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        asked = await place_call(clean_pbx, number, ASKS_CALLBACK, hold_ms=20000)
        assert asked.returncode == 0 and asked.remote_hangup, asked.stderr
        await pending_callbacks(running, 1)
        busy = asyncio.create_task(phone.take(_BUSY_THEN_ANSWER, calls=1))
        await running.login("carmen")
        rung = await carmen.call()  # answered by carmen, hung up by the router
        assert rung.peer_uri.startswith(f"sip:{number}@"), rung.peer_uri
        await busy
        queued = await running.queued(number)
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        assert running.router.callers == {} and running.router.callbacks.pending == {}
        request, attempts = await records(running, number)
    assert [(x.agent, x.result, x.cause) for x in attempts] == [("carmen", "busy", 17)]
    assert request.status == "failed" and request.ended_at is not None
    assert (queued.outcome, queued.answered_at, queued.agent) == ("abandoned", None, None)


async def test_the_queue_prompt_is_played_once_when_callbacks_open(clean_pbx: PBX) -> None:
    """``prompt`` is played to a waiting caller once, ``after`` (2 s) after it entered,
    as a playback of its own on the caller's channel; not again while it waits on."""
    phone = customer(clean_pbx)
    config = callback_config(clean_pbx, phone, after=2, prompt="vm-tocallback")
    number = "15558887001"
    async with playback_observer(clean_pbx) as seen, \
            start_router(clean_pbx, config) as running:
        call = asyncio.create_task(place_call(clean_pbx, number, hold_ms=8000))
        await waiting(running, 1)
        channel = _channel_of(running, number)
        entered = running.router.callers[channel].waiting.enqueued_at
        assert (await call).returncode == 0
        await running.queued(number)
    started = [s for s in seen if s.channel == channel and s.type == "PlaybackStarted"]
    assert [s.media for s in started] == ["sound:vm-tocallback"], seen
    assert started[0].at.timestamp() >= entered + 2
