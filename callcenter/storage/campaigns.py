"""Campaign contacts, the do-not-call list and call attempts.

The dialer's questions and records, one method each:

* :meth:`CampaignRepository.import_contacts` -- a parsed contact list into a campaign, in
  the caller's one transaction (all rows or none); a number already in the campaign is
  merged (its data updated), never duplicated;
* :meth:`CampaignRepository.claim_due` -- the contacts due now, taken by one dialer: on
  PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` (two dialers never get the same
  contact and never wait on each other's rows); on SQLite the transaction starts with
  ``BEGIN IMMEDIATE``, so claimers run one after the other. Numbers on the DNC list are
  never claimed, unless the dialer asks for them to refuse them (:meth:`refuse`, which
  counts them blocked);
* :meth:`CampaignRepository.start_attempt` before the dial, :meth:`end_attempt` after:
  a restarted dialer finds the calls that were in progress (attempts with no end);
* :meth:`CampaignRepository.dispose` -- an agent's disposition of an ended attempt,
  validated against the campaign's list, applied by :func:`callcenter.dialer.retry.
  after_attempt` (a ``do_not_call`` disposition lists the number in the same
  transaction);
* :meth:`CampaignRepository.compliance_inputs` -- what the compliance report reads.

Takes an ``AsyncSession`` and never commits, like every repository here. Numbers are
E.164 already (:mod:`callcenter.phone_numbers`); what to do next with a contact (retry
when, or close) is the dialer's pure decision, passed to :meth:`end_attempt`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.config.campaign import Campaign
from callcenter.storage.engine import SQLITE_IMMEDIATE
from callcenter.storage.models import (
    NOTE_MAX,
    REASON_MAX,
    RULE_MAX,
    AttemptOutcome,
    CampaignRecord,
    Contact,
    ContactAttempt,
    ContactState,
    DncEntry,
    utcnow,
)

if TYPE_CHECKING:
    from callcenter.dialer.compliance import AttemptRecord, ContactRecord

__all__ = [
    "CampaignRepository",
    "ContactImport",
    "Disposed",
    "DispositionError",
    "DueContact",
    "NewContact",
    "OpenClaim",
    "with_note",
]

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
    #: Its number is on the do-not-call list (claimed only with ``include_dnc``).
    dnc: bool = False


class DispositionError(ValueError):
    """A disposition that cannot be recorded; ``field`` names the input at fault
    (``attempt``, ``disposition``, ``callback_at``, ``note``, ``agent``) and ``status``
    the HTTP status the API answers with (404 no such attempt, 409 not disposable now,
    403 not the agent's, 422 bad input)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Disposed:
    """What a disposition did to the contact (``state`` a ``ContactState`` value)."""

    attempt_id: int
    contact_id: int
    campaign: str
    disposition: str
    state: str
    next_attempt_at: datetime | None
    reason: str
    added_dnc: bool


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
    number: str = ""
    timezone: str | None = None


def with_note(reason: str | None, note: str) -> str:
    """``reason; note`` within the column's size: the note (what happened last) is kept
    whole, the reason before it shortened if both do not fit."""
    note = note[:REASON_MAX]
    if not reason:
        return note
    room = REASON_MAX - len(note) - 2
    return f"{reason[:room]}; {note}" if room > 0 else note


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class CampaignRepository:
    """The ``campaigns``, ``contacts``, ``dnc_entries`` and ``contact_attempts`` tables."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def campaign_id(self, name: str) -> int:
        """The id of campaign ``name``, its row created on first use (by whichever of
        several processes asks first: the others' inserts do nothing, no unique-key
        error, e.g. two dialers' first heartbeats, or a ``start`` racing them)."""
        query = select(CampaignRecord.id).where(CampaignRecord.name == name)
        found = await self._session.scalar(query)
        if found is not None:
            return found
        dialect = self._session.get_bind().dialect.name
        insert_for = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        await self._session.execute(
            insert_for(CampaignRecord).values(name=name, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"]))
        created: int = await self._session.scalar(query)  # type: ignore[assignment]
        return created

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
                        claimer: str = "dialer",
                        include_dnc: bool = False) -> list[DueContact]:
        """Up to ``limit`` pending contacts of ``campaign`` due by ``now`` (never-tried
        first, then by due time), marked ``dialing`` for ``claimer``.

        Must be the first statement of its transaction (on SQLite it begins it with
        ``BEGIN IMMEDIATE``); commit soon after: PostgreSQL holds the claimed rows' locks
        until then, and other claimers skip them. ``include_dnc``: numbers on the DNC list
        are claimed too (``DueContact.dnc``), for the dialer's rules to refuse and count.
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
                   *(() if include_dnc else (~on_dnc,)))
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
        listed: set[str] = set()
        if include_dnc and rows:
            listed.update(await self._session.scalars(select(DncEntry.number).where(
                DncEntry.number.in_([row.number for row in rows]))))
        return [DueContact(row.id, row.number, row.timezone, dict(row.data or {}),
                           row.attempts, row.number in listed) for row in rows]

    async def refuse(self, contact_id: int, *, state: ContactState,
                     next_attempt_at: datetime | None, dnc_blocked: bool = False) -> None:
        """A claimed contact the rules refused: not called, moved to ``state`` (due again
        at ``next_attempt_at`` when ``pending``); ``dnc_blocked`` counts it on its
        campaign's DNC numbers blocked."""
        contact = await self._session.get(Contact, contact_id)
        if contact is None:
            raise LookupError(f"no contact {contact_id}")
        contact.state = state
        contact.next_attempt_at = next_attempt_at
        contact.claimed_by = None
        contact.claimed_at = None
        if dnc_blocked:
            await self._session.execute(
                update(CampaignRecord).where(CampaignRecord.id == contact.campaign_id)
                .values(dnc_blocked=CampaignRecord.dnc_blocked + 1)
                .execution_options(synchronize_session=False))
        await self._session.flush()

    async def dnc_blocked(self, campaign: str) -> int:
        """Contacts of ``campaign`` the dialer refused for the do-not-call list."""
        found = await self._session.scalar(
            select(CampaignRecord.dnc_blocked).where(CampaignRecord.name == campaign))
        return found or 0

    async def attempt_history(self, contact_id: int, *, exclude: int | None = None
                              ) -> list[tuple[AttemptOutcome | None, str | None]]:
        """The contact's attempts' outcomes and dispositions, oldest first (but
        ``exclude``): what a retry rule's own ``max_attempts`` counts."""
        rows = await self._session.execute(
            select(ContactAttempt.outcome, ContactAttempt.disposition)
            .where(ContactAttempt.contact_id == contact_id,
                   *(() if exclude is None else (ContactAttempt.id != exclude,)))
            .order_by(ContactAttempt.id))
        return [(outcome, disposition) for outcome, disposition in rows]

    async def release(self, contact_id: int, *, next_attempt_at: datetime | None) -> None:
        """Put a claimed contact back, not called (its window closed meanwhile, say)."""
        await self._session.execute(
            update(Contact).where(Contact.id == contact_id)
            .values(state=ContactState.PENDING, next_attempt_at=next_attempt_at,
                    claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False))

    async def start_attempt(self, contact_id: int, *, at: datetime,
                            caller_id: str | None = None,
                            channel_id: str | None = None, rule: str | None = None,
                            reason: str | None = None,
                            pacing_rule: str | None = None) -> int:
        """Record a call about to be placed to a claimed contact (before the dial); its id.
        The contact's attempt count includes it from now on. ``rule``/``reason``: the
        eligibility verdict that allowed it, ``pacing_rule`` the pacing decision that
        placed it (the audit trail)."""
        contact = await self._session.get(Contact, contact_id)
        if contact is None:
            raise LookupError(f"no contact {contact_id}")
        contact.attempts += 1
        attempt = ContactAttempt(contact_id=contact_id, number=contact.number,
                                 caller_id=caller_id, channel_id=channel_id, started_at=at,
                                 rule=rule and rule[:RULE_MAX],
                                 reason=reason and reason[:REASON_MAX],
                                 pacing_rule=pacing_rule and pacing_rule[:RULE_MAX])
        self._session.add(attempt)
        await self._session.flush()
        return attempt.id

    async def end_attempt(self, attempt_id: int, *, outcome: AttemptOutcome, at: datetime,
                          next_state: ContactState,
                          next_attempt_at: datetime | None = None,
                          answered_at: datetime | None = None, cause: int | None = None,
                          agent: str | None = None, disposition: str | None = None,
                          reason_note: str | None = None) -> None:
        """Complete an attempt, and move its contact to ``next_state`` (``pending`` with
        ``next_attempt_at`` for a retry). ``reason_note`` is added to the attempt's reason
        (the audit trail): what the call itself did, e.g. a message left on a machine."""
        attempt = await self._session.get(ContactAttempt, attempt_id)
        if attempt is None:
            raise LookupError(f"no contact attempt {attempt_id}")
        attempt.ended_at = at
        attempt.outcome = outcome
        attempt.answered_at = answered_at
        attempt.cause = cause
        attempt.agent = agent
        attempt.disposition = disposition
        if reason_note:
            attempt.reason = with_note(attempt.reason, reason_note)
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

    async def dispose(self, attempt_id: int, disposition: str, *,
                      campaigns: Mapping[str, Campaign], agent: str | None = None,
                      note: str | None = None, callback_at: datetime | None = None,
                      now: datetime, own_only: bool = False) -> Disposed:
        """Record ``disposition`` on an ended attempt and its contact, and move the
        contact on as :func:`callcenter.dialer.retry.after_attempt` decides (in this
        transaction: a ``do_not_call`` disposition lists the number too).

        ``campaigns``: the config's, to validate the key against the attempt's campaign.
        ``own_only``: ``agent`` may dispose only an attempt it took (the agent API).
        Raises :class:`DispositionError` naming the bad input; a disposition given again
        replaces the earlier one.
        """
        from callcenter.dialer.retry import after_attempt, rule_name

        if note is not None and len(note) > NOTE_MAX:
            raise DispositionError("note", f"longer than {NOTE_MAX} characters")
        if callback_at is not None and callback_at.tzinfo is None:
            raise DispositionError("callback_at", "needs a UTC offset (2026-12-02T10:00+00:00)")
        attempt = await self._session.get(ContactAttempt, attempt_id)
        if attempt is None:
            raise DispositionError("attempt", f"no contact attempt {attempt_id}", 404)
        if own_only and attempt.agent != agent:
            raise DispositionError("agent", f"attempt {attempt_id} is not this agent's call",
                                   403)
        contact = await self._session.get(Contact, attempt.contact_id)
        campaign_name = await self._session.scalar(
            select(CampaignRecord.name).where(CampaignRecord.id == contact.campaign_id)
        ) if contact is not None else None
        if contact is None or campaign_name is None:
            raise DispositionError("attempt", f"attempt {attempt_id} has no contact", 404)
        settings = campaigns.get(campaign_name)
        if settings is None:
            raise DispositionError("attempt", f"campaign '{campaign_name}' of attempt "
                                   f"{attempt_id} is not in the configuration", 409)
        if disposition not in settings.dispositions:
            known = ", ".join(sorted(settings.dispositions))
            raise DispositionError("disposition", f"unknown disposition '{disposition}' "
                                   f"for campaign '{campaign_name}' (known: {known})")
        if attempt.ended_at is None:
            raise DispositionError("attempt", f"attempt {attempt_id} is still in progress",
                                   409)
        counts: dict[str, int] = {}
        rows = await self._session.execute(
            select(ContactAttempt.id, ContactAttempt.outcome, ContactAttempt.disposition)
            .where(ContactAttempt.contact_id == contact.id))
        for row_id, outcome, earlier in rows:
            if row_id == attempt_id:
                earlier = disposition
            spec = settings.dispositions.get(earlier) if earlier else None
            name = "callback_requested" if spec is not None and spec.retry else (
                rule_name(outcome) if outcome is not None else None)
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
        step = after_attempt(contact, settings, attempt.outcome or AttemptOutcome.ANSWERED,
                             disposition, now, outcome_counts=counts,
                             callback_at=callback_at)
        attempt.disposition = disposition
        attempt.note = note
        attempt.disposed_at = now
        if agent is not None and attempt.agent is None:
            attempt.agent = agent
        contact.disposition = disposition
        contact.state = ContactState(step.state)
        contact.next_attempt_at = step.next_attempt_at
        if step.add_dnc:
            await self.add_dnc({contact.number: f"disposition by {agent or 'unknown'}"},
                               source=f"disposition:{campaign_name}", at=now)
        await self._session.flush()
        return Disposed(attempt_id, contact.id, campaign_name, disposition, step.state,
                        step.next_attempt_at, step.reason, step.add_dnc)

    async def attempt_agent(self, attempt_id: int) -> tuple[bool, str | None]:
        """Whether attempt ``attempt_id`` exists, and the agent who took it (if any)."""
        row = (await self._session.execute(
            select(ContactAttempt.agent).where(ContactAttempt.id == attempt_id))).first()
        return (False, None) if row is None else (True, row[0])

    async def last_abandon_at(self, contact_id: int) -> datetime | None:
        """When the contact's latest abandoned call started (the 72-hour rule's clock)."""
        found: datetime | None = await self._session.scalar(
            select(func.max(ContactAttempt.started_at))
            .where(ContactAttempt.contact_id == contact_id,
                   ContactAttempt.outcome == AttemptOutcome.ABANDONED))
        return found

    async def compliance_inputs(self, campaign: str) -> tuple[
            list[ContactRecord], list[AttemptRecord]]:
        """``campaign``'s contacts and attempts for :func:`callcenter.dialer.compliance.
        compliance_report`; an attempt is ``on_dnc`` when its number was listed before
        the call started."""
        from callcenter.dialer.compliance import AttemptRecord, ContactRecord

        campaign_id = await self._session.scalar(
            select(CampaignRecord.id).where(CampaignRecord.name == campaign))
        if campaign_id is None:
            return [], []
        contacts = [ContactRecord(r.id, r.number, r.timezone, r.attempts)
                    for r in await self._session.execute(
                        select(Contact.id, Contact.number, Contact.timezone, Contact.attempts)
                        .where(Contact.campaign_id == campaign_id).order_by(Contact.id))]
        listed = exists().where(DncEntry.number == ContactAttempt.number,
                                DncEntry.added_at <= ContactAttempt.started_at)
        rows = await self._session.execute(
            select(ContactAttempt.id, ContactAttempt.contact_id, ContactAttempt.started_at,
                   ContactAttempt.outcome, listed.label("on_dnc"))
            .join(Contact, Contact.id == ContactAttempt.contact_id)
            .where(Contact.campaign_id == campaign_id).order_by(ContactAttempt.id))
        attempts = [AttemptRecord(r.id, r.contact_id, r.started_at,
                                  str(r.outcome) if r.outcome is not None else None,
                                  bool(r.on_dnc)) for r in rows]
        return contacts, attempts

    async def status(self, campaign: str, now: datetime) -> dict[str, int]:
        """Contacts of ``campaign`` per state, and how many pending ones are due now."""
        campaign_id = await self._session.scalar(
            select(CampaignRecord.id).where(CampaignRecord.name == campaign))
        counts = dict.fromkeys((s.value for s in ContactState), 0)
        if campaign_id is None:
            return {**counts, "due_now": 0, "attempts": 0}
        for state, n in await self._session.execute(
                select(Contact.state, func.count()).where(Contact.campaign_id == campaign_id)
                .group_by(Contact.state)):
            counts[str(state)] = n
        due = await self._session.scalar(
            select(func.count()).select_from(Contact)
            .where(Contact.campaign_id == campaign_id, Contact.state == ContactState.PENDING,
                   or_(Contact.next_attempt_at.is_(None), Contact.next_attempt_at <= now)))
        attempts = await self._session.scalar(
            select(func.count()).select_from(ContactAttempt)
            .join(Contact, Contact.id == ContactAttempt.contact_id)
            .where(Contact.campaign_id == campaign_id))
        return {**counts, "due_now": due or 0, "attempts": attempts or 0}

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
            out.append(OpenClaim(contact.id, contact.attempts, number=contact.number,
                                 timezone=contact.timezone)
                       if attempt is None else
                       OpenClaim(contact.id, contact.attempts, attempt.id,
                                 attempt.channel_id, attempt.answered_at, attempt.agent,
                                 contact.number, contact.timezone))
        return out
