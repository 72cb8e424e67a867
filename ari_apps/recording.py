"""Recording of queued calls: caller and agent mixed, one file per answered call.

A part of the :class:`~ari_apps.queue_router.QueueRouter` (``router.recorder``), for
queues with ``record`` set (:class:`~callcenter.config.models.Record`). The router
calls it at two points:

* **the agent joined** (``_answered``, under the caller's lock, right after the call is
  recorded as connected): :meth:`Recorder.start` writes the recording's row, then asks
  ARI ``POST /bridges/cc-<caller>/record`` (name ``<queue>/<offer leg id>``, see
  :mod:`callcenter.recording.naming`; ``ifExists=fail``). The caller's mixing bridge
  holds both sides, so one file has both. Asterisk writes it to
  ``<astspooldir>/recording/<name>.<format>``; under ``callcenter``'s instance that is
  ``<home>/asterisk/spool/recording`` (asked of Asterisk itself: ``ASTSPOOLDIR``).
  Refused by ARI (the bridge just went): the row goes, the call goes on unrecorded.
* **the call ends** (``_end_call``, whoever hung up first, before the agent's leg is
  hung up): :meth:`Recorder.stop` asks ARI ``POST /recordings/live/{name}/stop`` (a 404
  is normal: the recording ended with the bridge already), then, as a task of the
  router's, waits for the recording's ``RecordingFinished`` (or ``RecordingFailed``:
  Asterisk has closed the file and written its WAV header), reads the file's length
  and size, and links them to the row (:meth:`RecordingRepository.link`).
  :meth:`linked` is set then, for the service and tests.

A call re-adopted after a router restart is stopped by the name in its row. Recording
events carry no channel: they arrive in the app's inbox and :meth:`on_event` only
wakes the waiting link (it never blocks).

Retention (:mod:`callcenter.recording.retention`) runs as :meth:`Recorder.run`, a task
of the router's TaskGroup: one bounded pass at start and every
:data:`RETENTION_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from callcenter.asterisk.ari.client import ARIConnectionError, ARIError, ARINotFound
from callcenter.asterisk.ari.events import Event, UnknownEvent
from callcenter.recording import files
from callcenter.recording.naming import file_of, recording_name
from callcenter.recording.retention import Removed, prune
from callcenter.storage.recordings import RecordingRepository

if TYPE_CHECKING:
    from ari_apps.queue_router import Caller, QueueRouter

__all__ = ["FINISH_TIMEOUT", "RETENTION_INTERVAL", "Recorder"]

log = logging.getLogger(__name__)

#: How long a stopped recording may take to report RecordingFinished before its file
#: is read anyway.
FINISH_TIMEOUT: Final = 5.0
#: Seconds between two retention passes.
RETENTION_INTERVAL: Final = 3600.0
#: Recordings (and stray files) removed per retention pass at most.
RETENTION_BATCH: Final = 200
#: How many calls' :meth:`Recorder.linked` events are kept (the oldest go first).
LINKED_KEPT: Final = 10_000
_END_EVENTS: Final = frozenset({"RecordingFinished", "RecordingFailed"})


@dataclass(eq=False)
class _Live:
    """A recording in progress: its row and the event its end sets."""

    row: int
    name: str
    format: str
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Recorder:
    """Starts, stops and links the recordings of one router's calls; prunes old ones."""

    def __init__(self, router: QueueRouter) -> None:
        self.router = router
        #: Where Asterisk writes recordings, once known (:meth:`recordings_dir`).
        self.directory: Path | None = None
        self._live: dict[str, _Live] = {}  # caller channel id -> its recording
        self._by_name: dict[str, _Live] = {}
        self._linked: dict[str, asyncio.Event] = {}
        #: Set after each periodic retention pass (the service and tests wait on it).
        self.pruned = asyncio.Event()

    # -- the router's hooks -----------------------------------------------------------

    def on_event(self, event: Event) -> bool:
        """A recording's end: wake its link. True if *event* was a recording event."""
        if not isinstance(event, UnknownEvent) or not event.type.startswith("Recording"):
            return False
        recording = event.raw.get("recording")
        if event.type in _END_EVENTS and isinstance(recording, dict):
            live = self._by_name.get(str(recording.get("name", "")))
            if live is not None:
                if event.type == "RecordingFailed":
                    log.warning("recording %s failed: %s", live.name, recording.get("cause"))
                live.finished.set()
        return True

    async def start(self, caller: Caller) -> None:
        """The agent joined *caller*'s bridge: record the bridge if the queue says so.
        A failure is logged; the call goes on unrecorded, never ends for it."""
        try:
            await self._start(caller)
        except Exception:
            log.exception("queue %s: recording %s failed to start", caller.args.queue,
                          caller.channel_id)

    async def stop(self, caller: Caller, ended_at: datetime) -> None:
        """The call ends: stop its recording now; link the file in a task of the router's.
        A failure is logged; the call's teardown goes on."""
        try:
            await self._stop(caller, ended_at)
        except Exception:
            log.exception("queue %s: recording of %s failed to stop", caller.args.queue,
                          caller.channel_id)

    async def _start(self, caller: Caller) -> None:
        record = self.router.config.queues[caller.args.queue].record
        if record is None or not record.enabled or caller.agent_channel is None:
            return
        name = recording_name(caller.args.queue, caller.agent_channel)
        await self.recordings_dir()  # created before Asterisk is asked to write in it
        async with self.router.sessions.begin() as session:
            row = await RecordingRepository(session).start(
                caller.row, queue=caller.args.queue, agent=caller.agent, name=name,
                format=record.format, at=self.router.clock())
        live = _Live(row, name, record.format)
        self._live[caller.channel_id] = live
        self._by_name[name] = live
        try:
            await self.router.ari.request(
                "POST", f"/bridges/{quote(caller.bridge_id, safe='')}/record",
                params={"name": name, "format": record.format, "ifExists": "fail",
                        "beep": False, "terminateOn": "none"})
        except ARIError as exc:
            log.warning("queue %s: recording %s of %s refused: %s", caller.args.queue, name,
                        caller.channel_id, exc)
            self._live.pop(caller.channel_id, None)
            self._by_name.pop(name, None)
            async with self.router.sessions.begin() as session:
                await RecordingRepository(session).forget(row)
            return
        log.info("queue %s: recording %s as %s", caller.args.queue, caller.channel_id,
                 file_of(name, record.format))

    async def _stop(self, caller: Caller, ended_at: datetime) -> None:
        live = self._live.pop(caller.channel_id, None)
        if live is None:
            # Not started by this process: a call re-adopted after a restart may have a
            # recording in its row (asked for only where the queue records: no read on
            # the other calls' way out).
            queue = self.router.config.queues.get(caller.args.queue)
            if queue is None or queue.record is None:
                return
            live = await self._readopted(caller)
            if live is None:
                return
        try:
            await self.router.ari.request(
                "POST", f"/recordings/live/{quote(live.name, safe='')}/stop")
        except ARINotFound:
            live.finished.set()  # ended with its bridge already: the file is closed
        except ARIConnectionError as exc:
            log.warning("recording %s: stop not confirmed (%s)", live.name, exc)
        except ARIError as exc:
            log.warning("recording %s: stop refused (%s)", live.name, exc)
        self.router._spawn(self._link(caller.channel_id, live, ended_at),
                           f"link recording {live.name}")

    def linked(self, channel_id: str) -> asyncio.Event:
        """Set once the recording of caller *channel_id* is linked to its record (the
        latest :data:`LINKED_KEPT` calls are remembered)."""
        event = self._linked.setdefault(channel_id, asyncio.Event())
        while len(self._linked) > LINKED_KEPT:
            del self._linked[next(iter(self._linked))]
        return event

    # -- the work ------------------------------------------------------------------------

    async def _readopted(self, caller: Caller) -> _Live | None:
        """A call this router re-adopted: its recording, from the row."""
        async with self.router.sessions() as session:
            rows = await RecordingRepository(session).live_of(caller.row)
        if not rows:
            return None
        row = rows[-1]
        live = _Live(row.id, row.name, row.format)
        self._by_name[row.name] = live
        return live

    async def _link(self, channel_id: str, live: _Live, ended_at: datetime) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FINISH_TIMEOUT):
                    await live.finished.wait()
            path = file_of(live.name, live.format)
            root = await self.recordings_dir()
            info = None if root is None else await asyncio.to_thread(
                files.measure, root, path, live.format)
            if info is None:
                log.warning("recording %s: no file %s in %s", live.name, path, root)
            async with self.router.sessions.begin() as session:
                await RecordingRepository(session).link(
                    live.row, ended_at=ended_at, path=None if info is None else info.path,
                    duration=None if info is None else info.duration,
                    size=None if info is None else info.size)
            if info is not None:
                log.info("recording %s linked: %.1f s, %d bytes", info.path, info.duration,
                         info.size)
        finally:
            self._by_name.pop(live.name, None)
            self.linked(channel_id).set()

    async def recordings_dir(self) -> Path | None:
        """Asterisk's recordings directory (``ASTSPOOLDIR``/recording, created if
        missing), asked once; None when it is not on this machine (a router serving a
        remote Asterisk)."""
        if self.directory is None:
            try:
                answer = await self.router.ari.request(
                    "GET", "/asterisk/variable", params={"variable": "ASTSPOOLDIR"})
            except ARIError as exc:
                log.warning("recordings: Asterisk's spool directory unknown (%s)", exc)
                return None
            spool = str((answer or {}).get("value", ""))
            directory = Path(spool) / "recording"
            if not spool or not Path(spool).is_dir():
                log.warning("recordings: Asterisk's spool directory %r is not on this "
                            "machine; recordings are not measured nor pruned here", spool)
                return None
            # Asterisk creates the queue's subdirectory, not the recordings directory
            # itself: a record request fails with ENOENT until it exists.
            directory.mkdir(exist_ok=True)
            self.directory = directory
        return self.directory

    async def run(self, stopping: asyncio.Event) -> None:
        """Retention: a bounded pass once the router is ready, then every
        :data:`RETENTION_INTERVAL`."""
        await _first_of(self.router.ready, stopping)  # Asterisk may still be starting
        while not stopping.is_set():
            try:
                await self.prune()
            except Exception:
                log.exception("recordings: retention pass failed; next in %.0f s",
                              RETENTION_INTERVAL)
            self.pruned.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETENTION_INTERVAL):
                    await stopping.wait()

    async def prune(self) -> Removed:
        """One retention pass (files, then records). Not without the directory: records
        are never removed while their files would stay behind."""
        root = await self.recordings_dir()
        if root is None:
            return Removed((), ())
        removed = await prune(self.router.sessions, root, self.router.config,
                              self.router.clock(), limit=RETENTION_BATCH,
                              node=self.router.node or None)
        if removed.records or removed.files:
            log.info("recordings: retention removed %d file(s), %d record(s)",
                     len(removed.files), len(removed.records))
        return removed


async def _first_of(*events: asyncio.Event) -> None:
    """Return once one of *events* is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
