"""What a preview campaign asks of the contacts beyond :mod:`callcenter.storage.campaigns`:
one claimed contact by id (with its campaign and claimer), whether it has a call under
way, and the contacts previews hold. Takes an ``AsyncSession`` and never commits, like
every repository here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import (
    CampaignRecord,
    Contact,
    ContactAttempt,
    ContactState,
)

__all__ = ["PreviewContact", "PreviewRepository"]


@dataclass(frozen=True, slots=True)
class PreviewContact:
    """A contact as a preview needs it (no ORM object leaves the session)."""

    id: int
    campaign: str
    number: str
    timezone: str | None
    data: Mapping[str, Any]
    attempts: int
    state: str
    claimed_by: str | None
    #: An attempt of this contact has started and not ended (a call under way).
    calling: bool


class PreviewRepository:
    """The preview's questions about contacts."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def contact(self, contact_id: int) -> PreviewContact | None:
        """Contact ``contact_id`` (``None``: no such contact)."""
        calling = exists().where(ContactAttempt.contact_id == Contact.id,
                                 ContactAttempt.ended_at.is_(None))
        row = (await self._session.execute(
            select(Contact, CampaignRecord.name, calling.label("calling"))
            .join(CampaignRecord, CampaignRecord.id == Contact.campaign_id)
            .where(Contact.id == contact_id))).first()
        if row is None:
            return None
        contact, campaign, busy = row
        return PreviewContact(contact.id, campaign, contact.number, contact.timezone,
                              dict(contact.data or {}), contact.attempts,
                              str(contact.state), contact.claimed_by, bool(busy))

    async def holds(self, campaign: str,
                    prefix: str) -> list[tuple[int, str, datetime | None]]:
        """The contacts of ``campaign`` claimed by a claimer named ``prefix...`` with no
        call under way (previews shown to an agent, not dialled yet): (contact id,
        claimer, claimed at), oldest claim first."""
        calling = exists().where(ContactAttempt.contact_id == Contact.id,
                                 ContactAttempt.ended_at.is_(None))
        rows = await self._session.execute(
            select(Contact.id, Contact.claimed_by, Contact.claimed_at)
            .join(CampaignRecord, CampaignRecord.id == Contact.campaign_id)
            .where(CampaignRecord.name == campaign, Contact.state == ContactState.DIALING,
                   Contact.claimed_by.startswith(prefix, autoescape=True), ~calling)
            .order_by(Contact.claimed_at, Contact.id))
        return [(row.id, row.claimed_by, row.claimed_at) for row in rows]
