"""Callbacks that keep the caller's place, in the queue router's Stasis app.

A component of :class:`~ari_apps.queue_router.QueueRouter` (``router.callbacks``); the
router calls it at a few points (its hooks, each one line in the router):

* :meth:`Callbacks.on_event` first for every event: the DTMF of waiting callers
  (``ChannelDtmfReceived`` on the caller's channel), the playbacks of its prompts
  (ids ``cc-callback-<caller channel>-<n>``) and every event of its own legs;
* :meth:`Callbacks.caller_left` when a caller's channel leaves: True keeps the caller
  (a confirmed callback) in the router's index with its original rank;
* :meth:`Callbacks.offer` instead of ringing the caller's agent when the router reserved
  an agent for a callback (the same matchmaker and ``try_reserve`` as live callers);
* :meth:`Callbacks.decision_time` (the queue's overflow step is not for a callback),
  :meth:`Callbacks.silence` (an agent answered while the caller was being asked),
  :meth:`Callbacks.live_calls` / :meth:`Callbacks.holds` (the watchdog and resync must not
  end a callback whose caller's channel is gone), :meth:`Callbacks.readopt` (restart).

**The caller's side.** A caller of a queue with ``callback`` who has waited ``after``
seconds (``prompt``, when set, is played once then) presses ``key``: the music stops for
``sound:you-entered digits:<caller id> sound:if-correct-press digits:1`` (when the caller
ID is a number) and ``sound:vm-enter-num-to-call sound:vm-then-pound``; ``1`` takes the
caller ID, digits then ``#`` another number (:class:`~callcenter.routing.callback.Dialog`).
A bad number, any other key or :data:`KEY_TIMEOUT` of silence: ``sound:invalid`` and the
caller waits on, in place. Confirmed: the callback is stored (``callbacks`` row; the
``queued_calls`` row stays open), ``sound:auth-thankyou sound:vm-goodbye`` plays and the
router hangs up (or the caller does). The caller stays in the queue all along: an agent
free meanwhile answers it as usual (:meth:`silence` stops the prompt).

**The callback's turn.** The agent is called first: a channel ``<caller>-cb<n>a`` created
with the customer's number as caller ID, dialled with the queue's ``ring_timeout``. The
agent answers: a mixing bridge ``cc-cb-<caller>`` holds the agent, who hears a ring tone
(``tone:ring``) while the customer's leg ``<caller>-cb<n>c`` (the queue's
``callback.dial`` with the number put in) rings ``callback.ring_timeout`` seconds. The
customer answers: both talk; whoever hangs up ends the call, the agent wraps up as after
any call. The customer does not answer (busy, no answer, unreachable): the attempt is
stored with its result and the customer leg's hangup cause, the agent is freed at once
(no wrap-up: there was no conversation), and the callback waits ``retry_delay`` seconds
out of the index, then takes its original place again; after ``retries`` more attempts
it fails. The agent does not answer: a missed offer like any other (counted towards
auto-pause), the callback is offered again at once.

**Transfers** (:mod:`ari_apps.transfer`): a connected callback goes blind to an external
number (API or the agent's REFER: the agent's leg has ``PJSIP_TRANSFER_HANDLING()=
ari-only``); :meth:`Callbacks.agent_leaves` takes the agent's leg out of the attempt (its
end no longer ends the call), the number joins the customer in ``cc-cb-<caller>``, and
:meth:`Callbacks.end` ends the call when the number hangs up (the customer hanging up
ends it as before, the transfer's leg with it).

**Records**: :class:`~callcenter.storage.callbacks.CallbackRepository` (the request, each
attempt with agent, times, result, cause) and the caller's ``queued_calls`` row with its
offers (so statistics count a callback as the queued call it is: answered when the
customer talked to an agent, abandoned when every attempt failed). **Events**:
:class:`~callcenter.events.CallbackRequested` (queue_log ``EXITWITHKEY``), then the usual
``OfferRinging`` / ``OfferEnded`` / ``CallConnected`` / ``CallCompleted`` for the agent's
legs, :class:`~callcenter.events.CallbackAttemptEnded` and
:class:`~callcenter.events.CallbackEnded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from ari_apps.after_hours import wait_or_stop
from ari_apps.transfer import leg_variables
from callcenter import events as ev
from callcenter.agents.state import (
    AgentStatus,
    Answer,
    Hangup,
    IllegalTransition,
    OfferFailed,
    Ring,
)
from callcenter.asterisk.ari.client import (
    ARIConflict,
    ARIConnectionError,
    ARIError,
    ARINotFound,
)
from callcenter.asterisk.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Dial,
    Event,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.models import Callback
from callcenter.routing.after_hours import message_media
from callcenter.routing.callback import (
    COLLECTING,
    CONFIRMED,
    LOST,
    REFUSED,
    RING,
    Dialog,
    callback_number,
    decision_time,
    dial_string,
    next_attempt,
    offer_start,
    result_from_cause,
    result_from_dialstatus,
)
from callcenter.routing.policy import WaitingCall
from callcenter.storage.callbacks import CallbackRepository
from callcenter.storage.models import (
    CallbackResult,
    CallbackStatus,
    OfferResult,
    QueueOutcome,
)
from callcenter.storage.queued_calls import QueuedCallRepository

if TYPE_CHECKING:
    from ari_apps.queue_router import Caller, QueueRouter

__all__ = ["KEY_TIMEOUT", "PLAYBACK_PREFIX", "Attempt", "Callbacks", "Pending"]

log = logging.getLogger(__name__)

#: Playback ids of the callback's prompts start with this.
PLAYBACK_PREFIX: Final = "cc-callback-"
#: Seconds the caller has for each key of the dialog before it goes back to waiting.
KEY_TIMEOUT: Final = 10.0
#: Longest wait for the thank-you prompt to end before the caller is hung up.
THANKS_TIMEOUT: Final = 10.0
#: How often the one-time prompts are looked at.
PROMPT_TICK: Final = 0.5
#: How long a created leg may take to enter Stasis.
LEG_START_TIMEOUT: Final = 5.0
#: Longest wait for a message to be played to the agent (``take_message.max_seconds``
#: is 600 at most).
MESSAGE_TIMEOUT: Final = 620.0
#: After a final Dial status of the customer's leg, how long its ChannelDestroyed (with
#: the hangup cause to store) may take.
CAUSE_GRACE: Final = 2.0

_AGENT_DIAL: Final = {"NOANSWER": OfferResult.NO_ANSWER, "BUSY": OfferResult.BUSY,
                      "CHANUNAVAIL": OfferResult.UNREGISTERED,
                      "CONGESTION": OfferResult.FAILED, "CANCEL": OfferResult.CANCELLED}
_ASKING: Final = ["sound:vm-enter-num-to-call", "sound:vm-then-pound"]
_THANKS: Final = ["sound:auth-thankyou", "sound:vm-goodbye"]
_REFUSED: Final = ["sound:invalid"]


@dataclass(eq=False)
class Attempt:
    """One attempt: the agent's leg, then the customer's."""

    id: int
    agent: str
    agent_leg: str
    customer_leg: str
    offer_row: int
    stage: int
    bridge_id: str
    offered_at: datetime
    agent_started: asyncio.Event = field(default_factory=asyncio.Event)
    customer_started: asyncio.Event = field(default_factory=asyncio.Event)
    agent_answered: bool = False
    connected_at: datetime | None = None
    #: The customer's final Dial status, kept until its ChannelDestroyed brings the cause.
    customer_status: CallbackResult | None = None
    ended: bool = False
    #: A transfer took the agent out (:meth:`Callbacks.agent_leaves`): the agent's leg
    #: is no longer the call's, the customer talks to the transfer's target.
    transferred: bool = False


@dataclass(eq=False)
class Pending:
    """A confirmed callback the router holds (in its index unless an attempt or a retry
    delay is under way)."""

    caller: Caller
    callback_id: int
    number: str
    settings: Callback
    customer_attempts: int = 0
    attempts: int = 0
    attempt: Attempt | None = None
    #: The caller's own channel is gone (the usual state of a callback).
    caller_gone: bool = False
    #: The recording name of the message the caller left (:mod:`ari_apps.after_hours`):
    #: the agent hears it before the customer is dialled.
    message: str | None = None


@dataclass(eq=False)
class _Asking:
    """A caller in the dialog after pressing the callback key."""

    caller: Caller
    keys: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    playback: str | None = None


class Callbacks:
    """The callbacks of one queue router (see the module docstring)."""

    def __init__(self, router: QueueRouter) -> None:
        self.router = router
        self.pending: dict[str, Pending] = {}
        self._asking: dict[str, _Asking] = {}
        self._prompted: set[str] = set()
        self._legs: dict[str, Attempt] = {}
        self._playbacks: dict[str, asyncio.Event] = {}
        self._seq = itertools.count(1)

    def _settings(self, queue: str) -> Callback | None:
        config = self.router.config.queues.get(queue)
        return config.callback if config is not None else None

    # -- the router's hooks ---------------------------------------------------------------

    def holds(self, channel_id: str) -> bool:
        """Whether the caller *channel_id* is a confirmed callback (its channel may be gone)."""
        return channel_id in self.pending

    def live_calls(self) -> set[str]:
        """Every callback held: the watchdog counts them as live calls. An agent tied to
        one is ours although the caller's channel is gone, from its reservation on: the
        attempt only exists once the offer's task runs, and a reservation judged gone
        before that was freed and given to another caller while the offer went on to
        ring the agent for this callback. A reservation that is never rung still ends,
        by the watchdog's time limits."""
        return set(self.pending)

    def connected_attempt(self, channel_id: str) -> Attempt | None:
        """The conversation of callback *channel_id* (its customer answered, not ended):
        what a transfer of that call moves."""
        pending = self.pending.get(channel_id)
        attempt = pending.attempt if pending is not None else None
        if attempt is None or attempt.connected_at is None or attempt.ended:
            return None
        return attempt

    def agent_leaves(self, attempt: Attempt) -> None:
        """A transfer takes the agent out of the conversation (under the caller's lock):
        the end of the agent's leg no longer ends the call, the customer's still does."""
        self._legs.pop(attempt.agent_leg, None)
        attempt.transferred = True

    async def end(self, channel_id: str, *, by: str) -> None:
        """End the conversation of callback *channel_id* (a transfer's target hung up)."""
        attempt = self.connected_attempt(channel_id)
        if attempt is not None:
            await self._end_connected(attempt, by=by)

    def decision_time(self, caller: Caller, now: float) -> float:
        """The time to route *caller* at: a callback never reaches the overflow step."""
        if caller.channel_id not in self.pending:
            return now
        policy = self.router.policies[caller.args.queue]
        return decision_time(policy, caller.waiting.enqueued_at, now)

    async def silence(self, channel_id: str) -> None:
        """The caller is answered by an agent (under its lock): end the dialog now."""
        asking = self._asking.pop(channel_id, None)
        if asking is not None:
            asking.keys.put_nowait(None)
            await self._stop(asking.playback)

    async def caller_left(self, caller: Caller) -> bool:
        """The caller's channel left the app: True when it is a callback (the router keeps
        it, with its rank); False: an ordinary end of call."""
        asking = self._asking.pop(caller.channel_id, None)
        if asking is not None:
            asking.keys.put_nowait(None)
        self._prompted.discard(caller.channel_id)
        pending = self.pending.get(caller.channel_id)
        if pending is None:
            return False
        if not pending.caller_gone:
            pending.caller_gone = True
            with contextlib.suppress(ARIError):
                await self.router.ari.bridges.destroy(caller.bridge_id)
            log.info("queue %s: %s hung up; callback to %s keeps its place",
                     caller.args.queue, caller.channel_id, pending.number)
            self.router._pulse()
        return True

    async def on_event(self, event: Event) -> bool:
        """Take the events that are the callbacks'; True if *event* was one."""
        match event:
            case ChannelDtmfReceived(channel=channel, digit=digit):
                return self._key(channel.id, digit)
            case PlaybackStarted(playback=playback) | PlaybackFinished(playback=playback):
                if not playback.id.startswith(PLAYBACK_PREFIX):
                    return False
                if isinstance(event, PlaybackFinished):
                    done = self._playbacks.pop(playback.id, None)
                    if done is not None:
                        done.set()
                return True
            case StasisStart(channel=channel) if channel.id in self._legs:
                attempt = self._legs[channel.id]
                (attempt.agent_started if channel.id == attempt.agent_leg
                 else attempt.customer_started).set()
                return True
            case Dial(peer=peer, dialstatus=status) if peer.id in self._legs:
                await self._dialled(self._legs[peer.id], peer.id, status.upper())
                return True
            case StasisEnd(channel=channel) if channel.id in self._legs:
                attempt = self._legs[channel.id]
                if attempt.connected_at is not None:
                    await self._end_connected(attempt, by=_who(attempt, channel.id))
                return True
            case ChannelDestroyed(channel=channel, cause=cause) if channel.id in self._legs:
                await self._leg_destroyed(self._legs[channel.id], channel.id, cause)
                return True
        return False

    async def offer(self, caller: Caller, agent: str, stage: int) -> None:
        """The router reserved *agent* for callback *caller*: call the agent first."""
        router = self.router
        now = router.clock()
        pending = self.pending[caller.channel_id]
        async with caller.lock:
            state = router.states.get(agent)
            held = self.pending.get(caller.channel_id) is pending
            offering = caller.phase == "offering"
            start = offer_start(
                call=caller.channel_id,
                reserved_for=state.call if state is not None
                and state.status is AgentStatus.RESERVED else None,
                held=held, offering=offering, attempt_under_way=pending.attempt is not None)
            if start != RING:
                # ring_all reserved several agents: one attempt at a time takes one. An
                # agent lost meanwhile is given back only if it still is ours (refused
                # otherwise: it is another caller's now).
                with contextlib.suppress(IllegalTransition):
                    await router._apply(agent, OfferFailed(caller.channel_id,
                                                           OfferResult.CANCELLED.value), now)
                if start == LOST:
                    log.warning("queue %s: callback %s: %s is no longer reserved for it; "
                                "offered again", caller.args.queue, caller.channel_id, agent)
                    if held and offering and pending.attempt is None:
                        self._back_in_queue(caller)
                router._wake.set()
                return
            pending.attempts += 1
            n = pending.attempts
            agent_leg = f"{caller.channel_id}-cb{n}a"
            async with router.sessions.begin() as session:
                offer_row = await QueuedCallRepository(session).add_offer_by_id(
                    caller.row, agent, offered_at=now, channel_id=agent_leg)
                attempt_id = await CallbackRepository(session).start_attempt(
                    pending.callback_id, agent, at=now)
            attempt = Attempt(attempt_id, agent, agent_leg, f"{caller.channel_id}-cb{n}c",
                              offer_row, stage, f"cc-cb-{caller.channel_id}", now)
            pending.attempt = attempt
            self._legs[agent_leg] = attempt
        policy = router.policies[caller.args.queue]
        try:
            # The customer's number on the agent's phone: digits only (checked when taken).
            # A leg dialled with no caller shows its connected line (PJSIP's From).
            # leg_variables: the phone's transfer key (REFER) comes to the router.
            agent_dial = router.config.agents[agent].dial_string(agent)
            await router.ari.channels.create(
                agent_dial, channel_id=agent_leg, app=router.app, variables={
                    "CALLERID(num)": pending.number, "CALLERID(name)": "Callback",
                    "CONNECTEDLINE(num)": pending.number,
                    "CONNECTEDLINE(name)": "Callback", **leg_variables(agent_dial)})
            async with asyncio.timeout(LEG_START_TIMEOUT):
                await attempt.agent_started.wait()
            await router.ari.channels.dial(agent_leg, timeout=policy.ring_timeout)
        except (ARIError, TimeoutError) as exc:
            log.warning("queue %s: callback %s: calling %s failed: %s", caller.args.queue,
                        caller.channel_id, agent, exc or type(exc).__name__)
            await self._agent_missed(attempt, _leg_error_result(exc),
                                     miss=not isinstance(exc, ARIConnectionError))
            return
        lost: IllegalTransition | None = None
        async with caller.lock:
            if not attempt.ended and not attempt.agent_answered:
                try:
                    await router._apply(agent, Ring(caller.channel_id), router.clock())
                except IllegalTransition as exc:  # another node's change we had not seen
                    lost = exc
                else:
                    router.events.publish(ev.OfferRinging(
                        at=router.clock(), queue=caller.args.queue, call=caller.channel_id,
                        agent=agent, leg=agent_leg))
        if lost is not None:
            log.warning("queue %s: callback %s: %s; its leg is hung up and the callback "
                        "offered again", caller.args.queue, caller.channel_id, lost)
            await self._agent_missed(attempt, OfferResult.CANCELLED, miss=False)
            return
        log.info("queue %s: callback %s: ringing %s first", caller.args.queue,
                 caller.channel_id, agent)

    async def readopt(self, now: datetime) -> None:
        """After a restart: the pending callbacks of this node, back in the index with their
        original rank (before the router closes the rows whose channels are gone)."""
        router = self.router
        async with router.sessions() as session:
            repo = CallbackRepository(session)
            found = [(request, queued, len(await repo.attempts(request.id)),
                      await repo.message_of(request))
                     for request, queued in await repo.pending(node=router.node)]
        from ari_apps.queue_router import Caller

        for request, queued, attempts, message in found:
            channel_id = queued.channel_id
            settings = self._settings(queued.queue)
            if channel_id in router.callers or channel_id in self.pending:
                continue
            if settings is None or queued.queue not in router.policies:
                log.warning("callback %s: queue %s takes no callbacks now; left pending",
                            channel_id, queued.queue)
                continue
            skills = tuple(request.skills.split("+")) if request.skills else ()
            call = QueueCall(queued.queue, skills=skills, priority=queued.priority,
                             language=queued.language)
            policy = router.policies[queued.queue]
            waiting = WaitingCall(channel_id, queued.queue, queued.entered_at.timestamp(),
                                  policy.call_priority(queued.priority), skills,
                                  queued.language, next(router._seq))
            caller = Caller(channel_id, call, queued.id, waiting, f"cc-{channel_id}",
                            number=request.number)
            router.callers[channel_id] = caller
            self.pending[channel_id] = Pending(caller, request.id, request.number, settings,
                                               attempts=attempts, caller_gone=True,
                                               message=message)
            if request.next_attempt_at is not None and request.next_attempt_at > now:
                caller.phase = "offering"
                router._spawn(self._retry_at(caller, request.next_attempt_at),
                              f"callback retry {channel_id}")
            elif message is None or not router.after_hours.hold(caller):
                router.index.enqueue(waiting)  # a message waits for its queue to open
            log.info("queue %s: callback %s to %s re-adopted", queued.queue, channel_id,
                     request.number)
        router._wake.set()

    async def forget_the_dead(self, live: set[str]) -> None:
        """After a reconnection: attempts whose legs died meanwhile end as if seen."""
        for attempt in {a for a in self._legs.values() if not a.ended}:
            if attempt.connected_at is not None:
                # A transferred call's agent leg is gone on purpose (the customer talks
                # to the transfer's target).
                if (attempt.agent_leg not in live and not attempt.transferred) \
                        or attempt.customer_leg not in live:
                    await self._end_connected(attempt, by="agent")
            elif attempt.agent_leg not in live:
                if attempt.agent_answered:
                    await self._customer_failed(attempt, CallbackResult.AGENT_GONE, None)
                else:
                    await self._agent_missed(attempt, OfferResult.FAILED)

    # -- the caller's side ----------------------------------------------------------------

    def _key(self, channel_id: str, digit: str) -> bool:
        asking = self._asking.get(channel_id)
        if asking is not None:
            asking.keys.put_nowait(digit)
            return True
        caller = self.router.callers.get(channel_id)
        if caller is None or caller.phase not in ("waiting", "offering") \
                or channel_id in self.pending:
            return False
        settings = self._settings(caller.args.queue)
        if settings is None or digit != settings.key:
            return False
        waited = self.router.clock().timestamp() - caller.waiting.enqueued_at
        if waited < settings.after:
            log.info("queue %s: %s pressed %s after %.0f s (callbacks after %d s)",
                     caller.args.queue, channel_id, digit, waited, settings.after)
            return True
        self._asking[channel_id] = _Asking(caller)
        self.router._spawn(self._ask(caller, settings), f"callback dialog {channel_id}")
        return True

    async def run(self, stopping: asyncio.Event) -> None:
        """Play the queues' one-time ``prompt`` when due, until *stopping* is set (only
        when some queue has one)."""
        router = self.router
        if not any(q.callback and q.callback.prompt for q in router.config.queues.values()):
            return
        while not stopping.is_set():
            try:
                await self.prompt_due(router.clock())
            except Exception:
                log.exception("callbacks: prompt pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROMPT_TICK):
                    await stopping.wait()

    async def prompt_due(self, now: datetime) -> None:
        """Play each queue's one-time ``prompt`` to callers who reached ``after``."""
        for caller in list(self.router.callers.values()):
            settings = self._settings(caller.args.queue)
            if settings is None or settings.prompt is None or caller.phase != "waiting" \
                    or caller.channel_id in self._prompted or caller.channel_id in self.pending:
                continue
            if now.timestamp() - caller.waiting.enqueued_at >= settings.after:
                self._prompted.add(caller.channel_id)
                await self._play(caller, [f"sound:{settings.prompt}"])

    async def _ask(self, caller: Caller, settings: Callback) -> None:
        """The dialog after the callback key (a task of its own: it waits for keys that
        arrive in the caller's inbox)."""
        asking = self._asking[caller.channel_id]
        caller_id = callback_number(caller.number, settings.max_digits)
        dialog = Dialog(caller_id, settings.max_digits)
        media = (["sound:you-entered", f"digits:{caller_id.lstrip('+')}",
                  "sound:if-correct-press", "digits:1"] if caller_id else []) + _ASKING
        asking.playback = await self._play(caller, media)
        step = REFUSED
        try:
            while True:
                async with asyncio.timeout(KEY_TIMEOUT):
                    key = await asking.keys.get()
                if key is None:  # answered by an agent, or hung up
                    return
                await self._stop(asking.playback)
                asking.playback = None
                step = dialog.press(key)
                if step is not COLLECTING:
                    break
        except TimeoutError:
            step = REFUSED
        finally:
            if self._asking.get(caller.channel_id) is asking:
                del self._asking[caller.channel_id]
        if step is CONFIRMED and dialog.number is not None:
            source = "caller_id" if dialog.keyed == "" else "keyed"
            await self._register(caller, settings, dialog.number, source)
        else:
            log.info("queue %s: %s: callback refused (keys %r); waiting on",
                     caller.args.queue, caller.channel_id, dialog.keyed)
            await self._play(caller, _REFUSED)

    async def _register(self, caller: Caller, settings: Callback, number: str,
                        source: str) -> None:
        router = self.router
        now = router.clock()
        async with caller.lock:
            if caller.phase not in ("waiting", "offering") or \
                    router.callers.get(caller.channel_id) is not caller:
                return
            async with router.sessions.begin() as session:
                callback_id = await CallbackRepository(session).request(
                    caller.row, caller.args.queue, number, source=source, at=now,
                    skills=caller.args.skills)
            self.pending[caller.channel_id] = Pending(caller, callback_id, number, settings)
            live = [leg for leg in caller.legs.values() if not leg.ended]
            position = router._position(caller)
        router._pulse()
        router.events.publish(ev.CallbackRequested(
            at=now, queue=caller.args.queue, call=caller.channel_id, key=settings.key,
            source=source, position=position, original_position=caller.position,
            wait_seconds=max(now.timestamp() - caller.waiting.enqueued_at, 0.0)))
        log.info("queue %s: %s will be called back at %s (%s)", caller.args.queue,
                 caller.channel_id, number, source)
        for leg in live:  # an agent rings for the live caller: the callback calls instead
            await router._offer_failed(leg, OfferResult.CANCELLED, miss=False)
        playback = await self._play(caller, _THANKS)
        done = self._playbacks.get(playback or "")
        if done is not None:  # not finished yet (a finished one is forgotten)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(THANKS_TIMEOUT):
                    await done.wait()
        await router._hangup(caller.channel_id, "normal")

    async def _play(self, caller: Caller, media: list[str]) -> str | None:
        """Play *media* to the caller (over its music: see :mod:`ari_apps.announcer`)."""
        playback_id = f"{PLAYBACK_PREFIX}{caller.channel_id}-{next(self._seq)}"
        self._playbacks[playback_id] = asyncio.Event()
        try:
            await self.router.ari.channels.play(caller.channel_id, media,
                                                playback_id=playback_id)
        except ARIError as exc:
            self._playbacks.pop(playback_id, None)
            log.info("callback prompt to %s not played (%s)", caller.channel_id, exc)
            return None
        return playback_id

    async def _stop(self, playback_id: str | None) -> None:
        if playback_id is None:
            return
        with contextlib.suppress(ARIError):
            await self.router.ari.playbacks.stop(playback_id)

    # -- an attempt -----------------------------------------------------------------------

    async def _dialled(self, attempt: Attempt, leg: str, status: str) -> None:
        if leg == attempt.agent_leg:
            if status == "ANSWER":
                await self._agent_answer(attempt)
            elif status in _AGENT_DIAL and not attempt.agent_answered:
                await self._agent_missed(attempt, _AGENT_DIAL[status])
            return
        if status == "ANSWER":
            await self._customer_answer(attempt)
        elif (result := result_from_dialstatus(status)) is not None:
            attempt.customer_status = CallbackResult(result)
            self.router._spawn(self._cause_or_not(attempt), f"callback cause {leg}")

    async def _cause_or_not(self, attempt: Attempt) -> None:
        """The customer's leg failed: its ChannelDestroyed normally follows at once with
        the cause; without one, the attempt ends on the Dial status alone."""
        await asyncio.sleep(CAUSE_GRACE)
        if not attempt.ended and attempt.customer_status is not None:
            await self._customer_failed(attempt, attempt.customer_status, None)

    async def _leg_destroyed(self, attempt: Attempt, leg: str, cause: int) -> None:
        if attempt.connected_at is not None:
            await self._end_connected(attempt, by=_who(attempt, leg))
        elif leg == attempt.agent_leg:
            if attempt.agent_answered:
                await self._customer_failed(attempt, CallbackResult.AGENT_GONE, None)
            else:
                await self._agent_missed(attempt, _offer_result(cause))
        else:
            await self._customer_failed(
                attempt, attempt.customer_status or CallbackResult(result_from_cause(cause)),
                cause)

    async def _agent_missed(self, attempt: Attempt, result: OfferResult, *,
                            miss: bool = True) -> None:
        """The agent did not take it: a missed offer; the callback is offered again."""
        router = self.router
        pending = self._pending_of(attempt)
        if pending is None:
            return
        caller = pending.caller
        now = router.clock()
        async with caller.lock:
            if attempt.ended or attempt.agent_answered:
                return
            attempt.ended = True
            self._drop_legs(attempt)
            pending.attempt = None
            await router._hangup(attempt.agent_leg, "normal")
            async with router.sessions.begin() as session:
                await QueuedCallRepository(session).end_offer_by_id(attempt.offer_row,
                                                                    result, at=now)
                await CallbackRepository(session).end_attempt(
                    attempt.id, CallbackResult.AGENT_MISSED, at=now)
            router.events.publish(ev.OfferEnded(
                at=now, queue=caller.args.queue, call=caller.channel_id, agent=attempt.agent,
                result=result.value, ring_seconds=_since(attempt.offered_at, now)))
            try:
                await router._apply(attempt.agent, OfferFailed(caller.channel_id, result.value),
                                    now)
            except IllegalTransition:
                log.info("agent %s already moved on from %s", attempt.agent, caller.channel_id)
            if miss and result not in (OfferResult.CANCELLED, OfferResult.CALLER_GONE):
                await router._count_miss(attempt.agent, caller, now)
            self._back_in_queue(caller)
        log.info("queue %s: callback %s: %s did not take it (%s)", caller.args.queue,
                 caller.channel_id, attempt.agent, result.value)

    async def _agent_answer(self, attempt: Attempt) -> None:
        """The agent answered: a bridge for the two, a ring tone, the customer dialled."""
        router = self.router
        pending = self._pending_of(attempt)
        if pending is None:
            return
        caller = pending.caller
        now = router.clock()
        async with caller.lock:
            if attempt.ended or attempt.agent_answered:
                return  # a second copy of the ANSWER, or ended meanwhile
            attempt.agent_answered = True
            try:
                await router._apply(attempt.agent, Answer(caller.channel_id), now)
            except IllegalTransition:
                log.info("agent %s answered a callback it no longer holds", attempt.agent)
            async with router.sessions.begin() as session:
                await CallbackRepository(session).agent_answered(
                    attempt.id, at=now, customer_channel=attempt.customer_leg)
            self._legs[attempt.customer_leg] = attempt
        try:
            await router.ari.bridges.create("mixing", bridge_id=attempt.bridge_id,
                                            name=f"callback {caller.args.queue}")
            await router.ari.bridges.add_channel(attempt.bridge_id, attempt.agent_leg)
        except ARIError as exc:
            log.warning("queue %s: callback %s: bridging %s failed: %s", caller.args.queue,
                        caller.channel_id, attempt.agent, exc)
            await self._customer_failed(attempt, CallbackResult.FAILED, None)
            return
        if pending.message is not None:
            # The agent hears the message first: a task of its own, as the playback's end
            # arrives in the agent leg's inbox, behind the Dial event handled now.
            router._spawn(self._message_then_dial(attempt, pending),
                          f"callback message {attempt.agent_leg}")
            return
        await self._dial_customer(attempt, pending)

    async def _message_then_dial(self, attempt: Attempt, pending: Pending) -> None:
        """Play the caller's message to the agent (``recording:<name>``), then dial."""
        router = self.router
        assert pending.message is not None
        playback_id = f"{PLAYBACK_PREFIX}{attempt.agent_leg}-message"
        done = self._playbacks[playback_id] = asyncio.Event()
        try:
            await router.ari.channels.play(attempt.agent_leg, message_media(pending.message),
                                           playback_id=playback_id)
            await wait_or_stop(done, router._stopping, MESSAGE_TIMEOUT)
        except (ARIError, ValueError) as exc:  # the agent hung up; or no such recording
            log.info("callback %s: message %s not played to %s (%s)",
                     pending.caller.channel_id, pending.message, attempt.agent, exc)
        finally:
            self._playbacks.pop(playback_id, None)
        if attempt.ended or router._stopping.is_set():
            return  # the agent hung up while listening (or the router stops)
        await self._dial_customer(attempt, pending)

    async def _dial_customer(self, attempt: Attempt, pending: Pending) -> None:
        """The agent is in the bridge: a ring tone for it, the customer's leg dialled."""
        router = self.router
        caller = pending.caller
        try:
            with contextlib.suppress(ARIError):  # what the agent hears while it rings
                await router.ari.channels.play(attempt.agent_leg, "tone:ring",
                                               playback_id=f"{PLAYBACK_PREFIX}{attempt.agent_leg}")
            await router.ari.channels.create(
                dial_string(pending.settings.dial, pending.number),
                channel_id=attempt.customer_leg, app=router.app,
                originator=attempt.agent_leg)
            async with asyncio.timeout(LEG_START_TIMEOUT):
                await attempt.customer_started.wait()
            await router.ari.channels.dial(attempt.customer_leg,
                                           timeout=pending.settings.ring_timeout)
        except (ARIError, TimeoutError, ValueError) as exc:
            log.warning("queue %s: callback %s: dialling %s failed: %s", caller.args.queue,
                        caller.channel_id, pending.number, exc or type(exc).__name__)
            await self._customer_failed(attempt, CallbackResult.FAILED, None)
            return
        log.info("queue %s: callback %s: %s answered; dialling %s", caller.args.queue,
                 caller.channel_id, attempt.agent, pending.number)

    async def _customer_answer(self, attempt: Attempt) -> None:
        router = self.router
        pending = self._pending_of(attempt)
        if pending is None:
            return
        caller = pending.caller
        now = router.clock()
        async with caller.lock:
            if attempt.ended or attempt.connected_at is not None:
                return
            await self._stop(f"{PLAYBACK_PREFIX}{attempt.agent_leg}")
            try:
                await router.ari.bridges.add_channel(attempt.bridge_id, attempt.customer_leg)
            except ARIError as exc:
                log.info("callback %s: customer answered but could not join (%s)",
                         caller.channel_id, exc)
                joined = False
            else:
                joined = True
                attempt.connected_at = now
                caller.phase = "connected"
                caller.agent, caller.agent_channel = attempt.agent, attempt.agent_leg
                caller.connected_at = now
                agent = router.config.agents[attempt.agent]
                async with router.sessions.begin() as session:
                    await QueuedCallRepository(session).answered_by_id(
                        caller.row, attempt.offer_row, attempt.agent, at=now,
                        matched_skills=dict(agent.skills) or None,
                        relaxation_step=attempt.stage)
                    repo = CallbackRepository(session)
                    await repo.customer_answered(attempt.id, at=now)
                    await repo.end_attempt(attempt.id, CallbackResult.ANSWERED, at=now)
                    await repo.close(pending.callback_id, CallbackStatus.DONE, at=now)
                router.calls_taken[attempt.agent] = router.calls_taken.get(attempt.agent, 0) + 1
                router.misses[attempt.agent] = 0
                router.events.publish(ev.CallConnected(
                    at=now, queue=caller.args.queue, call=caller.channel_id,
                    agent=attempt.agent, agent_channel=attempt.agent_leg,
                    wait_seconds=max(now.timestamp() - caller.waiting.enqueued_at, 0.0),
                    ring_seconds=_since(attempt.offered_at, now), position=caller.position))
        if not joined:
            await self._customer_failed(attempt, CallbackResult.FAILED, None)
            return
        log.info("queue %s: callback %s: %s answered; talking to %s", caller.args.queue,
                 caller.channel_id, pending.number, attempt.agent)

    async def _customer_failed(self, attempt: Attempt, result: CallbackResult,
                               cause: int | None) -> None:
        """No conversation on this attempt: free the agent, retry later or give up."""
        router = self.router
        pending = self._pending_of(attempt)
        if pending is None:
            return
        caller = pending.caller
        now = router.clock()
        async with caller.lock:
            if attempt.ended or attempt.connected_at is not None:
                return
            attempt.ended = True
            self._drop_legs(attempt)
            pending.attempt = None
            await router._hangup(attempt.customer_leg, "normal")
            await router._hangup(attempt.agent_leg, "normal")
            with contextlib.suppress(ARINotFound, ARIConflict, ARIConnectionError):
                await router.ari.bridges.destroy(attempt.bridge_id)
            pending.customer_attempts += 1
            retry = next_attempt(pending.settings, pending.customer_attempts, result.value,
                                 now.timestamp())
            at = None if retry is None else now + timedelta(seconds=retry - now.timestamp())
            async with router.sessions.begin() as session:
                await QueuedCallRepository(session).end_offer_by_id(
                    attempt.offer_row, OfferResult.ANSWERED, at=now)
                repo = CallbackRepository(session)
                await repo.end_attempt(attempt.id, result, at=now, cause=cause)
                if at is None:
                    await repo.close(pending.callback_id, CallbackStatus.FAILED, at=now)
                else:
                    await repo.reschedule(pending.callback_id, at)
            router.events.publish(ev.CallbackAttemptEnded(
                at=now, queue=caller.args.queue, call=caller.channel_id, agent=attempt.agent,
                result=result.value, cause=cause))
            try:  # no conversation: no wrap-up
                await router._apply(attempt.agent, Hangup(caller.channel_id), now)
            except IllegalTransition:
                log.info("agent %s already moved on from %s", attempt.agent, caller.channel_id)
        log.info("queue %s: callback %s: attempt %d to %s: %s (cause %s)%s",
                 caller.args.queue, caller.channel_id, pending.customer_attempts,
                 pending.number, result.value, cause,
                 "" if at is None else f"; next at {at:%H:%M:%S}")
        if at is None:
            await self._give_up(pending, now)
        else:
            router._spawn(self._retry_at(caller, at), f"callback retry {caller.channel_id}")

    async def _end_connected(self, attempt: Attempt, *, by: str) -> None:
        """The conversation ended: the other leg, the bridge, the records, wrap-up."""
        router = self.router
        pending = self._pending_of(attempt)
        if pending is None:
            return
        caller = pending.caller
        now = router.clock()
        async with caller.lock:
            if attempt.ended:
                return
            attempt.ended = True
            caller.phase = "gone"
            self._drop_legs(attempt)
            self.pending.pop(caller.channel_id, None)
            router.callers.pop(caller.channel_id, None)
            router.index.dequeue(caller.channel_id)
        await router._hangup(attempt.customer_leg, "normal")
        await router._hangup(attempt.agent_leg, "normal")
        await router.transfers.call_ended(caller)  # a transfer's target leg and record
        with contextlib.suppress(ARINotFound, ARIConflict, ARIConnectionError):
            await router.ari.bridges.destroy(attempt.bridge_id)
        connected = attempt.connected_at or now
        if not attempt.transferred:  # else the agent's talk ended with CallTransferred
            router.events.publish(ev.CallCompleted(
                at=now, queue=caller.args.queue, call=caller.channel_id, agent=attempt.agent,
                by="agent" if by == "agent" else "caller",
                hold_seconds=max(connected.timestamp() - caller.waiting.enqueued_at, 0.0),
                talk_seconds=_since(connected, now), position=caller.position))
        router.events.publish(ev.CallbackEnded(
            at=now, queue=caller.args.queue, call=caller.channel_id,
            status=CallbackStatus.DONE.value, attempts=pending.customer_attempts + 1))
        wrap = timedelta(seconds=router.policies[caller.args.queue].wrapup)
        if not attempt.transferred:  # else the agent wrapped up when it left
            try:
                await router._apply(attempt.agent, Hangup(caller.channel_id, wrap), now)
            except IllegalTransition:
                log.info("agent %s already moved on from %s", attempt.agent,
                         caller.channel_id)
        await router._finish(caller.channel_id, caller.row, QueueOutcome.ANSWERED, now)
        log.info("queue %s: callback %s ended (hung up by %s)", caller.args.queue,
                 caller.channel_id, by)
        router._wake.set()

    async def _give_up(self, pending: Pending, now: datetime) -> None:
        router = self.router
        caller = pending.caller
        async with caller.lock:
            caller.phase = "gone"
            self.pending.pop(caller.channel_id, None)
            router.callers.pop(caller.channel_id, None)
            router.index.dequeue(caller.channel_id)
        router.events.publish(ev.CallbackEnded(
            at=now, queue=caller.args.queue, call=caller.channel_id,
            status=CallbackStatus.FAILED.value, attempts=pending.customer_attempts))
        # Never served: for the statistics, a caller who gave up waiting.
        await router._finish(caller.channel_id, caller.row, QueueOutcome.ABANDONED, now)
        router._pulse()

    async def _retry_at(self, caller: Caller, at: datetime) -> None:
        """Out of the index until *at* (the agent is free meanwhile), then back in at the
        callback's original rank."""
        router = self.router
        delay = max((at - router.clock()).total_seconds(), 0.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await router._stopping.wait()
        if router._stopping.is_set():
            return  # a restarted router re-adopts it with its next_attempt_at
        async with caller.lock:
            if caller.channel_id in self.pending and caller.phase == "offering":
                self._back_in_queue(caller)

    def _back_in_queue(self, caller: Caller) -> None:
        """Waiting again with its original rank (under the caller's lock)."""
        caller.phase = "waiting"
        self.router.index.enqueue(caller.waiting)
        self.router._wake.set()
        self.router._pulse()

    def _pending_of(self, attempt: Attempt) -> Pending | None:
        for pending in self.pending.values():
            if pending.attempt is attempt:
                return pending
        return None

    def _drop_legs(self, attempt: Attempt) -> None:
        self._legs.pop(attempt.agent_leg, None)
        self._legs.pop(attempt.customer_leg, None)


def _who(attempt: Attempt, leg: str) -> str:
    return "agent" if leg == attempt.agent_leg else "caller"


def _offer_result(cause: int) -> OfferResult:
    from ari_apps.queue_router import result_from_cause as offer_from_cause

    return offer_from_cause(cause)


def _leg_error_result(exc: Exception) -> OfferResult:
    from ari_apps.queue_router import result_from_leg_error

    return result_from_leg_error(exc)


def _since(start: datetime | None, now: datetime) -> float:
    return 0.0 if start is None else max((now - start).total_seconds(), 0.0)
