"""The preview dialer: an agent's previewed contact dialled once the agent asks (Stasis
app ``cc-preview``; the HTTP API's ``POST /api/v1/campaigns/preview/{contact}/dial``).

Dialplan contract: nothing in the dialplan enters ``cc-preview``. Its channels are the
ones it originates, with our ids:

* the agent's leg first, the agent's dial string (``PJSIP/<agent>``), id the agent's
  reservation (``cc-preview-<contact>-<hex>``, :func:`callcenter.dialer.preview.
  preview_call_id`): it enters the app (argument ``agent``) when the agent answers and
  waits in the mixing bridge ``cc-<reservation>``, hearing ringing (ARI ``ring``: a tone
  Asterisk plays on the answered channel);
* then the contact's leg, ``Local/<number>@cc-trunk-<trunk>-out/n`` (id
  ``<reservation>-c``), placed by :func:`callcenter.dialer.placer.place_call` without AMD
  (an agent is on the line already); answered live, it joins the bridge.

The attempt row is written before anything is dialled (:meth:`PreviewDialer.dial`
answers with its id, which the agent's disposition names). How it ends: the agent's
phone not answering, or failing, cancels the attempt (the contact is due again now, it
was never dialled); the contact not answering (busy, no answer...) ends the attempt with
that outcome and the campaign's retry rule; a live answer is ``answered`` by the agent,
the call lasting until either side hangs up, then the other leg is hung up too. The
agent's state follows: ``ringing`` while its phone rings, ``on_call`` once it answers,
``wrap_up`` after (a phone that never answered frees it at once). If the agent hangs up
while the contact rings, the contact's call is cancelled.

Restart safety: on start (:meth:`PreviewDialer.recover`), an attempt a previous run left
open (a contact claimed by a preview with an attempt not ended) is closed as the
progressive dialer closes its own: legs hung up, ``cancelled`` (``answered`` if the agent
had taken it), the agent freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.transfer import leg_variables
from callcenter.agents.state import (
    Answer,
    CallGone,
    Hangup,
    IllegalTransition,
    OfferFailed,
    Ring,
)
from callcenter.agents.store import AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ari.client import ARIClient, ARIError, ARINotFound
from callcenter.asterisk.ari.events import (
    ChannelDestroyed,
    Event,
    StasisEnd,
    StasisStart,
)
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.placer import ChannelInboxes, lost_channel, place_call
from callcenter.dialer.preview import (
    CLAIMER_PREFIX,
    HeldPreview,
    PreviewError,
    screen,
)
from callcenter.dialer.progressive import attempt_outcome, reschedule
from callcenter.storage.campaigns import CampaignRepository
from callcenter.storage.models import AttemptOutcome, ContactState

__all__ = ["ARG_AGENT", "PREVIEW_APP", "PreviewCall", "PreviewDialer", "run_with_events"]

log = logging.getLogger(__name__)

#: The Stasis app of preview calls (a websocket of its own: never the progressive
#: dialer's ``cc-dialer``, which another process may hold).
PREVIEW_APP: Final = "cc-preview"
#: The Stasis argument of the agent's leg when the agent answers.
ARG_AGENT: Final = "agent"
#: Seconds the agent's phone rings before the preview counts as not taken.
AGENT_RING_SECONDS: Final = 20


@dataclass
class PreviewCall:
    """One preview being dialled: what it is, and what happened (for tests and logs)."""

    held: HeldPreview
    attempt_id: int
    caller_id: str
    #: ``ringing_agent``, ``dialling``, ``talking`` or ``ended``.
    stage: str = "ringing_agent"
    bridge_id: str | None = None
    outcome: AttemptOutcome | None = None
    #: Set when the contact's live answer joins the agent's bridge, and at the end.
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def agent_leg(self) -> str:
        return self.held.call

    @property
    def contact_leg(self) -> str:
        return f"{self.held.call}-c"


async def _settle(task: asyncio.Task[Any]) -> None:
    """Cancel *task* if it still runs and wait for its end (its result or error stay in
    it; our own cancellation still propagates)."""
    task.cancel()
    await asyncio.wait({task})


async def _gone(inbox: asyncio.Queue[Event], channel_id: str) -> int | None:
    """Wait for the end of *channel_id* (leaving the app or destroyed); its cause if
    known."""
    while True:
        event = await inbox.get()
        match event:
            case ChannelDestroyed(channel=channel, cause=cause) if channel.id == channel_id:
                return cause
            case StasisEnd(channel=channel) if channel.id == channel_id:
                return None


class PreviewDialer:
    """Dials the previews the API asks for, until :meth:`stop` (or cancellation)."""

    def __init__(self, config: CallCenterConfig, ari: ARIClient,
                 sessions: async_sessionmaker[AsyncSession], *, store: AgentStore,
                 clock: Callable[[], datetime] = utc_now,
                 wrap_up: timedelta = timedelta(seconds=10),
                 agent_ring_seconds: int = AGENT_RING_SECONDS,
                 app: str = PREVIEW_APP) -> None:
        self.config = config
        self.ari = ari
        self.sessions = sessions
        self.store = store
        self.clock = clock
        self.wrap_up = wrap_up
        self.agent_ring_seconds = agent_ring_seconds
        self.app = app
        self.inboxes = ChannelInboxes()
        #: Previews being dialled, by contact id.
        self.live: dict[int, PreviewCall] = {}
        #: Every preview dialled by this dialer, by attempt id (tests wait on them).
        self.calls: dict[int, PreviewCall] = {}
        self.ready = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._starting: set[int] = set()
        self._stopping = asyncio.Event()

    async def on_event(self, event: Event) -> None:
        """The websocket reader's handler: hand the event to its call (never blocks)."""
        self.inboxes.put(event)

    async def resync(self) -> None:
        """After an events websocket (re)connection: events sent meanwhile are lost, so a
        leg of a call in progress that ended then gets its end now (a
        ``ChannelDestroyed`` of cause 0 in its inbox)."""
        live = {channel.id for channel in await self.ari.channels.list()}
        for call in list(self.live.values()):
            legs = (call.agent_leg,) if call.stage == "ringing_agent" \
                else (call.agent_leg, call.contact_leg)
            for channel_id in legs:
                if channel_id not in live:
                    self.inboxes.put(lost_channel(channel_id, self.app))

    def stop(self) -> None:
        """Take no more dials; :meth:`run` returns once the calls in progress ended."""
        self._stopping.set()

    async def run(self) -> None:
        """Recover, then own the calls :meth:`dial` starts until stopped."""
        await self.recover()
        async with asyncio.TaskGroup() as tg:
            self._tasks = tg
            self.ready.set()
            try:
                await self._stopping.wait()
            finally:
                self._tasks = None
        log.info("preview dialer (%s) stopped", self.app)

    async def dial(self, held: HeldPreview) -> PreviewCall:
        """Check the calling rules again, write the attempt (with the verdict, for the
        audit trail), then start the call in a task of its own; the call at once (stage
        ``ringing_agent``). 409 a call of this contact under way or the rules refusing it
        now; 503 not running.
        """
        if self._tasks is None or self._stopping.is_set():
            raise PreviewError(503, "the preview dialer is not running: try again")
        if held.contact_id in self.live or held.contact_id in self._starting:
            raise PreviewError(409, f"contact {held.contact_id} is being called already")
        campaign = self.config.campaigns[held.campaign]
        caller_id = campaign.caller_id_for(held.number)
        now = self.clock()
        # Two dials of one contact at once: the second is refused above, not written.
        self._starting.add(held.contact_id)
        try:
            async with self.sessions.begin() as session:
                repository = CampaignRepository(session)
                # The rules again at the dial: the agent may have read past the window's
                # end, or the number been listed meanwhile.
                screened = screen(held, campaign, now, dnc=await repository.is_dnc(held.number),
                                  last_abandon_at=await repository.last_abandon_at(
                                      held.contact_id))
                if screened.action != "offer":
                    raise PreviewError(409, f"contact {held.contact_id} may not be called now "
                                            f"({screened.verdict.rule}: "
                                            f"{screened.verdict.reason}): skip it")
                # Before the dial: a restarted dialer finds the attempt and closes it.
                attempt = await repository.start_attempt(
                    held.contact_id, at=now, caller_id=caller_id,
                    channel_id=f"{held.call}-c", rule=screened.verdict.rule,
                    reason=screened.verdict.reason, pacing_rule="preview")
        finally:
            self._starting.discard(held.contact_id)
        call = PreviewCall(held, attempt, caller_id)
        self.live[held.contact_id] = call
        self.calls[attempt] = call
        log.info("preview %s: %s dials contact %d (%s), attempt %d", held.campaign,
                 held.agent, held.contact_id, held.number, attempt)
        self._tasks.create_task(self._owned(call), name=f"preview {held.call}")
        return call

    # -- one call --------------------------------------------------------------------------

    async def _owned(self, call: PreviewCall) -> None:
        """:meth:`_call`, whose failure never stops the dialer: the agent is freed and the
        attempt closed as failed."""
        try:
            await self._call(call)
        except Exception:
            log.exception("preview: call %s failed", call.agent_leg)
            for channel_id in (call.contact_leg, call.agent_leg):
                with contextlib.suppress(ARIError):
                    await self.ari.channels.hangup(channel_id)
            if call.outcome is None:
                await self._free_agent(call, answered=call.stage != "ringing_agent")
                await self._end(call, AttemptOutcome.FAILED, None)
        finally:
            self.live.pop(call.held.contact_id, None)
            call.stage = "ended"
            call.ended.set()

    async def _call(self, call: PreviewCall) -> None:
        held = call.held
        with self.inboxes.open(call.agent_leg) as agent_inbox, \
                self.inboxes.open(call.contact_leg) as contact_inbox:
            if not await self._ring_agent(call, agent_inbox):
                await self._free_agent(call, answered=False)
                # Never dialled: the contact is due again at once, whatever the rules.
                await self._end(call, AttemptOutcome.CANCELLED, None,
                                step=(ContactState.PENDING, self.clock()))
                return
            bridge_id = call.bridge_id = f"cc-{call.agent_leg}"
            agent_gone = asyncio.create_task(_gone(agent_inbox, call.agent_leg))
            try:
                await self.ari.bridges.create("mixing", bridge_id=bridge_id,
                                              name=f"preview {held.campaign}")
                await self.ari.bridges.add_channel(bridge_id, call.agent_leg)
                with contextlib.suppress(ARIError):  # the agent hears ringing meanwhile
                    await self.ari.channels.ring(call.agent_leg)
                call.stage = "dialling"
                await self._dial_contact(call, agent_gone, contact_inbox)
            finally:
                await _settle(agent_gone)
                for channel_id in (call.contact_leg, call.agent_leg):
                    with contextlib.suppress(ARIError):
                        await self.ari.channels.hangup(channel_id)
                with contextlib.suppress(ARIError):
                    await self.ari.bridges.destroy(bridge_id)

    async def _ring_agent(self, call: PreviewCall, inbox: asyncio.Queue[Event]) -> bool:
        """Ring the agent's phone; whether the agent answered (its leg is in the app)."""
        agent = call.held.agent
        dial_string = self.config.agents[agent].dial_string(agent)
        try:
            await self.ari.channels.originate(
                dial_string, app=self.app, app_args=(ARG_AGENT,), channel_id=call.agent_leg,
                timeout=self.agent_ring_seconds,
                variables={"CALLERID(num)": call.held.number, **leg_variables(dial_string)})
        except ARIError as exc:
            log.warning("preview: ringing %s failed: %s", agent, exc)
            return False
        with contextlib.suppress(IllegalTransition):
            await self.store.apply(agent, Ring(call.agent_leg), self.clock())
        try:
            async with asyncio.timeout(self.agent_ring_seconds + 15):
                while True:
                    event = await inbox.get()
                    match event:
                        case StasisStart(channel=channel) if channel.id == call.agent_leg:
                            break
                        case ChannelDestroyed(channel=channel) if channel.id == call.agent_leg:
                            log.info("preview: %s did not answer for contact %d", agent,
                                     call.held.contact_id)
                            return False
        except TimeoutError:
            with contextlib.suppress(ARIError):
                await self.ari.channels.hangup(call.agent_leg)
            return False
        try:
            await self.store.apply(agent, Answer(call.agent_leg), self.clock())
        except IllegalTransition as exc:  # the reservation was lost meanwhile
            log.warning("preview: %s: %s", agent, exc)
        return True

    async def _dial_contact(self, call: PreviewCall, agent_gone: asyncio.Task[int | None],
                            inbox: asyncio.Queue[Event]) -> None:
        """Dial the contact while the agent waits; bridge a live answer until either
        side hangs up."""
        held = call.held
        campaign = self.config.campaigns[held.campaign]
        placing = asyncio.create_task(place_call(
            self.ari, inbox, number=held.number, trunk=campaign.trunk,
            caller_id=call.caller_id, ring_seconds=campaign.ring_seconds, amd=False,
            channel_id=call.contact_leg, app=self.app))
        try:
            await asyncio.wait({placing, agent_gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Still placing: the agent hung up, the contact's call is cancelled (the
            # placer hangs it up).
            await _settle(placing)
        if placing.cancelled():
            log.info("preview: %s hung up while contact %d rang", held.agent,
                     held.contact_id)
            await self._free_agent(call, answered=True)
            await self._end(call, AttemptOutcome.CANCELLED, None)
            return
        placed = placing.result()
        log.info("preview %s: contact %d (%s): %s (cause %s)", held.campaign, held.contact_id,
                 held.number, placed.outcome.value, placed.observation.cause)
        if placed.outcome is not Outcome.LIVE or placed.channel is None or agent_gone.done():
            await self._free_agent(call, answered=True)
            await self._end(call, AttemptOutcome(attempt_outcome(placed.outcome,
                                                                 agent_answered=False)),
                            placed.observation.cause)
            return
        await self._talk(call, agent_gone, inbox)

    async def _talk(self, call: PreviewCall, agent_gone: asyncio.Task[int | None],
                    inbox: asyncio.Queue[Event]) -> None:
        held = call.held
        answered_at = self.clock()
        assert call.bridge_id is not None
        with contextlib.suppress(ARIError):
            await self.ari.channels.ring_stop(call.agent_leg)
        try:
            await self.ari.bridges.add_channel(call.bridge_id, call.contact_leg)
        except ARIError as exc:  # one side hung up as the contact answered
            log.info("preview: bridging %s failed: %s", call.contact_leg, exc)
        async with self.sessions.begin() as session:
            await CampaignRepository(session).mark_answered(call.attempt_id, at=answered_at,
                                                            agent=held.agent)
        call.stage = "talking"
        call.connected.set()
        log.info("preview %s: %s talks to contact %d", held.campaign, held.agent,
                 held.contact_id)
        contact_gone = asyncio.create_task(_gone(inbox, call.contact_leg))
        try:
            await asyncio.wait({contact_gone, agent_gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _settle(contact_gone)
        cause = contact_gone.result() if contact_gone.done() and not contact_gone.cancelled() \
            else None
        log.info("preview %s: contact %d's call ended (hung up by %s)", held.campaign,
                 held.contact_id, "contact" if cause is not None or not agent_gone.done()
                 else "agent")
        await self._free_agent(call, answered=True)
        await self._end(call, AttemptOutcome.ANSWERED, cause, answered_at=answered_at)

    async def _free_agent(self, call: PreviewCall, *, answered: bool) -> None:
        """The agent after the call: wrap-up once it answered, free otherwise."""
        event = Hangup(call.agent_leg, self.wrap_up) if answered \
            else OfferFailed(call.agent_leg, "no_answer")
        try:
            await self.store.apply(call.held.agent, event, self.clock())
        except IllegalTransition as exc:
            log.info("preview: %s already moved on: %s", call.held.agent, exc)

    async def _end(self, call: PreviewCall, outcome: AttemptOutcome, cause: int | None, *,
                   answered_at: datetime | None = None,
                   step: tuple[ContactState, datetime | None] | None = None) -> None:
        held = call.held
        at = self.clock()
        campaign = self.config.campaigns[held.campaign]
        if step is None:
            decided = reschedule(campaign, outcome, held.attempts + 1, at)
            state, due, why = ContactState(decided.state), decided.at, decided.reason
        else:
            (state, due), why = step, "the agent did not take it: due again now"
        async with self.sessions.begin() as session:
            await CampaignRepository(session).end_attempt(
                call.attempt_id, outcome=outcome, at=at, next_state=state,
                next_attempt_at=due, answered_at=answered_at, cause=cause,
                agent=held.agent if answered_at is not None else None)
        call.outcome = outcome
        log.info("preview %s: attempt %d ended %s; contact %d %s (%s)", held.campaign,
                 call.attempt_id, outcome.value, held.contact_id, state.value, why)

    # -- restart -----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Close the attempts a previous run left open (see the module doc)."""
        now = self.clock()
        held = {state.call: state for state in await self.store.all() if state.call}
        for name, campaign in self.config.campaigns.items():
            if campaign.mode != "preview":
                continue
            claims = []
            async with self.sessions() as session:
                repository = CampaignRepository(session)
                for agent in self.config.agents:
                    claims += await repository.open_claims(name, f"{CLAIMER_PREFIX}{agent}")
            for claim in claims:
                if claim.attempt_id is None or not claim.channel_id:
                    continue  # shown, never dialled: the agent may still dial it
                agent_leg = claim.channel_id.removesuffix("-c")
                for channel_id in (claim.channel_id, agent_leg):
                    with contextlib.suppress(ARINotFound, ARIError):
                        await self.ari.channels.hangup(channel_id)
                if agent_leg in held:
                    with contextlib.suppress(IllegalTransition):
                        await self.store.apply(held[agent_leg].agent, CallGone(agent_leg),
                                               now, reason="preview dialer restarted")
                outcome = (AttemptOutcome.ANSWERED if claim.answered_at is not None
                           else AttemptOutcome.CANCELLED)
                step = reschedule(campaign, outcome, claim.attempts, now)
                async with self.sessions.begin() as session:
                    await CampaignRepository(session).end_attempt(
                        claim.attempt_id, outcome=outcome, at=now,
                        next_state=ContactState(step.state), next_attempt_at=step.at,
                        answered_at=claim.answered_at, agent=claim.agent)
                log.warning("preview %s: attempt %d left open by a stopped dialer closed %s; "
                            "contact %d %s (%s)", name, claim.attempt_id, outcome.value,
                            claim.contact_id, step.state.value, step.reason)


async def run_with_events(dialer: PreviewDialer) -> None:
    """Run *dialer* and feed it its app's events (reconnecting, then :meth:`PreviewDialer.
    resync`) until cancelled: the service's ``preview dialer`` component."""
    async with asyncio.TaskGroup() as tg:
        tg.create_task(dialer.ari.run_event_loop(dialer.on_event, on_connected=dialer.resync),
                       name=f"{dialer.app} events")
        tg.create_task(dialer.run(), name=f"{dialer.app} dialer")
