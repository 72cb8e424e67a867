"""A disposition given by the API or the CLI: recorded on an ended call, or, for one that
names a queue (:mod:`callcenter.dialer.handoff`), a warm transfer of the live call.

The warm transfer, step by step:

1. the attempt is read and :func:`~callcenter.dialer.handoff.plan_handoff` decides
   (refusals: :class:`~callcenter.storage.campaigns.DispositionError` with the status
   the API answers);
2. the hand-off is claimed in the database (:func:`claim_handoff`: the live attempt's
   ``disposition`` written only where none is yet), so of two dispositions at once, from
   the API and the CLI or two clicks, one hands over and the other is a 409 that never
   reaches the PBX; a hand-off the PBX refused gives its claim back (any other failure
   keeps it, since the call may have moved: the dialer's end of the call clears it);
3. the :class:`HandoffPort` (over ARI: :class:`ari_apps.campaign_handoff.AriHandoff`)
   sets the variables and sends the contact's channel to the queue;
4. the dialer sees its contact leave, hangs up the agent's leg (wrap-up), ends the
   attempt ``answered`` and records the disposition (read back from ``CC_HANDOFF``);
5. here, once the attempt has ended (polled: the dialer is another process; at most
   :data:`HANDOFF_WAIT` seconds), the disposition is recorded again with the note, which
   the channel never carries, and the contact's next step is answered. Should the dialer
   not have ended the attempt by then, the answer says the contact is still ``dialing``
   and the dialer records the disposition when it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config.models import CallCenterConfig
from callcenter.dialer.handoff import (
    AttemptView,
    HandoffPlan,
    HandoffRefused,
    plan_handoff,
)
from callcenter.storage.campaigns import CampaignRepository, Disposed, DispositionError
from callcenter.storage.models import CampaignRecord, Contact, ContactAttempt

__all__ = ["HANDOFF_WAIT", "HandoffPort", "attempt_view", "claim_handoff",
           "dispose_or_hand_off", "release_handoff"]

#: Seconds to wait for the dialer to end a handed-over attempt.
HANDOFF_WAIT: Final = 10.0
#: Seconds between two looks at the attempt meanwhile.
_POLL: Final = 0.1


class HandoffPort(Protocol):
    """Carries a hand-off out on the PBX.

    Raises :class:`~callcenter.dialer.handoff.HandoffRefused` when the channel is gone
    or not the dialer's any more (409), or the PBX cannot be reached (503)."""

    async def hand_off(self, plan: HandoffPlan) -> None: ...


@dataclass(frozen=True, slots=True)
class Handled:
    """What the disposition did: ``disposed`` as recorded, and ``queue`` the queue the
    call went to (None: no hand-off)."""

    disposed: Disposed
    queue: str | None = None


async def attempt_view(session: AsyncSession, attempt_id: int) -> AttemptView | None:
    """The attempt as :func:`plan_handoff` needs it; None if there is none."""
    row = (await session.execute(
        select(ContactAttempt.id, CampaignRecord.name, Contact.id, ContactAttempt.number,
               ContactAttempt.channel_id, ContactAttempt.agent, ContactAttempt.answered_at,
               ContactAttempt.ended_at)
        .join(Contact, Contact.id == ContactAttempt.contact_id)
        .join(CampaignRecord, CampaignRecord.id == Contact.campaign_id)
        .where(ContactAttempt.id == attempt_id))).first()
    if row is None:
        return None
    return AttemptView(row[0], row[1], row[2], row[3], row[4], row[5],
                       answered=row[6] is not None, ended=row[7] is not None)


async def claim_handoff(sessions: async_sessionmaker[AsyncSession], plan: HandoffPlan) -> bool:
    """Mark the plan's live attempt as being handed over (its ``disposition`` set while
    ``ended_at`` is still empty); False when it is already, or has ended meanwhile. One
    conditional UPDATE: atomic on SQLite and PostgreSQL alike, whichever process asks."""
    async with sessions.begin() as session:
        result = await session.execute(
            update(ContactAttempt)
            .where(ContactAttempt.id == plan.attempt_id, ContactAttempt.ended_at.is_(None),
                   ContactAttempt.disposition.is_(None))
            .values(disposition=plan.disposition)
            .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_handoff(sessions: async_sessionmaker[AsyncSession],
                          plan: HandoffPlan) -> None:
    """Give back the claim of a hand-off the PBX refused (the call stays live)."""
    async with sessions.begin() as session:
        await session.execute(
            update(ContactAttempt)
            .where(ContactAttempt.id == plan.attempt_id, ContactAttempt.ended_at.is_(None),
                   ContactAttempt.disposition == plan.disposition)
            .values(disposition=None)
            .execution_options(synchronize_session=False))


def _refused(exc: HandoffRefused) -> DispositionError:
    return DispositionError(exc.field, exc.message, exc.status)


async def dispose_or_hand_off(
        sessions: async_sessionmaker[AsyncSession], config: CallCenterConfig, attempt_id: int,
        disposition: str, *, port: Callable[[], HandoffPort | None], agent: str | None,
        note: str | None, callback_at: datetime | None, clock: Callable[[], datetime],
        own_only: bool = False, wait: float = HANDOFF_WAIT) -> Handled:
    """Record ``disposition`` on ``attempt_id`` (see the module doc); a disposition with a
    queue on a live call hands the call over first.

    ``port`` is asked only for a hand-off (None: this process has no PBX, a 503).

    Raises:
        DispositionError: with the status to answer (404, 403, 409, 422, 503).
    """
    async with sessions() as session:
        view = await attempt_view(session, attempt_id)
    if view is None:
        raise DispositionError("attempt", f"no contact attempt {attempt_id}", 404)
    if own_only and view.agent != agent:
        raise DispositionError("agent", f"attempt {attempt_id} is not this agent's call", 403)
    try:
        plan = plan_handoff(view, config.campaigns.get(view.campaign), config.queues,
                            disposition, callback_at=callback_at)
    except HandoffRefused as exc:
        raise _refused(exc) from None
    if plan is not None:
        handoff = port()
        if handoff is None:
            raise DispositionError("attempt", "this process has no connection to the PBX: "
                                   "it cannot hand the call over", 503)
        if not await claim_handoff(sessions, plan):
            raise DispositionError("attempt", f"attempt {attempt_id} is being handed over "
                                   "already (or has just ended): not handed over twice", 409)
        try:
            await handoff.hand_off(plan)
        except HandoffRefused as exc:  # the call stayed where it was: claim given back
            await release_handoff(sessions, plan)
            raise _refused(exc) from None
        if not await _ended(sessions, attempt_id, wait):
            return Handled(Disposed(
                attempt_id, view.contact_id, view.campaign, disposition, "dialing", None,
                f"handed to queue '{plan.queue}'; the dialer records the disposition when "
                "it closes the call", False), plan.queue)
    async with sessions.begin() as session:
        done = await CampaignRepository(session).dispose(
            attempt_id, disposition, campaigns=config.campaigns, agent=agent, note=note,
            callback_at=callback_at, now=clock(), own_only=own_only)
    return Handled(done, plan.queue if plan is not None else None)


async def _ended(sessions: async_sessionmaker[AsyncSession], attempt_id: int,
                 wait: float) -> bool:
    """Whether the attempt ends within ``wait`` seconds (bounded polls)."""
    for _ in range(max(1, int(wait / _POLL))):
        async with sessions() as session:
            ended = await session.scalar(select(ContactAttempt.ended_at)
                                         .where(ContactAttempt.id == attempt_id))
        if ended is not None:
            return True
        await asyncio.sleep(_POLL)
    return False
