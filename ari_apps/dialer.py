"""The progressive dialer: a campaign's contacts called through its trunk, each live
answer bridged to the agent reserved for it (Stasis app ``cc-dialer``).

Dialplan contract: nothing in the dialplan enters ``cc-dialer`` by itself. Every channel
of the app is one we originate with our own id:

* the contact's leg, ``Local/<number>@cc-trunk-<trunk>-out`` (id ``cc-dial-<hex>``),
  placed by :func:`callcenter.dialer.placer.place_call` (``StasisStart`` with argument
  ``answered``, then ``amd`` after ``cc-dialer-amd`` when the campaign uses AMD);
* the agent's leg, the agent's dial string (``PJSIP/<agent>``, id ``<contact leg>-a``),
  which enters the app (argument ``agent``) when the agent answers.

Both go into a mixing bridge ``cc-dialer-<contact leg>``
(:func:`~callcenter.dialer.placer.dialer_bridge_id`: never the queue router's
``cc-<caller>``, which a handed-off contact gets); whoever hangs up, the other leg and
the bridge go too. A contact leaving the app alive was handed to an inbound queue by a
disposition (:mod:`ari_apps.campaign_handoff`): the agent's leg and the bridge go, the
contact stays with the queue.

One pass of the loop (:meth:`CampaignDialer.run`, on every change it makes and on a
tick of :data:`TICK` seconds, for other processes' changes and the clock): read the
campaign's run state (:class:`~callcenter.dialer.state_watch.StateWatch`: paused or
stopped, no call is placed; stopped, :meth:`CampaignDialer.run` returns once the calls
in progress ended); read every agent's stored state; ask
:func:`~callcenter.dialer.progressive.pick_agents` which of the campaign's available
agents get a call; for each, claim one due contact
(:meth:`~callcenter.storage.campaigns.CampaignRepository.claim_due`) that the rules
allow now (:func:`~callcenter.dialer.eligibility.may_dial`: DNC, max attempts, 72 h
after an abandon, the calling window in the contact's zone; a refused contact is not
dialled and goes where :func:`~callcenter.dialer.gate.refusal_step` says, a DNC one
counted blocked), reserve the agent through the agent store's
compare-and-set, the reservation the queue router makes (lost: the contact goes back),
write the attempt (:meth:`start_attempt`, with the verdict's rule and reason and the
pacing decision's rule: the audit trail) and only then place the call, in a task of
its own (:meth:`CampaignDialer._call`). Every decision is logged with its reason.

What the agent's state does: ``reserved`` at once, ``ringing`` while the contact rings
(the router's watchdog allows a reservation 15 s, a ring 120 s), ``on_call`` when the
agent answers and ``wrap_up`` after, as for an inbound call. Any other outcome frees the
agent (``offer_failed`` with the outcome); the attempt ends with it and the contact
moves on as :func:`~callcenter.dialer.retry.after_attempt` decides (through
:func:`~callcenter.dialer.gate.next_step`, with its history). A live answer the agent
does not take hears the campaign's ``safe_harbor`` and is hung up (``abandoned``).

Restart safety: on start, the contacts this dialer (its claimer name) still holds are
closed: an attempt with no end is ``cancelled`` (``answered`` if the agent had taken it)
and its channel, if still up, hung up; a contact claimed but never dialled goes back.
Nothing is dialled twice for one attempt. After an events websocket reconnection
(:meth:`CampaignDialer.resync`), a leg that ended meanwhile is ended in its call too.
A pass that fails (the database, ARI) is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.campaign_handoff import handed_off, record_handoff
from ari_apps.dialer_loop import PassLoop
from ari_apps.predictive import PredictiveCalls
from ari_apps.transfer import leg_variables
from callcenter.agents.rules import rules_from_config
from callcenter.agents.state import (
    AgentStatus,
    Answer,
    CallGone,
    Hangup,
    IllegalTransition,
    OfferFailed,
    Ring,
    Tick,
)
from callcenter.agents.store import AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ari.client import ARIClient, ARIError
from callcenter.asterisk.ari.events import (
    ChannelDestroyed,
    ChannelHangupRequest,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from callcenter.config.campaign import Campaign
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.amd import DIALER_APP
from callcenter.dialer.attempts import claim_allowed, finish_attempt, release_unplaced
from callcenter.dialer.campaign_state import claimer_of
from callcenter.dialer.eligibility import Verdict
from callcenter.dialer.gate import next_step
from callcenter.dialer.machine_message import MachineMessage, message_for
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.placer import (
    HANGUP_BUDGET,
    ChannelInboxes,
    PlacedCall,
    destroyed_cause,
    dialer_bridge_id,
    hang_up_and_wait,
    lost_channel,
    new_channel_id,
    place_call,
)
from callcenter.dialer.progressive import attempt_outcome, campaign_agents, pick_agents
from callcenter.dialer.state_watch import StateWatch
from callcenter.storage.campaigns import CampaignRepository, DueContact
from callcenter.storage.models import AttemptOutcome, ContactState

__all__ = ["ARG_AGENT", "TICK", "CampaignDialer"]

log = logging.getLogger(__name__)

#: Seconds between passes when nothing wakes the loop (other processes' agent changes,
#: due times, wrap-up ends).
TICK: Final = 1.0
#: The Stasis argument of the agent's leg when the agent answers.
ARG_AGENT: Final = "agent"
#: Seconds the agent's phone rings for a live contact before it counts as abandoned.
AGENT_RING_SECONDS: Final = 15
#: Seconds the safe-harbor message may take before the contact is hung up anyway.
SAFE_HARBOR_BUDGET: Final = 30.0
#: Contacts claimed in one pass for one agent (those the rules refuse go back).
CLAIMS_PER_AGENT: Final = 20


@dataclass
class _Live:
    """A call this dialer is handling, by agent."""

    agent: str
    channel_id: str
    contact: DueContact
    attempt_id: int


class CampaignDialer(PassLoop):
    """Runs one progressive or predictive campaign until :meth:`stop` (or cancellation)."""

    def __init__(self, config: CallCenterConfig, campaign: str, ari: ARIClient,
                 sessions: async_sessionmaker[AsyncSession], *, node: str = "dialer",
                 clock: Callable[[], datetime] = utc_now,
                 wrap_up: timedelta = timedelta(seconds=10),
                 agent_ring_seconds: int = AGENT_RING_SECONDS,
                 tick: float = TICK) -> None:
        super().__init__()
        if campaign not in config.campaigns:
            raise ValueError(f"unknown campaign {campaign!r} (known: "
                             f"{', '.join(sorted(config.campaigns)) or 'none'})")
        self.config = config
        self.name = campaign
        self.campaign: Campaign = config.campaigns[campaign]
        if self.campaign.mode not in ("progressive", "predictive"):
            raise ValueError(f"campaign {campaign!r} is {self.campaign.mode}: this dialer "
                             "runs progressive and predictive campaigns only")
        self.ari = ari
        self.sessions = sessions
        self.clock = clock
        self.node = node
        self.claimer = claimer_of(node)
        self.wrap_up = wrap_up
        self.agent_ring_seconds = agent_ring_seconds
        self.tick = tick
        self.store = AgentStore(sessions, rules_from_config(config), node=self.claimer)
        #: The campaign's run state, read once per pass (running, paused, stopped).
        self.watch = StateWatch(sessions, campaign, self.claimer)
        self.working = campaign_agents(self.campaign, {
            name: agent.skills for name, agent in config.agents.items()})
        self.inboxes = ChannelInboxes()
        #: Calls in progress, by agent.
        self.live: dict[str, _Live] = {}
        #: Agents talking to a contact: agent -> the call's bridge id.
        self.talking: dict[str, str] = {}
        #: Contact legs that heard the whole safe-harbor message.
        self.safe_harbor_played: list[str] = []
        #: Predictive mode's calls (:mod:`ari_apps.predictive`); None when progressive.
        self.predictive: PredictiveCalls | None = (
            PredictiveCalls(self) if self.campaign.mode == "predictive" else None)

    # -- the app's events ------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """The websocket reader's handler: hand the event to its call (never blocks)."""
        self.inboxes.put(event)

    async def resync(self) -> None:
        """After an events websocket (re)connection: events sent meanwhile are lost, so a
        leg of a call in progress that ended then gets its end now (a
        ``ChannelDestroyed`` of cause 0 in its call's inbox)."""
        live = {channel.id for channel in await self.ari.channels.list()}
        for call in list(self.live.values()):
            for channel_id in (call.channel_id, f"{call.channel_id}-a"):
                if channel_id not in live:
                    self.inboxes.put(lost_channel(channel_id, DIALER_APP))
        for channel_id in list(self.predictive.dialing if self.predictive else ()):
            if channel_id not in live:
                self.inboxes.put(lost_channel(channel_id, DIALER_APP))

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover, then pass on every change and tick until stopped."""
        now = self.clock()
        log.info("dialer %s: campaign %s (%s), agents %s", self.claimer, self.name,
                 self.campaign.mode, ", ".join(sorted(self.working)) or "none")
        await self.store.ensure(self.config.agents, now)
        await self.recover()
        self.ready.set()
        async with asyncio.TaskGroup() as tg:
            await self._run_passes(tg)
        await self.watch.leave()
        log.info("dialer %s: campaign %s stopped", self.claimer, self.name)

    async def _pass(self, tg: asyncio.TaskGroup) -> None:
        now = self.clock()
        states = await self.store.all()
        for state in states:  # a wrap-up this dialer gave ends on time, router or not
            if state.agent in self.working and state.status is AgentStatus.WRAP_UP \
                    and state.wrap_up_until is not None and state.wrap_up_until <= now:
                await self.store.apply(state.agent, Tick(), now, known=state)
        permit = await self.watch.check()  # paused or stopped: no new call
        if permit.exit:
            self.stop()
        if not permit.place_calls:
            return
        if self.predictive is not None:
            await self.predictive.run_pass(tg, now, await self.store.all())
            return
        pick = pick_agents(states, self.working, now, busy=frozenset(self.live))
        if not pick.agents:
            return
        log.debug("dialer %s: %s", self.name, pick.explain())
        for agent in pick.agents:
            if self._stopping.is_set():
                return
            known = next(s for s in states if s.agent == agent)
            claimed = await self._claim(now)
            if claimed is None:
                log.debug("dialer %s: no contact due for %s", self.name, agent)
                return
            contact, verdict = claimed
            channel_id = new_channel_id()
            reserved = await self.store.try_reserve(agent, channel_id, now, known=known)
            if reserved is None:
                log.info("dialer %s: %s was taken meanwhile (inbound first); contact %d "
                         "goes back", self.name, agent, contact.id)
                async with self.sessions.begin() as session:
                    await CampaignRepository(session).release(contact.id, next_attempt_at=now)
                continue
            caller_id = self.campaign.caller_id_for(contact.number)
            try:
                async with self.sessions.begin() as session:
                    attempt = await CampaignRepository(session).start_attempt(
                        contact.id, at=now, caller_id=caller_id, channel_id=channel_id,
                        rule=verdict.rule, reason=verdict.reason,
                        pacing_rule=pick.decision.rule.value)
            except Exception:
                # Not written, so not dialled: the agent and the contact go back.
                with contextlib.suppress(IllegalTransition):
                    await self.store.apply(agent, OfferFailed(channel_id, "failed"), now)
                async with self.sessions.begin() as session:
                    await CampaignRepository(session).release(contact.id,
                                                              next_attempt_at=now)
                raise
            call = _Live(agent, channel_id, contact, attempt)
            self.live[agent] = call
            log.info("dialer %s: calling contact %d (%s) for %s, attempt %d: %s; %s",
                     self.name, contact.id, contact.number, agent, attempt,
                     pick.decision.rule.value, verdict.reason)
            tg.create_task(self._owned(call, caller_id), name=f"dialer {channel_id}")
            self._pulse()

    async def _claim(self, now: datetime) -> tuple[DueContact, Verdict] | None:
        """One due contact the rules allow now, and their verdict; those refused are not
        dialled: each goes where :func:`refusal_step` says (a DNC one counted blocked)."""
        return await claim_allowed(self.sessions, self.name, self.campaign, now,
                                   claimer=self.claimer, tries=CLAIMS_PER_AGENT)

    # -- one call ----------------------------------------------------------------------------

    async def _owned(self, call: _Live, caller_id: str) -> None:
        """:meth:`_call`, whose failure never stops the campaign: the agent is freed and
        the attempt closed as failed."""
        try:
            await self._call(call, caller_id)
        except Exception:
            log.exception("dialer %s: call %s failed", self.name, call.channel_id)
            await self._finish(call, Outcome.FAILED, None, agent_answered=False,
                               result="failed")
        finally:
            self.live.pop(call.agent, None)
            self._wake.set()
            self._pulse()

    async def _call(self, call: _Live, caller_id: str) -> None:
        with self.inboxes.open(call.channel_id) as inbox:
            # The agent is held for this contact while it rings (ringing: the router's
            # watchdog frees a reservation that does not ring within 15 s).
            with contextlib.suppress(IllegalTransition):
                await self.store.apply(call.agent, Ring(call.channel_id), self.clock())
            placed = await place_call(
                self.ari, inbox, number=call.contact.number, trunk=self.campaign.trunk,
                caller_id=caller_id,
                ring_seconds=self.campaign.ring_seconds, amd=self.campaign.amd.enabled,
                channel_id=call.channel_id, machine_message=message_for(self.campaign.amd))
            log.info("dialer %s: contact %d (%s): %s (cause %s)", self.name, call.contact.id,
                     call.contact.number, placed.outcome.value, placed.observation.cause)
            if placed.outcome is not Outcome.LIVE or placed.channel is None:
                await self._finish(call, placed.outcome, placed.observation.cause,
                                   agent_answered=False, result=f"contact_{placed.outcome.value}",
                                   message=placed.message)
                return
            await self._connect(call, placed, inbox)

    async def _connect(self, call: _Live, placed: PlacedCall,
                       inbox: asyncio.Queue[Event], *, ring_seconds: int | None = None) -> None:
        """Ring the reserved agent for the live contact (``ring_seconds``, else
        ``agent_ring_seconds``); bridge both when the agent answers, until either hangs
        up."""
        leg_id = f"{call.channel_id}-a"
        dial_string = self.config.agents[call.agent].dial_string(call.agent)
        with self.inboxes.open(leg_id, queue=inbox):
            with contextlib.suppress(ARIError):  # the contact hears ringing meanwhile
                await self.ari.channels.ring(call.channel_id)
            try:
                await self.ari.channels.originate(
                    dial_string, app=DIALER_APP, app_args=(ARG_AGENT,), channel_id=leg_id,
                    timeout=ring_seconds or self.agent_ring_seconds,
                    variables={"CALLERID(num)": call.contact.number,
                               **leg_variables(dial_string)})
            except ARIError as exc:
                log.warning("dialer %s: ringing %s failed: %s", self.name, call.agent, exc)
                await self._abandon(call, inbox)
                return
            answered = await self._agent_answers(call, leg_id, inbox)
            if answered is None:  # the contact hung up while the agent's phone rang
                await self._hang_up(leg_id, inbox)
                await self._finish(call, Outcome.LIVE, 16, agent_answered=False,
                                   result="caller_gone")
                return
            if not answered:
                log.info("dialer %s: %s did not answer contact %d", self.name, call.agent,
                         call.contact.id)
                await self._abandon(call, inbox)
                return
            await self._talk(call, leg_id, inbox)

    async def _agent_answers(self, call: _Live, leg_id: str,
                             inbox: asyncio.Queue[Event]) -> bool | None:
        """True: the agent answered (its leg is in the app); False: it did not; None: the
        contact hung up first."""
        async with asyncio.timeout(self.agent_ring_seconds + 15):
            while True:
                event = await inbox.get()
                match event:
                    case StasisStart(channel=channel) if channel.id == leg_id:
                        return True
                    case ChannelDestroyed(channel=channel) if channel.id == leg_id:
                        return False
                    case ChannelDestroyed(channel=channel) | StasisEnd(channel=channel) \
                            if channel.id == call.channel_id:
                        return None

    async def _talk(self, call: _Live, leg_id: str, inbox: asyncio.Queue[Event]) -> None:
        now = self.clock()
        bridge_id = dialer_bridge_id(call.channel_id)
        try:
            await self.ari.bridges.create("mixing", bridge_id=bridge_id,
                                          name=f"dialer {self.name}")
            with contextlib.suppress(ARIError):
                await self.ari.channels.ring_stop(call.channel_id)
            await self.ari.bridges.add_channel(bridge_id, [call.channel_id, leg_id])
        except ARIError as exc:  # one side hung up as the agent answered
            log.info("dialer %s: bridging %s failed: %s", self.name, call.channel_id, exc)
        try:
            await self.store.apply(call.agent, Answer(call.channel_id), now)
        except IllegalTransition as exc:  # the reservation was lost meanwhile
            log.warning("dialer %s: %s: %s", self.name, call.agent, exc)
        async with self.sessions.begin() as session:
            await CampaignRepository(session).mark_answered(call.attempt_id, at=now,
                                                            agent=call.agent)
        log.info("dialer %s: %s talks to contact %d", self.name, call.agent, call.contact.id)
        self.talking[call.agent] = bridge_id
        self._pulse()
        # Until either side hangs up; then the other goes too.
        cause: int | None = None
        gone: set[str] = set()
        hung_up: set[str] = set()  # a hang-up asked: its StasisEnd is no hand-off
        while not gone:
            event = await inbox.get()
            match event:
                case ChannelDestroyed(channel=channel, cause=c):
                    gone.add(channel.id)
                    cause = c if channel.id == call.channel_id else cause
                case StasisEnd(channel=channel):
                    gone.add(channel.id)
                case ChannelHangupRequest(channel=channel):
                    hung_up.add(channel.id)
        self.talking.pop(call.agent, None)
        if call.channel_id not in gone | hung_up and await handed_off(
                self.ari, call.channel_id, self.campaign):
            # The agent hung up while its disposition handed the contact over (CC_HANDOFF
            # is set first): the contact is on its way to the queue, not to be hung up.
            match await self._left(call.channel_id, inbox):
                case ChannelDestroyed(cause=c):
                    gone.add(call.channel_id)
                    cause = c
                case StasisEnd():
                    gone.add(call.channel_id)
                case ChannelHangupRequest():  # hanging up: its cause follows
                    gone.add(call.channel_id)
                    hung_up.add(call.channel_id)
        # The contact left the app alive: a warm transfer to a queue (ari_apps.
        # campaign_handoff), not hung up: only the agent's leg goes. A contact that hung
        # up as its hand-off began may still hold CC_HANDOFF: its hang-up request says.
        handoff = (await handed_off(self.ari, call.channel_id, self.campaign)
                   if call.channel_id in gone - hung_up else None)
        if call.channel_id in gone and cause is None and handoff is None:
            # Its StasisEnd comes before its ChannelDestroyed, which carries the cause.
            cause = await destroyed_cause(inbox, call.channel_id, budget=HANGUP_BUDGET)
        by = f"nobody: {handoff} handed the contact over" if handoff else (
            "contact" if call.channel_id in gone else "agent")
        for channel_id in (call.channel_id, leg_id):
            if channel_id not in gone:
                with contextlib.suppress(ARIError):
                    await self.ari.channels.hangup(channel_id)
        if handoff is None:  # else gone already, and its id the queue router's now
            with contextlib.suppress(ARIError):
                await self.ari.bridges.destroy(bridge_id)
        end = self.clock()
        try:
            await self.store.apply(call.agent, Hangup(call.channel_id, self.wrap_up), end)
        except IllegalTransition as exc:
            log.info("dialer %s: %s already moved on: %s", self.name, call.agent, exc)
        await self._end_attempt(call, AttemptOutcome.ANSWERED, end, cause=cause,
                                answered_at=now, agent=call.agent)
        if handoff is not None:
            await record_handoff(self.sessions, self.config.campaigns, call.attempt_id,
                                 handoff, agent=call.agent, now=end)
        log.info("dialer %s: contact %d's call ended (hung up by %s); %s wraps up", self.name,
                 call.contact.id, by, call.agent)

    async def _abandon(self, call: _Live, inbox: asyncio.Queue[Event]) -> None:
        """Nobody takes the live contact: the safe-harbor message, then hang up."""
        sound = self.campaign.safe_harbor
        if sound is not None:
            with contextlib.suppress(ARIError):
                await self.ari.channels.ring_stop(call.channel_id)
            try:
                playback = await self.ari.channels.play(call.channel_id, f"sound:{sound}")
                async with asyncio.timeout(SAFE_HARBOR_BUDGET):
                    while True:
                        event = await inbox.get()
                        if isinstance(event, PlaybackFinished) and \
                                event.playback.id == playback.id:
                            if event.playback.state == "done":
                                self.safe_harbor_played.append(call.channel_id)
                            log.info("dialer %s: safe harbor played to %s (%s)", self.name,
                                     call.channel_id, event.playback.state)
                            break
                        if isinstance(event, ChannelDestroyed | StasisEnd) and \
                                event.channel.id == call.channel_id:
                            break
            except (ARIError, TimeoutError) as exc:
                log.info("dialer %s: safe harbor for %s: %s", self.name, call.channel_id,
                         exc or "too long")
        await self._hang_up(call.channel_id, inbox)
        await self._finish(call, Outcome.LIVE, None, agent_answered=False,
                           result="no_answer")

    async def _left(self, channel_id: str, inbox: asyncio.Queue[Event]) -> Event | None:
        """The ``StasisEnd`` of *channel_id* within :data:`HANGUP_BUDGET` (or its hang-up
        request, or its end); None when it stays (the hand-off failed: hung up then)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANGUP_BUDGET):
                while True:
                    event = await inbox.get()
                    match event:
                        case StasisEnd(channel=channel) | ChannelDestroyed(channel=channel) \
                                | ChannelHangupRequest(channel=channel) \
                                if channel.id == channel_id:
                            return event
        return None

    async def _hang_up(self, channel_id: str, inbox: asyncio.Queue[Event]) -> None:
        await hang_up_and_wait(self.ari, inbox, channel_id, name=self.name,
                               budget=HANGUP_BUDGET)

    async def _finish(self, call: _Live, outcome: Outcome, cause: int | None, *,
                      agent_answered: bool, result: str,
                      message: MachineMessage | None = None) -> None:
        """An attempt that did not reach the agent: free the agent, end the attempt
        (``message``: what a machine got, for the attempt's reason and the retry)."""
        now = self.clock()
        try:
            if call.agent:  # predictive: none until a live answer took one
                await self.store.apply(call.agent, OfferFailed(call.channel_id, result), now)
        except IllegalTransition as exc:
            log.info("dialer %s: %s already moved on: %s", self.name, call.agent, exc)
        await self._end_attempt(call, attempt_outcome(outcome, agent_answered=agent_answered),
                                now, cause=cause, message=message)

    async def _end_attempt(self, call: _Live, stored: str, at: datetime, *,
                           cause: int | None, answered_at: datetime | None = None,
                           agent: str | None = None,
                           message: MachineMessage | None = None) -> None:
        outcome = AttemptOutcome(stored)
        await finish_attempt(
            self.sessions, self.name, self.campaign, attempt_id=call.attempt_id,
            contact_id=call.contact.id, number=call.contact.number,
            timezone=call.contact.timezone, attempts=call.contact.attempts + 1,
            outcome=outcome, at=at, cause=cause, answered_at=answered_at, agent=agent,
            message=message)
        self._attempt_ended(call.attempt_id)

    # -- restart -----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Close what a previous run of this dialer left open (see the module doc)."""
        now = self.clock()
        async with self.sessions() as session:
            claims = await CampaignRepository(session).open_claims(self.name, self.claimer)
        held: dict[str, list[str]] = {}  # channel -> the agents holding it
        for state in await self.store.all():
            if state.call:
                held.setdefault(state.call, []).append(state.agent)
        for claim in claims:
            if claim.attempt_id is None:
                await release_unplaced(self.sessions, self.name, claim.contact_id, now)
                continue
            # A contact handed to a queue while no dialer ran is the router's now.
            handoff = (await handed_off(self.ari, claim.channel_id, self.campaign)
                       if claim.channel_id else None)
            for channel_id in (claim.channel_id, f"{claim.channel_id}-a"):
                if channel_id and not (handoff and channel_id == claim.channel_id):
                    with contextlib.suppress(ARIError):
                        await self.ari.channels.hangup(channel_id)
            if claim.channel_id and handoff is None:  # the call's bridge, else left behind
                with contextlib.suppress(ARIError):
                    await self.ari.bridges.destroy(dialer_bridge_id(claim.channel_id))
            # The agent held for that call is freed (after a hand-off, the queue's agent
            # holds the same channel: only the campaign's agent who took it).
            for agent in held.get(claim.channel_id or "", ()):
                if handoff is None or agent == claim.agent:
                    with contextlib.suppress(IllegalTransition):
                        await self.store.apply(agent, CallGone(claim.channel_id), now,
                                               reason="dialer restarted")
            outcome = (AttemptOutcome.ANSWERED if claim.answered_at is not None
                       else AttemptOutcome.CANCELLED)
            async with self.sessions.begin() as session:
                repository = CampaignRepository(session)
                step = next_step(self.campaign, number=claim.number,
                                 timezone=claim.timezone, attempts=claim.attempts,
                                 outcome=outcome, at=now,
                                 earlier=await repository.attempt_history(
                                     claim.contact_id, exclude=claim.attempt_id))
                await repository.end_attempt(
                    claim.attempt_id, outcome=outcome, at=now,
                    next_state=ContactState(step.state), next_attempt_at=step.next_attempt_at,
                    answered_at=claim.answered_at, agent=claim.agent)
            if handoff is not None and claim.agent:
                await record_handoff(self.sessions, self.config.campaigns, claim.attempt_id,
                                     handoff, agent=claim.agent, now=now)
            log.warning("dialer %s: attempt %d left open by a stopped dialer closed %s; "
                        "contact %d %s (%s)", self.name, claim.attempt_id, outcome.value,
                        claim.contact_id, step.state, step.reason)
