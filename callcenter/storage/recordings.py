"""Recordings of queued calls, as the recorder (:mod:`ari_apps.recording`) writes them
and retention and the HTTP API read them.

The row is written when the recording starts (before ARI is asked to record), so a
restarted router still knows which recording to stop for a call it re-adopts; it is
*linked* (end, file, duration, size) when the recording has stopped. Takes an
``AsyncSession`` and never commits, like every repository here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import QueuedCall, Recording

__all__ = ["RecordingRepository"]

#: Values per ``IN (...)`` (well below SQLite's and PostgreSQL's limits).
_CHUNK = 500


class RecordingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(self, queued_call_id: int, *, queue: str, agent: str | None,
                    name: str, format: str, at: datetime) -> int:
        """Record that recording *name* of the call starts now; its id."""
        row = Recording(queued_call_id=queued_call_id, queue=queue, agent=agent, name=name,
                        format=format, started_at=at)
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def link(self, recording_id: int, *, ended_at: datetime, path: str | None,
                   duration: float | None, size: int | None) -> None:
        """The recording stopped: its file (None: Asterisk wrote none), length and size."""
        await self.session.execute(
            update(Recording).where(Recording.id == recording_id)
            .values(ended_at=ended_at, path=path, duration=duration, size=size))

    async def forget(self, recording_id: int) -> None:
        """Asterisk refused to record: the row started for it goes."""
        await self.session.execute(delete(Recording).where(Recording.id == recording_id))

    async def live_of(self, queued_call_id: int) -> Sequence[Recording]:
        """The call's recordings not linked yet (a re-adopted call's, after a restart)."""
        result = await self.session.execute(
            select(Recording).where(Recording.queued_call_id == queued_call_id,
                                    Recording.ended_at.is_(None)).order_by(Recording.id))
        return result.scalars().all()

    async def of_call(self, channel_id: str) -> tuple[QueuedCall | None, Sequence[Recording]]:
        """The queued call of caller channel *channel_id* and its recordings."""
        call = (await self.session.execute(
            select(QueuedCall).where(QueuedCall.channel_id == channel_id))).scalar_one_or_none()
        if call is None:
            return None, ()
        result = await self.session.execute(
            select(Recording).where(Recording.queued_call_id == call.id).order_by(Recording.id))
        return call, result.scalars().all()

    async def get(self, recording_id: int) -> Recording | None:
        return await self.session.get(Recording, recording_id)

    async def older_than(self, cutoffs: Mapping[str, datetime], limit: int, *,
                         node: str | None = None) -> Sequence[Recording]:
        """Recordings of each queue started before its cutoff, oldest first, at most
        *limit*; with *node*, only those of calls that node (or no node) recorded: the
        files of another node's calls lie on its own machine."""
        if not cutoffs:
            return ()
        query = select(Recording).where(or_(*(
            (Recording.queue == queue) & (Recording.started_at < cutoff)
            for queue, cutoff in cutoffs.items())))
        if node is not None:
            query = query.join(QueuedCall, QueuedCall.id == Recording.queued_call_id).where(
                or_(QueuedCall.node.is_(None), QueuedCall.node == node))
        result = await self.session.execute(
            query.order_by(Recording.started_at, Recording.id).limit(limit))
        return result.scalars().all()

    async def known_paths(self, paths: Sequence[str]) -> set[str]:
        """Which of *paths* a record names."""
        known: set[str] = set()
        for start in range(0, len(paths), _CHUNK):
            chunk = paths[start:start + _CHUNK]
            result = await self.session.execute(
                select(Recording.path).where(Recording.path.in_(chunk)))
            known.update(path for path in result.scalars() if path is not None)
        return known

    async def delete(self, recording_ids: Sequence[int]) -> None:
        for start in range(0, len(recording_ids), _CHUNK):
            await self.session.execute(delete(Recording).where(
                Recording.id.in_(recording_ids[start:start + _CHUNK])))
