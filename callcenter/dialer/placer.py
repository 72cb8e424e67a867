"""Place one outbound call through a trunk and say how it ended (ARI, I/O).

How a call is placed (dialplan contract)::

    POST /channels  endpoint=Local/<number>@cc-trunk-<trunk>-out/n  app=cc-dialer
                    appArgs=answered  channelId=<ours>
                    variables: CC_OUTBOUND_CALLER_ID, CC_RING_TIMEOUT

The Local channel's ``;2`` half runs the trunk's dial context (:mod:`dialplan.trunks`):
``Dial(PJSIP/<number>@<trunk>)`` with our caller ID and ring time; it hangs up with the
network's cause (17 busy, 19 no answer, 34 a 503 ...) and that cause reaches our ``;1``
half, the channel we originated and own (``/n``: never optimised away once bridged to an
agent, so the call keeps the id we chose). When the callee answers, ``;1`` enters Stasis
``cc-dialer`` (``StasisStart``, argument ``answered``). With ``amd`` the placer sends it
on to ``cc-dialer-amd`` (``continue``): ``AMD()`` listens to the callee, stores its
verdict in ``CC_AMD`` and returns the call to ``cc-dialer`` (argument ``amd``), where
the placer reads ``CC_AMD`` over ARI. A live answer is returned still up, in Stasis,
for the caller to bridge to an agent; any other answered call is hung up here, a
machine after the campaign's message when it has one (``machine_message``: the beep
waited for and the sound played by :func:`callcenter.dialer.machine_message.leave_message`).

Events: the placer reads the events of its channel (and only those) from an
:class:`Inbox`, which whoever reads the ARI websocket fills, keyed by the channel id we
chose before the originate (:class:`ChannelInboxes`). It never sleeps: it waits on events,
every wait bounded (ring time + margins).

Every way it exits: a :class:`PlacedCall` with its :class:`Observation` and
:class:`Outcome` (a number that is not one is INVALID_NUMBER without dialling; an
originate ARI refused is FAILED; a call that outlives its time budget is hung up and
CANCELLED, or decided from what was seen if it had been answered: LIVE with no channel
then means a person answered and the dialer dropped them, an abandon). Bad arguments that
only a programming error produces (trunk name, caller ID, ring time) raise
:class:`ValueError`. Cancelling the task (even during the originate) hangs the call up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final, Protocol

from callcenter.asterisk import variables as V
from callcenter.asterisk.ari.client import ARIClient, ARIError, ARINotFound
from callcenter.asterisk.ari.dispatch import event_key
from callcenter.asterisk.ari.events import (
    Channel,
    ChannelDestroyed,
    ChannelVarset,
    Event,
    StasisStart,
    parse_event,
)
from callcenter.dialer.amd import (
    AMD_CONTEXT,
    ARG_ANALYSED,
    ARG_ANSWERED,
    DIALER_APP,
    AmdResult,
    parse_amd,
)
from callcenter.dialer.machine_message import (
    MESSAGE_BUDGET,
    MachineMessage,
    leave_message,
)
from callcenter.dialer.outcome import Observation, Outcome, decide

__all__ = [
    "HANGUP_BUDGET",
    "NUMBER",
    "ChannelInboxes",
    "Inbox",
    "PlacedCall",
    "destroyed_cause",
    "dialer_bridge_id",
    "hang_up_and_wait",
    "lost_channel",
    "new_channel_id",
    "place_call",
]

log = logging.getLogger(__name__)

#: A number the dialer dials: an optional ``+`` then 2 to 20 digits (the dial context
#: refuses anything else with cause 28; we refuse it before the originate).
NUMBER = re.compile(r"\+?[0-9]{2,20}")
_TRUNK = re.compile(r"[a-z][a-z0-9_]{0,47}")  # config.models.Name
#: Seconds past the ring time the originated channel may wait for the dial context.
_RING_MARGIN = 15
#: Seconds an answered call may take to come back from ``AMD()`` (its total analysis
#: time is 5 s; a slow start and the ARI round trips on top).
_AMD_BUDGET = 15.0
#: Seconds to wait for ``ChannelDestroyed`` after we hung a call up.
HANGUP_BUDGET: Final = 5.0


class Inbox(Protocol):
    """The events of one channel, in Asterisk's order (an ``asyncio.Queue`` is one)."""

    async def get(self) -> Event: ...


class ChannelInboxes:
    """Per-channel queues for placed calls, filled by the websocket reader.

    ``with inboxes.open(channel_id) as inbox:`` before the originate (so no event of the
    new channel can come before its queue exists); ``inboxes.put(event)`` from the
    reader, which drops events of channels nobody placed. Never blocks. Several channels
    of one call may share a queue (``open(a, b)``, or ``open(leg, queue=inbox)`` later),
    so their events stay in Asterisk's order.
    """

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[Event]] = {}

    @contextlib.contextmanager
    def open(self, *channel_ids: str,
             queue: asyncio.Queue[Event] | None = None) -> Iterator[asyncio.Queue[Event]]:
        """One queue (``queue``, else a new one) for the events of ``channel_ids``."""
        for channel_id in channel_ids:
            if channel_id in self._queues:
                raise ValueError(f"channel id {channel_id!r} is already being placed")
        inbox: asyncio.Queue[Event] = queue if queue is not None else asyncio.Queue()
        self._queues.update(dict.fromkeys(channel_ids, inbox))
        try:
            yield inbox
        finally:
            for channel_id in channel_ids:
                del self._queues[channel_id]

    def put(self, event: Event) -> bool:
        """Queue ``event`` for its channel's placer; False if no placer waits for it."""
        key = event_key(event)
        queue = self._queues.get(key.removeprefix("channel:")) if key.startswith(
            "channel:") else None
        if queue is None:
            return False
        queue.put_nowait(event)
        return True


def lost_channel(channel_id: str, app: str) -> ChannelDestroyed:
    """The end of a channel whose real end was lost with the events websocket (found
    gone on reconnection), for the inbox of whoever waits on it."""
    nobody = {"name": "", "number": ""}
    return parse_event({  # type: ignore[return-value]
        "type": "ChannelDestroyed", "application": app, "cause": 0,
        "cause_txt": "ended while the events websocket was down",
        "channel": {"id": channel_id, "name": "", "state": "Down", "caller": nobody,
                    "connected": nobody,
                    "dialplan": {"context": "", "exten": "", "priority": 0}}})


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """One placed call: its channel id, what was seen, the outcome, and the channel when
    it was answered live (up, in Stasis ``cc-dialer``: the caller bridges it on)."""

    channel_id: str
    number: str
    observation: Observation
    outcome: Outcome
    channel: Channel | None = None
    #: The message left on a machine (``machine_message``); None: none was to be left.
    message: MachineMessage | None = None


def new_channel_id() -> str:
    """An id for the channel to originate, chosen by us (ARI ``channelId``)."""
    return f"cc-dial-{uuid.uuid4().hex}"


def dialer_bridge_id(channel_id: str) -> str:
    """The id of the mixing bridge a dialer puts the contact's leg ``channel_id`` and its
    agent in. Not the queue router's ``cc-<caller channel>``: a contact handed to a queue
    keeps its channel, and the router parks it in a bridge of that name, so one id for
    both would let a dialer bridge left in Asterisk refuse the router's (409, the caller
    sent to the queue's fallback)."""
    return f"cc-dialer-{channel_id}"


async def destroyed_cause(inbox: Inbox, channel_id: str, *,
                          budget: float = HANGUP_BUDGET) -> int | None:
    """The hangup cause of ``channel_id``'s ``ChannelDestroyed``, waited for in ``inbox``
    ``budget`` seconds at most (None: not seen); other events are dropped."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(budget):
            while True:
                event = await inbox.get()
                if isinstance(event, ChannelDestroyed) and event.channel.id == channel_id:
                    return event.cause
    return None


async def hang_up_and_wait(ari: ARIClient, inbox: Inbox, channel_id: str, *, name: str,
                           budget: float = HANGUP_BUDGET) -> int | None:
    """Hang ``channel_id`` up and wait for its end (:func:`destroyed_cause`); None at
    once when it is gone already or ARI refused (logged under dialer ``name``)."""
    try:
        await ari.channels.hangup(channel_id)
    except ARINotFound:
        return None
    except ARIError as exc:
        log.warning("dialer %s: hanging up %s: %s", name, channel_id, exc)
        return None
    return await destroyed_cause(inbox, channel_id, budget=budget)


def _seconds(event: Event, loop: asyncio.AbstractEventLoop) -> float:
    """The event's own time (Asterisk's clock) in seconds; the loop's if it has none."""
    return event.timestamp.timestamp() if event.timestamp is not None else loop.time()


async def place_call(
    ari: ARIClient,
    inbox: Inbox,
    *,
    number: str,
    trunk: str,
    caller_id: str | None = None,
    ring_seconds: int,
    amd: bool = True,
    channel_id: str,
    app: str = DIALER_APP,
    machine_message: str | None = None,
) -> PlacedCall:
    """Dial ``number`` through ``trunk``; return when the outcome is known.

    ``inbox`` gets the events of ``channel_id`` (open it before calling: see
    :class:`ChannelInboxes`). ``caller_id`` (``+`` and digits) is sent instead of the
    trunk's; ``ring_seconds`` (1-300) is how long the callee may ring. ``app`` must be
    one of ``ari``'s apps; the AMD context returns calls to ``cc-dialer`` only, so with
    ``amd`` it must be that one. ``machine_message``: the sound (a validated config
    ``Sound``) left after the beep on a machine AMD detects, instead of hanging it up.
    """
    if not _TRUNK.fullmatch(trunk):
        raise ValueError(f"trunk {trunk!r}: a configured trunk name is expected")
    if caller_id is not None and not NUMBER.fullmatch(caller_id):
        raise ValueError(f"caller ID {caller_id!r}: '+' and 2 to 20 digits expected")
    if isinstance(ring_seconds, bool) or not isinstance(ring_seconds, int) \
            or not 1 <= ring_seconds <= 300:
        raise ValueError(f"ring_seconds {ring_seconds!r}: whole seconds from 1 to 300")
    if amd and app != DIALER_APP:
        raise ValueError(f"AMD returns calls to Stasis app {DIALER_APP!r}, not {app!r}")
    if not isinstance(number, str) or not NUMBER.fullmatch(number):
        # Never dialled, never written into an endpoint: refused here.
        log.warning("dialer: refused to dial %r: not a number", number)
        seen = Observation(cause=28)
        return PlacedCall(channel_id, str(number), seen, decide(seen))
    call = _Call(ari, inbox, number, channel_id, amd, machine_message if amd else None)
    variables = {V.RING_TIMEOUT: str(ring_seconds)}
    if caller_id is not None:
        variables[V.OUTBOUND_CALLER_ID] = caller_id
    try:
        try:
            await ari.channels.originate(
                f"Local/{number}@cc-trunk-{trunk}-out/n", app=app, app_args=(ARG_ANSWERED,),
                channel_id=channel_id, caller_id=caller_id, variables=variables,
                timeout=ring_seconds + _RING_MARGIN)
        except ARIError as exc:
            log.warning("dialer: originate to %s on trunk %s refused: %s", number, trunk, exc)
            return call.result()
        budget = ring_seconds + _RING_MARGIN + (_AMD_BUDGET if amd else 0) + (
            MESSAGE_BUDGET + HANGUP_BUDGET if call.message_sound else 0)
        async with asyncio.timeout(budget):
            return await call.run()
    except TimeoutError:
        log.warning("dialer: %s (%s) took too long; hanging up", channel_id, number)
        await call.hang_up()
        return call.result()
    except BaseException:
        # Cancelled (or broken): the call must not stay up without an owner.
        with contextlib.suppress(Exception):
            await asyncio.shield(call.hang_up())
        raise


class _Call:
    """The placer's state for one call while it is being placed."""

    def __init__(self, ari: ARIClient, inbox: Inbox, number: str, channel_id: str,
                 amd: bool, message_sound: str | None = None) -> None:
        self.ari = ari
        self.inbox = inbox
        self.number = number
        self.channel_id = channel_id
        self.amd = amd
        self.message_sound = message_sound
        self.message: MachineMessage | None = None
        self.seen = Observation()
        self.channel: Channel | None = None
        self.ended = False

    def result(self, channel: Channel | None = None) -> PlacedCall:
        return PlacedCall(self.channel_id, self.number, self.seen, decide(self.seen), channel,
                          self.message)

    async def run(self) -> PlacedCall:
        loop = asyncio.get_running_loop()
        while True:
            event = await self.inbox.get()
            match event:
                case ChannelDestroyed():
                    self._ended(event, loop)
                    if self.amd and self.seen.answered and self.seen.amd is None:
                        # Hung up while AMD listened: AMD() saw HANGUP, but the dialplan
                        # of a hung-up channel runs no further to store it.
                        self.seen = replace(self.seen, amd=AmdResult("HANGUP"))
                    return self.result()
                case ChannelVarset(variable=V.AMD, value=value):
                    self.seen = replace(self.seen, amd=parse_amd(value))
                case StasisStart(channel=channel, args=args) if args[:1] == (ARG_ANSWERED,):
                    self.channel = channel
                    self.seen = replace(self.seen, answered_at=_seconds(event, loop),
                                        dial_status="ANSWER")
                    if not self.amd:
                        return self.result(channel)
                    try:
                        # AMD runs in the dialplan; the call comes back with "amd".
                        await self.ari.channels.continue_in_dialplan(
                            self.channel_id, AMD_CONTEXT, "s", 1)
                    except ARIError as exc:  # hung up meanwhile: ChannelDestroyed follows
                        log.info("dialer: %s not sent to AMD: %s", self.channel_id, exc)
                case StasisStart(channel=channel, args=args) if args[:1] == (ARG_ANALYSED,):
                    self.channel = channel
                    verdict = await self._amd_verdict()
                    self.seen = replace(self.seen, amd=verdict or AmdResult("NOTSURE"))
                    outcome = decide(self.seen)
                    if outcome is Outcome.LIVE:
                        return self.result(channel)
                    if outcome is Outcome.MACHINE and self.message_sound:
                        self.message, gone = await leave_message(
                            self.ari, self.inbox, self.channel_id, self.message_sound)
                        if gone is not None:
                            self._ended(gone, loop)
                            return self.result()
                    # A machine (or a hangup AMD saw): nobody for an agent.
                    await self.hang_up()
                    return self.result()

    def _ended(self, event: ChannelDestroyed, loop: asyncio.AbstractEventLoop) -> None:
        self.ended = True
        self.seen = replace(self.seen, ended_at=_seconds(event, loop), cause=event.cause)

    async def _amd_verdict(self) -> AmdResult | None:
        if self.seen.amd is not None:
            return self.seen.amd
        try:
            return parse_amd(await self.ari.channels.get_variable(self.channel_id, V.AMD))
        except ARINotFound:
            return None

    async def hang_up(self) -> None:
        """Hang our channel up (gone already is fine) and wait, bounded, for its end."""
        if self.ended:
            return
        if self.seen.answered_at is None:
            self.seen = replace(self.seen, cancelled=True)
        try:
            await self.ari.channels.hangup(self.channel_id)
        except ARINotFound:
            pass
        except ARIError as exc:
            log.warning("dialer: hanging up %s: %s", self.channel_id, exc)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(HANGUP_BUDGET):
                while True:
                    event = await self.inbox.get()
                    if isinstance(event, ChannelDestroyed):
                        self.ended = True
                        self.seen = replace(self.seen, ended_at=_seconds(event, loop),
                                            cause=self.seen.cause if self.seen.cause
                                            is not None else event.cause)
                        return
        except TimeoutError:
            log.warning("dialer: no ChannelDestroyed for %s after hangup", self.channel_id)
