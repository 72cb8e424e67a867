"""Queued calls and their offers, as the queue router records them.

A caller's stay in a queue is one :class:`~callcenter.storage.models.QueuedCall`; each
time the router rings an agent for it, one :class:`~callcenter.storage.models.CallOffer`.
The router writes the row *before* the action that depends on it (enter before the
caller is parked in the holding bridge, the offer before the originate), so a restarted
router finds every waiting caller (:meth:`QueuedCallRepository.waiting`) in the order it
must serve them. Takes an ``AsyncSession`` and never commits, like every repository here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import (
    CallOffer,
    OfferResult,
    QueuedCall,
    QueueOutcome,
    parse_language,
)

__all__ = ["QueuedCallError", "QueuedCallRepository"]


class QueuedCallError(ValueError):
    """A queued call or offer was recorded out of order (ended twice, answered after its
    end): a router bug, refused rather than stored."""


class QueuedCallRepository:
    """The ``queued_calls`` and ``call_offers`` tables."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def enter(
        self,
        channel_id: str,
        queue: str,
        *,
        entered_at: datetime,
        priority: int = 0,
        language: str | None = None,
        call_id: int | None = None,
        node: str | None = None,
    ) -> QueuedCall:
        """Record a caller entering *queue*; ``IntegrityError`` if the channel is queued
        already (a re-adopted channel: look it up with :meth:`get_by_channel`)."""
        queued = QueuedCall(
            channel_id=channel_id,
            queue=queue,
            entered_at=entered_at,
            priority=priority,
            language=parse_language(language),
            call_id=call_id,
            node=node,
        )
        self._session.add(queued)
        await self._session.flush()
        return queued

    async def get_by_channel(self, channel_id: str) -> QueuedCall | None:
        """The queued call of the caller's channel, or ``None``."""
        result = await self._session.execute(
            select(QueuedCall).where(QueuedCall.channel_id == channel_id)
        )
        return result.scalar_one_or_none()

    async def waiting(self, queue: str | None = None, *, node: str | None = None) -> Sequence[QueuedCall]:
        """Callers still waiting (not answered, not ended), highest priority first, then
        the longest waiting: the order a restarted router restores them in."""
        statement = select(QueuedCall).where(
            QueuedCall.ended_at.is_(None), QueuedCall.answered_at.is_(None)
        )
        if queue is not None:
            statement = statement.where(QueuedCall.queue == queue)
        if node is not None:
            statement = statement.where(QueuedCall.node == node)
        result = await self._session.execute(
            statement.order_by(
                QueuedCall.priority.desc(), QueuedCall.entered_at, QueuedCall.id
            )
        )
        return result.scalars().all()

    async def open_calls(self, *, node: str | None = None) -> Sequence[QueuedCall]:
        """Calls not ended yet, waiting or talking (what a restarted router re-adopts),
        in arrival order; with *node*, only that router's."""
        statement = select(QueuedCall).where(QueuedCall.ended_at.is_(None))
        if node is not None:
            statement = statement.where(QueuedCall.node == node)
        result = await self._session.execute(
            statement.order_by(QueuedCall.entered_at, QueuedCall.id))
        return result.scalars().all()

    async def add_offer(
        self,
        queued: QueuedCall,
        agent: str,
        *,
        offered_at: datetime,
        channel_id: str | None = None,
    ) -> CallOffer:
        """Record an offer to *agent* (the first one sets the call's ``offered_at``)."""
        self._check_open(queued)
        offer = CallOffer(
            queued_call_id=queued.id, agent=agent, offered_at=offered_at, channel_id=channel_id
        )
        if queued.offered_at is None:
            queued.offered_at = offered_at
        self._session.add(offer)
        await self._session.flush()
        return offer

    async def end_offer(self, offer: CallOffer, result: OfferResult | str, *, at: datetime) -> CallOffer:
        """Record how an unanswered offer ended (``no_answer``, ``busy``...).

        Raises:
            ValueError: *result* is not an :class:`OfferResult`.
            QueuedCallError: the offer has ended already.
        """
        if offer.result is not None:
            raise QueuedCallError(f"offer {offer.id} ended already ({offer.result})")
        offer.result = OfferResult(result)
        offer.ended_at = at
        await self._session.flush()
        return offer

    async def answered(
        self,
        queued: QueuedCall,
        offer: CallOffer,
        *,
        at: datetime,
        matched_skills: dict[str, Any] | None = None,
        relaxation_step: int | None = None,
    ) -> QueuedCall:
        """The agent of *offer* answered: the call leaves the waiting list."""
        self._check_open(queued)
        if offer.queued_call_id != queued.id:
            raise QueuedCallError(f"offer {offer.id} is not an offer of queued call {queued.id}")
        await self.end_offer(offer, OfferResult.ANSWERED, at=at)
        queued.answered_at = at
        queued.agent = offer.agent
        queued.matched_skills = matched_skills
        queued.relaxation_step = relaxation_step
        await self._session.flush()
        return queued

    async def finish(
        self,
        queued: QueuedCall,
        outcome: QueueOutcome | str,
        *,
        at: datetime,
        overflow_to: str | None = None,
    ) -> QueuedCall:
        """Record how the call's stay ended: answered (when the talk ended), abandoned,
        overflowed (to *overflow_to*) or timed out.

        Raises:
            ValueError: *outcome* is not a :class:`QueueOutcome`.
            QueuedCallError: the call ended already, or ``answered`` for a call nobody
                answered (and the reverse).
        """
        outcome = QueueOutcome(outcome)
        if queued.ended_at is not None:
            raise QueuedCallError(f"queued call {queued.id} ended already ({queued.outcome})")
        if (outcome is QueueOutcome.ANSWERED) != (queued.answered_at is not None):
            raise QueuedCallError(
                f"queued call {queued.id}: outcome {outcome} but "
                f"{'answered' if queued.answered_at else 'never answered'}"
            )
        queued.outcome = outcome
        queued.ended_at = at
        queued.overflow_to = overflow_to
        await self._session.flush()
        return queued

    async def offers(self, queued: QueuedCall) -> Sequence[CallOffer]:
        """The offers of *queued*, oldest first."""
        result = await self._session.execute(
            select(CallOffer)
            .where(CallOffer.queued_call_id == queued.id)
            .order_by(CallOffer.offered_at, CallOffer.id)
        )
        return result.scalars().all()

    @staticmethod
    def _check_open(queued: QueuedCall) -> None:
        if queued.ended_at is not None or queued.answered_at is not None:
            raise QueuedCallError(f"queued call {queued.id} is no longer waiting")
