"""Preview campaigns, the database side: offer a contact to an agent, find a held one,
skip it (the rules are :mod:`callcenter.dialer.preview`'s; the call itself is
:class:`ari_apps.preview.PreviewDialer`'s).

:meth:`PreviewDesk.offer`: an agent that already holds a preview of the campaign gets
the same contact again (a console reloaded); otherwise the agent must be available, one
due contact is claimed (``preview:<agent>``), screened (a contact the rules refuse goes
back until they allow it, or is closed when they never will: at most
:data:`CLAIMS_PER_OFFER` in one request) and the agent is reserved through the agent
store's compare-and-set (lost to an inbound call: the contact goes back, a 409). Holds
left behind (an agent freed by the watchdog, logged out...) are put back first.
A paused or stopped campaign (:mod:`callcenter.dialer.campaign_state`) offers no new
contact and dials none (:meth:`PreviewDesk.ensure_running`, a 409 naming the state).

Every refusal is a :class:`~callcenter.dialer.preview.PreviewError` with the HTTP status
the API answers: 404 unknown campaign or contact, nothing due; 409 not a preview
campaign, a campaign paused or stopped, an agent that does not work it or is not
available, a contact not held or already being called.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import (
    AgentState,
    AgentStatus,
    IllegalTransition,
    OfferFailed,
)
from callcenter.agents.store import AgentStore
from callcenter.config.campaign import Campaign
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.preview import (
    CLAIMER_PREFIX,
    HeldPreview,
    PreviewError,
    agent_of_claimer,
    claimer_for,
    contact_of_call,
    preview_call_id,
    screen,
)
from callcenter.dialer.progressive import campaign_agents
from callcenter.dialer.state_watch import read_permit
from callcenter.storage.campaigns import CampaignRepository
from callcenter.storage.models import ContactState
from callcenter.storage.preview import PreviewContact, PreviewRepository

__all__ = ["CLAIMS_PER_OFFER", "STALE_HOLD", "Offer", "PreviewDesk"]

log = logging.getLogger(__name__)

#: Contacts claimed and screened in one offer at most (those refused go back).
CLAIMS_PER_OFFER: Final = 20
#: A hold whose agent is no longer reserved for it is put back after this long (a
#: younger one may be an offer between its claim and its reservation).
STALE_HOLD: Final = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Offer:
    """A contact shown to an agent, why it may be called (for the log and the console),
    and whether the agent held it already."""

    held: HeldPreview
    reason: str
    again: bool = False


class PreviewDesk:
    """Offers, finds and skips preview contacts for the HTTP API."""

    def __init__(self, config: CallCenterConfig, sessions: async_sessionmaker[AsyncSession],
                 store: AgentStore) -> None:
        self.config = config
        self.sessions = sessions
        self.store = store

    def campaign(self, name: str) -> Campaign:
        """The preview campaign *name* (404 unknown, 409 of another mode)."""
        campaign = self.config.campaigns.get(name)
        if campaign is None:
            known = ", ".join(sorted(self.config.campaigns)) or "none"
            raise PreviewError(404, f"no campaign {name!r} (campaigns: {known})")
        if campaign.mode != "preview":
            raise PreviewError(409, f"campaign {name!r} is {campaign.mode}: only a preview "
                                    "campaign shows its contacts before the dial")
        return campaign

    async def offer(self, name: str, agent: str, now: datetime) -> Offer:
        """The contact *agent* previews next in campaign *name* (see the module doc)."""
        campaign = self.campaign(name)
        working = campaign_agents(campaign, {a: c.skills for a, c in self.config.agents.items()})
        if agent not in working:
            raise PreviewError(409, f"agent {agent!r} does not work campaign {name!r} (its "
                                    f"agents: {', '.join(sorted(working)) or 'none'})",
                               "agent")
        state = await self.store.get(agent, now)
        async with self.sessions() as session:
            holds = await PreviewRepository(session).holds(name, CLAIMER_PREFIX)
        mine = None
        for contact_id, claimer, claimed_at in holds:
            holder = agent_of_claimer(claimer)
            if holder == agent and mine is None:
                mine = contact_id
            elif holder != agent and (claimed_at is None or now - claimed_at > STALE_HOLD) \
                    and not await self._still_held(holder, contact_id, now):
                async with self.sessions.begin() as session:
                    await CampaignRepository(session).release(contact_id, next_attempt_at=now)
                log.warning("preview %s: contact %d held for %s, who moved on: back", name,
                            contact_id, holder)
        if mine is not None:
            return await self._again(name, agent, mine, state, now)
        await self.ensure_running(name)
        if state.status is not AgentStatus.AVAILABLE:
            raise PreviewError(409, f"agent {agent!r} is {state.status.value}: only an "
                                    "available agent gets a preview")
        return await self._claim(name, campaign, agent, state, now)

    async def ensure_running(self, name: str) -> None:
        """A 409 unless campaign *name* is running (paused or stopped: no new contact is
        offered, none dialled; a contact held already may still be skipped)."""
        allowed = await read_permit(self.sessions, name)
        if not allowed.place_calls:
            raise PreviewError(409, f"{allowed.reason} (no preview is offered nor dialled)")

    async def _still_held(self, agent: str | None, contact_id: int, now: datetime) -> bool:
        if agent is None or agent not in self.config.agents:
            return False
        state = await self.store.get(agent, now)
        return contact_of_call(state.call) == contact_id

    async def _again(self, name: str, agent: str, contact_id: int, state: AgentState,
                     now: datetime) -> Offer:
        """The contact *agent* holds already: shown again, the agent reserved again if
        its reservation ended meanwhile and it is available."""
        async with self.sessions() as session:
            found = await PreviewRepository(session).contact(contact_id)
        assert found is not None  # a hold is never deleted but with its campaign
        if state.status is AgentStatus.RESERVED and contact_of_call(state.call) == contact_id:
            assert state.call is not None
            return Offer(_held(found, agent, state.call), "shown again", again=True)
        if state.status is AgentStatus.AVAILABLE:
            call = preview_call_id(contact_id)
            if await self.store.try_reserve(agent, call, now, known=state) is not None:
                return Offer(_held(found, agent, call), "shown again", again=True)
        raise PreviewError(409, f"agent {agent!r} is {state.status.value}: only an available "
                                f"agent gets a preview (it holds contact {contact_id})")

    async def _claim(self, name: str, campaign: Campaign, agent: str, state: AgentState,
                     now: datetime) -> Offer:
        put_back = 0
        for _ in range(CLAIMS_PER_OFFER):
            async with self.sessions.begin() as session:
                repository = CampaignRepository(session)
                claimed = await repository.claim_due(name, now, 1, claimer=claimer_for(agent))
                if not claimed:
                    break
                due = claimed[0]
                screened = screen(due, campaign, now,
                                  last_abandon_at=await repository.last_abandon_at(due.id))
                if screened.action != "offer":
                    await repository.refuse(due.id, state=ContactState(screened.state),
                                            next_attempt_at=screened.retry_at,
                                            dnc_blocked=screened.dnc_blocked)
            if screened.action != "offer":
                put_back += 1
                log.info("preview %s: contact %d not for now (%s: %s); %s", name, due.id,
                         screened.verdict.rule, screened.verdict.reason,
                         screened.state if screened.action == "close"
                         else f"due again {screened.retry_at}")
                continue
            call = preview_call_id(due.id)
            if await self.store.try_reserve(agent, call, now, known=state) is None:
                async with self.sessions.begin() as session:
                    await CampaignRepository(session).release(due.id, next_attempt_at=now)
                latest = await self.store.get(agent, now)
                raise PreviewError(409, f"agent {agent!r} is {latest.status.value}: taken "
                                        "meanwhile (an inbound call goes first)")
            log.info("preview %s: contact %d (%s) shown to %s: %s", name, due.id, due.number,
                     agent, screened.verdict.reason)
            return Offer(HeldPreview(due.id, name, agent, call, due.number, due.timezone,
                                     due.attempts, dict(due.data)), screened.verdict.reason)
        more = f" ({put_back} put back by the calling rules)" if put_back else ""
        raise PreviewError(404, f"no contact of campaign {name!r} may be called now{more}")

    async def held(self, contact_id: int, now: datetime) -> HeldPreview:
        """Contact *contact_id* as a preview holds it; ``call`` is ``""`` when its agent
        is no longer reserved for it. 404 no such contact; 409 not held by a preview, or
        already being called."""
        async with self.sessions() as session:
            found = await PreviewRepository(session).contact(contact_id)
        if found is None:
            raise PreviewError(404, f"no contact {contact_id}")
        agent = agent_of_claimer(found.claimed_by)
        if found.state != ContactState.DIALING.value or agent is None:
            raise PreviewError(409, f"contact {contact_id} is not held by a preview (it is "
                                    f"{found.state}): ask for a preview first")
        if found.calling:
            raise PreviewError(409, f"contact {contact_id} is being called already")
        state = await self.store.get(agent, now) if agent in self.config.agents else None
        call = state.call if state is not None and state.status is AgentStatus.RESERVED \
            and contact_of_call(state.call) == contact_id else None
        return _held(found, agent, call or "")

    async def skip(self, held: HeldPreview, reason: str, now: datetime) -> bool:
        """Put the held contact back (due again now) and free its agent; whether the
        agent was freed (it may have moved on already)."""
        async with self.sessions.begin() as session:
            await CampaignRepository(session).release(held.contact_id, next_attempt_at=now)
        log.info("preview %s: %s skipped contact %d (%s): %s", held.campaign, held.agent,
                 held.contact_id, held.number, reason)
        if not held.call:
            return False
        with contextlib.suppress(IllegalTransition):
            await self.store.apply(held.agent, OfferFailed(held.call, "skipped"), now,
                                   reason=f"preview skipped: {reason}")
            return True
        return False


def _held(found: PreviewContact, agent: str, call: str) -> HeldPreview:
    return HeldPreview(found.id, found.campaign, agent, call, found.number, found.timezone,
                       found.attempts, dict(found.data))
