"""The recent answered calls of a queue, as the wait estimate measures them.

Read from the records (``queued_calls`` with their answering ``call_offers``), so every
router sharing the database measures the same calls, and a restarted router has its
history at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import CallOffer, OfferResult, QueuedCall, QueueOutcome

__all__ = ["HANDLE_WINDOW", "recent_handled"]

#: How many of a queue's latest answered calls the estimate averages over.
HANDLE_WINDOW = 20


async def recent_handled(session: AsyncSession, queue: str, *, since: datetime,
                         limit: int = HANDLE_WINDOW
                         ) -> list[tuple[datetime, datetime, datetime]]:
    """``(offered, answered, ended)`` of the latest *limit* calls of *queue* answered and
    ended at or after *since*, newest first (the offer is the one that was answered)."""
    rows = await session.execute(
        select(CallOffer.offered_at, QueuedCall.answered_at, QueuedCall.ended_at)
        .join(CallOffer, CallOffer.queued_call_id == QueuedCall.id)
        .where(QueuedCall.queue == queue,
               QueuedCall.outcome == QueueOutcome.ANSWERED,
               QueuedCall.ended_at >= since,
               QueuedCall.answered_at.is_not(None),
               CallOffer.result == OfferResult.ANSWERED)
        .order_by(QueuedCall.ended_at.desc())
        .limit(limit))
    return [(offered, answered, ended) for offered, answered, ended in rows
            if answered is not None and ended is not None]
