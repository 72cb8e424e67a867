"""The queue router: callers in ``Stasis(cc-queue, ...)`` bridged to the best available agent.

How the parts fit (each tested on its own; this module only carries their decisions out):

* **Events** arrive through :class:`~callcenter.asterisk.ari.EventDispatcher`: one ordered
  inbox per channel, so a caller's events and an offer leg's events are handled in
  Asterisk's order, different calls concurrently. Both legs of one call share
  :attr:`Caller.lock`: whoever acts on the call (caller hangs up, agent answers) holds it.
* **Decisions** are made by one matchmaker task (:meth:`QueueRouter._matchmaker`) over the
  indexed :class:`~callcenter.routing.index.Router`: every waiting caller, in rank order
  (priority, then time waited), gets the best available agent its queue's stage allows
  now. A freed agent therefore gets the best waiting call it qualifies for, as
  :func:`~callcenter.routing.decide.select_call` defines. The matchmaker wakes on every
  change (a caller arrives, an agent frees up, a failed offer) and at the next timer
  (a relax step, a wrap-up's end, the watchdog).
* **Reservations** go through :meth:`~callcenter.agents.store.AgentStore.try_reserve`
  (compare-and-set in the database): one agent, one call, across every router instance.
* **A call's life**: the caller gets a bridge of its own (``cc-<caller channel id>``)
  with music on hold while it waits; an offer is a channel created with our own id
  (``<caller id>-o<n>``) and dialled with the queue's ring timeout; on ``Dial`` ANSWER
  the agent joins the caller's bridge (no move, no audio gap). Whoever hangs up, the
  other leg and the bridge go too, and the agent goes to wrap-up.
* **Records**: :class:`~callcenter.storage.queued_calls.QueuedCallRepository`, written
  before the action that depends on it (enter before the caller is parked, the offer
  before the leg is created), so a restarted router finds every waiting caller.
* **When nobody can take calls** (a queue's ``when_unavailable``): the
  :class:`~ari_apps.unavailable.Gate` judges, the router carries out. A caller refused
  in :meth:`QueueRouter._admit` never waits; waiting callers are moved at the start of
  each matchmaking pass (:meth:`QueueRouter._leave_unavailable`); both go on to
  ``cc-queue,<queue>,unavailable``.
* **Restart and reconnect**: :meth:`QueueRouter.resync` runs after every websocket
  (re)connection: it re-adopts the channels still in the app (waiting callers with their
  original entry time, calls in progress with their agent), hangs up offer legs whose
  outcome was lost, closes the records of callers who left meanwhile, and reconciles
  agent states (:func:`~callcenter.agents.reconcile.reconcile`). The watchdog repeats
  the reconciliation every few seconds, so no agent stays reserved, ringing or on a call
  after the call is gone, and a phone that unregisters stops being offered calls.
* **Several nodes** (see :mod:`ari_apps`): a router owns the callers of its own Asterisk
  (``queued_calls.node`` = its node name, by default that Asterisk's ``systemname``); it
  re-adopts only those, and its watchdog judges an agent tied to another node's caller by
  time limits only, never by this node's channel list. Other routers' changes to agents
  reach it by the re-read every :data:`POLL_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.after_hours import AfterHours
from ari_apps.agent_features import PlaybackWaits, handle_agent_command
from ari_apps.announcer import Announcer
from ari_apps.callback import Callbacks
from ari_apps.recording import Recorder
from ari_apps.supervision import Supervision, current_calls
from ari_apps.transfer import Transfers, leg_variables
from ari_apps.unavailable import Gate
from callcenter import events as ev
from callcenter.agents.reconcile import ContactStatus, reconcile
from callcenter.agents.rules import rules_from_config
from callcenter.agents.state import (
    NO_ANSWER_REASON,
    AgentState,
    AgentStatus,
    Answer,
    CancelOffer,
    Effect,
    Hangup,
    IllegalTransition,
    OfferFailed,
    Pause,
    ReadyForCalls,
    Ring,
    ScheduleWrapUpEnd,
    Tick,
)
from callcenter.agents.store import AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ari import ARIClient, EventDispatcher
from callcenter.asterisk.ari.client import (
    ARIConflict,
    ARIConnectionError,
    ARIError,
    ARINotFound,
    HangupReason,
)
from callcenter.asterisk.ari.events import (
    Channel,
    ChannelDestroyed,
    ContactStatusChange,
    Dial,
    EndpointStateChange,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from callcenter.asterisk.stasis_args import AgentCommand, QueueCall, StasisArgsError
from callcenter.config.models import CallCenterConfig
from callcenter.events import EventBus, EventListener
from callcenter.routing import availability
from callcenter.routing.decide import Offer, Overflow
from callcenter.routing.index import Router
from callcenter.routing.policy import AgentView, WaitingCall, memberships, policies
from callcenter.storage.models import OfferResult, QueuedCall, QueueOutcome
from callcenter.storage.queued_calls import QueuedCallRepository

__all__ = ["QueueRouter", "offer_result", "result_from_cause", "result_from_leg_error"]

log = logging.getLogger(__name__)

#: How often agent states are re-read from the database (changes by other routers).
POLL_INTERVAL: Final = 1.0
#: How often the watchdog reconciles agents with Asterisk's channels and contacts.
WATCHDOG_INTERVAL: Final = 5.0
#: An agent who missed an offer is not offered another call for this long (app_queue's
#: ``retry``): a phone that just rang out or rejected is not rung again at once.
MISS_COOLDOWN: Final = timedelta(seconds=2)
#: After an unanswered offer leg's StasisEnd, how long its ChannelDestroyed (with the
#: hangup cause that says why the offer failed) may take before we stop waiting.
LEG_DESTROY_GRACE: Final = 2.0
#: How long an offer leg may take to enter Stasis after channels/create.
LEG_START_TIMEOUT: Final = 5.0

_FINAL_DIAL: Final[dict[str, OfferResult]] = {
    "NOANSWER": OfferResult.NO_ANSWER,
    "BUSY": OfferResult.BUSY,
    "CHANUNAVAIL": OfferResult.UNREGISTERED,
    "CONGESTION": OfferResult.FAILED,
    "CANCEL": OfferResult.CANCELLED,
}
#: Offer results that are not the agent's doing: no miss is counted.
_NOT_A_MISS: Final = frozenset({OfferResult.CANCELLED, OfferResult.CALLER_GONE})


def offer_result(dialstatus: str) -> OfferResult | None:
    """The offer's result for a final ``Dial`` status; None while it is still ringing."""
    return _FINAL_DIAL.get(dialstatus.upper())


def result_from_cause(cause: int) -> OfferResult:
    """How an offer ended, from the leg's hangup cause when no final ``Dial`` came first."""
    return {
        17: OfferResult.BUSY,
        21: OfferResult.REJECTED,
        18: OfferResult.NO_ANSWER,
        19: OfferResult.NO_ANSWER,
        20: OfferResult.UNREGISTERED,
        3: OfferResult.UNREGISTERED,
    }.get(cause, OfferResult.FAILED)


def result_from_leg_error(exc: Exception) -> OfferResult:
    """Why an offer leg never rang: ARI refusing to create or dial it (400, 404, 500: no
    such endpoint, or no contact to reach) means the phone is not there; anything else
    (ARI gone, the leg not entering Stasis in time) is a failure."""
    if isinstance(exc, ARIError) and exc.status in (400, 404, 500):
        return OfferResult.UNREGISTERED
    return OfferResult.FAILED


@dataclass(eq=False)
class Leg:
    """One offer: a channel ringing one agent's phone for one caller."""

    channel_id: str
    agent: str
    caller: Caller
    offer_row: int
    stage: int
    started: asyncio.Event = field(default_factory=asyncio.Event)
    offered_at: datetime | None = None
    ringing: bool = False
    ended: bool = False


@dataclass(eq=False)
class Caller:
    """A caller this router owns, from StasisStart to the end of the call."""

    channel_id: str
    args: QueueCall
    row: int
    waiting: WaitingCall
    bridge_id: str
    phase: Literal["waiting", "offering", "connected", "gone"] = "waiting"
    legs: dict[str, Leg] = field(default_factory=dict)
    agent: str | None = None
    agent_channel: str | None = None
    offers_made: int = 0
    number: str = ""
    name: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Position at entry (1 = next) and when the agent answered: for the events.
    position: int = 0
    connected_at: datetime | None = None


class QueueRouter:
    """The ``settings.queue_app`` Stasis application.

    ``await router.run()`` until cancelled. Other parts of the service (the HTTP API,
    feature codes) change agents through :attr:`store` and then call
    :meth:`agent_changed` so the router routes to them at once.
    """

    def __init__(
        self,
        config: CallCenterConfig,
        ari: ARIClient,
        sessions: async_sessionmaker[AsyncSession],
        *,
        node: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        listeners: Sequence[EventListener] = (),
    ) -> None:
        self.config = config
        #: Domain events (:mod:`callcenter.events`) for *listeners*: queue_log, metrics...
        self.events = EventBus(listeners)
        self.ari = ari
        self.sessions = sessions
        #: This router's node: ``queued_calls.node`` of the callers it owns. None: the
        #: Asterisk's ``systemname`` (read at :meth:`run`), which every node has distinct.
        self.node = node or ""
        self.clock = clock
        self.app = config.settings.queue_app
        self.agent_app = config.settings.agent_app
        #: Channels of agents' feature-code calls (``agent_app``), handled by
        #: :mod:`ari_apps.agent_features`, and the playbacks they wait for.
        self._feature_calls: set[str] = set()
        self._feature_waits = PlaybackWaits()
        self.store = AgentStore(sessions, rules_from_config(config), node=node,
                                on_change=self.agent_transition)
        self.policies = policies(config)
        self.index = Router(self.policies)
        self._members = memberships(config)
        self.callers: dict[str, Caller] = {}
        self.legs: dict[str, Leg] = {}
        self.states: dict[str, AgentState] = {}
        self.contacts: dict[str, ContactStatus | None] = {}
        self.misses: dict[str, int] = {}
        self.calls_taken: dict[str, int] = {}
        self._cooling: dict[str, datetime] = {}
        self._wrap_up_ends: dict[str, datetime] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._finished: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Event()
        #: Supervisors' codes and the API's listen/whisper/barge (:mod:`ari_apps.supervision`).
        self.supervision = Supervision(ari, config, agent_call=current_calls(self.callers),
                                       spawn=self._spawn, stopping=self._stopping)
        #: How many times the router has (re)connected to ARI and resynchronised.
        self.connections = 0
        self.ready = asyncio.Event()
        """Set once the first resync is done (tests and the service wait on it)."""
        #: Position and wait announcements to waiting callers (queues with ``announce``).
        self.announcer = Announcer(self)
        #: Recordings of answered calls (queues with ``record``) and their retention.
        self.recorder = Recorder(self)
        #: Callbacks that keep the caller's place (queues with ``callback``).
        self.callbacks = Callbacks(self)
        #: Blind and attended transfers, from the HTTP API and agents' REFER
        #: (:mod:`ari_apps.transfer`).
        self.transfers = Transfers(self)
        #: Where callers go when nobody can take calls (queues with ``when_unavailable``).
        self.gate = Gate(config)
        #: Messages left instead (``when_unavailable.take_message``), called back later.
        self.after_hours = AfterHours(self)

    # -- running -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until :meth:`stop`, cancellation, or another process taking the app name
        over (``ApplicationReplaced``)."""
        if not self.node:
            # Several nodes: the node name defaults to the Asterisk's systemname (the
            # prefix of its channel ids, distinct per node); its EID when none is set.
            info = await self.ari.asterisk_info()
            self.node = info.system_name or info.entity_id
            self.store = AgentStore(self.sessions, rules_from_config(self.config),
                                    node=self.node, on_change=self.agent_transition)
        await self.store.ensure(self.config.agents, self.clock())
        async with asyncio.TaskGroup() as tg, EventDispatcher(
            self.on_event, fallback=self._fallback
        ) as dispatcher:
            self._tg = tg
            tg.create_task(self._matchmaker(), name="queue-router matchmaker")
            tg.create_task(self.announcer.run(self._stopping), name="queue-router announcer")
            tg.create_task(self.recorder.run(self._stopping), name="queue-router recordings")
            tg.create_task(self.callbacks.run(self._stopping), name="queue-router callbacks")
            tg.create_task(self.after_hours.run(self._stopping), name="queue-router messages")
            tg.create_task(self.events.run(), name="queue-router events bus")
            reader = tg.create_task(
                self.ari.run_event_loop(dispatcher.dispatch, on_connected=self.resync),
                name="queue-router events")
            stop = tg.create_task(self._stopping.wait(), name="queue-router stop")
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            # Stop reading events; the work in hand (handlers, offers, the matchmaker's
            # pass) finishes, so no database transaction is cut in the middle.
            reader.cancel()
            stop.cancel()
            self._stopping.set()
            self._wake.set()
            self.events.stop()  # delivers what is queued, then ends

    def waiting_by_queue(self) -> dict[str, list[Caller]]:
        """Callers not answered yet (waiting or being offered), per queue, in the order
        they are served: index 0 is position 1 (what announcements tell them)."""
        queues: dict[str, list[Caller]] = {}
        for caller in sorted(self.callers.values(), key=lambda c: c.waiting.rank):
            if caller.phase in ("waiting", "offering"):
                queues.setdefault(caller.args.queue, []).append(caller)
        return queues

    def stop(self) -> None:
        """Stop gracefully: no new events; what is in progress completes."""
        self._stopping.set()
        self._wake.set()

    def agent_changed(self, agent: str) -> None:
        """Another part of the service changed *agent*: re-read it and route now."""
        self._states_read_at = None
        self._wake.set()

    def agent_transition(self, before: AgentState, after: AgentState) -> None:
        """An agent store wrote a change (ours, or the service's for the HTTP API):
        login, logout, pause, unpause events."""
        self.events.publish_all(ev.transition_events(
            before, after, self._members.get(after.agent, ())))

    def _spawn(self, coro, name: str) -> None:  # type: ignore[no-untyped-def]
        if self._tg is None:
            coro.close()
            return
        self._tg.create_task(self._guarded(coro, name), name=name)

    @staticmethod
    async def _guarded(coro, name: str) -> None:  # type: ignore[no-untyped-def]
        """A background step that fails is logged; it never ends the router."""
        try:
            await coro
        except Exception:
            log.exception("queue router: %s failed", name)

    async def _fallback(self, key: str, event: Event, error: Exception) -> None:
        """A handler failed for a channel: a caller goes to its queue's fallback."""
        from callcenter.asterisk.ari.dispatch import dialplan_fallback

        channel_id = key.removeprefix("channel:")
        caller = self.callers.get(channel_id)
        if caller is not None:
            await self._drop_caller(caller)
        await dialplan_fallback(self.ari)(key, event, error)

    # -- events ------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if self.after_hours.on_event(event) or self.announcer.on_event(event) \
                or self.recorder.on_event(event) or self.transfers.on_event(event) \
                or self._feature_event(event) or await self.callbacks.on_event(event):
            return
        match event:
            case StasisStart(channel=channel, args=args):
                await self._stasis_start(channel, args)
            case StasisEnd(channel=channel):
                await self._channel_gone(channel.id, None)
            case ChannelDestroyed(channel=channel, cause=cause):
                await self._channel_gone(channel.id, cause)
            case Dial(peer=peer, dialstatus=status):
                leg = self.legs.get(peer.id)
                if leg is None:
                    return
                if status.upper() == "ANSWER":
                    await self._answered(leg)
                elif (result := offer_result(status)) is not None:
                    await self._offer_failed(leg, result)
                elif status.upper() == "RINGING":
                    leg.ringing = True
            case ContactStatusChange(endpoint=endpoint, contact_info=info):
                try:
                    contact = ContactStatus(info.contact_status)
                except ValueError:
                    contact = ContactStatus.UNKNOWN
                await self._phone_changed(endpoint.resource, contact)
            case EndpointStateChange(endpoint=endpoint):
                if endpoint.state == "offline":
                    await self._phone_changed(endpoint.resource, None)
                elif self.contacts.get(endpoint.resource) is None:
                    await self._phone_changed(endpoint.resource, ContactStatus.REACHABLE)

    def _feature_event(self, event: Event) -> bool:
        """Route the agents' feature-code calls (``agent_app``); True if *event* was one."""
        if self.supervision.deliver(event):
            return True
        match event:
            case StasisStart(channel=channel, args=args) if event.application == self.agent_app:
                self._start_feature(channel.id, args)
                return True
            case PlaybackFinished(playback=playback) \
                    if playback.target_uri.removeprefix("channel:") in self._feature_calls:
                self._feature_waits.deliver(event)
                return True  # any other playback is another component's
            case StasisEnd(channel=channel) | ChannelDestroyed(channel=channel) \
                    if channel.id in self._feature_calls:
                self._feature_waits.deliver(event)
                self._feature_calls.discard(channel.id)
                return True
        return False

    def _start_feature(self, channel_id: str, args: tuple[str, ...]) -> None:
        if self.supervision.handles(args):
            self.supervision.start(channel_id, args)
            return
        try:
            command = AgentCommand.parse(args)
        except StasisArgsError as exc:
            log.warning("agent app: %s refused: %s", channel_id, exc)
            self._spawn(self._hangup(channel_id, "rejected"), f"refuse {channel_id}")
            return
        self._feature_calls.add(channel_id)
        # A task of its own: the handler waits for its PlaybackFinished, which arrives
        # in this channel's inbox, behind the StasisStart being handled now.
        self._spawn(handle_agent_command(
            self.ari, channel_id, command, self.store, self.clock(), self.agent_changed,
            played=self._feature_waits.wait, agents=self.config.agents),
            f"feature code {channel_id}")

    async def _stasis_start(self, channel: Channel, args: tuple[str, ...]) -> None:
        leg = self.legs.get(channel.id)
        if leg is not None:
            leg.started.set()
            return
        if channel.id in self.callers:
            return
        if not args and channel.dialplan.app_name != "Stasis":
            # A channel we created (it never ran dialplan) whose offer ended before it
            # entered the app (the caller hung up meanwhile): nothing to offer it for.
            log.info("queue router: offer leg %s outlived its offer; hanging up", channel.id)
            await self._hangup(channel.id, "normal")
            return
        try:
            call = QueueCall.parse(args)
        except StasisArgsError as exc:
            log.warning("queue router: %s sent to its fallback: %s", channel.id, exc)
            raise
        if call.queue not in self.policies:
            raise StasisArgsError(0, f"queue {call.queue!r} is not in the config")
        await self._admit(channel, call)

    # -- a caller arrives --------------------------------------------------------------

    async def _admit(self, channel: Channel, call: QueueCall,
                     entered_at: datetime | None = None, row: int | None = None
                     ) -> Caller | None:
        """Record the caller (unless re-adopted), park it in its bridge, queue it; or send
        it on at once when nobody can take it (None)."""
        now = self.clock()
        entered = entered_at or now
        row_is_new = row is None
        readopted = not row_is_new
        if row_is_new and (reason := self._refused(call.queue, now)) is not None:
            await self._refuse(channel, call, reason, now)
            return None
        if row is None:
            async with self.sessions.begin() as session:
                row = await QueuedCallRepository(session).enter_by_id(
                    channel.id, call.queue, entered_at=entered, priority=call.priority,
                    language=call.language, node=self.node)
        policy = self.policies[call.queue]
        waiting = WaitingCall(channel.id, call.queue, entered.timestamp(),
                              policy.call_priority(call.priority), call.skills,
                              call.language, next(self._seq))
        caller = Caller(channel.id, call, row, waiting, bridge_id=f"cc-{channel.id}",
                        number=channel.caller.number, name=channel.caller.name)
        self.callers[channel.id] = caller
        async with caller.lock:
            try:
                await self._park(caller, new=row_is_new)
            except ARIError:
                if await self._exists(channel.id):
                    raise  # a real failure: the dispatcher sends the call to its fallback
                parked = False  # the caller hung up while being parked
            else:
                parked = True
                self.index.enqueue(waiting)
        caller.position = self._position(caller)
        self.events.publish(ev.CallerEntered(
            at=entered, queue=call.queue, call=channel.id, caller_number=caller.number,
            caller_name=caller.name, position=caller.position, readopted=readopted))
        if not parked:
            await self._end_call(caller, by="caller")
            return caller
        log.info("queue %s: caller %s entered (priority %d, skills %s)", call.queue,
                 channel.id, waiting.priority, ",".join(call.skills) or "-")
        self._wake.set()
        self._pulse()
        return caller

    async def _park(self, caller: Caller, *, new: bool = False) -> None:
        """The caller's own bridge, with music on hold (created if it does not exist).

        A *new* caller (just entered: its bridge cannot exist) costs Asterisk no
        ``GET /bridges``; a re-adopted one may have a bridge that outlived the previous
        router, so it is looked up first."""
        members: tuple[str, ...] = ()
        if not new:
            try:
                members = (await self.ari.bridges.get(caller.bridge_id)).channels
            except ARINotFound:
                new = True
        if new:
            await self.ari.bridges.create("mixing", bridge_id=caller.bridge_id,
                                          name=f"queue {caller.args.queue}")
        if caller.channel_id not in members:
            await self.ari.bridges.add_channel(caller.bridge_id, caller.channel_id)
        if caller.phase == "waiting":
            await self.ari.bridges.start_moh(caller.bridge_id)

    # -- matchmaking ---------------------------------------------------------------------

    _states_read_at: datetime | None = None

    async def _matchmaker(self) -> None:
        """One decision loop: reads agents, offers calls, fires timers, runs the watchdog."""
        watchdog_at = self.clock()
        while not self._stopping.is_set():
            # Cleared before the pass, not after: a change during the pass's awaits
            # (an agent freed while we reserved another) wakes the next pass at once.
            self._wake.clear()
            now = self.clock()
            try:
                if self._states_read_at is None or \
                        (now - self._states_read_at).total_seconds() >= POLL_INTERVAL:
                    await self._read_states(now)
                await self._fire_timers(now)
                if now >= watchdog_at and self.ready.is_set():
                    watchdog_at = now + timedelta(seconds=WATCHDOG_INTERVAL)
                    await self._reconcile(now)
                await self._match(now)
            except Exception:
                log.exception("queue router: matchmaking pass failed; retrying")
                await asyncio.sleep(0.5)
            delay = self._next_deadline(self.clock(), watchdog_at)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _next_deadline(self, now: datetime, watchdog_at: datetime) -> float:
        times = [watchdog_at, now + timedelta(seconds=POLL_INTERVAL),
                 *self._wrap_up_ends.values(), *self._cooling.values()]
        soonest = min(times)
        delay = (soonest - now).total_seconds()
        change = self._next_relax(now)
        if change is not None:
            delay = min(delay, change)
        return max(delay, 0.01)

    def _next_relax(self, now: datetime) -> float | None:
        from callcenter.routing.decide import next_change

        waiting = [c.waiting for c in self.callers.values() if c.phase == "waiting"]
        at = next_change(waiting, self.policies, now.timestamp())
        return None if at is None else max(at - now.timestamp(), 0.0) + 0.01

    async def _read_states(self, now: datetime) -> None:
        self._states_read_at = now
        for state in await self.store.all():
            self._sync_agent(state, now)

    def _sync_agent(self, state: AgentState, now: datetime) -> None:
        """Keep the routing index in step with one agent's stored state."""
        if (changed := ev.status_event(self.states.get(state.agent), state)) is not None:
            self.events.publish(changed)
        self.states[state.agent] = state
        self._pulse()
        agent = self.config.agents.get(state.agent)
        cooling = self._cooling.get(state.agent)
        if cooling is not None and cooling <= now:
            del self._cooling[state.agent]
            cooling = None
        if agent is not None and state.offerable and cooling is None:
            self.index.agent_available(AgentView.from_config(
                state.agent, agent, self._members.get(state.agent, frozenset()),
                idle_since=state.since.timestamp(),
                calls_taken=self.calls_taken.get(state.agent, 0)))
        else:
            self.index.agent_unavailable(state.agent)
        if state.status is AgentStatus.WRAP_UP and state.wrap_up_until is not None:
            self._wrap_up_ends[state.agent] = state.wrap_up_until
        else:
            self._wrap_up_ends.pop(state.agent, None)

    async def _fire_timers(self, now: datetime) -> None:
        for agent, at in list(self._wrap_up_ends.items()):
            if at <= now:
                self._wrap_up_ends.pop(agent, None)
                await self._apply(agent, Tick(), now)
        for agent, at in list(self._cooling.items()):
            if at <= now and agent in self.states:
                self._sync_agent(self.states[agent], now)

    async def _match(self, now: datetime) -> None:
        """Offer every waiting caller, best first, the best agent it may have now."""
        self._leave_unavailable(now)
        ts = now.timestamp()
        waiting = sorted((c for c in self.callers.values() if c.phase == "waiting"),
                         key=lambda c: c.waiting.rank)
        for caller in waiting:
            for _ in range(10):
                if caller.phase != "waiting":
                    break  # hung up (or re-offered) during an await of this pass  # lost reservations: decide again with the agent removed
                decision = self.index.select_agent(caller.waiting,
                                                   self.callbacks.decision_time(caller, ts))
                if decision is None:
                    break
                if isinstance(decision, Overflow):
                    caller.phase = "gone"
                    self.index.dequeue(caller.channel_id)
                    self._spawn(self._overflow(caller, decision), f"overflow {caller.channel_id}")
                    break
                if await self._reserve_and_offer(caller, decision, now):
                    break

    async def _reserve_and_offer(self, caller: Caller, decision: Offer, now: datetime) -> bool:
        """Reserve the decision's agent(s) and start ringing; False if every one was taken
        meanwhile (the caller is then decided again)."""
        won: list[str] = []
        for agent in decision.agents:
            state = await self.store.try_reserve(agent, caller.channel_id, now,
                                                 known=self.states.get(agent))
            if state is None:
                self.index.agent_unavailable(agent)
                continue
            self._sync_agent(state, now)
            self.index.offered(caller.args.queue, agent)
            won.append(agent)
        if not won:
            return False
        async with caller.lock:
            if caller.phase != "waiting":  # the caller left while we reserved
                for agent in won:
                    await self._apply(agent, OfferFailed(caller.channel_id,
                                                         OfferResult.CALLER_GONE.value), now)
                return True
            caller.phase = "offering"
            self.index.dequeue(caller.channel_id)
        for agent in won:
            self._spawn(self._offer(caller, agent, decision.stage), f"offer {agent}")
        return True

    # -- offers --------------------------------------------------------------------------

    async def _offer(self, caller: Caller, agent: str, stage: int) -> None:
        if self.callbacks.holds(caller.channel_id):  # the agent first, then the customer
            await self.callbacks.offer(caller, agent, stage)
            return
        now = self.clock()
        policy = self.policies[caller.args.queue]
        async with caller.lock:
            if caller.phase != "offering":
                await self._apply(agent, OfferFailed(caller.channel_id, OfferResult.CALLER_GONE),
                                  now)
                return
            caller.offers_made += 1
            leg_id = f"{caller.channel_id}-o{caller.offers_made}"
            async with self.sessions.begin() as session:
                offer_row = await QueuedCallRepository(session).add_offer_by_id(
                    caller.row, agent, offered_at=now, channel_id=leg_id)
            leg = Leg(leg_id, agent, caller, offer_row, stage, offered_at=now)
            caller.legs[leg_id] = leg
            self.legs[leg_id] = leg
        dial_string = self.config.agents[agent].dial_string(agent)
        try:
            await self.ari.channels.create(
                dial_string, channel_id=leg_id, app=self.app, originator=caller.channel_id,
                variables={**self._caller_id(caller), **leg_variables(dial_string)})
            async with asyncio.timeout(LEG_START_TIMEOUT):
                await leg.started.wait()
            await self.ari.channels.dial(leg_id, caller=caller.channel_id,
                                         timeout=policy.ring_timeout)
        except (ARIError, TimeoutError) as exc:
            log.warning("queue %s: offer of %s to %s failed: %s", caller.args.queue,
                        caller.channel_id, agent, exc or type(exc).__name__)
            # ARI gave no answer: the phone was never rung, so it is not the agent's miss.
            await self._offer_failed(leg, result_from_leg_error(exc),
                                     miss=not isinstance(exc, ARIConnectionError))
            return
        async with caller.lock:
            if not leg.ended and caller.phase == "offering":
                await self._apply(agent, Ring(caller.channel_id), self.clock())
                self.events.publish(ev.OfferRinging(at=self.clock(), queue=caller.args.queue,
                                                    call=caller.channel_id, agent=agent,
                                                    leg=leg_id))
        log.info("queue %s: ringing %s for %s", caller.args.queue, agent, caller.channel_id)

    @staticmethod
    def _caller_id(caller: Caller) -> dict[str, str]:
        """The caller's number and name on the agent's phone. Caller ID comes from
        outside: it travels only as a variable's value in a JSON body, never as dialplan."""
        return {"CALLERID(num)": caller.number, "CALLERID(name)": caller.name}

    async def _answered(self, leg: Leg) -> None:
        caller = leg.caller
        now = self.clock()
        async with caller.lock:
            if caller.agent_channel == leg.channel_id:
                return  # a second copy of the ANSWER (Asterisk sends one per party)
            if leg.ended or caller.phase != "offering":
                await self._hangup(leg.channel_id, "answered_elsewhere")
                return
            await self.announcer.silence(caller.channel_id)  # before the agent hears it
            await self.callbacks.silence(caller.channel_id)
            with contextlib.suppress(ARIError):
                await self.ari.bridges.stop_moh(caller.bridge_id)
            try:
                await self.ari.bridges.add_channel(caller.bridge_id, leg.channel_id)
            except ARIError as exc:  # the caller's side vanished as the agent answered
                log.info("queue %s: %s answered but %s is gone (%s)", caller.args.queue,
                         leg.agent, caller.channel_id, exc)
                joined = False
            else:
                joined = True
                await self._connect(caller, leg, now)
                await self.recorder.start(caller)  # both sides are in the bridge now
            others = [other for other in caller.legs.values()
                      if other is not leg and not other.ended]
        if not joined:
            await self._offer_failed(leg, OfferResult.CALLER_GONE)
            await self._end_call(caller, by="caller")
            return
        for other in others:  # ring_all: the others stop ringing
            await self._offer_failed(other, OfferResult.CANCELLED)
        log.info("queue %s: %s answered %s", caller.args.queue, leg.agent, caller.channel_id)

    async def _connect(self, caller: Caller, leg: Leg, now: datetime) -> None:
        """Caller and agent share the bridge: record it (under the caller's lock)."""
        caller.phase = "connected"
        caller.agent, caller.agent_channel = leg.agent, leg.channel_id
        agent = self.config.agents[leg.agent]

        async def record(session: AsyncSession) -> None:
            await QueuedCallRepository(session).answered_by_id(
                caller.row, leg.offer_row, leg.agent, at=now,
                matched_skills=dict(agent.skills) or None, relaxation_step=leg.stage)

        # The agent's change and the call's record commit together (one transaction).
        await self._apply(leg.agent, Answer(caller.channel_id), now, also=record)
        self.misses[leg.agent] = 0
        self.calls_taken[leg.agent] = self.calls_taken.get(leg.agent, 0) + 1
        caller.connected_at = now
        self.events.publish(ev.CallConnected(
            at=now, queue=caller.args.queue, call=caller.channel_id, agent=leg.agent,
            agent_channel=leg.channel_id, wait_seconds=self._waited(caller, now),
            ring_seconds=_since(leg.offered_at, now), position=caller.position))

    async def _offer_failed(self, leg: Leg, result: OfferResult, *, miss: bool = True) -> None:
        """End an unanswered offer: the leg, its record, the agent's state; the caller
        waits again when no other offer is live. *miss*: False when the offer failed on
        our side (ARI unreachable), so the agent is not held out or paused for it."""
        caller = leg.caller
        now = self.clock()
        async with caller.lock:
            if leg.ended:
                return
            answered = caller.phase == "connected" and caller.agent_channel == leg.channel_id
            if not answered:
                await self._close_offer(leg, result, now, miss=miss)
        if answered:
            # This leg's end was judged while its answer was being handled (the agent hung
            # up a few ms after answering): the call is connected, so it ends as an
            # answered call whose agent hung up, not as a missed offer.
            await self._end_call(caller, by="agent")
            return
        log.info("queue %s: offer of %s to %s ended: %s", caller.args.queue,
                 caller.channel_id, leg.agent, result.value)
        self._wake.set()

    async def _close_offer(self, leg: Leg, result: OfferResult, now: datetime, *,
                           miss: bool) -> None:
        """:meth:`_offer_failed`'s work, under the caller's lock."""
        caller = leg.caller
        leg.ended = True
        self.legs.pop(leg.channel_id, None)
        await self._hangup(leg.channel_id, "normal")
        async with self.sessions.begin() as session:
            await QueuedCallRepository(session).end_offer_by_id(leg.offer_row, result,
                                                                at=now)
        self._offer_ended(leg, result, now)
        try:
            await self._apply(leg.agent, OfferFailed(caller.channel_id, result.value), now)
        except IllegalTransition:
            log.info("agent %s already moved on from %s", leg.agent, caller.channel_id)
        if miss and result not in _NOT_A_MISS:
            await self._count_miss(leg.agent, caller, now)
        live = [other for other in caller.legs.values() if not other.ended]
        if caller.phase == "offering" and not live:
            caller.phase = "waiting"
            self.index.enqueue(caller.waiting)
            self._pulse()

    async def _count_miss(self, agent: str, caller: Caller, now: datetime) -> None:
        """A missed offer: hold the agent out briefly; pause it after ``auto_pause_after``
        misses in a row."""
        self.misses[agent] = self.misses.get(agent, 0) + 1
        self._cooling[agent] = now + MISS_COOLDOWN
        limit = self.policies[caller.args.queue].auto_pause_after
        if limit and self.misses[agent] >= limit:
            self.misses[agent] = 0
            try:
                await self._apply(agent, Pause(NO_ANSWER_REASON), now,
                                  reason=f"{limit} offers missed in a row")
                log.warning("agent %s paused after %d missed offers", agent, limit)
            except IllegalTransition:
                pass
        if agent in self.states:
            self._sync_agent(self.states[agent], now)

    # -- the end of a call ---------------------------------------------------------------

    async def _channel_gone(self, channel_id: str, cause: int | None) -> None:
        """A channel left the app (``cause`` None: StasisEnd) or was destroyed."""
        caller = self.callers.get(channel_id)
        if caller is not None:
            if not await self.callbacks.caller_left(caller):  # a callback keeps its place
                await self._end_call(caller, by="caller")
            return
        leg = self.legs.get(channel_id)
        if leg is None:
            return
        if leg.caller.phase == "connected" and leg.caller.agent_channel == channel_id:
            await self._end_call(leg.caller, by="agent")
        elif leg.ended:
            return
        elif cause is not None:
            await self._offer_failed(leg, result_from_cause(cause))
        else:
            # An offer leg's StasisEnd comes just before its ChannelDestroyed, which has
            # the cause (no answer, busy, rejected...): wait briefly for it.
            self._spawn(self._leg_left(leg), f"leg left {channel_id}")

    async def _leg_left(self, leg: Leg) -> None:
        await asyncio.sleep(LEG_DESTROY_GRACE)
        if not leg.ended:
            await self._offer_failed(leg, OfferResult.FAILED)

    async def _end_call(self, caller: Caller, *, by: str) -> None:
        """Tear the call down whoever hung up: the other leg, the bridge, the records,
        the agent's state."""
        now = self.clock()
        async with caller.lock:
            if caller.phase == "gone":
                return
            position = self._position(caller)
            phase, caller.phase = caller.phase, "gone"
            self.callers.pop(caller.channel_id, None)
            self.index.dequeue(caller.channel_id)
            open_legs = [leg for leg in caller.legs.values() if not leg.ended]
        for leg in open_legs:
            if leg.channel_id != caller.agent_channel:
                await self._offer_failed(leg, OfferResult.CALLER_GONE)
        self._call_ended(caller, phase, by, position, now)
        await self.transfers.call_ended(caller)  # a transfer's legs and records
        if phase == "connected" and caller.agent is not None:
            await self.recorder.stop(caller, now)  # before the agent's leg goes
            agent_leg = caller.legs.get(caller.agent_channel or "")
            if agent_leg is not None:
                agent_leg.ended = True
                self.legs.pop(agent_leg.channel_id, None)
            await self._hangup(caller.agent_channel, "normal")
            wrap = timedelta(seconds=self.policies[caller.args.queue].wrapup)
            # The agent's change comes before the caller's channel goes: the watchdog reads
            # states first, then channels, and an on-call agent whose caller is not in the
            # channel list is freed without wrap-up. The call's end is recorded last, after
            # the hang-ups: a restart in between finds the call open and ends it.
            try:
                await self._apply(caller.agent, Hangup(caller.channel_id, wrap), now)
            except IllegalTransition:
                log.info("agent %s already moved on from %s", caller.agent, caller.channel_id)
        await self._hangup(caller.channel_id, "normal")
        # ARI unreachable: the records and the agent still move on (see _hangup).
        with contextlib.suppress(ARINotFound, ARIConflict, ARIConnectionError):
            await self.ari.bridges.destroy(caller.bridge_id)
        outcome = QueueOutcome.ANSWERED if phase == "connected" else QueueOutcome.ABANDONED
        await self._finish(caller.channel_id, caller.row, outcome, now)
        log.info("queue %s: call %s ended (%s, hung up by %s)", caller.args.queue,
                 caller.channel_id, outcome.value, by)
        self._wake.set()

    def _pulse(self) -> None:
        """Wake whoever waits in :meth:`wait_until` (something observable changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once *predicate* (over :attr:`states`, :attr:`callers`) holds; checked
        after every change the router makes, so callers wait on events, not on time."""
        while not predicate():
            await self._changed.wait()

    def finished(self, channel_id: str) -> asyncio.Event:
        """Set once the queued call of *channel_id* is recorded as ended (for the service's
        event stream and for tests, which wait on it rather than on time)."""
        return self._finished.setdefault(channel_id, asyncio.Event())

    async def _finish(self, channel_id: str, row: int, outcome: QueueOutcome, now: datetime,
                      overflow_to: str | None = None) -> None:
        """Record the end of the stay of queued call *row* (``answered`` becomes
        ``abandoned`` if nobody answered; a call ended already is left as it is)."""
        async with self.sessions.begin() as session:
            await QueuedCallRepository(session).finish_by_id(row, outcome, at=now,
                                                              overflow_to=overflow_to)
        self.finished(channel_id).set()

    async def _drop_caller(self, caller: Caller) -> None:
        """Forget a caller handed back to the dialplan (fallback): it is no longer ours."""
        async with caller.lock:
            position = self._position(caller)
            phase, caller.phase = caller.phase, "gone"
        self.callers.pop(caller.channel_id, None)
        self.index.dequeue(caller.channel_id)
        if phase in ("waiting", "offering"):
            self._left_unanswered(caller, position, "fallback", self.clock())
        with contextlib.suppress(ARIError):
            await self.ari.bridges.destroy(caller.bridge_id)
        await self._finish(caller.channel_id, caller.row, QueueOutcome.OVERFLOWED, self.clock(),
                           "fallback")

    async def _overflow(self, caller: Caller, decision: Overflow) -> None:
        from callcenter.asterisk import stasis_args

        label_of = getattr(stasis_args, "overflow_label", None)
        label = label_of(decision.stage) if label_of else "fallback"
        await self._send_on(caller, label)
        log.info("queue %s: %s overflowed at step %d", caller.args.queue,
                 caller.channel_id, decision.stage)

    async def _send_on(self, caller: Caller, label: str, *,
                       outcome: QueueOutcome = QueueOutcome.OVERFLOWED,
                       overflow_to: str | None = None, reason: str = "") -> None:
        """A waiting caller (``gone`` already) leaves unanswered for its queue's
        ``cc-queue`` extension at *label*: recorded first, then continued there."""
        self._left_unanswered(caller, self._position(caller), label, self.clock(),
                              reason=reason)
        self.callers.pop(caller.channel_id, None)
        await self.announcer.silence(caller.channel_id)
        with contextlib.suppress(ARIError):
            await self.ari.bridges.destroy(caller.bridge_id)
        await self._finish(caller.channel_id, caller.row, outcome,
                           self.clock(), overflow_to=overflow_to or label)
        await self._continue_at(caller.channel_id, caller.args.queue, label)

    async def _continue_at(self, channel_id: str, queue: str, label: str) -> None:
        """Back to the dialplan at ``cc-queue,<queue>,<label>``; hung up if that fails
        (a call never stays in the app with nobody owning it)."""
        try:
            await self.ari.channels.continue_in_dialplan(channel_id, "cc-queue", queue,
                                                         label=label)
        except ARIError as exc:
            log.warning("queue %s: sending %s to %s failed (%s); hanging up",
                        queue, channel_id, label, exc)
            await self._hangup(channel_id, "normal")

    # -- when nobody can take calls (callcenter.routing.availability) ----------------------

    def _statuses(self) -> dict[str, AgentStatus]:
        return {agent: state.status for agent, state in self.states.items()}

    def _refused(self, queue: str, now: datetime) -> str | None:
        """Why a caller arriving in *queue* now must not wait (None: it joins). Agents
        are judged once the first resync has read them."""
        if queue not in self.gate.rules:
            return None
        waiting = sum(1 for c in self.callers.values()  # callers on the line (max_callers)
                      if c.args.queue == queue and c.phase in ("waiting", "offering")
                      and not self.callbacks.holds(c.channel_id))
        statuses = self._statuses() if self.ready.is_set() else None
        return self.gate.at_entry(queue, statuses, waiting, now)

    async def _refuse(self, channel: Channel, call: QueueCall, reason: str,
                      now: datetime) -> None:
        """The caller never waits: a stay of no time is recorded, and it goes on at once
        to the queue's ``unavailable`` label (no bridge, no music); or it leaves a message."""
        if self.after_hours.refused(channel.id, channel.caller.number, call, reason, now):
            return
        async with self.sessions.begin() as session:
            repo = QueuedCallRepository(session)
            row = await repo.enter_by_id(channel.id, call.queue, entered_at=now,
                                         priority=call.priority, language=call.language,
                                         node=self.node)
            await repo.finish_by_id(row, QueueOutcome.OVERFLOWED, at=now,
                                    overflow_to=availability.overflow_to(reason))
        self.finished(channel.id).set()
        self.events.publish(ev.CallOverflowed(
            at=now, queue=call.queue, call=channel.id, position=0, original_position=0,
            wait_seconds=0.0, destination=availability.UNAVAILABLE_LABEL, reason=reason))
        log.info("queue %s: caller %s sent on at entry (%s)", call.queue, channel.id, reason)
        await self._continue_at(channel.id, call.queue, availability.UNAVAILABLE_LABEL)

    def _leave_unavailable(self, now: datetime) -> None:
        """Waiting callers of a queue nobody can take calls for any more (its schedule
        closed, its agents gone for ``grace``, ``max_wait`` reached) leave for its
        ``unavailable`` label. A caller being offered is judged when the offer ends."""
        if not self.gate.rules or not self.ready.is_set():
            return  # agents not read yet: every queue would look empty
        # A callback has no caller on the line to send on: it keeps its place until an
        # agent can take it (neither max_wait nor an empty or closed queue moves it).
        waiting = [availability.Waiting(c.channel_id, c.args.queue, c.waiting.enqueued_at)
                   for c in self.callers.values()
                   if c.phase == "waiting" and not self.callbacks.holds(c.channel_id)]
        for call, reason in self.gate.leaving(waiting, self._statuses(), now):
            caller = self.callers[call]
            caller.phase = "gone"
            self.index.dequeue(call)
            outcome = (QueueOutcome.TIMED_OUT if reason == availability.MAX_WAIT
                       else QueueOutcome.OVERFLOWED)
            log.info("queue %s: %s leaves: %s", caller.args.queue, call, reason)
            if self.after_hours.leaving(caller, reason):
                continue
            sent = self._send_on(caller, availability.UNAVAILABLE_LABEL, outcome=outcome,
                                 overflow_to=availability.overflow_to(reason), reason=reason)
            self._spawn(sent, f"unavailable {call}")

    async def _exists(self, channel_id: str) -> bool:
        try:
            await self.ari.channels.get(channel_id)
        except ARINotFound:
            return False
        return True

    async def _hangup(self, channel_id: str | None, reason: HangupReason) -> None:
        """Hang a channel up; one gone already (404, 409) is normal. ARI unreachable: the
        teardown goes on (records, agent states) and the resync after the reconnection
        deals with the channels left in the app."""
        if channel_id is None:
            return
        try:
            await self.ari.channels.hangup(channel_id, reason)
        except (ARINotFound, ARIConflict):
            pass
        except ARIConnectionError as exc:
            log.warning("queue router: could not hang %s up: %s", channel_id, exc)

    # -- events ------------------------------------------------------------------------------

    def _position(self, caller: Caller) -> int:
        """The caller's place in its queue (1 = next), as app_queue counts it: every caller
        of the queue not answered yet, in rank order (an offer in progress keeps its place)."""
        rank = caller.waiting.rank
        return 1 + sum(1 for other in self.callers.values()
                       if other is not caller and other.args.queue == caller.args.queue
                       and other.phase in ("waiting", "offering") and other.waiting.rank < rank)

    @staticmethod
    def _waited(caller: Caller, now: datetime) -> float:
        return max(now.timestamp() - caller.waiting.enqueued_at, 0.0)

    def _offer_ended(self, leg: Leg, result: OfferResult, now: datetime) -> None:
        self.events.publish(ev.OfferEnded(
            at=now, queue=leg.caller.args.queue, call=leg.caller.channel_id, agent=leg.agent,
            result=result.value, ring_seconds=_since(leg.offered_at, now)))

    def _call_ended(self, caller: Caller, phase: str, by: str, position: int,
                    now: datetime) -> None:
        """A call left the router by a hang-up: completed (connected) or abandoned."""
        if phase == "connected" and caller.agent is not None:
            connected = caller.connected_at or now
            self.events.publish(ev.CallCompleted(
                at=now, queue=caller.args.queue, call=caller.channel_id, agent=caller.agent,
                by="agent" if by == "agent" else "caller",
                hold_seconds=self._waited(caller, connected),
                talk_seconds=_since(connected, now), position=caller.position))
        elif phase in ("waiting", "offering"):
            self.events.publish(ev.CallAbandoned(
                at=now, queue=caller.args.queue, call=caller.channel_id, position=position,
                original_position=caller.position, wait_seconds=self._waited(caller, now)))

    def _left_unanswered(self, caller: Caller, position: int, destination: str,
                         now: datetime, *, reason: str = "") -> None:
        self.events.publish(ev.CallOverflowed(
            at=now, queue=caller.args.queue, call=caller.channel_id, position=position,
            original_position=caller.position, wait_seconds=self._waited(caller, now),
            destination=destination, reason=reason))

    # -- agents ----------------------------------------------------------------------------

    async def _apply(self, agent: str, event, now: datetime,  # type: ignore[no-untyped-def]
                     *, reason: str | None = None,
                     also: Callable[[AsyncSession], Awaitable[None]] | None = None) -> None:
        """Change *agent* (from our copy of its state: no read unless it is stale) and
        carry the effects out. *also*: the call's record, written in the same transaction
        when the agent changes, in one of its own otherwise (refused: not at all)."""
        done = False

        async def recorded(session: AsyncSession) -> None:
            nonlocal done
            assert also is not None
            await also(session)
            done = True

        outcome = await self.store.apply(agent, event, now, reason=reason,
                                         known=self.states.get(agent),
                                         also=None if also is None else recorded)
        if also is not None and not done:
            async with self.sessions.begin() as session:
                await also(session)
        self._sync_agent(outcome.state, now)
        await self._carry_out(outcome.effects)

    async def _carry_out(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            match effect:
                case ReadyForCalls():
                    self._wake.set()
                case ScheduleWrapUpEnd(agent=agent, at=at):
                    self._wrap_up_ends[agent] = at
                    self._wake.set()
                case CancelOffer(agent=agent, call=call):
                    caller = self.callers.get(call)
                    for leg in list(caller.legs.values()) if caller else ():
                        if leg.agent == agent and not leg.ended:
                            self._spawn(self._offer_failed(leg, OfferResult.CANCELLED),
                                        f"cancel offer {leg.channel_id}")

    async def _phone_changed(self, agent: str, contact: ContactStatus | None) -> None:
        if agent not in self.config.agents or not self.config.agents[agent].softphone:
            return
        self.contacts[agent] = contact
        await self._reconcile(self.clock(), only=agent)

    async def _reconcile(self, now: datetime, only: str | None = None) -> None:
        # States first, channels second: a caller an agent is tied to existed before the
        # list was read, so it is in the list unless it is really gone.
        states = [s for s in await self.store.all() if only is None or s.agent == only]
        live = {channel.id for channel in await self.ari.channels.list()}
        live |= self.callbacks.live_calls()  # an agent on a callback: its caller is gone
        # Several nodes share the database: an agent tied to another node's caller is not
        # judged by this node's channel list (that caller lives in the other Asterisk).
        # Ours: callers recorded by this node, or recorded by no node (a single node).
        foreign = await self._foreign_calls({s.call for s in states if s.call is not None})
        corrections = reconcile(states, live, self.contacts, now,
                                owned_calls={s.call for s in states if s.call is not None
                                             and s.call not in foreign})
        for correction, outcome in await self.store.apply_corrections(corrections, now):
            log.warning("agent %s: %s (%s)", correction.agent, correction.event.cause,
                        correction.reason)
            self._sync_agent(outcome.state, now)
            await self._carry_out(outcome.effects)
        self._wake.set()

    async def _foreign_calls(self, calls: set[str]) -> set[str]:
        """Which of *calls* (caller channel ids) another node's router owns."""
        if not calls:
            return set()
        async with self.sessions() as session:
            rows = await session.execute(
                select(QueuedCall.channel_id, QueuedCall.node)
                .where(QueuedCall.channel_id.in_(calls)))
        return {channel for channel, node in rows
                if node is not None and node != self.node}

    # -- (re)connection ----------------------------------------------------------------------

    async def resync(self) -> None:
        """After each websocket (re)connection: phones, channels still ours, agents."""
        now = self.clock()
        softphones = [name for name, a in self.config.agents.items() if a.softphone]
        if softphones:
            await self.ari.applications.subscribe(
                self.app, [f"endpoint:PJSIP/{name}" for name in softphones])
        for name in softphones:
            try:
                endpoint = await self.ari.endpoints.get("PJSIP", name)
            except ARINotFound:
                self.contacts[name] = None
                continue
            self.contacts[name] = (ContactStatus.REACHABLE if endpoint.state == "online"
                                   else None)
        await self._forget_the_dead()
        await self._readopt(now)
        # A feature-code call whose handler died with the previous process: end it.
        await self.supervision.sweep()
        with contextlib.suppress(ARINotFound):  # a client registered for the queue app only
            for channel_id in (await self.ari.applications.get(self.agent_app)).channel_ids:
                if channel_id not in self._feature_calls and \
                        not self.supervision.owns(channel_id):
                    await self._hangup(channel_id, "normal")
        await self._read_states(now)
        await self._reconcile(now)
        self.connections += 1
        self._pulse()
        self.ready.set()
        log.info("queue router %s ready: %d caller(s) adopted", self.app, len(self.callers))

    async def _forget_the_dead(self) -> None:
        """Calls this router held whose channels died while it was disconnected (an
        Asterisk restart kills every channel): end them as if their hang-up had come."""
        live = {channel.id for channel in await self.ari.channels.list()}
        for caller in list(self.callers.values()):
            if caller.channel_id not in live and not self.callbacks.holds(caller.channel_id):
                await self._end_call(caller, by="nobody: the channel vanished")
        await self.callbacks.forget_the_dead(live)
        for leg in list(self.legs.values()):
            if leg.channel_id not in live and not leg.ended:
                await self._offer_failed(leg, OfferResult.FAILED)

    async def _readopt(self, now: datetime) -> None:
        """Take back the channels left in the app (a restart, a lost websocket)."""
        app = await self.ari.applications.get(self.app)
        in_app = set(app.channel_ids)
        async with self.sessions() as session:
            repo = QueuedCallRepository(session)
            open_rows = {row.channel_id: row for row in await repo.open_calls(node=self.node)}
        for channel_id in sorted(in_app, key=lambda c: open_rows[c].entered_at
                                 if c in open_rows else now):
            if channel_id in self.callers or channel_id in self.legs:
                continue
            try:
                channel = await self.ari.channels.get(channel_id)
            except ARINotFound:
                continue
            row = open_rows.get(channel_id)
            if row is None:
                await self._adopt_unknown(channel)
                continue
            args = _stasis_args_of(channel)
            try:
                call = QueueCall.parse(args) if args else QueueCall(row.queue)
            except StasisArgsError:
                call = QueueCall(row.queue)
            if row.answered_at is not None:
                await self._adopt_connected(channel, call, row, in_app)
            else:
                await self._admit(channel, call, entered_at=row.entered_at, row=row.id)
        await self.callbacks.readopt(now)  # before the rows of gone channels are closed
        for channel_id, row in open_rows.items():
            if channel_id not in in_app and channel_id not in self.callers:
                outcome = QueueOutcome.ANSWERED if row.answered_at else QueueOutcome.ABANDONED
                await self._finish(channel_id, row.id, outcome, now)

    async def _adopt_unknown(self, channel: Channel) -> None:
        """A channel in the app with no record: a caller whose StasisStart we never saw
        (it came while we were away: its Stasis args are in its dialplan location), or an
        offer leg whose outcome we lost (hung up: its caller is offered again)."""
        args = _stasis_args_of(channel)
        if channel.dialplan.app_name == "Stasis" and args:
            try:
                call = QueueCall.parse(args)
            except StasisArgsError:
                await self._hangup(channel.id, "normal")
                return
            if call.queue in self.policies:
                await self._admit(channel, call)
                return
        await self._hangup(channel.id, "normal")

    async def _adopt_connected(self, channel: Channel, call: QueueCall, row, in_app: set[str]) -> None:  # type: ignore[no-untyped-def]
        """A call in progress: caller and agent go on talking; the router owns it again."""
        bridge_id = f"cc-{channel.id}"
        try:
            bridge = await self.ari.bridges.get(bridge_id)
        except ARINotFound:
            await self._hangup(channel.id, "normal")
            return
        agent_channel = next((c for c in bridge.channels if c != channel.id), None)
        policy = self.policies.get(call.queue) or self.policies[row.queue]
        waiting = WaitingCall(channel.id, row.queue, row.entered_at.timestamp(),
                              policy.call_priority(row.priority), (), None, next(self._seq))
        caller = Caller(channel.id, call, row.id, waiting, bridge_id, phase="connected",
                        agent=row.agent, agent_channel=agent_channel,
                        connected_at=row.answered_at)
        self.callers[channel.id] = caller
        if agent_channel is None:
            await self._end_call(caller, by="agent")
            return
        leg = Leg(agent_channel, row.agent or "", caller, 0, row.relaxation_step or 0)
        leg.started.set()
        caller.legs[agent_channel] = leg
        self.legs[agent_channel] = leg


def _since(start: datetime | None, now: datetime) -> float:
    return 0.0 if start is None else max((now - start).total_seconds(), 0.0)


def _stasis_args_of(channel: Channel) -> tuple[str, ...]:
    """The args of the ``Stasis()`` a channel is in, from its dialplan location."""
    if channel.dialplan.app_name != "Stasis":
        return ()
    parts = channel.dialplan.app_data.split(",")
    return tuple(parts[1:])
