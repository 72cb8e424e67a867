"""Campaign contacts, the do-not-call list and call attempts.

The dialer's questions and records, one method each:

* :meth:`CampaignRepository.import_contacts` -- a parsed contact list into a campaign, in
  the caller's one transaction (all rows or none); a number already in the campaign is
  merged (its data updated), never duplicated;
* :meth:`CampaignRepository.claim_due` -- the contacts due now, taken by one dialer: on
  PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` (two dialers never get the same
  contact and never wait on each other's rows); on SQLite the transaction starts with
  ``BEGIN IMMEDIATE``, so claimers run one after the other. Numbers on the DNC list are
  never claimed;
* :meth:`CampaignRepository.start_attempt` before the dial, :meth:`end_attempt` after:
  a restarted dialer finds the calls that were in progress (attempts with no end).

Takes an ``AsyncSession`` and never commits, like every repository here. Numbers are
E.164 already (:mod:`callcenter.phone_numbers`); what to do next with a contact (retry
when, or close) is the dialer's pure decision, passed to :meth:`end_attempt`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.engine import SQLITE_IMMEDIATE
from callcenter.storage.models import (
    AttemptOutcome,
    CampaignRecord,
    Contact,
    ContactAttempt,
    ContactState,
    DncEntry,
    utcnow,
)

__all__ = ["CampaignRepository", "ContactImport", "DueContact", "NewContact", "OpenClaim"]

# Rows per IN (...) list and per INSERT: well under SQLite's 32766 bound parameters and
# PostgreSQL's 65535, whatever the column count.
_CHUNK = 500


@dataclass(frozen=True)
class NewContact:
    """One contact to import: its E.164 number, zone if known, and the list's other columns."""

    number: str
    timezone: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContactImport:
    """What an import did: contacts new to the campaign, and numbers merged into one
    already there (or repeated in the list itself)."""

    inserted: int
    merged: int


@dataclass(frozen=True)
class DueContact:
    """A claimed contact, as the dialer needs it (no ORM object leaves the session)."""

    id: int
    number: str
    timezone: str | None
    data: Mapping[str, Any]
    attempts: int


@dataclass(frozen=True)
class OpenClaim:
    """A contact a dialer claimed and did not finish (it stopped): its open attempt if
    one was written (``attempt_id`` None: claimed, never dialled)."""

    contact_id: int
    attempts: int
    attempt_id: int | None = None
    channel_id: str | None = None
    answered_at: datetime | None = None
    agent: str | None = None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class CampaignRepository:
    """The ``campaigns``, ``contacts``, ``dnc_entries`` and ``contact_attempts`` tables."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def campaign_id(self, name: str) -> int:
        """The id of campaign ``name``, its row created on first use."""
        found = await self._session.scalar(
            select(CampaignRecord.id).where(CampaignRecord.name == name))
        if found is not None:
            return found
        row = CampaignRecord(name=name)
        self._session.add(row)
        await self._session.flush()
        return row.id

    async def import_contacts(self, campaign: str,
                              contacts: Iterable[NewContact]) -> ContactImport:
        """Add ``contacts`` to ``campaign``; a number already there (or twice in
        ``contacts``) is merged: later data wins key by key, a known zone is kept unless
        a new one is given. Contacts keep their calling state."""
        campaign_id = await self.campaign_id(campaign)
        merged_in_list = 0
        by_number: dict[str, NewContact] = {}
        for contact in contacts:
            earlier = by_number.get(contact.number)
            if earlier is not None:
                merged_in_list += 1
                contact = NewContact(contact.number, contact.timezone or earlier.timezone,
                                     {**earlier.data, **contact.data})
            by_number[contact.number] = contact
        numbers = list(by_number)
        existing: dict[str, Contact] = {}
        for chunk in _chunks(numbers):
            rows = await self._session.scalars(select(Contact).where(
                Contact.campaign_id == campaign_id, Contact.number.in_(chunk)))
            existing.update((row.number, row) for row in rows)
        for number, row in existing.items():
            new = by_number[number]
            row.data = {**(row.data or {}), **new.data}
            if new.timezone:
                row.timezone = new.timezone
        fresh = [{"campaign_id": campaign_id, "number": c.number, "timezone": c.timezone,
                  "data": dict(c.data), "state": ContactState.PENDING, "attempts": 0,
                  "created_at": utcnow()}
                 for number, c in by_number.items() if number not in existing]
        for chunk in _chunks(fresh):
            await self._session.execute(insert(Contact), list(chunk))
        await self._session.flush()
        return ContactImport(inserted=len(fresh), merged=merged_in_list + len(existing))

    async def add_dnc(self, numbers: Iterable[str] | Mapping[str, str | None], *,
                      source: str, at: datetime | None = None) -> int:
        """Put ``numbers`` (or number -> reason) on the do-not-call list; how many were new.
        Pending contacts with those numbers, in every campaign, are closed as
        ``do_not_call``."""
        reasons: dict[str, str | None] = (dict(numbers) if isinstance(numbers, Mapping)
                                          else dict.fromkeys(numbers))
        wanted = list(reasons)
        known: set[str] = set()
        for chunk in _chunks(wanted):
            known.update(await self._session.scalars(
                select(DncEntry.number).where(DncEntry.number.in_(chunk))))
        when = at or utcnow()
        fresh = [{"number": n, "source": source[:200], "reason": (reasons[n] or None) and
                  str(reasons[n])[:200], "added_at": when}
                 for n in wanted if n not in known]
        for chunk in _chunks(fresh):
            await self._session.execute(insert(DncEntry), list(chunk))
        for chunk in _chunks(wanted):
            await self._session.execute(
                update(Contact)
                .where(Contact.number.in_(chunk), Contact.state == ContactState.PENDING)
                .values(state=ContactState.DO_NOT_CALL)
                .execution_options(synchronize_session=False))
        await self._session.flush()
        return len(fresh)

    async def is_dnc(self, number: str) -> bool:
        found = await self._session.scalar(select(DncEntry.id).where(DncEntry.number == number))
        return found is not None

    async def claim_due(self, campaign: str, now: datetime, limit: int, *,
                        claimer: str = "dialer") -> list[DueContact]:
        """Up to ``limit`` pending contacts of ``campaign`` due by ``now`` (never-tried
        first, then by due time), marked ``dialing`` for ``claimer``.

        Must be the first statement of its transaction (on SQLite it begins it with
        ``BEGIN IMMEDIATE``); commit soon after: PostgreSQL holds the claimed rows' locks
        until then, and other claimers skip them.
        """
        if limit <= 0:
            return []
        await self._session.connection(execution_options={SQLITE_IMMEDIATE: True})
        campaign_id = await self._session.scalar(
            select(CampaignRecord.id).where(CampaignRecord.name == campaign))
        if campaign_id is None:
            return []
        on_dnc = exists().where(DncEntry.number == Contact.number)
        statement = (
            select(Contact)
            .where(Contact.campaign_id == campaign_id,
                   Contact.state == ContactState.PENDING,
                   or_(Contact.next_attempt_at.is_(None), Contact.next_attempt_at <= now),
                   ~on_dnc)
            .order_by(Contact.next_attempt_at.asc().nulls_first(), Contact.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Contact)
        )
        rows = list(await self._session.scalars(statement))
        for row in rows:
            row.state = ContactState.DIALING
            row.claimed_by = claimer[:48]
            row.claimed_at = now
        await self._session.flush()
        return [DueContact(row.id, row.number, row.timezone, dict(row.data or {}),
                           row.attempts) for row in rows]

    async def release(self, contact_id: int, *, next_attempt_at: datetime | None) -> None:
        """Put a claimed contact back, not called (its window closed meanwhile, say)."""
        await self._session.execute(
            update(Contact).where(Contact.id == contact_id)
            .values(state=ContactState.PENDING, next_attempt_at=next_attempt_at,
                    claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False))

    async def start_attempt(self, contact_id: int, *, at: datetime,
                            caller_id: str | None = None,
                            channel_id: str | None = None) -> int:
        """Record a call about to be placed to a claimed contact (before the dial); its id.
        The contact's attempt count includes it from now on."""
        contact = await self._session.get(Contact, contact_id)
        if contact is None:
            raise LookupError(f"no contact {contact_id}")
        contact.attempts += 1
        attempt = ContactAttempt(contact_id=contact_id, number=contact.number,
                                 caller_id=caller_id, channel_id=channel_id, started_at=at)
        self._session.add(attempt)
        await self._session.flush()
        return attempt.id

    async def end_attempt(self, attempt_id: int, *, outcome: AttemptOutcome, at: datetime,
                          next_state: ContactState,
                          next_attempt_at: datetime | None = None,
                          answered_at: datetime | None = None, cause: int | None = None,
                          agent: str | None = None, disposition: str | None = None) -> None:
        """Complete an attempt, and move its contact to ``next_state`` (``pending`` with
        ``next_attempt_at`` for a retry)."""
        attempt = await self._session.get(ContactAttempt, attempt_id)
        if attempt is None:
            raise LookupError(f"no contact attempt {attempt_id}")
        attempt.ended_at = at
        attempt.outcome = outcome
        attempt.answered_at = answered_at
        attempt.cause = cause
        attempt.agent = agent
        attempt.disposition = disposition
        contact = await self._session.get(Contact, attempt.contact_id)
        if contact is not None:
            contact.state = next_state
            contact.next_attempt_at = next_attempt_at
            contact.last_outcome = outcome
            contact.disposition = disposition or contact.disposition
            contact.claimed_by = None
            contact.claimed_at = None
        await self._session.flush()

    async def open_attempts(self) -> list[ContactAttempt]:
        """Attempts started and never ended: calls in progress when a dialer stopped."""
        rows = await self._session.scalars(
            select(ContactAttempt).where(ContactAttempt.ended_at.is_(None))
            .order_by(ContactAttempt.id))
        return list(rows)

    async def contacts(self, campaign: str) -> list[Contact]:
        """Every contact of ``campaign``, in import order (for export)."""
        rows = await self._session.scalars(
            select(Contact).join(CampaignRecord, CampaignRecord.id == Contact.campaign_id)
            .where(CampaignRecord.name == campaign).order_by(Contact.id))
        return list(rows)

    async def mark_answered(self, attempt_id: int, *, at: datetime, agent: str) -> None:
        """An agent took the attempt's live answer (written at once: a dialer that
        restarts during the conversation then knows the contact was reached)."""
        await self._session.execute(
            update(ContactAttempt).where(ContactAttempt.id == attempt_id)
            .values(answered_at=at, agent=agent)
            .execution_options(synchronize_session=False))

    async def open_claims(self, campaign: str, claimer: str) -> list[OpenClaim]:
        """The contacts of ``campaign`` that ``claimer`` still holds (``dialing``), each
        with its open attempt if any: what a restarted dialer must close."""
        campaign_id = await self._session.scalar(
            select(CampaignRecord.id).where(CampaignRecord.name == campaign))
        if campaign_id is None:
            return []
        contacts = list(await self._session.scalars(
            select(Contact).where(Contact.campaign_id == campaign_id,
                                  Contact.state == ContactState.DIALING,
                                  Contact.claimed_by == claimer[:48])
            .order_by(Contact.id)))
        out = []
        for contact in contacts:
            attempt = await self._session.scalar(
                select(ContactAttempt).where(ContactAttempt.contact_id == contact.id,
                                             ContactAttempt.ended_at.is_(None))
                .order_by(ContactAttempt.id.desc()).limit(1))
            out.append(OpenClaim(contact.id, contact.attempts)
                       if attempt is None else
                       OpenClaim(contact.id, contact.attempts, attempt.id,
                                 attempt.channel_id, attempt.answered_at, attempt.agent))
        return out
