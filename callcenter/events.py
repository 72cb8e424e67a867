"""The queue router's domain events, and the bus that hands them to listeners.

The router publishes an event at the point where the thing happens (a caller entered, an
offer rang, a call connected...); listeners turn them into Asterisk's ``queue_log``
(:mod:`callcenter.reporting.queue_log`), Prometheus metrics
(:mod:`callcenter.reporting.metrics`), and later the HTTP API's live stream and the
statistics. Every event is a frozen dataclass; ``call`` is always the caller's channel id
(= Asterisk's ``UNIQUEID``, app_queue's ``callid``), times are UTC.

A listener is anything with ``async def handle(self, event: QueueEvent) -> None``
(:class:`EventListener`). It can never break or slow the router:

* :meth:`EventBus.publish` never blocks and never raises: each listener has its own
  bounded inbox (:data:`DEFAULT_INBOX` events); when it is full the **oldest** event is
  dropped (a late listener catches up on recent events, which is what a live stream and a
  gauge want) and :attr:`Subscription.dropped` counts the drops (logged at the first drop
  and every 1000th after).
* Each listener is served by its own task of :meth:`EventBus.run`, in publish order; an
  exception from ``handle`` is logged and swallowed, the next event is delivered.

Agent events come from two places: login, logout, pause and unpause from every transition
an :class:`~callcenter.agents.store.AgentStore` writes (its ``on_change`` hook; the
router's store and the service's, which the HTTP API uses), by the pure
:func:`transition_events`; the status (for gauges) from the states the router reads, by
:func:`status_event` (so changes made by another node show too).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol, runtime_checkable

from callcenter.agents.state import AgentState, AgentStatus

__all__ = [
    "DEFAULT_INBOX",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "AgentPaused",
    "AgentStateChanged",
    "AgentUnpaused",
    "CallAbandoned",
    "CallCompleted",
    "CallConnected",
    "CallOverflowed",
    "CallTransferred",
    "CallbackAttemptEnded",
    "CallbackEnded",
    "CallbackRequested",
    "CallerEntered",
    "EventBus",
    "EventListener",
    "MessageCallbackRegistered",
    "MessageTaken",
    "OfferEnded",
    "OfferRinging",
    "QueueEvent",
    "Subscription",
    "status_event",
    "transition_events",
]

log = logging.getLogger(__name__)

#: Events a listener may fall behind by before the oldest are dropped.
DEFAULT_INBOX: Final = 10_000
#: How long :meth:`EventBus.run` keeps delivering after it is asked to stop.
DRAIN_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEvent:
    """Base of every event: when it happened."""

    at: datetime


# -- callers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerEntered(QueueEvent):
    """A caller entered *queue* at *position* (1 = next to be served).

    *readopted*: a caller taken back after a router restart (it entered before; app_queue
    would not log it again)."""

    queue: str
    call: str
    caller_number: str
    caller_name: str
    position: int
    readopted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRinging(QueueEvent):
    """The agent's phone rings for the caller (the offer leg *leg* is dialled)."""

    queue: str
    call: str
    agent: str
    leg: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferEnded(QueueEvent):
    """An offer ended without connecting: *result* is an
    :class:`~callcenter.storage.models.OfferResult` value (``no_answer``, ``busy``,
    ``rejected``, ``unregistered``, ``failed``, ``cancelled``, ``caller_gone``)."""

    queue: str
    call: str
    agent: str
    result: str
    ring_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConnected(QueueEvent):
    """The agent answered and joined the caller: *wait_seconds* in queue until now."""

    queue: str
    call: str
    agent: str
    agent_channel: str
    wait_seconds: float
    ring_seconds: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCompleted(QueueEvent):
    """A connected call ended; *by* who hung up. *hold_seconds*: the wait in queue,
    *talk_seconds*: from connect to hang-up, *position*: the caller's entry position."""

    queue: str
    call: str
    agent: str
    by: Literal["caller", "agent"]
    hold_seconds: float
    talk_seconds: float
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(QueueEvent):
    """The caller hung up before any agent answered."""

    queue: str
    call: str
    position: int
    original_position: int
    wait_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOverflowed(QueueEvent):
    """The caller left the queue for *destination* (an overflow step's target,
    ``fallback`` after an error, ``unavailable`` when nobody can take calls) without
    being answered.

    *reason*: why nobody could take it (:class:`~callcenter.routing.availability.Reason`:
    ``closed``, ``no_agents``, ``full``, ``max_wait``); empty for an overflow step or the
    fallback. *position* 0: refused at entry, the caller never joined the queue."""

    queue: str
    call: str
    position: int
    original_position: int
    wait_seconds: float
    destination: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested(QueueEvent):
    """The caller pressed *key*, confirmed a number and left the queue to be called back;
    the callback keeps its place (app_queue's ``EXITWITHKEY``). *source*: ``caller_id``
    or ``keyed``."""

    queue: str
    call: str
    key: str
    source: str
    position: int
    original_position: int
    wait_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageTaken(QueueEvent):
    """A caller nobody could take (*reason*: ``closed``, ``no_agents``, ``full``,
    ``max_wait``) left a message: the recording *recording* (its name), *seconds* long."""

    queue: str
    call: str
    reason: str
    recording: str
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCallbackRegistered(QueueEvent):
    """The message became callback *callback_id* to the caller ID; it keeps the caller's
    place and is offered when the queue opens (the agent hears the message first)."""

    queue: str
    call: str
    callback_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackAttemptEnded(QueueEvent):
    """One attempt of a callback ended without a conversation: *result* is a
    :class:`~callcenter.storage.models.CallbackResult` value, *cause* the customer leg's
    Q.850 cause when known. (An answered attempt is a ``CallConnected``.)"""

    queue: str
    call: str
    agent: str
    result: str
    cause: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackEnded(QueueEvent):
    """A callback is over: *status* ``done`` (the customer talked to an agent) or
    ``failed`` (every attempt used)."""

    queue: str
    call: str
    status: str
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(QueueEvent):
    """*agent* handed the call over (:mod:`ari_apps.transfer`) and left it: *mode*
    ``blind`` or ``attended``, *target_kind* ``queue`` / ``agent`` / ``number`` and
    *target*; *hold_seconds* the caller's wait before the agent, *talk_seconds* the
    agent's part, *position* the entry position (app_queue's BLINDTRANSFER /
    ATTENDEDTRANSFER fields). *bridge*: the call's bridge (ATTENDEDTRANSFER's data)."""

    queue: str
    call: str
    agent: str
    mode: Literal["blind", "attended"]
    target_kind: str
    target: str
    hold_seconds: float
    talk_seconds: float
    position: int
    bridge: str = ""


# -- agents --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged(QueueEvent):
    """Any change of an agent's status (*previous* None: first seen by this router)."""

    agent: str
    status: AgentStatus
    previous: AgentStatus | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedIn(QueueEvent):
    agent: str
    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedOut(QueueEvent):
    agent: str
    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPaused(QueueEvent):
    agent: str
    queues: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUnpaused(QueueEvent):
    agent: str
    queues: tuple[str, ...]


def status_event(before: AgentState | None, after: AgentState) -> AgentStateChanged | None:
    """The agent's status as the router sees it change (pure): every read of the agent's
    state, so changes made anywhere (another node too) show; a status held only between
    two reads may be skipped (a gauge converges, which is what it needs)."""
    if before is not None and before.status is after.status:
        return None
    return AgentStateChanged(at=after.since, agent=after.agent, status=after.status,
                             previous=None if before is None else before.status)


def transition_events(before: AgentState, after: AgentState,
                      queues: Iterable[str]) -> list[QueueEvent]:
    """Login, logout, pause and unpause in one stored transition (pure; exact: the store
    calls it for every change it writes). Times are ``after.since``, when it was stored."""
    at, agent, served = after.since, after.agent, tuple(sorted(queues))
    was_out = before.status is AgentStatus.LOGGED_OUT
    is_out = after.status is AgentStatus.LOGGED_OUT
    was_paused = before.status is AgentStatus.PAUSED
    is_paused = after.status is AgentStatus.PAUSED
    events: list[QueueEvent] = []
    if was_paused and not is_paused and not is_out:  # a logout ends the pause by itself
        events.append(AgentUnpaused(at=at, agent=agent, queues=served))
    if was_out and not is_out:
        events.append(AgentLoggedIn(at=at, agent=agent, queues=served))
    elif is_out and not was_out:
        events.append(AgentLoggedOut(at=at, agent=agent, queues=served))
    if is_paused and (not was_paused or before.pause_reason != after.pause_reason):
        events.append(AgentPaused(at=at, agent=agent, queues=served,
                                  reason=after.pause_reason or ""))
    return events


# -- delivery ------------------------------------------------------------------------


@runtime_checkable
class EventListener(Protocol):
    """Hears every event, in order. Slow or failing listeners only hurt themselves."""

    async def handle(self, event: QueueEvent) -> None: ...


class Subscription:
    """One listener's bounded inbox (drop-oldest) and its delivery loop."""

    def __init__(self, listener: EventListener, maxsize: int = DEFAULT_INBOX) -> None:
        if maxsize < 1:
            raise ValueError("an inbox holds at least one event")
        self.listener = listener
        self._inbox: collections.deque[QueueEvent] = collections.deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        #: Events dropped because the listener fell *maxsize* events behind.
        self.dropped = 0
        #: Events handed to the listener (whether it succeeded or not).
        self.delivered = 0
        #: Events whose ``handle`` raised.
        self.failed = 0

    @property
    def pending(self) -> int:
        return len(self._inbox)

    def put(self, event: QueueEvent) -> None:
        if len(self._inbox) == self._inbox.maxlen:
            self.dropped += 1  # deque(maxlen) drops the oldest on append
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event listener %r is %d events behind: %d oldest dropped so far",
                            self.listener, self._inbox.maxlen, self.dropped)
        self._inbox.append(event)
        self._ready.set()

    async def serve(self, stop: asyncio.Event) -> None:
        """Deliver until *stop* is set and the inbox is empty."""
        while True:
            while self._inbox:
                await self._deliver(self._inbox.popleft())
            if stop.is_set():
                return
            self._ready.clear()
            waits = {asyncio.ensure_future(self._ready.wait()), asyncio.ensure_future(stop.wait())}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await wait

    async def _deliver(self, event: QueueEvent) -> None:
        self.delivered += 1
        try:
            await self.listener.handle(event)
        except Exception:
            self.failed += 1
            log.exception("event listener %r failed on %s; event skipped",
                          self.listener, type(event).__name__)


class EventBus:
    """Fan-out of the router's events to its listeners; ``run()`` is owned by the router's
    TaskGroup, :meth:`publish` is called from anywhere in the router's loop."""

    def __init__(self, listeners: Sequence[EventListener] = (), *,
                 maxsize: int = DEFAULT_INBOX) -> None:
        self.subscriptions = [Subscription(listener, maxsize) for listener in listeners]
        self._stop = asyncio.Event()

    def publish(self, event: QueueEvent) -> None:
        """Queue *event* for every listener; never blocks, never raises."""
        for subscription in self.subscriptions:
            subscription.put(event)

    def publish_all(self, events: Iterable[QueueEvent]) -> None:
        for event in events:
            self.publish(event)

    def stop(self) -> None:
        """Deliver what is queued (up to :data:`DRAIN_TIMEOUT`), then :meth:`run` returns."""
        self._stop.set()

    async def run(self) -> None:
        """Serve every listener until :meth:`stop` (or cancellation)."""
        if not self.subscriptions:
            await self._stop.wait()
            return
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(sub.serve(self._stop), name=f"events -> {sub.listener!r}")
                     for sub in self.subscriptions]
            await self._stop.wait()
            _done, late = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
            for task in late:
                log.warning("event listener still busy after %.0f s at stop: %s",
                            DRAIN_TIMEOUT, task.get_name())
                task.cancel()
