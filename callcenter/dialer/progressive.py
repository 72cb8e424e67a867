"""The progressive dialer's decisions, pure: who works the campaign, which agent gets the
next call, what a call's outcome means for the agent, the attempt and the contact.

The runner (:mod:`callcenter.dialer.runner`) reads the agents' stored states and the
clock, asks these functions, and carries the answers out. Nothing here does I/O or reads
a clock; every decision returns its reason, which the runner logs.

* :func:`campaign_agents`: the campaign's ``agents`` plus every agent having one of its
  ``skills``.
* :func:`pick_agents`: the available agents of the campaign, longest idle first, as many
  as the :class:`~callcenter.dialer.pacing.Pacer` (progressive: one call per free agent)
  allows. Only an agent available *now* is taken, and the runner reserves it through the
  agent store's compare-and-set, the same reservation the queue router makes: inbound
  calls keep their priority (the router takes agents the moment they free up) and the
  router and the dialer never both hold one agent.
* :func:`attempt_outcome`: the placer's :class:`~callcenter.dialer.outcome.Outcome` (and
  whether the agent took the live answer) as the stored attempt outcome.
* :func:`reschedule`: what the contact becomes after an attempt: done, exhausted, or
  pending again after the campaign's retry delay for the outcome; it delegates to
  :func:`callcenter.dialer.retry.after_attempt`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from callcenter.agents.state import AgentState, AgentStatus
from callcenter.config.campaign import Campaign
from callcenter.dialer.gate import next_step
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.pacing import AgentState as PacerAgentState
from callcenter.dialer.pacing import (
    AgentView,
    Decision,
    Mode,
    Pacer,
    PacingPolicy,
    Snapshot,
)

__all__ = [
    "INBOUND_FIRST",
    "AttemptOutcome",
    "ContactState",
    "Next",
    "Pick",
    "attempt_outcome",
    "campaign_agents",
    "pick_agents",
    "reschedule",
]

#: How long an agent must have been available before the dialer takes it: the queue
#: router sees another process's change within its 1 s poll, so a waiting inbound caller
#: gets a freed agent first.
INBOUND_FIRST = timedelta(seconds=2)



class AttemptOutcome(StrEnum):
    """How an attempt ended, as ``contact_attempts.outcome`` stores it (the values of
    :class:`callcenter.storage.models.AttemptOutcome`; this module imports no storage)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    FAILED = "failed"
    CALLBACK_REQUESTED = "callback_requested"
    ABANDONED = "abandoned"
    INVALID_NUMBER = "invalid_number"
    HANGUP_AT_ONCE = "hangup_at_once"
    CANCELLED = "cancelled"


class ContactState(StrEnum):
    """Where a contact stands, as ``contacts.state`` stores it (the values of
    :class:`callcenter.storage.models.ContactState`)."""

    PENDING = "pending"
    DIALING = "dialing"
    DONE = "done"
    EXHAUSTED = "exhausted"
    DO_NOT_CALL = "do_not_call"


_PROGRESSIVE = Pacer(PacingPolicy(mode=Mode.PROGRESSIVE))


def campaign_agents(campaign: Campaign, skills_of: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The agents working ``campaign``: those it names, and those having any of its skills
    (``skills_of``: agent -> its skill names, from ``agents:``). Named agents that do not
    exist are left out (the config checks report them)."""
    wanted = set(campaign.skills)
    return frozenset(name for name, skills in skills_of.items()
                     if name in campaign.agents or wanted & set(skills))


@dataclass(frozen=True)
class Pick:
    """The agents to reserve now, best first, and the pacer's decision (the "why")."""

    agents: tuple[str, ...]
    decision: Decision

    def explain(self) -> str:
        return f"{self.decision.explain()}; agents {', '.join(self.agents) or 'none'}"


def pick_agents(states: Iterable[AgentState], working: frozenset[str], now: datetime,
                *, busy: frozenset[str] = frozenset(),
                inbound_first: timedelta = INBOUND_FIRST) -> Pick:
    """The campaign's available agents, longest idle first, as many as progressive pacing
    places calls for. An agent available for less than ``inbound_first`` is left to the
    queue router for now. ``busy``: agents this dialer is handling a call for (their
    stored state may lag behind)."""
    free = sorted((s for s in states if s.agent in working and s.agent not in busy
                   and s.status is AgentStatus.AVAILABLE
                   and now - s.since >= inbound_first),
                  key=lambda s: (s.since, s.agent))
    snapshot = Snapshot(agents=tuple(
        AgentView(PacerAgentState.AVAILABLE, max(0.0, (now - s.since).total_seconds()))
        for s in free))
    decision = _PROGRESSIVE.calls_to_place(snapshot)
    return Pick(tuple(s.agent for s in free[:decision.calls]), decision)


def attempt_outcome(outcome: Outcome, *, agent_answered: bool) -> AttemptOutcome:
    """The stored outcome of one attempt: a live answer is ``answered`` when an agent took
    it and ``abandoned`` when none did (it heard the safe-harbor message)."""
    if outcome is Outcome.LIVE:
        return AttemptOutcome.ANSWERED if agent_answered else AttemptOutcome.ABANDONED
    return {
        Outcome.MACHINE: AttemptOutcome.MACHINE,
        Outcome.BUSY: AttemptOutcome.BUSY,
        Outcome.NO_ANSWER: AttemptOutcome.NO_ANSWER,
        Outcome.INVALID_NUMBER: AttemptOutcome.INVALID_NUMBER,
        Outcome.FAILED: AttemptOutcome.FAILED,
        Outcome.HANGUP_AT_ONCE: AttemptOutcome.HANGUP_AT_ONCE,
        Outcome.CANCELLED: AttemptOutcome.CANCELLED,
    }[outcome]


@dataclass(frozen=True)
class Next:
    """What a contact becomes after an attempt, and why."""

    state: ContactState
    at: datetime | None
    reason: str


def reschedule(campaign: Campaign, outcome: AttemptOutcome | str, attempts: int,
               now: datetime) -> Next:
    """The contact's next step after its ``attempts``-th call ended with ``outcome``, as
    :func:`callcenter.dialer.retry.after_attempt` decides it with no disposition and no
    history by outcome (the dialer itself uses :func:`callcenter.dialer.gate.next_step`,
    which passes the history)."""
    step = next_step(campaign, number="", timezone=None, attempts=attempts,
                     outcome=AttemptOutcome(outcome), at=now)
    return Next(ContactState(step.state), step.next_attempt_at, step.reason)
