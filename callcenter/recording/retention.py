"""Which recordings have outlived their queue's ``retention_days``, and the pass that
removes them.

:func:`expired` decides (pure, a fake clock in tests): a recording goes when its queue
keeps recordings for N days (``record.retention_days``) and it is older than that:
a record by when it started, a file no record names (a link that never happened) by
its mtime. A queue without ``record``, or with ``retention_days: null``, keeps
everything, and so does a queue no longer in the config (nobody said how long).
Oldest first, at most *limit* per pass, so a backlog is worked off a bounded slice at
a time.

:func:`prune` carries one pass out: it reads the candidates (records from the
database, files from :func:`~callcenter.recording.files.scan`), removes each file that
goes (:func:`~callcenter.recording.files.remove`: never through a symlink, never
outside the directory), then its record, and returns what it removed for the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config.models import CallCenterConfig
from callcenter.recording import files
from callcenter.storage.recordings import RecordingRepository

__all__ = ["Removed", "Stored", "expired", "keep_days", "prune"]

log = logging.getLogger(__name__)

#: Files looked at per pass (the directory scan is bounded too).
SCAN_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Stored:
    """A recording retention may judge: a record (``record_id``) and/or a file (``path``)."""

    queue: str
    at: datetime
    path: str | None
    record_id: int | None = None


@dataclass(frozen=True, slots=True)
class Removed:
    """What one pass removed."""

    records: tuple[int, ...]
    files: tuple[str, ...]


def keep_days(config: CallCenterConfig) -> dict[str, int]:
    """Queue -> days its recordings are kept, for the queues that set a retention."""
    return {name: queue.record.retention_days for name, queue in config.queues.items()
            if queue.record is not None and queue.record.retention_days is not None}


def expired(stored: Iterable[Stored], keep: Mapping[str, int], now: datetime,
            limit: int) -> list[Stored]:
    """The recordings older than their queue's retention, oldest first, at most *limit*."""
    old = [item for item in stored
           if item.queue in keep and item.at < now - timedelta(days=keep[item.queue])]
    old.sort(key=lambda item: item.at)
    return old[:max(limit, 0)]


async def prune(sessions: async_sessionmaker[AsyncSession], root: Path,
                config: CallCenterConfig, now: datetime, *, limit: int = 200,
                node: str | None = None) -> Removed:
    """Remove the expired recordings below *root* (files, then records), at most *limit*
    per pass. A record whose file is already gone goes too. *node*: only the records of
    calls this node recorded (several nodes share the database, not the directory)."""
    keep = keep_days(config)
    if not keep:
        return Removed((), ())
    async with sessions() as session:
        rows = await RecordingRepository(session).older_than(
            {queue: now - timedelta(days=days) for queue, days in keep.items()}, limit,
            node=node)
    named = {row.path for row in rows if row.path is not None}
    candidates = [Stored(row.queue, row.started_at, row.path, row.id) for row in rows]
    # Files no record names (the link never happened), judged by their mtime.
    found = await asyncio.to_thread(files.scan, root, frozenset(keep), SCAN_LIMIT)
    old_files = expired([Stored(f.queue, f.modified, f.path) for f in found],
                        keep, now, SCAN_LIMIT)
    async with sessions() as session:
        known = await RecordingRepository(session).known_paths(
            [f.path for f in old_files if f.path is not None])
    candidates += [f for f in old_files if f.path not in known and f.path not in named]
    going = expired(candidates, keep, now, limit)
    removed_files: list[str] = []
    for item in going:
        if item.path is not None and files.remove(root, item.path):
            removed_files.append(item.path)
            log.info("retention: removed recording %s (queue %s, from %s)", item.path,
                     item.queue, item.at.isoformat(timespec="seconds"))
    record_ids = tuple(item.record_id for item in going if item.record_id is not None)
    if record_ids:
        async with sessions.begin() as session:
            await RecordingRepository(session).delete(record_ids)
        log.info("retention: removed %d recording record(s)", len(record_ids))
    return Removed(record_ids, tuple(removed_files))
