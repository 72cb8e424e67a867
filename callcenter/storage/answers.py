"""Agentless campaigns' answers: the ``contact_answers`` table (:class:`ContactAnswer`).

The agentless dialer (``ari_apps/agentless.py``) records each answer as the call's flow
collects it (:meth:`AnswerRepository.record`, one transaction each: what was answered
before a hangup or a dialer restart stays), and marks the attempt answered when the flow
starts (:meth:`AnswerRepository.flow_started`). ``callcenter campaigns answers`` reads
them back per contact (:meth:`AnswerRepository.for_campaign`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import (
    ANSWER_VALUE_MAX,
    ANSWER_VARIABLE_MAX,
    CampaignRecord,
    Contact,
    ContactAnswer,
    ContactAttempt,
)

__all__ = ["AnswerRepository", "AnswerRow"]


@dataclass(frozen=True)
class AnswerRow:
    """One stored answer, with its contact and attempt."""

    contact_id: int
    number: str
    attempt_id: int
    variable: str
    value: str
    answered_at: datetime


class AnswerRepository:
    """The ``contact_answers`` table, and the attempt's answered time."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def flow_started(self, attempt_id: int, *, at: datetime) -> None:
        """The attempt's live answer entered the flow (written at once: a dialer that
        restarts during the call knows the contact was reached)."""
        await self._session.execute(
            update(ContactAttempt).where(ContactAttempt.id == attempt_id)
            .values(answered_at=at).execution_options(synchronize_session=False))

    async def record(self, attempt_id: int, *, variable: str, value: str,
                     at: datetime) -> None:
        """Store ``variable`` = ``value`` for the attempt (and its contact); the same
        variable again in the same call replaces it."""
        if not variable or len(variable) > ANSWER_VARIABLE_MAX or len(value) > ANSWER_VALUE_MAX:
            raise ValueError(f"answer {variable!r}={value!r}: too long to store")
        row = await self._session.scalar(
            select(ContactAnswer).where(ContactAnswer.attempt_id == attempt_id,
                                        ContactAnswer.variable == variable))
        if row is not None:
            row.value = value
            row.answered_at = at
        else:
            contact_id = await self._session.scalar(
                select(ContactAttempt.contact_id).where(ContactAttempt.id == attempt_id))
            if contact_id is None:
                raise LookupError(f"no contact attempt {attempt_id}")
            self._session.add(ContactAnswer(attempt_id=attempt_id, contact_id=contact_id,
                                            variable=variable, value=value, answered_at=at))
        await self._session.flush()

    async def for_attempt(self, attempt_id: int) -> dict[str, str]:
        """The attempt's answers, variable -> value."""
        rows = await self._session.execute(
            select(ContactAnswer.variable, ContactAnswer.value)
            .where(ContactAnswer.attempt_id == attempt_id).order_by(ContactAnswer.id))
        return dict(rows.tuples().all())

    async def for_campaign(self, campaign: str) -> list[AnswerRow]:
        """Every answer of ``campaign``'s contacts, by contact, attempt and time."""
        rows = await self._session.execute(
            select(Contact.id, Contact.number, ContactAnswer.attempt_id,
                   ContactAnswer.variable, ContactAnswer.value, ContactAnswer.answered_at)
            .join(Contact, Contact.id == ContactAnswer.contact_id)
            .join(CampaignRecord, CampaignRecord.id == Contact.campaign_id)
            .where(CampaignRecord.name == campaign)
            .order_by(Contact.id, ContactAnswer.attempt_id, ContactAnswer.id))
        return [AnswerRow(*row) for row in rows.tuples().all()]
