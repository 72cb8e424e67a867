"""The ``call_transfers`` records (:class:`~callcenter.storage.models.CallTransfer`): one
row per transfer, written before the transfer acts (a restart finds it) and closed with
its result; and the ``queued_calls`` row re-opened when the caller goes back to waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import CallTransfer, QueuedCall

__all__ = ["TransferRepository"]


class TransferRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start(self, *, queued_call_id: int, channel_id: str, from_agent: str,
                    from_queue: str, from_answered_at: datetime | None, mode: str,
                    target_kind: str, target: str, via: str, at: datetime) -> int:
        """Record a transfer being asked for; its id."""
        row = CallTransfer(queued_call_id=queued_call_id, channel_id=channel_id,
                           from_agent=from_agent, from_queue=from_queue,
                           from_answered_at=from_answered_at, mode=mode,
                           target_kind=target_kind, target=target, via=via, at=at)
        self._session.add(row)
        await self._session.flush()
        return row.id

    async def answered(self, transfer_id: int, by: str, at: datetime) -> None:
        await self._session.execute(update(CallTransfer).where(
            CallTransfer.id == transfer_id).values(answered_by=by, answered_at=at))

    async def end(self, transfer_id: int, result: str, at: datetime) -> bool:
        """Close a transfer with *result*; False if it was closed already."""
        done = await self._session.execute(update(CallTransfer).where(
            CallTransfer.id == transfer_id, CallTransfer.ended_at.is_(None)).values(
            ended_at=at, result=result))
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def of_call(self, channel_id: str) -> Sequence[CallTransfer]:
        """Every transfer of the call on *channel_id*, oldest first."""
        rows = await self._session.execute(select(CallTransfer).where(
            CallTransfer.channel_id == channel_id).order_by(CallTransfer.id))
        return rows.scalars().all()

    async def requeue(self, queued_call_id: int, queue: str) -> None:
        """The caller waits again, in *queue*: its ``queued_calls`` row is open and
        unanswered again (``entered_at`` kept: its place in line), so offers, the answer
        and a router restart treat it as any waiting caller. The first agent's part is in
        the transfer's row."""
        await self._session.execute(update(QueuedCall).where(
            QueuedCall.id == queued_call_id, QueuedCall.ended_at.is_(None)).values(
            queue=queue, agent=None, answered_at=None, matched_skills=None,
            relaxation_step=None))
