"""Callbacks and their attempts, as :mod:`ari_apps.callback` records them.

A callback is one :class:`~callcenter.storage.models.CallbackRequest` tied to the caller's
``queued_calls`` row, which stays open while the callback is pending (its ``entered_at``
and ``priority`` are the callback's place in the queue; a restarted router finds it with
:meth:`CallbackRepository.pending`). Each time an agent is called for it, one
:class:`~callcenter.storage.models.CallbackAttempt`. Written before the action that
depends on it (the request before the caller is let go, the attempt before the agent's
phone rings). Takes an ``AsyncSession`` and never commits, like every repository here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import (
    CallbackAttempt,
    CallbackRequest,
    CallbackResult,
    CallbackStatus,
    QueuedCall,
    Recording,
)

__all__ = ["CallbackRepository"]


class CallbackRepository:
    """The ``callbacks`` and ``callback_attempts`` tables."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def request(self, queued_call_id: int, queue: str, number: str, *,
                      source: str, at: datetime, skills: Sequence[str] = (),
                      recording_id: int | None = None) -> int:
        """Record a confirmed callback for the open queued call *queued_call_id*; its id.
        *recording_id*: the message the caller left (source ``message``).
        ``IntegrityError`` if that call has one already."""
        row = CallbackRequest(queued_call_id=queued_call_id, queue=queue, number=number,
                              number_source=source, requested_at=at,
                              skills="+".join(skills) or None,
                              status=CallbackStatus.PENDING, recording_id=recording_id)
        self._session.add(row)
        await self._session.flush()
        return row.id

    async def pending(self, *, node: str | None = None
                      ) -> Sequence[tuple[CallbackRequest, QueuedCall]]:
        """Pending callbacks with their queued calls (open), oldest entry first; with
        *node*, only that router's."""
        statement = (select(CallbackRequest, QueuedCall)
                     .join(QueuedCall, QueuedCall.id == CallbackRequest.queued_call_id)
                     .where(CallbackRequest.status == CallbackStatus.PENDING,
                            QueuedCall.ended_at.is_(None)))
        if node is not None:
            statement = statement.where(QueuedCall.node == node)
        result = await self._session.execute(
            statement.order_by(QueuedCall.entered_at, QueuedCall.id))
        return [(request, queued) for request, queued in result.tuples()]

    async def message_of(self, request: CallbackRequest) -> str | None:
        """The recording name of the message *request* was left with (None: none, or
        removed since)."""
        if request.recording_id is None:
            return None
        recording = await self._session.get(Recording, request.recording_id)
        return None if recording is None else recording.name

    async def get(self, callback_id: int) -> CallbackRequest | None:
        return await self._session.get(CallbackRequest, callback_id)

    async def for_queued_call(self, queued_call_id: int) -> CallbackRequest | None:
        result = await self._session.execute(select(CallbackRequest).where(
            CallbackRequest.queued_call_id == queued_call_id))
        return result.scalar_one_or_none()

    async def start_attempt(self, callback_id: int, agent: str, *, at: datetime) -> int:
        """An agent is called for the callback; the attempt's id."""
        row = CallbackAttempt(callback_id=callback_id, agent=agent, started_at=at)
        self._session.add(row)
        await self._session.flush()
        return row.id

    async def agent_answered(self, attempt_id: int, *, at: datetime,
                             customer_channel: str) -> None:
        """The agent answered; the customer is dialled now on *customer_channel*."""
        await self._session.execute(update(CallbackAttempt).where(
            CallbackAttempt.id == attempt_id).values(
            agent_answered_at=at, dialled_at=at, customer_channel=customer_channel))

    async def customer_answered(self, attempt_id: int, *, at: datetime) -> None:
        await self._session.execute(update(CallbackAttempt).where(
            CallbackAttempt.id == attempt_id).values(answered_at=at))

    async def end_attempt(self, attempt_id: int, result: CallbackResult, *, at: datetime,
                          cause: int | None = None) -> bool:
        """How the attempt ended; False (nothing written) if it had ended already."""
        done = await self._session.execute(update(CallbackAttempt).where(
            CallbackAttempt.id == attempt_id, CallbackAttempt.result.is_(None)).values(
            result=CallbackResult(result), ended_at=at, cause=cause))
        return bool(getattr(done, "rowcount", 0) == 1)

    async def reschedule(self, callback_id: int, at: datetime | None) -> None:
        """The next attempt is not made before *at* (None: at its turn)."""
        await self._session.execute(update(CallbackRequest).where(
            CallbackRequest.id == callback_id).values(next_attempt_at=at))

    async def close(self, callback_id: int, status: CallbackStatus, *, at: datetime) -> None:
        """The callback is over: ``done`` (answered) or ``failed`` (retries used up)."""
        await self._session.execute(update(CallbackRequest).where(
            CallbackRequest.id == callback_id,
            CallbackRequest.status == CallbackStatus.PENDING).values(
            status=CallbackStatus(status), ended_at=at, next_attempt_at=None))

    async def attempts(self, callback_id: int) -> Sequence[CallbackAttempt]:
        """Every attempt of a callback, in order."""
        result = await self._session.execute(select(CallbackAttempt).where(
            CallbackAttempt.callback_id == callback_id).order_by(CallbackAttempt.id))
        return result.scalars().all()
