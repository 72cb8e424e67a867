"""Transfers of a connected queue call, run inside the queue router (``cc-queue``).

How a transfer reaches us:

- **The HTTP API** (``POST /api/v1/calls/{call}/transfer``, ``.../transfer/complete``,
  ``.../transfer/cancel``; :mod:`callcenter.web.transfers`) calls :meth:`Transfers.start`,
  :meth:`Transfers.complete` and :meth:`Transfers.cancel`.
- **The agent's softphone transfer key** (SIP REFER). Asterisk 22 (22.3+) lets an ARI
  app take a REFER itself: every offer leg the router creates gets
  ``PJSIP_TRANSFER_HANDLING()=ari-only`` (:func:`leg_variables`), so res_pjsip_refer
  answers the phone's REFER with 202 and sends us a ``ChannelTransfer`` event
  (``refer_to.requested_destination.destination``: the number keyed; ``referred_by.
  source_channel``: the agent's leg) instead of moving the channels by itself, which
  would take the caller out of our bridge and out of the call record. We map the number
  (:func:`callcenter.routing.transfer.refer_target`: an agent's extension, a queue's
  name, an external number), run a blind transfer, and answer the phone with
  ``POST /channels/{leg}/transfer_progress?states=channel_answered`` (NOTIFY
  ``SIP/2.0 200 OK``; ``channel_declined`` / ``channel_unavailable`` when refused).
  An attended REFER (``Refer-To`` with ``Replaces``, ``protocol_id`` set) is declined:
  attended transfers go through the API.

What each transfer does (``caller``: the caller's channel, which never leaves its bridge
``cc-<caller>`` nor the router, so the call keeps its id and record):

- **blind, to a queue**: the agent's leg is hung up, the agent goes to wrap-up; the caller
  hears music on hold again and waits in the new queue **with its original entry time**
  (ranked as if it had waited there since it called: not at the back of the line); its
  ``queued_calls`` row is re-opened in that queue (``TransferRepository.requeue``).
- **blind, to an agent**: the agent is reserved first (compare-and-set: refused, nothing
  moves, if not available), then the first agent leaves and the router's own offer rings
  the target with the queue's ring timeout; unanswered, the caller waits in its queue
  (original place) like any caller whose offer failed.
- **blind, to a number**: the leg ``<caller>-t<n>`` is created and dialled through
  ``settings.outbound_trunk`` (:func:`number_dial`: a
  trunk's dial context ``Local/<number>@cc-trunk-<name>-out/n``, else
  ``PJSIP/<number>@<endpoint>``); answered, it joins the caller's bridge (the call is
  the caller's and that number's until one hangs up); unanswered, the caller waits in
  its queue, in its original place.
- **attended**: the first agent moves to a consultation bridge ``cc-xfer-<caller>``, the
  caller alone in its bridge hears music on hold; the target leg ``<caller>-t<n>`` (a
  queue: its longest-idle available agent, :func:`~callcenter.routing.transfer.pick_agent`)
  is dialled into the consultation. **complete**: the target moves into the caller's
  bridge, the first agent is hung up (wrap-up); **cancel**, or the target not answering
  or hanging up: the target leg goes, the first agent is back with the caller. The first
  agent hanging up during the consultation completes the transfer (as on a desk phone).

**Callback calls** (:mod:`ari_apps.callback`: the router called the agent, then the
customer) go blind to a number only: the customer's leg, in the callback's bridge
``cc-cb-<caller>``, is the party handed over (:meth:`Transfers._party`); a number that
does not answer ends the call (an outbound leg has no queue to wait in). Other targets
and attended mode are refused (409, ``to`` / ``mode``).

Records: one ``call_transfers`` row per transfer (written before anything moves, closed
with its result); the call's ``queued_calls`` row follows the caller (re-opened in the new
queue, answered again by the new agent). Events: :class:`~callcenter.events.
CallTransferred` when the first agent leaves (queue_log BLINDTRANSFER / ATTENDEDTRANSFER),
then the usual CallConnected / CallCompleted for the new agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from callcenter import events as ev
from callcenter.agents.state import (
    AgentStatus,
    Answer,
    Hangup,
    IllegalTransition,
    OfferFailed,
    Ring,
)
from callcenter.asterisk.ari.client import ARIError, ARINotFound
from callcenter.asterisk.ari.events import (
    ChannelDestroyed,
    Dial,
    Event,
    StasisEnd,
    StasisStart,
    UnknownEvent,
)
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.models import CallCenterConfig
from callcenter.routing.policy import WaitingCall
from callcenter.routing.transfer import (
    NUMBER,
    Mode,
    Target,
    TransferError,
    TransferRequest,
    pick_agent,
    refer_target,
)
from callcenter.storage.models import OfferResult
from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.storage.transfers import TransferRepository
from dialplan.trunks import trunk_out_context

if TYPE_CHECKING:
    from ari_apps.queue_router import Caller, QueueRouter

__all__ = ["Transfer", "TransferRefused", "Transfers", "leg_variables", "number_dial",
           "requeue"]

log = logging.getLogger(__name__)

#: How long a target leg may take to enter Stasis after channels/create.
LEG_START_TIMEOUT: Final = 5.0
#: How long an external number rings when the outbound endpoint is no trunk of ours.
NUMBER_RING_TIMEOUT: Final = 30
#: After a final Dial status, how long we still wait on the leg's own end.
_EXTRA: Final = 10.0


class TransferRefused(Exception):
    """A transfer that cannot start, complete or cancel now: *status* is the HTTP status
    the API answers with (404 no such call, 409 the call's state, 503 the PBX)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def leg_variables(dial_string: str) -> dict[str, str]:
    """What an agent's offer leg needs so its phone's REFER comes to us (PJSIP only)."""
    return {"PJSIP_TRANSFER_HANDLING()": "ari-only"} if dial_string.startswith("PJSIP/") else {}


def number_dial(number: str, config: CallCenterConfig) -> tuple[str, int]:
    """The dial string and ring seconds of the external *number* (checked by
    :data:`NUMBER`) through ``settings.outbound_trunk``.

    A trunk of ``trunks:`` is reached through its dial context, so a transferred call
    goes out as every outbound call does (the trunk's caller ID, its ring time, its
    number check). ``/n``: the Local channel is not optimised away once bridged, so the
    leg keeps the id the transfer knows it by. Any other name is a PJSIP endpoint.

    Raises:
        TransferError: ``to.number`` when *number* is not a number or nothing dials out.
    """
    if not NUMBER.fullmatch(number):
        raise TransferError("to.number", "not a phone number: an optional + then 3 to 20 "
                                         "digits")
    trunk = config.settings.outbound_trunk
    if trunk is None:
        raise TransferError("to.number", "no settings.outbound_trunk is configured")
    if trunk in config.trunks:
        return (f"Local/{number}@{trunk_out_context(trunk)}/n",
                config.trunks[trunk].ring_timeout)
    return f"PJSIP/{number}@{trunk}", NUMBER_RING_TIMEOUT


def requeue(call: QueueCall, queue: str) -> QueueCall:
    """The caller's Stasis arguments in its new queue: priority and language carry over;
    the skills asked for are the new queue's own (none from the old destination)."""
    return QueueCall(queue, (), call.priority, call.language, call.entry, call.account)


@dataclass(eq=False)
class Transfer:
    """One transfer in progress (or just ended) of one call."""

    id: int
    caller: Caller
    from_agent: str
    from_channel: str
    mode: Mode
    target: Target
    via: str
    at: datetime
    #: The agent rung (the target agent, or the one picked in the target queue).
    agent: str | None = None
    leg_id: str | None = None
    consult_bridge: str | None = None
    state: str = "starting"  # ringing, consulting, connected, ended
    result: str | None = None
    leg_started: asyncio.Event = field(default_factory=asyncio.Event)
    #: Awaited once the first agent's leg is no longer the call's, before it is hung up
    #: (a REFER's NOTIFY: the phone hangs up on it, which must not end the call).
    accepted: Callable[[], Awaitable[None]] | None = None
    #: Set with the leg's outcome: "answer", or an OfferResult value.
    outcome: asyncio.Future[str] | None = None

    def json(self) -> dict[str, Any]:
        return {"call": self.caller.channel_id, "id": self.id, "from_agent": self.from_agent,
                "to": {self.target.kind: self.target.value}, "mode": self.mode,
                "agent": self.agent, "state": self.state, "result": self.result,
                "via": self.via}


class Transfers:
    """The router's transfers: :attr:`active` by caller channel id."""

    def __init__(self, router: QueueRouter) -> None:
        self.router = router
        self.active: dict[str, Transfer] = {}
        self._legs: dict[str, Transfer] = {}
        self._seq = itertools.count(1)
        #: Every transfer that ended, newest last (for tests and the log).
        self.ended: list[Transfer] = []
        self._changed = asyncio.Event()
        #: Agent legs whose REFER is being handled.
        self._refers: set[str] = set()

    # -- who ------------------------------------------------------------------------

    def connected_call(self, call: str) -> tuple[str, str | None] | None:
        """(queue, agent) of the call on *call* if this router has it connected."""
        caller = self.router.callers.get(call)
        if caller is None or caller.phase != "connected":
            return None
        return caller.args.queue, caller.agent or (self.active[call].from_agent
                                                   if call in self.active else None)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once *predicate* holds (checked after every change here)."""
        while not predicate():
            changed = self._changed
            await changed.wait()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- events -----------------------------------------------------------------------

    def on_event(self, event: Event) -> bool:
        """Handle *event* if it is ours (a target leg's, a REFER); True if it was."""
        match event:
            case UnknownEvent(raw=raw) if event.type == "ChannelTransfer":
                # One REFER can bring several events (the phone retransmits while we
                # work): the first one per agent leg is handled, the others dropped.
                source = _dig(raw, "referred_by", "source_channel", "id")
                if isinstance(source, str) and source not in self._refers:
                    log.info("REFER on %s to %r", source, _dig(
                        raw, "refer_to", "requested_destination", "destination"))
                    self._refers.add(source)
                    self.router._spawn(self._refer(source, raw), f"refer {source}")
                return True
            case StasisStart(channel=channel) if channel.id in self._legs:
                self._legs[channel.id].leg_started.set()
                return True
            case Dial(peer=peer, dialstatus=status) if peer.id in self._legs:
                t = self._legs[peer.id]
                upper = status.upper()
                if upper == "ANSWER":
                    self._settle(t, "answer")
                elif upper in ("NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL"):
                    from ari_apps.queue_router import offer_result
                    self._settle(t, (offer_result(upper) or OfferResult.FAILED).value)
                return True
            case StasisEnd(channel=channel) | ChannelDestroyed(channel=channel) \
                    if channel.id in self._legs:
                t = self._legs[channel.id]
                self._settle(t, OfferResult.FAILED.value)
                if t.state in ("consulting", "connected"):
                    self.router._spawn(self._target_left(t), f"transfer leg {channel.id} left")
                return True
            case StasisEnd(channel=channel) | ChannelDestroyed(channel=channel):
                t = self.active.get(_call_of(self.active, channel.id))
                if t is not None and t.state == "consulting" and channel.id == t.from_channel:
                    # The first agent hung up during the consultation: that completes it.
                    self.router._spawn(self._complete(t), f"transfer {t.id} completed by hang-up")
                    return True
        return False

    @staticmethod
    def _settle(t: Transfer, outcome: str) -> None:
        if t.outcome is not None and not t.outcome.done():
            t.outcome.set_result(outcome)

    # -- starting -------------------------------------------------------------------------

    async def start(self, call: str, request: TransferRequest, *, via: str,
                    by_agent: str | None = None,
                    accepted: Callable[[], Awaitable[None]] | None = None) -> Transfer:
        """Transfer the connected call *call* (the caller's channel id). Returns once it
        is under way: blind: the first agent left (the caller waits, or the target rings);
        attended: the consultation leg answered (``state`` consulting) or not
        (``state`` ended, ``result`` no_answer: the agent is back with the caller).
        *by_agent*: the agent asking (its own call only); *accepted*: awaited once the
        transfer is sure to happen and the first agent's leg is no longer the call's,
        before that leg is hung up (REFER's NOTIFY).

        Raises:
            TransferRefused: no such connected call, a transfer in progress, the target is
                the agent itself or not available.
        """
        router = self.router
        caller = router.callers.get(call)
        if caller is None or caller.phase != "connected" or caller.agent is None \
                or caller.agent_channel is None:
            raise TransferRefused(404, f"no connected call {call!r} on this router")
        if call in self.active:
            raise TransferRefused(409, f"call {call!r} has a transfer in progress")
        agent = caller.agent
        if by_agent is not None and by_agent != agent:
            raise TransferRefused(403, f"call {call!r} is not agent {by_agent!r}'s")
        target, mode = request.target, request.mode
        if target.kind == "agent" and target.value == agent:
            raise TransferRefused(409, f"agent {agent!r} cannot transfer a call to itself",
                                  "to.agent")
        if router.callbacks.holds(call):
            # A callback's customer is on an outbound leg, not in the caller's bridge:
            # it goes blind to a number (the agent's hand-off), nothing else for now.
            if target.kind != "number":
                raise TransferRefused(409, "a callback call can only be sent to an external "
                                           "number", "to")
            if mode != "blind":
                raise TransferRefused(409, "a callback call can only be sent blind", "mode")
        now = router.clock()
        rung: str | None = None
        if target.kind == "agent":
            rung = target.value
        elif target.kind == "queue" and mode == "attended":
            offerable = [(s.agent, s.since.timestamp()) for s in router.states.values()
                         if s.offerable]
            rung = pick_agent(target.value, offerable, router._members, agent)
            if rung is None:
                raise TransferRefused(409, f"no agent of queue {target.value!r} is available "
                                           "for a consultation now (a blind transfer "
                                           "queues the caller)", "to.queue")
        if rung is not None and await router.store.try_reserve(
                rung, call, now, known=router.states.get(rung)) is None:
            router.agent_changed(rung)
            raise TransferRefused(409, f"agent {rung!r} is not available now", "to.agent"
                                  if target.kind == "agent" else "to.queue")
        if rung is not None:
            router.agent_changed(rung)
        try:
            async with router.sessions.begin() as session:
                row = await TransferRepository(session).start(
                    queued_call_id=caller.row, channel_id=call, from_agent=agent,
                    from_queue=caller.args.queue, from_answered_at=caller.connected_at,
                    mode=mode, target_kind=target.kind, target=target.value, via=via, at=now)
        except BaseException:
            if rung is not None:  # not recorded: nothing moves, the agent is free again
                with contextlib.suppress(IllegalTransition):
                    await router._apply(rung, OfferFailed(call, OfferResult.CANCELLED.value),
                                        router.clock())
            raise
        t = Transfer(row, caller, agent, caller.agent_channel, mode, target, via, now,
                     agent=rung)
        self.active[call] = t
        log.info("transfer %d: %s of %s by %s to %s (%s)", row, mode, call, agent, target, via)
        t.accepted = accepted
        try:
            if mode == "blind":
                await self._blind(t)
            else:
                await self._consult(t)
        except ARIError as exc:
            if t.state != "ended":
                await self._abort(t, "failed")
            raise TransferRefused(503, f"the PBX refused a step of the transfer ({exc}); "
                                       "the call is back as it was") from None
        except BaseException:
            if t.state != "ended":
                await self._abort(t, "failed")
            raise
        self._pulse()
        return t

    def _party(self, t: Transfer) -> tuple[str, str]:
        """(channel, bridge) of the party a transfer hands over: the caller's channel in
        the call's bridge, or a callback's customer leg in the callback's bridge."""
        attempt = self.router.callbacks.connected_attempt(t.caller.channel_id)
        if attempt is not None:
            return attempt.customer_leg, attempt.bridge_id
        return t.caller.channel_id, t.caller.bridge_id

    async def _end_call(self, caller: Caller, *, by: str) -> None:
        if self.router.callbacks.connected_attempt(caller.channel_id) is not None:
            await self.router.callbacks.end(caller.channel_id, by=by)
        else:
            await self.router._end_call(caller, by=by)

    async def _blind_callback(self, t: Transfer) -> None:
        """Blind, a callback call to a number: the agent leaves (wrap-up), the customer
        hears music on hold in the callback's bridge while the number rings."""
        router, caller = self.router, t.caller
        async with caller.lock:
            attempt = router.callbacks.connected_attempt(caller.channel_id)
            if attempt is None or caller.phase != "connected" or caller.agent != t.from_agent:
                raise TransferRefused(409, "the call changed meanwhile")
            router.callbacks.agent_leaves(attempt)
            await self._first_agent_leaves(t)
            with contextlib.suppress(ARIError):
                await router.ari.bridges.start_moh(attempt.bridge_id)
            t.state = "ringing"
        router._spawn(self._ring_number(t), f"transfer {t.id} to a number")

    async def _blind(self, t: Transfer) -> None:
        router, caller = self.router, t.caller
        if router.callbacks.holds(caller.channel_id):
            await self._blind_callback(t)
            return
        async with caller.lock:
            if caller.phase != "connected" or caller.agent != t.from_agent:
                raise TransferRefused(409, "the call changed meanwhile")
            target_queue = t.target.value if t.target.kind == "queue" else caller.args.queue
            async with router.sessions.begin() as session:
                if t.target.kind != "number":
                    await TransferRepository(session).requeue(caller.row, target_queue)
            await self._first_agent_leaves(t)
            with contextlib.suppress(ARIError):
                await router.ari.bridges.start_moh(caller.bridge_id)
            if t.target.kind == "queue":
                self._wait_in(caller, target_queue)
                await self._end(t, "requeued")
                return
            if t.target.kind == "agent":
                assert t.agent is not None
                caller.phase = "offering"
                t.state = "ringing"
                router._spawn(router._offer(caller, t.agent, 0), f"transfer offer {t.agent}")
                router._spawn(self._follow_offer(t), f"transfer {t.id} offer")
                return
            # The caller stays "connected" (to nobody yet: no agent) while the number
            # rings: the router does not offer it, and its record stays answered.
            t.state = "ringing"
        router._spawn(self._ring_number(t), f"transfer {t.id} to a number")

    def _wait_in(self, caller: Caller, queue: str) -> None:
        """The caller waits in *queue* again, with its original entry time."""
        router = self.router
        caller.args = requeue(caller.args, queue)
        policy = router.policies[queue]
        old = caller.waiting
        caller.waiting = WaitingCall(caller.channel_id, queue, old.enqueued_at,
                                     policy.call_priority(caller.args.priority), (),
                                     caller.args.language, old.seq)
        caller.phase = "waiting"
        caller.agent = caller.agent_channel = None
        caller.connected_at = None
        router.index.enqueue(caller.waiting)
        router._wake.set()
        router._pulse()

    async def _first_agent_leaves(self, t: Transfer) -> None:
        """Under the caller's lock: the first agent's leg goes, the agent to wrap-up."""
        router, caller = self.router, t.caller
        now = router.clock()
        leg = caller.legs.get(t.from_channel)
        if leg is not None:
            leg.ended = True
            router.legs.pop(leg.channel_id, None)
        if caller.agent_channel == t.from_channel:
            caller.agent = caller.agent_channel = None
        if t.accepted is not None:
            await t.accepted()
        await router._hangup(t.from_channel, "normal")
        wrap = timedelta(seconds=router.policies[t.caller.args.queue].wrapup)
        try:
            await router._apply(t.from_agent, Hangup(caller.channel_id, wrap), now)
        except IllegalTransition:
            log.info("agent %s already moved on from %s", t.from_agent, caller.channel_id)
        connected = caller.connected_at or now
        router.events.publish(ev.CallTransferred(
            at=now, queue=caller.args.queue, call=caller.channel_id, agent=t.from_agent,
            mode=t.mode, target_kind=t.target.kind, target=t.target.value,
            hold_seconds=router._waited(caller, connected),
            talk_seconds=max((now - connected).total_seconds(), 0.0),
            position=caller.position, bridge=caller.bridge_id))
        caller.connected_at = None

    async def _follow_offer(self, t: Transfer) -> None:
        """A blind transfer to an agent rides on the router's own offer: its result is
        the offer's (connected to that agent, or back to waiting, or the caller gone)."""
        caller, agent = t.caller, t.agent
        ring = self.router.policies[caller.args.queue].ring_timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ring + LEG_START_TIMEOUT + _EXTRA):
                await self.router.wait_until(lambda: caller.phase != "offering")
        if caller.phase == "connected" and caller.agent == agent:
            async with self.router.sessions.begin() as session:
                await TransferRepository(session).answered(t.id, agent or "",
                                                           self.router.clock())
            await self._end(t, "completed")
        else:
            await self._end(t, "caller_gone" if caller.phase == "gone" else "no_answer")

    # -- target legs (consultation, numbers) ------------------------------------------

    async def _ring(self, t: Transfer, *, other: str) -> str:
        """Create and dial the target leg (joined to nothing yet); its outcome:
        ``answer`` or an OfferResult value."""
        router, caller = self.router, t.caller
        t.leg_id = f"{caller.channel_id}-t{next(self._seq)}"
        self._legs[t.leg_id] = t
        t.outcome = asyncio.get_running_loop().create_future()
        if t.agent is not None:
            dial_string = router.config.agents[t.agent].dial_string(t.agent)
            timeout = router.policies[caller.args.queue].ring_timeout
        else:
            # Checked again there: only digits ever reach the dial string.
            dial_string, timeout = number_dial(t.target.value, router.config)
        try:
            await router.ari.channels.create(
                dial_string, channel_id=t.leg_id, app=router.app, originator=other,
                variables={**router._caller_id(caller), **leg_variables(dial_string)})
            async with asyncio.timeout(LEG_START_TIMEOUT):
                await t.leg_started.wait()
            await router.ari.channels.dial(t.leg_id, caller=other, timeout=timeout)
        except (ARIError, TimeoutError) as exc:
            log.warning("transfer %d: target leg %s failed: %s", t.id, t.leg_id,
                        exc or type(exc).__name__)
            return OfferResult.UNREGISTERED.value
        if t.agent is not None:
            with contextlib.suppress(IllegalTransition):
                await router._apply(t.agent, Ring(caller.channel_id), router.clock())
        t.state = "ringing"
        self._pulse()
        try:
            async with asyncio.timeout(timeout + _EXTRA):
                return await t.outcome
        except TimeoutError:
            return OfferResult.NO_ANSWER.value

    async def _target_failed(self, t: Transfer, result: str) -> None:
        """The target leg ended without (or after) being answered: its agent freed."""
        router = self.router
        if t.leg_id is not None:
            self._legs.pop(t.leg_id, None)
            await router._hangup(t.leg_id, "normal")
        if t.agent is not None:
            now = router.clock()
            state = router.states.get(t.agent)
            event = (Hangup(t.caller.channel_id) if state is not None and state.call ==
                     t.caller.channel_id and state.status is AgentStatus.ON_CALL
                     else OfferFailed(t.caller.channel_id, result))
            with contextlib.suppress(IllegalTransition):
                await router._apply(t.agent, event, now)

    async def _ring_number(self, t: Transfer) -> None:
        """Blind to a number: the caller (music on hold) is joined when it answers."""
        caller = t.caller
        party, bridge = self._party(t)
        callback = party != caller.channel_id
        outcome = await self._ring(t, other=party)
        async with caller.lock:
            if caller.phase == "gone":
                await self._target_failed(t, OfferResult.CALLER_GONE.value)
                await self._end(t, "caller_gone")
                return
            if outcome == "answer":
                with contextlib.suppress(ARIError):
                    await self.router.ari.bridges.stop_moh(bridge)
                try:
                    await self.router.ari.bridges.add_channel(bridge, t.leg_id or "")
                except ARIError:
                    outcome = OfferResult.FAILED.value
            if outcome == "answer":
                caller.phase = "connected"
                caller.agent_channel = t.leg_id
                t.state = "connected"
                async with self.router.sessions.begin() as session:
                    await TransferRepository(session).answered(t.id, t.target.value,
                                                               self.router.clock())
                await self._end(t, "completed", keep=True)
                return
            await self._target_failed(t, outcome)
            if not callback:
                # Nobody took it: the caller waits in its queue, in its original place.
                async with self.router.sessions.begin() as session:
                    await TransferRepository(session).requeue(caller.row, caller.args.queue)
                self._wait_in(caller, caller.args.queue)
        await self._end(t, "no_answer")
        if callback:
            # The customer's leg is an outbound call: it cannot wait in a queue. Its
            # agent is gone, so the call ends (the record says the number did not answer).
            await self._end_call(caller, by="agent")

    async def _consult(self, t: Transfer) -> None:
        """Attended: the first agent to a consultation bridge, the target rung into it."""
        router, caller = self.router, t.caller
        t.consult_bridge = f"cc-xfer-{caller.channel_id}"
        async with caller.lock:
            if caller.phase != "connected" or caller.agent != t.from_agent:
                raise TransferRefused(409, "the call changed meanwhile")
            await router.ari.bridges.create("mixing", bridge_id=t.consult_bridge,
                                            name=f"transfer {t.id}")
            await router.ari.bridges.remove_channel(caller.bridge_id, t.from_channel)
            await router.ari.bridges.add_channel(t.consult_bridge, t.from_channel)
            await router.ari.bridges.start_moh(caller.bridge_id)
        outcome = await self._ring(t, other=t.from_channel)
        async with caller.lock:
            if outcome == "answer" and caller.phase == "connected" and t.state != "ended":
                try:
                    await router.ari.bridges.add_channel(t.consult_bridge, t.leg_id or "")
                except ARIError:
                    outcome = OfferResult.FAILED.value
                else:
                    t.state = "consulting"
                    now = router.clock()
                    if t.agent is not None:
                        with contextlib.suppress(IllegalTransition):
                            await router._apply(t.agent, Answer(caller.channel_id), now)
                    async with router.sessions.begin() as session:
                        await TransferRepository(session).answered(
                            t.id, t.agent or t.target.value, now)
                    log.info("transfer %d: %s consulting %s", t.id, t.from_agent,
                             t.agent or t.target.value)
                    return
            if t.state == "ended":
                return
            await self._back_to_caller(t, "no_answer" if outcome != "answer" else "failed",
                                       outcome)

    async def _back_to_caller(self, t: Transfer, result: str, leg_result: str) -> None:
        """Under the caller's lock: the target leg goes, the first agent rejoins the caller."""
        router, caller = self.router, t.caller
        await self._target_failed(t, leg_result)
        if caller.phase == "connected":
            with contextlib.suppress(ARIError):
                await router.ari.bridges.stop_moh(caller.bridge_id)
            try:
                await router.ari.bridges.add_channel(caller.bridge_id, t.from_channel)
            except ARIError as exc:
                log.info("transfer %d: %s could not rejoin %s (%s)", t.id, t.from_agent,
                         caller.channel_id, exc)
        await self._destroy_consultation(t)
        await self._end(t, result)

    async def _destroy_consultation(self, t: Transfer) -> None:
        if t.consult_bridge is not None:
            with contextlib.suppress(ARIError):
                await self.router.ari.bridges.destroy(t.consult_bridge)

    # -- complete / cancel ---------------------------------------------------------------

    def _consulting(self, call: str, by_agent: str | None) -> Transfer:
        t = self.active.get(call)
        if t is None or t.state != "consulting":
            raise TransferRefused(409 if call in self.router.callers else 404,
                                  f"call {call!r} has no consultation in progress")
        if by_agent is not None and by_agent != t.from_agent:
            raise TransferRefused(403, f"call {call!r} is not agent {by_agent!r}'s")
        return t

    async def complete(self, call: str, *, by_agent: str | None = None) -> Transfer:
        """The consultation's target takes the caller; the first agent leaves."""
        t = self._consulting(call, by_agent)
        await self._complete(t)
        return t

    async def _complete(self, t: Transfer) -> None:
        router, caller = self.router, t.caller
        async with caller.lock:
            if t.state != "consulting" or caller.phase != "connected":
                return
            leg_id = t.leg_id or ""
            with contextlib.suppress(ARIError):
                await router.ari.bridges.remove_channel(t.consult_bridge or "", leg_id)
            with contextlib.suppress(ARIError):
                await router.ari.bridges.stop_moh(caller.bridge_id)
            try:
                await router.ari.bridges.add_channel(caller.bridge_id, leg_id)
            except ARIError as exc:
                log.warning("transfer %d: target left before completion (%s)", t.id, exc)
                await self._back_to_caller(t, "failed", OfferResult.FAILED.value)
                return
            await self._first_agent_leaves(t)
            await self._destroy_consultation(t)
            self._legs.pop(leg_id, None)
            now = router.clock()
            caller.agent_channel = leg_id
            if t.agent is not None:
                await self._adopt_agent_leg(t, leg_id, now)
            t.state = "connected"
        await self._end(t, "completed", keep=t.agent is None)

    async def _adopt_agent_leg(self, t: Transfer, leg_id: str, now: datetime) -> None:
        """The target agent's leg becomes the call's agent leg, as if the router's own
        offer had been answered: offer + answer recorded on the call's row (re-opened in
        the new queue), CallConnected published, the router ends it as any call."""
        from ari_apps.queue_router import Leg

        router, caller = self.router, t.caller
        assert t.agent is not None
        queue = t.target.value if t.target.kind == "queue" else caller.args.queue
        caller.args = requeue(caller.args, queue) if queue != caller.args.queue \
            else caller.args
        async with router.sessions.begin() as session:
            await TransferRepository(session).requeue(caller.row, queue)
            repo = QueuedCallRepository(session)
            offer = await repo.add_offer_by_id(caller.row, t.agent, offered_at=t.at,
                                               channel_id=leg_id)
            await repo.answered_by_id(caller.row, offer, t.agent, at=now,
                                      matched_skills=dict(router.config.agents[t.agent].skills)
                                      or None, relaxation_step=0)
        leg = Leg(leg_id, t.agent, caller, offer, 0, offered_at=t.at)
        leg.started.set()
        caller.legs[leg_id] = leg
        router.legs[leg_id] = leg
        caller.agent = t.agent
        caller.connected_at = now
        router.calls_taken[t.agent] = router.calls_taken.get(t.agent, 0) + 1
        router.events.publish(ev.CallConnected(
            at=now, queue=queue, call=caller.channel_id, agent=t.agent, agent_channel=leg_id,
            wait_seconds=router._waited(caller, now),
            ring_seconds=max((now - t.at).total_seconds(), 0.0), position=caller.position))

    async def cancel(self, call: str, *, by_agent: str | None = None) -> Transfer:
        """The consultation ends; the first agent is back with the caller."""
        t = self._consulting(call, by_agent)
        async with t.caller.lock:
            if t.state == "consulting":
                await self._back_to_caller(t, "cancelled", OfferResult.CANCELLED.value)
        return t

    async def _target_left(self, t: Transfer) -> None:
        """The target hung up: during the consultation the first agent is back with the
        caller; after a number was connected, the call ends."""
        if t.state == "consulting":
            async with t.caller.lock:
                if t.state == "consulting":
                    await self._back_to_caller(t, "cancelled", OfferResult.CANCELLED.value)
        elif t.state == "connected" and t.caller.phase == "connected":
            self._legs.pop(t.leg_id or "", None)
            await self._end_call(t.caller, by="agent")

    # -- the end ---------------------------------------------------------------------------

    async def call_ended(self, caller: Caller) -> None:
        """The router ended *caller*'s call: whatever of a transfer is left goes too."""
        t = self.active.get(caller.channel_id)
        if t is None:
            return
        if t.state == "connected":  # a number: its leg is the call's other side
            self._legs.pop(t.leg_id or "", None)
            await self.router._hangup(t.leg_id, "normal")
        elif t.state in ("ringing", "consulting", "starting"):
            self._settle(t, OfferResult.CALLER_GONE.value)
            if t.leg_id is not None and t.leg_id in self._legs:
                await self._target_failed(t, OfferResult.CALLER_GONE.value)
            await self._destroy_consultation(t)
        await self._end(t, "caller_gone" if t.result is None else t.result)
        self.active.pop(caller.channel_id, None)

    async def _abort(self, t: Transfer, result: str) -> None:
        """A step failed: the target goes, an attended transfer's first agent rejoins
        the caller (if it had left the caller's bridge)."""
        if t.consult_bridge is not None:
            async with t.caller.lock:
                await self._back_to_caller(t, result, OfferResult.FAILED.value)
            return
        await self._target_failed(t, OfferResult.FAILED.value)
        await self._end(t, result)

    async def _end(self, t: Transfer, result: str, *, keep: bool = False) -> None:
        """Close the transfer's record. *keep*: an external number stays attached to the
        call (its leg is hung up with the call) until the call ends."""
        if t.result is None:
            t.result = result
            async with self.router.sessions.begin() as session:
                await TransferRepository(session).end(t.id, result, self.router.clock())
            log.info("transfer %d of %s: %s", t.id, t.caller.channel_id, result)
        if not keep:
            t.state = "ended"
            if self.active.get(t.caller.channel_id) is t:
                del self.active[t.caller.channel_id]
            if t.leg_id is not None:
                self._legs.pop(t.leg_id, None)
            self.ended.append(t)
        self._pulse()

    # -- SIP REFER -------------------------------------------------------------------------

    async def _refer(self, source: str, raw: Mapping[str, Any]) -> None:
        """A phone's REFER (``ChannelTransfer``, ari-only handling) on the agent leg
        *source*: a blind transfer to what the agent keyed; the phone is told the
        outcome (NOTIFY)."""
        try:
            await self._refer_on(source, raw)
        finally:
            self._refers.discard(source)

    async def _refer_on(self, source: str, raw: Mapping[str, Any]) -> None:
        destination = _dig(raw, "refer_to", "requested_destination", "destination")
        caller = next((c for c in self.router.callers.values()
                       if c.agent_channel == source and c.phase == "connected"), None)
        if caller is None or caller.channel_id in self.active:
            return  # not a call of ours in a state to transfer (or a repeated event)
        if not isinstance(destination, str) or not destination:
            log.warning("REFER on %s: attended transfer from the phone declined (use the "
                        "HTTP API's attended transfer)", source)
            await self._progress(source, "channel_declined")
            return
        try:
            target = refer_target(destination, self.router.config)
        except TransferError as exc:
            log.warning("REFER on %s from agent %s: %s", source, caller.agent, exc)
            await self._progress(source, "channel_declined")
            return
        try:
            await self.start(caller.channel_id, TransferRequest(target, "blind"), via="refer",
                             accepted=lambda: self._progress(source, "channel_answered"))
        except TransferRefused as exc:
            log.warning("REFER on %s from agent %s to %s refused: %s", source, caller.agent,
                        target, exc.message)
            await self._progress(source, "channel_unavailable")

    async def _progress(self, channel: str, state: str) -> None:
        """``transfer_progress``: the phone gets a NOTIFY with the matching sipfrag."""
        try:
            await self.router.ari.request(
                "POST", f"/channels/{channel}/transfer_progress", params={"states": state})
        except ARINotFound:
            pass
        except ARIError as exc:
            log.info("transfer_progress %s on %s: %s", state, channel, exc)


def _dig(raw: Mapping[str, Any], *keys: str) -> object:
    value: object = raw
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _call_of(active: Mapping[str, Transfer], channel: str) -> str:
    """The call whose transfer's first agent is on *channel* ("" if none)."""
    return next((call for call, t in active.items() if t.from_channel == channel), "")
