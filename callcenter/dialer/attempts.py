"""The dialers' shared path through the rules and the rows (I/O): claim one contact the
rules allow now, and end an attempt with its contact's next step.

* :func:`claim_allowed`: :meth:`~callcenter.storage.campaigns.CampaignRepository.claim_due`
  one contact at a time and ask :func:`~callcenter.dialer.eligibility.may_dial`; a refused
  contact is not dialled and goes where :func:`~callcenter.dialer.gate.refusal_step`
  says (a DNC one counted blocked), and the next is tried (at most ``tries``).
* :func:`finish_attempt`: :func:`~callcenter.dialer.gate.next_step` with the contact's
  history, then :meth:`~callcenter.storage.campaigns.CampaignRepository.end_attempt`.

The progressive/predictive dialer (``ari_apps/dialer.py``) and the agentless one
(``ari_apps/agentless.py``) both go through here, so a contact follows the same rules
whichever mode calls it. Every decision is logged with its reason.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config.campaign import Campaign
from callcenter.dialer.eligibility import Verdict, may_dial
from callcenter.dialer.gate import next_step, refusal_step
from callcenter.dialer.machine_message import MachineMessage
from callcenter.dialer.retry import NextStep
from callcenter.storage.campaigns import CampaignRepository, DueContact
from callcenter.storage.models import AttemptOutcome, ContactState

__all__ = ["claim_allowed", "finish_attempt", "release_unplaced"]

log = logging.getLogger(__name__)


async def claim_allowed(sessions: async_sessionmaker[AsyncSession], name: str,
                        campaign: Campaign, now: datetime, *, claimer: str,
                        tries: int) -> tuple[DueContact, Verdict] | None:
    """One due contact of campaign ``name`` the rules allow now, and their verdict (None:
    nothing due, or ``tries`` refused in a row)."""
    for _ in range(tries):
        async with sessions.begin() as session:
            repository = CampaignRepository(session)
            claimed = await repository.claim_due(name, now, 1, claimer=claimer,
                                                 include_dnc=True)
            if not claimed:
                return None
            contact = claimed[0]
            verdict = may_dial(contact, campaign, now, dnc=contact.dnc,
                               last_abandon_at=await repository.last_abandon_at(contact.id))
            if verdict.allowed:
                return contact, verdict
            refusal = refusal_step(verdict)
            await repository.refuse(contact.id, state=ContactState(refusal.state),
                                    next_attempt_at=refusal.next_attempt_at,
                                    dnc_blocked=refusal.dnc_blocked)
            log.info("dialer %s: contact %d (%s) not dialled: %s (%s); %s%s", name,
                     contact.id, contact.number, verdict.rule, verdict.reason,
                     refusal.state, f" until {refusal.next_attempt_at.isoformat()}"
                     if refusal.next_attempt_at else "")
    return None


async def finish_attempt(sessions: async_sessionmaker[AsyncSession], name: str,
                         campaign: Campaign, *, attempt_id: int, contact_id: int, number: str,
                         timezone: str | None, attempts: int, outcome: AttemptOutcome,
                         at: datetime, cause: int | None = None,
                         answered_at: datetime | None = None,
                         agent: str | None = None,
                         message: MachineMessage | None = None) -> NextStep:
    """End attempt ``attempt_id`` of campaign ``name`` with ``outcome`` and move its
    contact on (``attempts``: calls made to it, this one included); the step taken,
    logged. ``message``: what became of
    the message left on a machine (``amd.on_machine: leave_message``): one not left is
    retried as a machine, and its note goes on the attempt's reason."""
    async with sessions.begin() as session:
        repository = CampaignRepository(session)
        step = next_step(campaign, number=number, timezone=timezone, attempts=attempts,
                         outcome=outcome, at=at,
                         earlier=await repository.attempt_history(contact_id,
                                                                  exclude=attempt_id),
                         message_left=message is None or message.left)
        await repository.end_attempt(
            attempt_id, outcome=outcome, at=at, next_state=ContactState(step.state),
            next_attempt_at=step.next_attempt_at, answered_at=answered_at, cause=cause,
            agent=agent, reason_note=message and message.note)
    log.info("dialer %s: attempt %d ended %s; contact %d %s (%s)", name, attempt_id,
             outcome.value, contact_id, step.state, step.reason)
    return step


async def release_unplaced(sessions: async_sessionmaker[AsyncSession], name: str,
                           contact_id: int, at: datetime) -> None:
    """A contact a stopped dialer of campaign ``name`` claimed but never dialled (no
    attempt written): back, due at ``at``."""
    async with sessions.begin() as session:
        await CampaignRepository(session).release(contact_id, next_attempt_at=at)
    log.warning("dialer %s: contact %d was claimed, never dialled: back", name, contact_id)
