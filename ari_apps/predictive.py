"""The predictive mode of :class:`ari_apps.dialer.CampaignDialer`: calls placed before an
agent is reserved, as many as the :class:`~callcenter.dialer.pacing.Pacer` predicts.

Each pass: the campaign's ended attempts (its abandon window's worth) are read as the
Pacer's measures (:func:`callcenter.dialer.predictive.measured`: the hard guard sees the
abandon rate really measured), the agents and the calls in progress as its snapshot;
:meth:`Pacer.calls_to_place` says how many calls to place, and that many due contacts
are claimed and dialled at once (the decision is logged: which rule allowed them).

A live answer takes the longest-idle available agent of the campaign at that moment,
reserved through the agent store's compare-and-set (the queue router's reservation);
the agent's phone rings for what is left of the ``patience`` (2 s from the answer). No
agent reserved within it, or none connected by then: the contact hears the campaign's
``safe_harbor`` and is hung up, the attempt is ``abandoned`` (it counts in the abandon
rate), and the contact is not dialled within 72 hours of the abandon (the dialer's
eligibility check, :func:`~callcenter.dialer.eligibility.may_dial`, before every call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import select

from callcenter.agents.state import AgentState, IllegalTransition, Ring
from callcenter.dialer.machine_message import message_for
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.pacing import Decision, Measured, Pacer
from callcenter.dialer.placer import new_channel_id, place_call
from callcenter.dialer.predictive import (
    AttemptRow,
    Dialing,
    longest_idle,
    measured,
    policy,
    snapshot,
)
from callcenter.storage.campaigns import CampaignRepository
from callcenter.storage.models import CampaignRecord, Contact, ContactAttempt

if TYPE_CHECKING:
    from ari_apps.dialer import CampaignDialer, _Live

__all__ = ["PATIENCE", "PredictiveCalls"]

log = logging.getLogger(__name__)

#: Seconds from a live answer to its agent's answer before the safe-harbor message.
PATIENCE: Final = 2.0
#: Seconds the measures are kept when no attempt ended meanwhile (other dialers' ends).
REREAD: Final = 30.0
#: Seconds between looks for a free agent while an answered contact waits.
_AGENT_POLL: Final = 0.1


class PredictiveCalls:
    """The predictive calls of one dialer (it owns the agents, inboxes and attempts)."""

    def __init__(self, dialer: CampaignDialer, *, patience: float = PATIENCE) -> None:
        self.dialer = dialer
        self.patience = patience
        self.pacer = Pacer(policy(dialer.campaign, patience=patience))
        abandon = dialer.campaign.abandon
        self.window = abandon.window_seconds if abandon is not None else 30 * 86400.0
        #: Calls in progress with no agent yet, by channel id.
        self.dialing: dict[str, Dialing] = {}
        #: The latest decision (the audit trail's "why"), and per contact leg the
        #: monotonic time of its live answer (for tests and logs).
        self.decision: Decision | None = None
        #: The decision of the latest pass that placed calls, and how many it placed.
        self.placed: tuple[Decision, int] | None = None
        self.answered: dict[str, float] = {}
        self._measured: tuple[int, float, Measured] | None = None

    async def history(self, now: datetime) -> Measured:
        """The Pacer's measures from the campaign's attempts ended within its window."""
        window = timedelta(seconds=self.window)
        d = self.dialer
        async with d.sessions() as session:
            rows = await session.execute(
                select(ContactAttempt.outcome, ContactAttempt.started_at,
                       ContactAttempt.ended_at, ContactAttempt.answered_at)
                .join(Contact, Contact.id == ContactAttempt.contact_id)
                .join(CampaignRecord, CampaignRecord.id == Contact.campaign_id)
                .where(CampaignRecord.name == d.name, ContactAttempt.ended_at.is_not(None),
                       ContactAttempt.outcome.is_not(None),
                       ContactAttempt.started_at > now - window))
            history = [AttemptRow(str(r.outcome), r.started_at, r.ended_at, r.answered_at)
                       for r in rows]
        return measured(history, now, window=window, wrap_up=d.wrap_up)

    async def measures(self, now: datetime) -> Measured:
        """:meth:`history`, read again once an attempt ended or every :data:`REREAD` s."""
        key = len(self.dialer.ended)
        if self._measured is None or self._measured[0] != key \
                or time.monotonic() - self._measured[1] >= REREAD:
            self._measured = (key, time.monotonic(), await self.history(now))
        return self._measured[2]

    async def run_pass(self, tg: asyncio.TaskGroup, now: datetime,
                       states: list[AgentState]) -> None:
        """Place as many calls as the Pacer says, each in a task of its own."""
        d = self.dialer
        snap = snapshot(states, d.working, now, self.dialing.values(), await self.measures(now),
                        busy=frozenset(d.live))
        decision = self.pacer.calls_to_place(snap)
        self.decision = decision
        if decision.calls:
            log.info("dialer %s: %s", d.name, decision.explain())
        for _ in range(decision.calls):
            if d._stopping.is_set():
                return
            # The rules first (DNC, max attempts, the window, and the 72 h after an
            # abandon: no agent is reserved first in this mode).
            claimed = await d._claim(now)
            if claimed is None:
                log.debug("dialer %s: no contact due", d.name)
                return
            contact, verdict = claimed
            channel_id = new_channel_id()
            caller_id = d.campaign.caller_id_for(contact.number)
            try:
                async with d.sessions.begin() as session:
                    attempt = await CampaignRepository(session).start_attempt(
                        contact.id, at=now, caller_id=caller_id, channel_id=channel_id,
                        rule=verdict.rule, reason=verdict.reason,
                        pacing_rule=decision.rule.value)
            except Exception:
                async with d.sessions.begin() as session:
                    await CampaignRepository(session).release(contact.id, next_attempt_at=now)
                raise
            from ari_apps.dialer import _Live

            call = _Live("", channel_id, contact, attempt)
            self.dialing[channel_id] = Dialing(now)
            log.info("dialer %s: calling contact %d (%s), attempt %d, no agent yet: %s; %s",
                     d.name, contact.id, contact.number, attempt, decision.rule.value,
                     verdict.reason)
            tg.create_task(self._owned(call, caller_id), name=f"dialer {channel_id}")
            placed = self.placed[1] + 1 if self.placed and self.placed[0] is decision else 1
            self.placed = (decision, placed)
            d._pulse()

    async def _owned(self, call: _Live, caller_id: str) -> None:
        """:meth:`_call`, whose failure never stops the campaign (the attempt fails)."""
        d = self.dialer
        try:
            await self._call(call, caller_id)
        except Exception:
            log.exception("dialer %s: call %s failed", d.name, call.channel_id)
            await d._finish(call, Outcome.FAILED, None, agent_answered=False, result="failed")
        finally:
            self.dialing.pop(call.channel_id, None)
            if call.agent:
                d.live.pop(call.agent, None)
            d._wake.set()
            d._pulse()

    async def _call(self, call: _Live, caller_id: str) -> None:
        d = self.dialer
        with d.inboxes.open(call.channel_id) as inbox:
            placed = await place_call(
                d.ari, inbox, number=call.contact.number, trunk=d.campaign.trunk,
                caller_id=caller_id, ring_seconds=d.campaign.ring_seconds,
                amd=d.campaign.amd.enabled, channel_id=call.channel_id,
                machine_message=message_for(d.campaign.amd))
            log.info("dialer %s: contact %d (%s): %s (cause %s)", d.name, call.contact.id,
                     call.contact.number, placed.outcome.value, placed.observation.cause)
            if placed.outcome is not Outcome.LIVE or placed.channel is None:
                await d._finish(call, placed.outcome, placed.observation.cause,
                                agent_answered=False, result=f"contact_{placed.outcome.value}",
                                message=placed.message)
                return
            answered = time.monotonic()
            self.answered[call.channel_id] = answered
            placed_at = self.dialing[call.channel_id].placed_at
            self.dialing[call.channel_id] = Dialing(placed_at, d.clock())
            d._pulse()
            agent = await self._take_agent(call, answered + self.patience)
            if agent is None:
                log.info("dialer %s: no agent for contact %d within %.1f s: safe harbor",
                         d.name, call.contact.id, self.patience)
                self.dialing.pop(call.channel_id, None)
                await d._abandon(call, inbox)
                return
            call.agent = agent
            d.live[agent] = call
            self.dialing.pop(call.channel_id, None)
            with contextlib.suppress(IllegalTransition):
                await d.store.apply(agent, Ring(call.channel_id), d.clock())
            left = answered + self.patience - time.monotonic()
            log.info("dialer %s: contact %d answered live: %s rings for %.1f s", d.name,
                     call.contact.id, agent, left)
            await d._connect(call, placed, inbox, ring_seconds=max(1, math.ceil(left)))

    async def _take_agent(self, call: _Live, deadline: float) -> str | None:
        """The longest-idle available agent, reserved for ``call``; None if none could be
        reserved before ``deadline`` (monotonic)."""
        d = self.dialer
        while True:
            states = await d.store.all()
            agent = longest_idle(states, d.working, busy=frozenset(d.live))
            if agent is not None:
                known = next(s for s in states if s.agent == agent)
                if await d.store.try_reserve(agent, call.channel_id, d.clock(),
                                             known=known) is not None:
                    return agent
                continue  # taken meanwhile (the router): the next one, at once
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(_AGENT_POLL, left))
