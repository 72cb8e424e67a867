"""Queued calls and their offers, as the queue router records them.

A caller's stay in a queue is one :class:`~callcenter.storage.models.QueuedCall`; each
time the router rings an agent for it, one :class:`~callcenter.storage.models.CallOffer`.
The router writes the row *before* the action that depends on it (enter before the
caller is parked in the holding bridge, the offer before the originate), so a restarted
router finds every waiting caller (:meth:`QueuedCallRepository.waiting`) in the order it
must serve them. Takes an ``AsyncSession`` and never commits, like every repository here.

The ``*_by_id`` writes are for a caller that knows the row ids (the router keeps them
from ``enter`` and ``add_offer``): each is a conditional ``UPDATE`` (or ``INSERT``) with
the same checks in its ``WHERE`` clause, and no ``SELECT`` first, on the calls' hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import CursorResult
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

    async def add_offer_by_id(
        self, queued_id: int, agent: str, *, offered_at: datetime, channel_id: str | None = None
    ) -> int:
        """:meth:`add_offer` by the queued call's id; the offer's id.

        Raises:
            QueuedCallError: the call is no longer waiting (answered or ended), or unknown.
        """
        marked = await self._update(
            update(QueuedCall)
            .where(QueuedCall.id == queued_id, QueuedCall.ended_at.is_(None),
                   QueuedCall.answered_at.is_(None), QueuedCall.offered_at.is_(None))
            .values(offered_at=offered_at))
        if not marked:  # offered before (the usual case from the second offer on)
            still_open = await self._update(
                update(QueuedCall)
                .where(QueuedCall.id == queued_id, QueuedCall.ended_at.is_(None),
                       QueuedCall.answered_at.is_(None))
                .values(id=QueuedCall.id))
            if not still_open:
                raise QueuedCallError(f"queued call {queued_id} is no longer waiting")
        result = await self._session.execute(
            insert(CallOffer)
            .values(queued_call_id=queued_id, agent=agent, offered_at=offered_at,
                    channel_id=channel_id)
            .returning(CallOffer.id))
        return int(result.scalar_one())

    async def end_offer_by_id(self, offer_id: int, result: OfferResult | str, *,
                              at: datetime) -> bool:
        """:meth:`end_offer` by id; ``False`` (nothing written) if it has ended already."""
        return await self._update(
            update(CallOffer)
            .where(CallOffer.id == offer_id, CallOffer.result.is_(None))
            .values(result=OfferResult(result), ended_at=at))

    async def answered_by_id(
        self,
        queued_id: int,
        offer_id: int,
        agent: str,
        *,
        at: datetime,
        matched_skills: dict[str, Any] | None = None,
        relaxation_step: int | None = None,
    ) -> None:
        """:meth:`answered` by ids.

        Raises:
            QueuedCallError: the offer is not the call's or has ended, or the call is no
                longer waiting (the transaction should then be rolled back).
        """
        if not await self._update(
            update(CallOffer)
            .where(CallOffer.id == offer_id, CallOffer.queued_call_id == queued_id,
                   CallOffer.result.is_(None))
            .values(result=OfferResult.ANSWERED, ended_at=at)):
            raise QueuedCallError(f"offer {offer_id} of queued call {queued_id} is not open")
        if not await self._update(
            update(QueuedCall)
            .where(QueuedCall.id == queued_id, QueuedCall.ended_at.is_(None),
                   QueuedCall.answered_at.is_(None))
            .values(answered_at=at, agent=agent, matched_skills=matched_skills,
                    relaxation_step=relaxation_step)):
            raise QueuedCallError(f"queued call {queued_id} is no longer waiting")

    async def finish_by_id(
        self,
        queued_id: int,
        outcome: QueueOutcome | str,
        *,
        at: datetime,
        overflow_to: str | None = None,
    ) -> bool:
        """End an open call's stay, as the router does whoever hung up: ``answered``
        becomes ``abandoned`` for a call nobody answered. ``False`` if it had ended already.

        Raises:
            QueuedCallError: an outcome other than ``answered`` for an answered call.
        """
        outcome = QueueOutcome(outcome)
        values = {"ended_at": at, "overflow_to": overflow_to}
        open_ = (QueuedCall.id == queued_id, QueuedCall.ended_at.is_(None))
        if outcome is QueueOutcome.ANSWERED and await self._update(
                update(QueuedCall).where(*open_, QueuedCall.answered_at.is_not(None))
                .values(outcome=outcome, **values)):
            return True
        unanswered = QueueOutcome.ABANDONED if outcome is QueueOutcome.ANSWERED else outcome
        if await self._update(
                update(QueuedCall).where(*open_, QueuedCall.answered_at.is_(None))
                .values(outcome=unanswered, **values)):
            return True
        if outcome is not QueueOutcome.ANSWERED and await self._update(
                update(QueuedCall).where(*open_).values(id=QueuedCall.id)):
            raise QueuedCallError(
                f"queued call {queued_id}: outcome {outcome} but answered")
        return False

    async def _update(self, statement: Any) -> bool:
        """Run a conditional ``UPDATE`` of one row; whether it matched."""
        result: CursorResult[Any] = await self._session.execute(  # type: ignore[assignment]
            statement.execution_options(synchronize_session=False))
        return result.rowcount == 1

    @staticmethod
    def _check_open(queued: QueuedCall) -> None:
        if queued.ended_at is not None or queued.answered_at is not None:
            raise QueuedCallError(f"queued call {queued.id} is no longer waiting")
