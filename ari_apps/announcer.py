"""Position and estimated-wait announcements to callers waiting in the queue router.

A component the :class:`~ari_apps.queue_router.QueueRouter` runs in its TaskGroup
(``announcer.run(stopping)``). It reads the router's waiting callers per queue, in the
order they will be served (:meth:`QueueRouter.waiting_by_queue`: position 1 first), and
for each queue with ``announce`` set plays, ``first_after`` seconds after the caller
entered and then ``every`` seconds after the previous announcement ended, the prompts
:func:`callcenter.routing.announce.prompts` chooses (position; wait from
:func:`callcenter.routing.estimate.estimate_wait`) as one ARI playback on the caller's
channel, in the caller's language (the ``language`` Stasis arg, when its sounds exist).

Music on hold: the caller sits in its own mixing bridge, whose music comes from the
bridge (``POST /bridges/{id}/moh``). ``POST /channels/{id}/play`` on a channel in a
bridge queues the playback as a bridge-channel action (res_stasis_playback ``play_uri``
-> ``ast_bridge_channel_queue_playfile_sync``), and Asterisk suspends the channel from
the bridge's audio while it plays (bridge_channel.c, ``BRIDGE_CHANNEL_ACTION_PLAY_FILE``):
the caller hears the prompt alone, never music under it, then the music again where it
had got to. So the music is neither stopped nor restarted around an announcement.

Ends of an announcement:

* it finishes: ``PlaybackFinished`` (delivered by the router, :meth:`on_event`) starts
  the ``every`` countdown;
* the caller is answered: the router calls :meth:`silence` under the caller's lock before
  the agent joins the bridge (``DELETE /playbacks/{id}``), and no announcement starts
  after that, since one starts only under the same lock with the caller still waiting;
* the caller hangs up: Asterisk ends the playback with the channel; the next pass forgets
  the caller (a stop of a playback already gone is a 404, which is normal).

Playback ids are ours (``cc-announce-<caller channel id>-<n>``), chosen before the play
request, so events that race the HTTP reply find their caller.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from callcenter.asterisk.ari.client import ARIConflict, ARIError, ARINotFound
from callcenter.asterisk.ari.events import Event, PlaybackFinished, PlaybackStarted
from callcenter.routing.announce import (
    DEFAULT_LANGUAGE,
    PROMPTS,
    next_due,
    prompts,
    sound_language,
)
from callcenter.routing.decide import eligible
from callcenter.routing.estimate import (
    HandleStats,
    estimate_wait,
    free_in,
    handle_stats,
)
from callcenter.routing.policy import AgentView, memberships
from callcenter.storage.handle_times import recent_handled

if TYPE_CHECKING:
    from ari_apps.queue_router import Caller, QueueRouter

__all__ = ["PLAYBACK_PREFIX", "Announcement", "Announcer"]

log = logging.getLogger(__name__)

#: Playback ids of announcements start with this.
PLAYBACK_PREFIX: Final = "cc-announce-"
#: Longest time between two passes (a pass also runs on every change of the router).
TICK: Final = 0.5
#: Handle times older than this are not measured.
HISTORY_SPAN: Final = timedelta(hours=1)
#: A playback with no PlaybackFinished after this long is asked about (a lost event).
STALE_PLAYBACK: Final = timedelta(seconds=60)


@dataclass(frozen=True)
class Announcement:
    """One announcement started: what the caller was told (tests compare ``wait`` with
    the wait the caller really had)."""

    channel_id: str
    queue: str
    playback_id: str
    at: datetime
    position: int
    #: The estimated wait in seconds (None: not known, not said).
    wait: float | None
    language: str
    media: tuple[str, ...]


@dataclass
class _Slot:
    """The announcer's memory of one waiting caller."""

    announced: int = 0
    last_finished: datetime | None = None
    #: The announcement playing now (its playback id) and since when.
    playback: str | None = None
    started: datetime | None = None


class Announcer:
    """Plays position and wait announcements to the router's waiting callers."""

    def __init__(self, router: QueueRouter) -> None:
        self.router = router
        self._slots: dict[str, _Slot] = {}
        self._members = memberships(router.config)
        self._seq = itertools.count(1)
        self._languages: frozenset[str] | None = None
        #: Calls that ended before this are not measured (None: the last
        #: :data:`HISTORY_SPAN` only). A test sets it to measure its own calls only.
        self.history_since: datetime | None = None
        #: The latest announcements started, oldest first (for the service and tests).
        self.announced: collections.deque[Announcement] = collections.deque(maxlen=1000)

    @property
    def tracked(self) -> frozenset[str]:
        """Channel ids of the callers the announcer keeps state for (waiting ones)."""
        return frozenset(self._slots)

    # -- the router's hooks ---------------------------------------------------------------

    def on_event(self, event: Event) -> bool:
        """Take an announcement's playback events; True if *event* was one."""
        match event:
            case PlaybackStarted(playback=playback) | PlaybackFinished(playback=playback):
                if not playback.id.startswith(PLAYBACK_PREFIX):
                    return False
                if isinstance(event, PlaybackFinished):
                    channel_id = playback.target_uri.removeprefix("channel:")
                    slot = self._slots.get(channel_id)
                    if slot is not None and slot.playback == playback.id:
                        slot.playback = None
                        slot.last_finished = self.router.clock()
                    if playback.state == "failed":
                        # Every prompt exists (checked with GET /sounds): a playback
                        # fails when its channel hangs up in the middle of it.
                        log.info("announcement %s on %s cut at %s (state failed)",
                                 playback.id, channel_id, playback.media_uri)
                return True
        return False

    async def silence(self, channel_id: str) -> None:
        """The caller is answered (called under its lock): stop its announcement now and
        announce nothing more to it."""
        slot = self._slots.pop(channel_id, None)
        if slot is not None and slot.playback is not None:
            await self._stop(slot.playback)

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Announce until *stopping* is set: a pass on every router change and every
        :data:`TICK` seconds."""
        router = self.router
        if not any(q.announce for q in router.config.queues.values()):
            return  # nothing to announce: no pass, no cost to the router
        while not stopping.is_set():
            soonest: float | None = None
            try:
                soonest = await self._pass(router.clock())
            except Exception:
                log.exception("announcer: pass failed; retrying")
            delay = TICK
            if soonest is not None:  # wake on time for the next one due
                delay = min(delay, max(soonest - router.clock().timestamp(), 0.01))
            await self._idle(stopping, self._snapshot(), delay)
        for slot in self._slots.values():
            if slot.playback is not None:
                await self._stop(slot.playback)
        self._slots.clear()

    async def _idle(self, stopping: asyncio.Event, seen: frozenset[tuple[str, str]],
                    delay: float) -> None:
        """Until the router's callers change, *stopping* is set, or *delay* passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self.router.wait_until(
                    lambda: stopping.is_set() or self._snapshot() != seen)

    def _snapshot(self) -> frozenset[tuple[str, str]]:
        return frozenset((c.channel_id, c.phase) for c in self.router.callers.values())

    async def _pass(self, now: datetime) -> float | None:
        """Start the announcements due; return when the next one is due (a timestamp)."""
        soonest: float | None = None
        waiting = self.router.waiting_by_queue()
        present = {c.channel_id for callers in waiting.values() for c in callers}
        for channel_id in [c for c in self._slots if c not in present]:
            slot = self._slots.pop(channel_id)
            if slot.playback is not None:  # answered elsewhere, overflowed, hung up
                await self._stop(slot.playback)
        for queue, callers in waiting.items():
            queue_config = self.router.config.queues.get(queue)
            settings = queue_config.announce if queue_config else None
            if settings is None:
                continue
            for position, caller in enumerate(callers, start=1):
                if self.router.callbacks.holds(caller.channel_id):
                    continue  # a callback keeps its position, with no one to tell
                slot = self._slots.setdefault(caller.channel_id, _Slot())
                if slot.playback is not None:
                    await self._check_stale(caller.channel_id, slot, now)
                    continue
                last = slot.last_finished.timestamp() if slot.last_finished else None
                due = next_due(settings, caller.waiting.enqueued_at, last, slot.announced)
                if due is not None and due <= now.timestamp():
                    await self._announce(caller, slot, position, now)
                elif due is not None:
                    soonest = due if soonest is None else min(soonest, due)
        return soonest

    async def _announce(self, caller: Caller, slot: _Slot, position: int,
                        now: datetime) -> None:
        queue = caller.args.queue
        settings = self.router.config.queues[queue].announce
        assert settings is not None
        wait = await self._estimate(caller, position, now) if settings.wait else None
        media = prompts(settings, position, wait)
        if not media:  # wait only, and nothing measured yet: try again next time
            slot.announced += 1
            slot.last_finished = now
            return
        language = sound_language(caller.args.language, await self._sound_languages())
        playback_id = f"{PLAYBACK_PREFIX}{caller.channel_id}-{next(self._seq)}"
        async with caller.lock:
            if caller.phase not in ("waiting", "offering"):
                return  # answered or gone since the pass began
            slot.playback, slot.started = playback_id, now
            try:
                await self.router.ari.channels.play(caller.channel_id, list(media),
                                                    lang=language, playback_id=playback_id)
            except ARIError as exc:
                slot.playback = None
                log.info("announcement to %s not played (%s)", caller.channel_id, exc)
                return
        slot.announced += 1
        announcement = Announcement(caller.channel_id, queue, playback_id, now, position,
                                    wait, language, media)
        self.announced.append(announcement)
        log.info("queue %s: announced to %s: position %d, wait %s", queue, caller.channel_id,
                 position, "unknown" if wait is None else f"{wait:.0f} s")

    async def _check_stale(self, channel_id: str, slot: _Slot, now: datetime) -> None:
        """A playback whose PlaybackFinished never came (a lost websocket): ask Asterisk."""
        if slot.started is None or now - slot.started < STALE_PLAYBACK or slot.playback is None:
            return
        try:
            await self.router.ari.playbacks.get(slot.playback)
        except ARINotFound:
            slot.playback, slot.last_finished = None, now
        except ARIError as exc:
            log.info("announcement %s on %s: %s", slot.playback, channel_id, exc)
        else:
            slot.started = now  # still playing: ask again later

    async def _stop(self, playback_id: str) -> None:
        """Stop a playback; one that already ended (404) or is ending (409) is fine."""
        try:
            await self.router.ari.playbacks.stop(playback_id)
        except (ARINotFound, ARIConflict):
            pass
        except ARIError as exc:
            log.info("announcement %s not stopped (%s)", playback_id, exc)

    # -- what to say ------------------------------------------------------------------------

    async def _estimate(self, caller: Caller, position: int, now: datetime) -> float | None:
        """The caller's estimated wait: measured handle times of its queue, the agents who
        may serve it now (members it qualifies for at its current relax step, logged in,
        not paused), its position."""
        router = self.router
        queue = caller.args.queue
        policy = router.policies[queue]
        stats = await self._handle_stats(queue, policy.wrapup, now)
        if stats is None:
            return None
        waited = now.timestamp() - caller.waiting.enqueued_at
        stage = policy.stage_at(waited)
        free: list[float] = []
        for name, queues in self._members.items():
            state = router.states.get(name)
            agent = router.config.agents.get(name)
            if state is None or agent is None or queue not in queues:
                continue
            view = AgentView.from_config(name, agent, queues, idle_since=0.0)
            if not eligible(view, caller.waiting, policy, stage):
                continue
            seconds = free_in(state.status.value, since=state.since.timestamp(),
                              wrap_up_until=(state.wrap_up_until.timestamp()
                                             if state.wrap_up_until else None),
                              now=now.timestamp(), stats=stats)
            if seconds is not None:
                free.append(seconds)
        return estimate_wait(position, free, stats)

    async def _handle_stats(self, queue: str, wrapup: float,
                            now: datetime) -> HandleStats | None:
        since = now - HISTORY_SPAN
        if self.history_since is not None:
            since = max(since, self.history_since)
        async with self.router.sessions() as session:
            calls = await recent_handled(session, queue, since=since)
        return handle_stats([(offered.timestamp(), answered.timestamp(), ended.timestamp())
                             for offered, answered, ended in calls], wrapup)

    async def _sound_languages(self) -> frozenset[str]:
        """Languages in which every announcement prompt exists (``GET /sounds/{id}``),
        asked once; the default language alone if Asterisk cannot say."""
        if self._languages is None:
            found: set[str] | None = None
            try:
                for name in PROMPTS:
                    sound = await self.router.ari.request("GET", f"/sounds/{name}")
                    langs = {str(f.get("language")) for f in (sound or {}).get("formats", ())
                             if isinstance(f, dict)}
                    found = langs if found is None else found & langs
            except ARIError as exc:
                log.warning("announcer: sounds not listed (%s); announcing in %s",
                            exc, DEFAULT_LANGUAGE)
                found = None
            self._languages = frozenset(found or {DEFAULT_LANGUAGE})
        return self._languages
