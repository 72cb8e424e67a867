"""One call, one owner: ARI events ordered per channel (and per bridge), calls concurrent.

The websocket reader must only decode and dispatch: if it awaited each handler, one slow
REST call for caller A would hold every other caller's events. :class:`EventDispatcher`
puts each event in the ordered inbox of its owner (:func:`event_key`: the channel, the
bridge, or the application for app-wide events such as device states) and drains each
inbox with its own task in a TaskGroup the dispatcher owns. So events of one channel are
handled in Asterisk's order, one at a time; different channels never wait on each other.

A key's task ends after its channel's ``StasisEnd`` or ``ChannelDestroyed`` (bridge:
``BridgeDestroyed``) or after ``idle_timeout`` seconds without events, so memory stays
bounded by the calls up now. A late event for an ended key simply starts a new task
(the old one is gone before it can start: ordering holds).

A handler that raises is logged with its key (the channel id) and the ``fallback`` hook
runs for that event; :func:`dialplan_fallback` is the usual one: the call is continued
in the dialplan at its ``fallback`` label (the queue's fallback destination in the
generated ``cc-queue`` context) or hung up, never left in Stasis.

Usage, with :meth:`ARIClient.run_event_loop` as the reader::

    async with EventDispatcher(router.on_event, fallback=dialplan_fallback(ari)) as d:
        await ari.run_event_loop(d.dispatch, on_connected=router.resync)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from callcenter.asterisk.ari.client import (
    ARIClient,
    ARIConflict,
    ARIError,
    ARINotFound,
    HangupReason,
)
from callcenter.asterisk.ari.events import (
    BridgeCreated,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelVarset,
    Dial,
    DialplanCEP,
    Event,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    UnknownEvent,
)

__all__ = [
    "APP_KEY",
    "EventDispatcher",
    "Fallback",
    "Handler",
    "dialplan_fallback",
    "event_key",
]

log = logging.getLogger(__name__)

#: The inbox of events that belong to no channel or bridge (endpoints, device states...).
APP_KEY = "app"

Handler = Callable[[Event], Awaitable[None]]
#: ``fallback(key, event, error)``: what to do with the call when ``handler`` raised.
Fallback = Callable[[str, Event, Exception], Awaitable[None]]

_END = object()  # an inbox's close marker


def event_key(event: Event) -> str:
    """The owner of an event: ``channel:<id>``, ``bridge:<id>`` or :data:`APP_KEY`.

    ``Dial`` belongs to the channel being dialled (the agent offer's owner);
    ``ChannelEnteredBridge`` to the channel (its owner put it there); a playback to its
    target (``channel:<id>``), so a PlaybackFinished is ordered after that channel's
    StasisStart. Unmodelled events (ChannelDialplan...) still go to their channel.
    """
    match event:
        case Dial(peer=peer):
            return f"channel:{peer.id}"
        case BridgeCreated(bridge=bridge) | BridgeDestroyed(bridge=bridge):
            return f"bridge:{bridge.id}"
        case PlaybackStarted(playback=playback) | PlaybackFinished(playback=playback):
            target = playback.target_uri
            if target.startswith(("channel:", "bridge:")):
                return target
            return APP_KEY
        case ChannelVarset(channel=None):
            return APP_KEY
        case UnknownEvent(raw=raw):
            channel = raw.get("channel")
            if isinstance(channel, dict) and isinstance(channel.get("id"), str):
                return f"channel:{channel['id']}"
            return APP_KEY
    channel = getattr(event, "channel", None)
    channel_id = getattr(channel, "id", None)
    if isinstance(channel_id, str):
        return f"channel:{channel_id}"
    return APP_KEY


def _is_last(key: str, event: Event) -> bool:
    """After this event the key's owner is usually done: the channel is destroyed, or
    it left Stasis (a channel that entered Stasis from the dialplan is no longer ours:
    Asterisk does not even send its ChannelDestroyed), or the bridge is destroyed.
    Should more come (a channel we created is still reported after its StasisEnd),
    a new task takes them, in order."""
    if isinstance(event, ChannelDestroyed | StasisEnd):
        return key == f"channel:{event.channel.id}"
    return isinstance(event, BridgeDestroyed) and key == f"bridge:{event.bridge.id}"


class EventDispatcher:
    """Per-key ordered inboxes, each drained by a task of the dispatcher's TaskGroup.

    Enter it (``async with``) to start; leaving it lets every inbox finish the events it
    already holds, then waits for the tasks: none is left behind. Cancellation of the
    owner cancels them all (TaskGroup). ``dispatch`` never blocks and never raises for an
    event, so the websocket reader stays a reader.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        fallback: Fallback | None = None,
        idle_timeout: float = 300.0,
    ) -> None:
        self._handler = handler
        self._fallback = fallback
        self._idle_timeout = idle_timeout
        self._inboxes: dict[str, asyncio.Queue[object]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False

    @property
    def keys(self) -> frozenset[str]:
        """The keys with a live task now (for tests and a status page)."""
        return frozenset(self._inboxes)

    async def __aenter__(self) -> Self:
        if self._tg is not None:
            raise RuntimeError("EventDispatcher already started")
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._closing = True
        for inbox in self._inboxes.values():
            inbox.put_nowait(_END)
        assert self._tg is not None
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # Owners never raise (handler errors are caught), so a group holding only
            # the body's own error is the TaskGroup wrapping it: let it through as itself.
            if exc is not None and group.exceptions == (exc,):
                return False
            raise

    async def dispatch(self, event: Event) -> None:
        """Queue ``event`` for its owner (async only to fit ``run_event_loop``'s handler)."""
        self.put(event)

    def put(self, event: Event) -> None:
        if self._tg is None:
            raise RuntimeError("EventDispatcher is not running")
        if self._closing:
            # The reader can deliver one more event between the owner leaving and the
            # reader's own cancellation: at shutdown it is dropped (the next start
            # reconciles from Asterisk's state), never raised into the reader, whose
            # failure would turn a clean stop into a crash.
            log.debug("ARI event %s after shutdown began: dropped", event.type)
            return
        key = event_key(event)
        inbox = self._inboxes.get(key)
        if inbox is None:
            inbox = self._inboxes[key] = asyncio.Queue()
            self._tg.create_task(self._drain(key, inbox), name=f"ari-owner {key}")
        inbox.put_nowait(event)

    async def _drain(self, key: str, inbox: asyncio.Queue[object]) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle_timeout):
                        item = await inbox.get()
                except TimeoutError:
                    if inbox.empty():  # no await between check and return: nothing is lost
                        return
                    continue
                if item is _END:
                    return
                assert isinstance(item, Event)
                await self._handle(key, item)
                if _is_last(key, item) and inbox.empty():
                    return
        finally:
            if self._inboxes.get(key) is inbox:
                del self._inboxes[key]

    async def _handle(self, key: str, event: Event) -> None:
        try:
            await self._handler(event)
        except Exception as exc:  # one call's failure must not end the others' tasks
            log.exception("ARI %s handler failed for %s", event.type, key)
            if self._fallback is None:
                return
            try:
                await self._fallback(key, event, exc)
            except Exception:
                log.exception("ARI fallback failed for %s after %s", key, event.type)


def dialplan_fallback(
    client: ARIClient, *, label: str = "fallback", reason: HangupReason = "normal_unspecified"
) -> Fallback:
    """The fallback that never leaves a call in Stasis.

    The channel is continued at ``label`` of the extension whose ``Stasis()`` it entered
    (the generated ``cc-queue`` context has a ``fallback`` label per queue: the queue's
    fallback destination). If Asterisk refuses (404 for a missing label, as for a channel
    we created that never ran dialplan), the channel is hung up with ``reason``; a 404 on
    that hangup means it is gone already. 409 means it has left Stasis: nothing to do.
    """

    async def fallback(key: str, event: Event, error: Exception) -> None:
        if not key.startswith("channel:"):
            return
        channel_id = key.removeprefix("channel:")
        channel = getattr(event, "channel", None)
        dialplan = getattr(channel, "dialplan", None)
        if isinstance(dialplan, DialplanCEP) and dialplan.app_name == "Stasis":
            try:
                await client.channels.continue_in_dialplan(
                    channel_id, dialplan.context, dialplan.exten, label=label
                )
            except ARIConflict:
                log.info("ARI %s already out of Stasis: no fallback needed", channel_id)
                return
            except ARIError as exc:
                log.warning("ARI %s: continue to %s failed (%s); hanging up",
                            channel_id, label, exc)
            else:
                log.warning("ARI %s continued at %s,%s,%s after a handler error",
                            channel_id, dialplan.context, dialplan.exten, label)
                return
        try:
            await client.channels.hangup(channel_id, reason)
        except (ARINotFound, ARIConflict) as exc:
            log.info("ARI %s already gone: %s", channel_id, exc)
            return
        log.warning("ARI %s hung up (%s) after a handler error", channel_id, reason)

    return fallback
