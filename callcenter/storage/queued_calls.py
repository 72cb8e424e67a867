"""Queued calls and their offers, as the queue router records them.

A caller's stay in a queue is one :class:`~callcenter.storage.models.QueuedCall`; each
time the router rings an agent for it, one :class:`~callcenter.storage.models.CallOffer`.
The router writes the row *before* the action that depends on it (enter before the
caller is parked in the holding bridge, the offer before the originate), so a restarted
router finds every waiting caller (:meth:`QueuedCallRepository.waiting`) in the order it
must serve them. Takes an ``AsyncSession`` and never commits, like every repository here.

Writes go by row id (the router keeps the ids :meth:`QueuedCallRepository.enter_by_id` and
:meth:`QueuedCallRepository.add_offer_by_id` return): each is a conditional ``UPDATE`` (or
``INSERT``) with its checks in the ``WHERE`` clause and no ``SELECT`` first, because they
are on the calls' hot path; reads give ORM rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import (
    CallOffer,
    OfferResult,
    QueuedCall,
    QueueOutcome,
    parse_language,
)

__all__ = ["QueuedCallError", "QueuedCallRepository"]


_CALLS = QueuedCall.__table__
_OFFERS = CallOffer.__table__


def _bind(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


# The router's writes, built once (Core, on the tables): values bound at execution.
_ENTER = insert(_CALLS).returning(_CALLS.c.id)
_OFFER = insert(_OFFERS).returning(_OFFERS.c.id)
_OPEN = (_CALLS.c.id == bindparam("w_id"), _CALLS.c.ended_at.is_(None))
_WAITING = (*_OPEN, _CALLS.c.answered_at.is_(None))
_FIRST_OFFER = (update(_CALLS).where(*_WAITING, _CALLS.c.offered_at.is_(None))
                .values(offered_at=_bind("v_at", _CALLS.c.offered_at)))
# A write that changes nothing: whether the row matches (and, on SQLite, the write lock).
_STILL_WAITING = update(_CALLS).where(*_WAITING).values(id=_CALLS.c.id)
_STILL_OPEN = update(_CALLS).where(*_OPEN).values(id=_CALLS.c.id)
_END_OFFER = (update(_OFFERS)
              .where(_OFFERS.c.id == bindparam("w_id"), _OFFERS.c.result.is_(None))
              .values(result=_bind("v_result", _OFFERS.c.result),
                      ended_at=_bind("v_at", _OFFERS.c.ended_at)))
_ANSWER_OFFER = _END_OFFER.where(_OFFERS.c.queued_call_id == bindparam("w_call"))
_ANSWER_CALL = update(_CALLS).where(*_WAITING).values(
    answered_at=_bind("v_at", _CALLS.c.answered_at), agent=_bind("v_agent", _CALLS.c.agent),
    matched_skills=_bind("v_skills", _CALLS.c.matched_skills),
    relaxation_step=_bind("v_step", _CALLS.c.relaxation_step))
_FINISH = {"outcome": _bind("v_outcome", _CALLS.c.outcome),
           "ended_at": _bind("v_at", _CALLS.c.ended_at),
           "overflow_to": _bind("v_to", _CALLS.c.overflow_to)}
_FINISH_ANSWERED = (update(_CALLS).where(*_OPEN, _CALLS.c.answered_at.is_not(None))
                    .values(**_FINISH))
_FINISH_UNANSWERED = update(_CALLS).where(*_WAITING).values(**_FINISH)


class QueuedCallError(ValueError):
    """A queued call or offer was recorded out of order (ended twice, answered after its
    end): a router bug, refused rather than stored."""


class QueuedCallRepository:
    """The ``queued_calls`` and ``call_offers`` tables."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

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

    async def offers(self, queued: QueuedCall) -> Sequence[CallOffer]:
        """The offers of *queued*, oldest first."""
        result = await self._session.execute(
            select(CallOffer)
            .where(CallOffer.queued_call_id == queued.id)
            .order_by(CallOffer.offered_at, CallOffer.id)
        )
        return result.scalars().all()

    async def enter_by_id(
        self,
        channel_id: str,
        queue: str,
        *,
        entered_at: datetime,
        priority: int = 0,
        language: str | None = None,
        node: str | None = None,
    ) -> int:
        """Record a caller entering *queue*; the new row's id. ``IntegrityError`` if the
        channel is queued already (a re-adopted channel: look it up with
        :meth:`get_by_channel`)."""
        return await self._scalar(_ENTER, {
            "channel_id": channel_id, "queue": queue, "entered_at": entered_at,
            "priority": priority, "language": parse_language(language), "node": node})

    async def add_offer_by_id(
        self, queued_id: int, agent: str, *, offered_at: datetime, channel_id: str | None = None
    ) -> int:
        """Record an offer to *agent* (the first one sets the call's ``offered_at``); the
        offer's id.

        Raises:
            QueuedCallError: the call is no longer waiting (answered or ended), or unknown.
        """
        if not await self._update(_FIRST_OFFER, {"w_id": queued_id, "v_at": offered_at}) \
                and not await self._update(_STILL_WAITING, {"w_id": queued_id}):
            raise QueuedCallError(f"queued call {queued_id} is no longer waiting")
        return await self._scalar(_OFFER, {
            "queued_call_id": queued_id, "agent": agent, "offered_at": offered_at,
            "channel_id": channel_id})

    async def end_offer_by_id(self, offer_id: int, result: OfferResult | str, *,
                              at: datetime) -> bool:
        """Record how an unanswered offer ended (``no_answer``, ``busy``...); ``False``
        (nothing written) if it has ended already. ``ValueError`` if *result* is not an
        :class:`OfferResult`."""
        return await self._update(_END_OFFER, {
            "w_id": offer_id, "v_result": OfferResult(result), "v_at": at})

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
        """The agent of the offer answered: the call leaves the waiting list.

        Raises:
            QueuedCallError: the offer is not the call's or has ended, or the call is no
                longer waiting (the transaction should then be rolled back).
        """
        if not await self._update(_ANSWER_OFFER, {
                "w_id": offer_id, "w_call": queued_id, "v_result": OfferResult.ANSWERED,
                "v_at": at}):
            raise QueuedCallError(f"offer {offer_id} of queued call {queued_id} is not open")
        if not await self._update(_ANSWER_CALL, {
                "w_id": queued_id, "v_at": at, "v_agent": agent,
                "v_skills": matched_skills, "v_step": relaxation_step}):
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
        params = {"w_id": queued_id, "v_at": at, "v_to": overflow_to}
        if outcome is QueueOutcome.ANSWERED and await self._update(
                _FINISH_ANSWERED, {**params, "v_outcome": outcome}):
            return True
        unanswered = QueueOutcome.ABANDONED if outcome is QueueOutcome.ANSWERED else outcome
        if await self._update(_FINISH_UNANSWERED, {**params, "v_outcome": unanswered}):
            return True
        if outcome is not QueueOutcome.ANSWERED and await self._update(
                _STILL_OPEN, {"w_id": queued_id}):
            raise QueuedCallError(f"queued call {queued_id}: outcome {outcome} but answered")
        return False

    async def _update(self, statement: Any, params: dict[str, Any]) -> bool:
        """Run a prebuilt conditional ``UPDATE`` of one row; whether it matched."""
        connection = await self._session.connection()
        result = await connection.execute(statement, params)
        return result.rowcount == 1

    async def _scalar(self, statement: Any, params: dict[str, Any]) -> int:
        connection = await self._session.connection()
        return int((await connection.execute(statement, params)).scalar_one())
