"""Messages left when nobody can take a queue's calls, in the queue router's Stasis app.

A component of :class:`~ari_apps.queue_router.QueueRouter` (``router.after_hours``) for
queues with ``when_unavailable.take_message``
(:class:`~callcenter.config.models.TakeMessage`). The router calls it at a few points
(each one line in the router):

* :meth:`AfterHours.on_event` first for every event: the playbacks of its prompts (ids
  ``cc-message-<caller channel>-<n>``) and the end of its recordings
  (``RecordingFinished`` / ``RecordingFailed``, which carry no channel: they arrive in the
  app's inbox); anything else is left to the others;
* :meth:`AfterHours.refused` in ``_refuse`` (a caller refused at entry: closed, no
  agents, full) and :meth:`AfterHours.leaving` in ``_leave_unavailable`` (a waiting caller
  who must leave): True when the caller leaves a message instead of going on to
  ``cc-queue,<queue>,unavailable``. Only a caller whose caller ID is a number can be
  called back (:func:`~callcenter.routing.after_hours.callback_number_of`); any other
  goes on as before;
* :meth:`AfterHours.hold` from :meth:`~ari_apps.callback.Callbacks.readopt`: a message
  callback found after a restart waits for its queue to open.

**The caller's side** (a task of the router's: it waits for events that arrive in the
caller's own inbox): the channel is answered, ``sound:<prompt>`` plays, then ARI
``POST /channels/{id}/record`` with a beep into ``<recordings dir>/<queue>/message-<channel
id>.<format>`` (:func:`~callcenter.recording.naming.message_name`: only safe characters),
``max_seconds`` long at most, ended by ``max_silence`` seconds of silence, ``#`` or the
caller hanging up. A message of :data:`~callcenter.routing.after_hours.MIN_MESSAGE_SECONDS`
or more is stored in one transaction: the caller's ``queued_calls`` row (open: the
callback's place), a ``recordings`` row linked to the file, a ``callbacks`` row with
``number_source`` ``message`` and the recording's id. The caller hears
``sound:vm-msgsaved sound:vm-goodbye`` and is hung up. Nothing recorded (hung up at the
beep): the stay ends ``abandoned`` (``overflow_to`` ``message:<reason>``).

**The callback** is an ordinary pending callback of :mod:`ari_apps.callback`, held out of
the routing index while its queue's schedule is closed (:meth:`run` looks every
:data:`TICK` seconds, :meth:`~ari_apps.unavailable.Gate.is_open`), then queued at the
caller's original rank. When an agent answers it, the agent hears the message
(``recording:<name>`` on the agent's leg) before the customer is dialled.

**Events**: :class:`~callcenter.events.MessageTaken` and
:class:`~callcenter.events.MessageCallbackRegistered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from callcenter import events as ev
from callcenter.asterisk.ari.client import ARIError
from callcenter.asterisk.ari.events import (
    Event,
    PlaybackFinished,
    PlaybackStarted,
    UnknownEvent,
)
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.models import TakeMessage
from callcenter.recording import files
from callcenter.recording.naming import file_of, message_name
from callcenter.routing.after_hours import (
    MESSAGE_SOURCE,
    callback_number_of,
    is_message,
    overflow_to,
)
from callcenter.routing.policy import WaitingCall
from callcenter.storage.callbacks import CallbackRepository
from callcenter.storage.models import QueueOutcome
from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.storage.recordings import RecordingRepository

if TYPE_CHECKING:
    from ari_apps.queue_router import Caller, QueueRouter

__all__ = ["PLAYBACK_PREFIX", "TICK", "AfterHours", "wait_or_stop"]

log = logging.getLogger(__name__)

#: Playback ids of the caller's prompts start with this.
PLAYBACK_PREFIX: Final = "cc-message-"
#: How often held message callbacks are looked at (is their queue open now?).
TICK: Final = 1.0
#: Longest wait for a prompt to end.
PROMPT_TIMEOUT: Final = 30.0
#: After ``max_seconds``, how long the recording's end may take to be reported.
FINISH_GRACE: Final = 10.0
_SAVED: Final = ["sound:vm-msgsaved", "sound:vm-goodbye"]
_END_EVENTS: Final = frozenset({"RecordingFinished", "RecordingFailed"})


@dataclass(eq=False)
class _Recording:
    """A message being recorded: its end (the event's duration, when it says one)."""

    name: str
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    duration: float | None = None


class AfterHours:
    """The messages of one queue router (see the module docstring)."""

    def __init__(self, router: QueueRouter) -> None:
        self.router = router
        #: Message callbacks waiting for their queue to open (caller channel id -> caller).
        self.held: dict[str, Caller] = {}
        self._recordings: dict[str, _Recording] = {}
        self._playbacks: dict[str, asyncio.Event] = {}
        self._taken: dict[str, asyncio.Event] = {}
        self._seq = itertools.count(1)

    def taken(self, channel_id: str) -> asyncio.Event:
        """Set once the caller *channel_id* is done leaving its message (stored or not)
        and has been hung up (for the service and tests, which wait on it)."""
        return self._taken.setdefault(channel_id, asyncio.Event())

    def _rule(self, queue: str) -> TakeMessage | None:
        config = self.router.config.queues.get(queue)
        rule = None if config is None else config.when_unavailable
        return None if rule is None else rule.take_message

    def _number(self, queue: str, caller_number: str) -> str | None:
        config = self.router.config.queues.get(queue)
        return None if config is None else callback_number_of(config, caller_number)

    # -- the router's hooks ---------------------------------------------------------------

    def on_event(self, event: Event) -> bool:
        """Take this component's playback and recording events; True if *event* was one."""
        match event:
            case PlaybackStarted(playback=playback) | PlaybackFinished(playback=playback):
                if not playback.id.startswith(PLAYBACK_PREFIX):
                    return False
                if isinstance(event, PlaybackFinished):
                    done = self._playbacks.pop(playback.id, None)
                    if done is not None:
                        done.set()
                return True
            case UnknownEvent(type=kind, raw=raw) if kind.startswith("Recording"):
                recording = raw.get("recording")
                if not isinstance(recording, dict):
                    return False
                live = self._recordings.get(str(recording.get("name", "")))
                if live is None:
                    return False  # the recorder's (a call's recording)
                if kind in _END_EVENTS:
                    if kind == "RecordingFailed":
                        log.warning("message %s: recording failed: %s", live.name,
                                    recording.get("cause"))
                    duration = recording.get("duration")
                    live.duration = float(duration) if isinstance(duration, int | float) \
                        else None
                    live.finished.set()
                return True
        return False

    def refused(self, channel_id: str, number: str, call: QueueCall, reason: str,
                now: datetime) -> bool:
        """A caller refused at entry: True when it leaves a message (a task of its own)
        instead of going on."""
        callback_to = self._number(call.queue, number)
        if callback_to is None:
            return False
        log.info("queue %s: %s refused (%s) leaves a message", call.queue, channel_id, reason)
        self.router._spawn(self._taken_then(channel_id, self._take(
            channel_id, call, callback_to, reason, now, None)), f"message {channel_id}")
        return True

    def leaving(self, caller: Caller, reason: str) -> bool:
        """A waiting caller who must leave (``gone`` already, out of the index): True
        when it leaves a message instead of going on. Its queued call stays open."""
        callback_to = self._number(caller.args.queue, caller.number)
        if callback_to is None:
            return False
        self.router.callers.pop(caller.channel_id, None)
        self.router._spawn(self._taken_then(caller.channel_id, self._leave_then_take(
            caller, callback_to, reason)), f"message {caller.channel_id}")
        return True

    def hold(self, caller: Caller) -> bool:
        """A message callback (re-adopted, or just left): True when it is held out of the
        index until its queue opens (phase ``offering``, as a callback between attempts);
        False: the queue is open now, it may be queued."""
        if self.router.gate.is_open(caller.args.queue, self.router.clock()):
            return False
        caller.phase = "offering"
        self.held[caller.channel_id] = caller
        return True

    async def run(self, stopping: asyncio.Event) -> None:
        """Queue the held message callbacks whose queue has opened, every :data:`TICK`
        seconds, until *stopping* is set (only when some queue takes messages)."""
        if not any(self._rule(name) for name in self.router.config.queues):
            return
        while not stopping.is_set():
            try:
                await self.release(self.router.clock())
            except Exception:
                log.exception("messages: release pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK):
                    await stopping.wait()

    async def release(self, now: datetime) -> None:
        """Queue each held message callback whose queue is open at *now*."""
        router = self.router
        for channel_id, caller in list(self.held.items()):
            if not router.gate.is_open(caller.args.queue, now):
                continue
            del self.held[channel_id]
            async with caller.lock:
                pending = router.callbacks.pending.get(channel_id)
                if pending is None or pending.attempt is not None \
                        or caller.phase != "offering":
                    continue
                router.callbacks._back_in_queue(caller)
            log.info("queue %s: message callback %s queued: the queue is open",
                     caller.args.queue, channel_id)

    # -- the caller's side ----------------------------------------------------------------

    async def _taken_then(self, channel_id: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        finally:
            self.taken(channel_id).set()

    async def _leave_then_take(self, caller: Caller, number: str, reason: str) -> None:
        """Out of its bridge (the music stops), then the message."""
        router = self.router
        await router.announcer.silence(caller.channel_id)
        with contextlib.suppress(ARIError):
            await router.ari.bridges.destroy(caller.bridge_id)
        log.info("queue %s: %s leaves (%s) with a message", caller.args.queue,
                 caller.channel_id, reason)
        entered = datetime.fromtimestamp(caller.waiting.enqueued_at, UTC)
        await self._take(caller.channel_id, caller.args, number, reason, entered, caller.row)

    async def _take(self, channel_id: str, call: QueueCall, number: str, reason: str,
                    entered: datetime, row: int | None) -> None:
        """Prompt, beep, record; store the message and its callback (see the module
        docstring). *row*: the caller's open queued call (None: refused at entry)."""
        router = self.router
        rule = self._rule(call.queue)
        assert rule is not None
        name = message_name(call.queue, channel_id)
        live = _Recording(name)
        self._recordings[name] = live
        started = router.clock()
        try:
            with contextlib.suppress(ARIError):  # answered by the dialplan already
                await router.ari.channels.answer(channel_id)
            await self._play_and_wait(channel_id, [f"sound:{rule.prompt}"])
            root = await router.recorder.recordings_dir()  # exists before Asterisk writes
            started = router.clock()
            await router.ari.channels.record(
                channel_id, name, format=rule.format, max_duration=rule.max_seconds,
                max_silence=rule.max_silence, beep=True, terminate_on="#",
                if_exists="overwrite")
            if not await wait_or_stop(live.finished, router._stopping,
                                      rule.max_seconds + FINISH_GRACE):
                with contextlib.suppress(ARIError):
                    await router.ari.request(
                        "POST", f"/recordings/live/{quote(name, safe='')}/stop")
        except ARIError as exc:  # the caller hung up before the beep
            log.info("queue %s: %s left no message (%s)", call.queue, channel_id, exc)
            root = None
            live.duration = None
        finally:
            self._recordings.pop(name, None)
        info = None if root is None else await asyncio.to_thread(
            files.measure, root, file_of(name, rule.format), rule.format)
        duration = info.duration if info is not None else live.duration
        now = router.clock()
        if not is_message(duration):
            await self._nothing_left(channel_id, call, reason, entered, row, now)
            return
        callback_id = await self._store(channel_id, call, number, rule, name, row, entered,
                                        started, now, info)
        router.events.publish(ev.MessageTaken(
            at=now, queue=call.queue, call=channel_id, reason=reason, recording=name,
            seconds=float(duration or 0.0)))
        router.events.publish(ev.MessageCallbackRegistered(
            at=now, queue=call.queue, call=channel_id, callback_id=callback_id))
        log.info("queue %s: %s left a message of %.1f s (%s); callback %d to %s",
                 call.queue, channel_id, duration or 0.0, name, callback_id, number)
        with contextlib.suppress(ARIError):
            await self._play_and_wait(channel_id, _SAVED)
        await router._hangup(channel_id, "normal")

    async def _store(self, channel_id: str, call: QueueCall, number: str, rule: TakeMessage,
                     name: str, row: int | None, entered: datetime, started: datetime,
                     now: datetime, info: files.FileInfo | None) -> int:
        """One transaction: the open queued call, the recording, the callback; then the
        callback is the router's (held until the queue opens)."""
        from ari_apps.callback import Pending
        from ari_apps.queue_router import Caller

        router = self.router
        async with router.sessions.begin() as session:
            if row is None:
                row = await QueuedCallRepository(session).enter_by_id(
                    channel_id, call.queue, entered_at=entered, priority=call.priority,
                    language=call.language, node=router.node)
            recordings = RecordingRepository(session)
            recording_id = await recordings.start(row, queue=call.queue, agent=None,
                                                  name=name, format=rule.format, at=started)
            await recordings.link(recording_id, ended_at=now,
                                  path=None if info is None else info.path,
                                  duration=None if info is None else info.duration,
                                  size=None if info is None else info.size)
            callback_id = await CallbackRepository(session).request(
                row, call.queue, number, source=MESSAGE_SOURCE, at=now, skills=call.skills,
                recording_id=recording_id)
        policy = router.policies[call.queue]
        settings = router.config.queues[call.queue].callback
        assert settings is not None
        waiting = WaitingCall(channel_id, call.queue, entered.timestamp(),
                              policy.call_priority(call.priority), call.skills,
                              call.language, next(router._seq))
        caller = Caller(channel_id, call, row, waiting, f"cc-{channel_id}", number=number)
        router.callers[channel_id] = caller
        # caller_gone: the caller is thanked and hung up; its StasisEnd keeps the callback.
        router.callbacks.pending[channel_id] = Pending(caller, callback_id, number, settings,
                                                       caller_gone=True, message=name)
        if not self.hold(caller):
            async with caller.lock:
                router.callbacks._back_in_queue(caller)
        router._pulse()
        return callback_id

    async def _nothing_left(self, channel_id: str, call: QueueCall, reason: str,
                            entered: datetime, row: int | None, now: datetime) -> None:
        """No message: the stay ends, never served."""
        router = self.router
        async with router.sessions.begin() as session:
            repo = QueuedCallRepository(session)
            if row is None:
                row = await repo.enter_by_id(channel_id, call.queue, entered_at=entered,
                                             priority=call.priority, language=call.language,
                                             node=router.node)
            await repo.finish_by_id(row, QueueOutcome.ABANDONED, at=now,
                                    overflow_to=overflow_to(reason))
        router.finished(channel_id).set()
        await router._hangup(channel_id, "normal")

    async def _play_and_wait(self, channel_id: str, media: list[str]) -> None:
        """Play *media* to the caller and wait for its end (:data:`PROMPT_TIMEOUT` at most).
        ARIError: the caller is gone."""
        playback_id = f"{PLAYBACK_PREFIX}{channel_id}-{next(self._seq)}"
        done = self._playbacks[playback_id] = asyncio.Event()
        try:
            await self.router.ari.channels.play(channel_id, media, playback_id=playback_id)
            await wait_or_stop(done, self.router._stopping, PROMPT_TIMEOUT)
        finally:
            self._playbacks.pop(playback_id, None)


async def wait_or_stop(event: asyncio.Event, stopping: asyncio.Event, timeout: float) -> bool:
    """Wait for *event*, at most *timeout* seconds, and no longer once the router is
    *stopping* (its TaskGroup waits for this task: a prompt must not hold the stop up).
    True if *event* is set."""
    if not event.is_set() and not stopping.is_set():
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
    return event.is_set()
