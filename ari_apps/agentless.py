"""The agentless dialer: a campaign's contacts called through its trunk, each live answer
sent into the campaign's call flow, the flow's answers stored per contact (Stasis app
``cc-dialer``, as the progressive dialer; one of them runs per campaign).

Dialplan contract: the contact's leg ``Local/<number>@cc-trunk-<trunk>-out`` (id
``cc-dial-<hex>``) is placed by :func:`callcenter.dialer.placer.place_call` (AMD when
the campaign enables it: a machine is hung up there, or gets the campaign's message when
``on_machine: leave_message``). A live answer, still in Stasis, gets
``CC_CAMPAIGN``, ``CC_CONTACT_ID`` and ``CC_ATTEMPT_ID`` and is sent on (ARI
``continue``) to the flow's generated context ``cc-flow-<flow>,s,1``, where the IVR
engine runs it as for an inbound caller: a ``collect`` step sets its variable, a menu
option ``{queue: ...}`` hands the call to the queue router (``cc-queue``) like any
inbound caller ("press 1 to speak to someone"), the flow's end hangs up. A campaign with
``message`` instead of ``flow`` plays it over ARI and hangs up.

How the answers are stored, and why this way: before the ``continue``, the dialer
subscribes its app to the channel (``POST /applications/cc-dialer/subscription``,
``channel:<id>``), so it keeps receiving the channel's events after it left Stasis: each
``ChannelVarset`` of an answer variable whose value the collect step accepts
(:func:`~callcenter.dialer.agentless.valid_answer`) is written at once, one transaction
each, and the ``ChannelDestroyed`` ends the attempt with its real cause. A hangup handler
running a FastAGI script would have needed the FastAGI server up and the dialplan of
every flow changed; this needs neither, keeps the flow's dialplan the inbound one, and
the dialer that owns the attempt is the one that writes its answers.

Restart safety: every answer is in the database as soon as it is given, and the attempt
is marked answered when the flow starts. A restarted dialer (same node) takes back the
calls it left in a flow (:meth:`AgentlessDialer.recover`): it subscribes again, reads the
answer variables the channel holds now (those given while it was down) and follows the
call to its end. A call it left ringing or never saw answered is hung up and its attempt
``cancelled``; a contact claimed but never dialled goes back. After an events websocket
reconnection (:meth:`AgentlessDialer.resync`), a call still up has its answer variables
read again (those set while the events were lost), and a call that ended meanwhile is
ended too.

One pass of the loop (:meth:`AgentlessDialer.run`, on every change and every
:data:`TICK` s): the campaign's run state
(:class:`~callcenter.dialer.state_watch.StateWatch`: paused or stopped, no call is
placed; stopped, :meth:`AgentlessDialer.run` returns once the calls in progress ended);
:func:`~callcenter.dialer.agentless.lines_free` says how many calls to
place (the campaign's ``lines`` less those up); for each, a due contact the rules allow
(:func:`~callcenter.dialer.attempts.claim_allowed`, the same path as the progressive
dialer's), its attempt written (pacing rule ``lines``), then the call placed in a task of
its own. The attempt ends with the real outcome (``answered`` for a live answer, busy,
no answer, machine, ...) and the contact moves on as
:func:`~callcenter.dialer.attempts.finish_attempt` decides: an answered contact is done
(its survey complete or not; the log says which), the others follow the retry rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.dialer_loop import PassLoop
from callcenter.asterisk import variables as V
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ari.client import ARIClient, ARIError, ARINotFound
from callcenter.asterisk.ari.events import (
    ChannelDestroyed,
    ChannelVarset,
    Event,
    PlaybackFinished,
)
from callcenter.config.campaign import Campaign
from callcenter.config.campaign_checks import collected_variables
from callcenter.config.models import CallCenterConfig, CollectSpec
from callcenter.dialer.agentless import (
    answer_variables,
    lines_free,
    survey,
    valid_answer,
)
from callcenter.dialer.amd import DIALER_APP
from callcenter.dialer.attempts import claim_allowed, finish_attempt, release_unplaced
from callcenter.dialer.campaign_state import claimer_of
from callcenter.dialer.machine_message import MachineMessage, message_for
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.placer import (
    ChannelInboxes,
    hang_up_and_wait,
    lost_channel,
    new_channel_id,
    place_call,
)
from callcenter.dialer.progressive import attempt_outcome
from callcenter.dialer.state_watch import StateWatch
from callcenter.storage.answers import AnswerRepository
from callcenter.storage.campaigns import CampaignRepository, DueContact
from callcenter.storage.models import AttemptOutcome
from dialplan.generator import flow_context

__all__ = ["FLOW_BUDGET", "PACING_RULE", "TICK", "AgentlessDialer"]

log = logging.getLogger(__name__)

#: Seconds between passes when nothing wakes the loop (due times, the clock).
TICK: Final = 1.0
#: The pacing rule written on each attempt: placed because a line was free.
PACING_RULE: Final = "lines"
#: Seconds a call is followed in its flow (a survey takes minutes; a caller who pressed
#: 1 may talk to an agent a long while). Past it the attempt ends ``answered`` with the
#: answers so far, and the call goes on unfollowed: never cut off by the dialer.
FLOW_BUDGET: Final = 4 * 3600.0
#: Seconds the message of a message-only campaign may take before the call is hung up.
MESSAGE_BUDGET: Final = 120.0
#: Contacts claimed for one free line in a pass (those the rules refuse go back).
CLAIMS_PER_LINE: Final = 20


@dataclass
class _Live:
    """A call this dialer is handling."""

    channel_id: str
    contact: DueContact
    attempt_id: int
    answered_at: datetime | None = None
    #: Answers given on this call so far (variable -> value).
    given: dict[str, str] = field(default_factory=dict)


class AgentlessDialer(PassLoop):
    """Runs one agentless campaign until :meth:`stop` (or cancellation)."""

    def __init__(self, config: CallCenterConfig, campaign: str, ari: ARIClient,
                 sessions: async_sessionmaker[AsyncSession], *, node: str = "dialer",
                 clock: Callable[[], datetime] = utc_now, tick: float = TICK,
                 flow_budget: float = FLOW_BUDGET) -> None:
        super().__init__()
        if campaign not in config.campaigns:
            raise ValueError(f"unknown campaign {campaign!r} (known: "
                             f"{', '.join(sorted(config.campaigns)) or 'none'})")
        self.config = config
        self.name = campaign
        self.campaign: Campaign = config.campaigns[campaign]
        if self.campaign.mode != "agentless":
            raise ValueError(f"campaign {campaign!r} is {self.campaign.mode}: this dialer "
                             "runs agentless campaigns only")
        if self.campaign.flow is None and self.campaign.message is None:
            raise ValueError(f"campaign {campaign!r} has neither a flow nor a message")
        self.ari = ari
        self.sessions = sessions
        self.clock = clock
        self.node = node
        self.claimer = claimer_of(node)
        self.tick = tick
        self.flow_budget = flow_budget
        #: The answer variables stored, and the collect steps that accept each.
        self.wanted: tuple[str, ...] = answer_variables(config, self.campaign)
        collected = (collected_variables(config, self.campaign.flow)
                     if self.campaign.flow is not None else {})
        self.specs: Mapping[str, tuple[CollectSpec, ...]] = {
            name: collected.get(name, ()) for name in self.wanted}
        #: The campaign's run state (paused, stopped: no new call), and the heartbeat.
        self.watch = StateWatch(sessions, campaign, self.claimer)
        self.inboxes = ChannelInboxes()
        #: Calls up, by channel id; the most there ever were at once (for tests).
        self.live: dict[str, _Live] = {}
        self.peak = 0
        #: Calls taken back from a previous run, started with the loop.
        self._adopted: list[_Live] = []

    # -- the app's events ------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """The websocket reader's handler: hand the event to its call (never blocks)."""
        self.inboxes.put(event)

    async def resync(self) -> None:
        """After an events websocket (re)connection (events sent while it was down are
        lost): a call that ended meanwhile gets its end now, one still up has its answer
        variables read again."""
        up = {channel.id for channel in await self.ari.channels.list()}
        for call in list(self.live.values()):
            if call.channel_id not in up:
                self.inboxes.put(lost_channel(call.channel_id, DIALER_APP))
            elif call.answered_at is not None:  # answers given while events were lost
                for variable in self.wanted:
                    with contextlib.suppress(ARIError):
                        await self._answer(call, variable, await self.ari.channels.get_variable(
                            call.channel_id, variable))

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover, then pass on every change and tick until stopped."""
        log.info("dialer %s: agentless campaign %s, %s, %d line(s), answers %s",
                 self.claimer, self.name, f"flow {self.campaign.flow}"
                 if self.campaign.flow else f"message {self.campaign.message}",
                 self.campaign.lines, ", ".join(self.wanted) or "none")
        await self.recover()
        self.ready.set()
        async with asyncio.TaskGroup() as tg:
            for call in self._adopted:
                self._take(call)
                tg.create_task(self._owned(call, self._follow_adopted(call)),
                               name=f"agentless {call.channel_id}")
            self._adopted.clear()
            await self._run_passes(tg)
        await self.watch.leave()
        log.info("dialer %s: campaign %s stopped", self.claimer, self.name)

    def _take(self, call: _Live) -> None:
        self.live[call.channel_id] = call
        self.peak = max(self.peak, len(self.live))

    async def _pass(self, tg: asyncio.TaskGroup) -> None:
        now = self.clock()
        permit = await self.watch.check()  # paused or stopped: no new call
        if permit.exit:
            self.stop()
        if not permit.place_calls:
            return
        free = lines_free(self.campaign.lines, len(self.live),
                          stopping=self._stopping.is_set())
        for _ in range(free):
            claimed = await claim_allowed(self.sessions, self.name, self.campaign, now,
                                          claimer=self.claimer, tries=CLAIMS_PER_LINE)
            if claimed is None:
                return
            contact, verdict = claimed
            channel_id = new_channel_id()
            try:
                async with self.sessions.begin() as session:
                    attempt = await CampaignRepository(session).start_attempt(
                        contact.id, at=now,
                        caller_id=self.campaign.caller_id_for(contact.number),
                        channel_id=channel_id, rule=verdict.rule, reason=verdict.reason,
                        pacing_rule=PACING_RULE)
            except Exception:
                # Not written, so not dialled: the contact goes back.
                async with self.sessions.begin() as session:
                    await CampaignRepository(session).release(contact.id, next_attempt_at=now)
                raise
            call = _Live(channel_id, contact, attempt)
            self._take(call)
            log.info("dialer %s: calling contact %d (%s), attempt %d: line %d of %d; %s",
                     self.name, contact.id, contact.number, attempt, len(self.live),
                     self.campaign.lines, verdict.reason)
            tg.create_task(self._owned(call, self._call(call)), name=f"agentless {channel_id}")
            self._pulse()

    # -- one call ----------------------------------------------------------------------------

    async def _owned(self, call: _Live, work: Coroutine[Any, Any, None]) -> None:
        """Run one call's coroutine; its failure never stops the campaign: the attempt is
        closed (``answered`` if the flow had started, else ``failed``)."""
        try:
            await work
        except Exception:
            log.exception("dialer %s: call %s failed", self.name, call.channel_id)
            outcome = (AttemptOutcome.ANSWERED if call.answered_at is not None
                       else AttemptOutcome.FAILED)
            with contextlib.suppress(ARIError):
                await self.ari.channels.hangup(call.channel_id)
            await self._end(call, outcome, None)
        finally:
            self.live.pop(call.channel_id, None)
            self._wake.set()
            self._pulse()

    async def _call(self, call: _Live) -> None:
        with self.inboxes.open(call.channel_id) as inbox:
            placed = await place_call(
                self.ari, inbox, number=call.contact.number, trunk=self.campaign.trunk,
                caller_id=self.campaign.caller_id_for(call.contact.number),
                ring_seconds=self.campaign.ring_seconds, amd=self.campaign.amd.enabled,
                channel_id=call.channel_id, machine_message=message_for(self.campaign.amd))
            log.info("dialer %s: contact %d (%s): %s (cause %s)", self.name, call.contact.id,
                     call.contact.number, placed.outcome.value, placed.observation.cause)
            if placed.outcome is not Outcome.LIVE or placed.channel is None:
                # LIVE with no channel: answered, then dropped by the placer (its time
                # budget ran out): an abandon, retried as such.
                await self._end(call, attempt_outcome(placed.outcome, agent_answered=False),
                                placed.observation.cause, message=placed.message)
                return
            call.answered_at = self.clock()
            async with self.sessions.begin() as session:
                await AnswerRepository(session).flow_started(call.attempt_id,
                                                             at=call.answered_at)
            if self.campaign.flow is None:
                await self._message(call, inbox)
                return
            await self.ari.applications.subscribe(DIALER_APP, f"channel:{call.channel_id}")
            try:
                for name, value in ((V.CAMPAIGN, self.name),
                                    (V.CONTACT_ID, str(call.contact.id)),
                                    (V.ATTEMPT_ID, str(call.attempt_id))):
                    await self.ari.channels.set_variable(call.channel_id, name, value)
                await self.ari.channels.continue_in_dialplan(
                    call.channel_id, flow_context(self.campaign.flow), "s", 1)
                log.info("dialer %s: contact %d in flow %s", self.name, call.contact.id,
                         self.campaign.flow)
            except ARIError as exc:  # hung up meanwhile: its ChannelDestroyed follows
                log.info("dialer %s: %s not sent to the flow: %s", self.name,
                         call.channel_id, exc)
            await self._follow(call, inbox)

    async def _follow(self, call: _Live, inbox: asyncio.Queue[Event]) -> None:
        """Store the answers as the flow collects them, until the call ends (or the
        flow budget runs out); then end the attempt ``answered``."""
        cause: int | None = None
        try:
            async with asyncio.timeout(self.flow_budget):
                while True:
                    event = await inbox.get()
                    match event:
                        case ChannelVarset(variable=variable, value=value, channel=channel) \
                                if channel is not None and channel.id == call.channel_id:
                            await self._answer(call, variable, value)
                        case ChannelDestroyed(channel=channel, cause=c) \
                                if channel.id == call.channel_id:
                            cause = c
                            break
        except TimeoutError:
            log.warning("dialer %s: contact %d still on the line after %.0f s: attempt "
                        "ended, the call goes on unfollowed", self.name, call.contact.id,
                        self.flow_budget)
            with contextlib.suppress(ARIError):
                await self.ari.applications.unsubscribe(DIALER_APP,
                                                        f"channel:{call.channel_id}")
        done = survey(self.wanted, call.given)
        log.info("dialer %s: contact %d's survey %s (%s)", self.name, call.contact.id,
                 "complete" if done.complete else f"missing {', '.join(done.missing)}",
                 ", ".join(f"{k}={v}" for k, v in done.answers.items()) or "no answers")
        await self._end(call, AttemptOutcome.ANSWERED, cause)

    async def _answer(self, call: _Live, variable: str, value: str) -> None:
        """A variable set on the call: stored if it is a wanted answer its step accepts."""
        if variable not in self.specs or not valid_answer(self.specs[variable], value):
            return
        if call.given.get(variable) == value:
            return
        try:
            async with self.sessions.begin() as session:
                await AnswerRepository(session).record(call.attempt_id, variable=variable,
                                                       value=value, at=self.clock())
        except Exception:  # the database: the caller goes on with the survey regardless
            log.exception("dialer %s: contact %d's answer %s not stored", self.name,
                          call.contact.id, variable)
            return
        call.given[variable] = value
        log.info("dialer %s: contact %d answered %s=%s", self.name, call.contact.id,
                 variable, value)
        self._pulse()

    async def _message(self, call: _Live, inbox: asyncio.Queue[Event]) -> None:
        """The message-only case: play ``message``, hang up, end ``answered``."""
        cause: int | None = None
        gone = False
        try:
            playback = await self.ari.channels.play(call.channel_id,
                                                    f"sound:{self.campaign.message}")
            async with asyncio.timeout(MESSAGE_BUDGET):
                while True:
                    event = await inbox.get()
                    if isinstance(event, PlaybackFinished) and \
                            event.playback.id == playback.id:
                        break
                    if isinstance(event, ChannelDestroyed) and \
                            event.channel.id == call.channel_id:
                        gone, cause = True, event.cause
                        break
        except (ARIError, TimeoutError) as exc:
            log.info("dialer %s: message to %s: %s", self.name, call.channel_id,
                     exc or "too long")
        if not gone:
            cause = await self._hang_up(call.channel_id, inbox)
        await self._end(call, AttemptOutcome.ANSWERED, cause)

    async def _hang_up(self, channel_id: str, inbox: asyncio.Queue[Event]) -> int | None:
        return await hang_up_and_wait(self.ari, inbox, channel_id, name=self.name)

    async def _end(self, call: _Live, outcome: AttemptOutcome, cause: int | None, *,
                   message: MachineMessage | None = None) -> None:
        if call.attempt_id in self.ended:
            return
        at = self.clock()
        await finish_attempt(
            self.sessions, self.name, self.campaign, attempt_id=call.attempt_id,
            contact_id=call.contact.id, number=call.contact.number,
            timezone=call.contact.timezone, attempts=call.contact.attempts + 1,
            outcome=outcome, at=at, cause=cause, answered_at=call.answered_at,
            message=message)
        self._attempt_ended(call.attempt_id)

    # -- restart -----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Close, or take back, what a previous run of this dialer left (module doc)."""
        async with self.sessions() as session:
            claims = await CampaignRepository(session).open_claims(self.name, self.claimer)
        if not claims:
            return
        up = {channel.id for channel in await self.ari.channels.list()}
        now = self.clock()
        for claim in claims:
            if claim.attempt_id is None:
                await release_unplaced(self.sessions, self.name, claim.contact_id, now)
                continue
            contact = DueContact(claim.contact_id, claim.number, claim.timezone, {},
                                 max(0, claim.attempts - 1))
            call = _Live(claim.channel_id or "", contact, claim.attempt_id,
                         answered_at=claim.answered_at)
            async with self.sessions() as session:
                call.given = await AnswerRepository(session).for_attempt(claim.attempt_id)
            if claim.answered_at is not None and claim.channel_id in up \
                    and self.campaign.flow is not None:
                log.warning("dialer %s: contact %d still in flow %s: taken back", self.name,
                            claim.contact_id, self.campaign.flow)
                self._adopted.append(call)
                continue
            if claim.channel_id:
                with contextlib.suppress(ARIError):
                    await self.ari.channels.hangup(claim.channel_id)
            outcome = (AttemptOutcome.ANSWERED if claim.answered_at is not None
                       else AttemptOutcome.CANCELLED)
            await self._end(call, outcome, None)
            log.warning("dialer %s: attempt %d left open by a stopped dialer closed %s",
                        self.name, claim.attempt_id, outcome.value)

    async def _follow_adopted(self, call: _Live) -> None:
        """A call taken back: subscribe again, store what was answered while nobody
        listened, then follow it as any other."""
        with self.inboxes.open(call.channel_id) as inbox:
            try:
                await self.ari.applications.subscribe(DIALER_APP,
                                                       f"channel:{call.channel_id}")
                for variable in self.wanted:
                    with contextlib.suppress(ARINotFound):
                        value = await self.ari.channels.get_variable(call.channel_id,
                                                                     variable)
                        await self._answer(call, variable, value)
            except ARIError as exc:  # gone meanwhile
                log.info("dialer %s: %s ended before it was taken back: %s", self.name,
                         call.channel_id, exc)
                await self._end(call, AttemptOutcome.ANSWERED, None)
                return
            await self._follow(call, inbox)
