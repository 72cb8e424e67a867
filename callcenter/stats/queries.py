"""The statistics' reads: database rows -> the plain records of :mod:`callcenter.stats.records`.

Plain SQLAlchemy Core-style selects over the ORM models, the same on SQLite and
PostgreSQL (no dialect-specific functions: the arithmetic on times is done in Python,
by :mod:`callcenter.stats.compute`). Each function takes an ``AsyncSession`` and only reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.agents.state import AgentStatus
from callcenter.stats.records import CallRecord, StatusChange, WaitingRecord
from callcenter.storage.models import AgentStateRecord, AgentTransition, QueuedCall

__all__ = ["agent_states", "agent_statuses", "calls_entered", "status_changes", "waiting_calls"]

#: How far past the range's last call end transitions are read: the wrap-up after a
#: call of the range (a queue's ``wrapup`` is at most an hour) belongs to that call.
WRAP_UP_HORIZON = timedelta(hours=1)


async def calls_entered(session: AsyncSession, start: datetime, end: datetime,
                        queues: Collection[str] | None = None) -> list[CallRecord]:
    """Calls that entered a queue in ``[start, end)`` (of *queues* only, when given)."""
    statement = select(
        QueuedCall.queue, QueuedCall.channel_id, QueuedCall.entered_at, QueuedCall.answered_at,
        QueuedCall.ended_at, QueuedCall.outcome, QueuedCall.agent,
    ).where(QueuedCall.entered_at >= start, QueuedCall.entered_at < end)
    if queues is not None:
        statement = statement.where(QueuedCall.queue.in_(sorted(queues)))
    result = await session.execute(statement.order_by(QueuedCall.entered_at, QueuedCall.id))
    return [
        CallRecord(queue, channel, entered, answered, ended,
                   outcome.value if outcome is not None else None, agent)
        for queue, channel, entered, answered, ended, outcome, agent in result.all()
    ]


async def status_changes(session: AsyncSession, start: datetime, end: datetime,
                         calls: Iterable[CallRecord] = ()
                         ) -> tuple[dict[str, AgentStatus], list[StatusChange]]:
    """Each agent's status at *start* (its last transition before it) and its transitions
    from *start* until *end*, or the last end of *calls* if later (a call answered in
    the range may end after it), plus :data:`WRAP_UP_HORIZON`, in order."""
    until = max([end, *(c.ended_at for c in calls if c.ended_at is not None)])
    last = (
        select(AgentTransition.agent, func.max(AgentTransition.version).label("version"))
        .where(AgentTransition.at < start)
        .group_by(AgentTransition.agent)
        .subquery()
    )
    before = await session.execute(
        select(AgentTransition.agent, AgentTransition.to_status).join(
            last, and_(AgentTransition.agent == last.c.agent,
                       AgentTransition.version == last.c.version)))
    initial = {agent: AgentStatus(status) for agent, status in before.all()}
    rows = await session.execute(
        select(AgentTransition.agent, AgentTransition.at, AgentTransition.to_status,
               AgentTransition.cause, AgentTransition.detail)
        .where(AgentTransition.at >= start, AgentTransition.at < until + WRAP_UP_HORIZON)
        .order_by(AgentTransition.agent, AgentTransition.version))
    changes = [
        StatusChange(agent, at, AgentStatus(status), _wrapped_call(cause, detail))
        for agent, at, status, cause, detail in rows.all()
    ]
    return initial, changes


def _wrapped_call(cause: str, detail: object) -> str | None:
    """The caller's channel of a ``hangup`` transition (the event's ``call`` field)."""
    if cause == "hangup" and isinstance(detail, dict):
        call = detail.get("call")
        return call if isinstance(call, str) else None
    return None


async def waiting_calls(session: AsyncSession) -> list[WaitingRecord]:
    """Callers waiting now: not answered, not ended."""
    result = await session.execute(
        select(QueuedCall.queue, QueuedCall.entered_at).where(
            QueuedCall.answered_at.is_(None), QueuedCall.ended_at.is_(None)))
    return [WaitingRecord(queue, entered) for queue, entered in result.all()]


async def agent_statuses(session: AsyncSession) -> list[AgentStatus]:
    """Every agent's current status."""
    result = await session.execute(select(AgentStateRecord.status))
    return [AgentStatus(status) for status in result.scalars().all()]


async def agent_states(session: AsyncSession) -> dict[str, AgentStatus]:
    """Every agent's current status, by agent (a view limited to some agents)."""
    result = await session.execute(select(AgentStateRecord.agent, AgentStateRecord.status))
    return {agent: AgentStatus(status) for agent, status in result.all()}
