"""The routing decision, as pure functions of (calls waiting, agents, now).

Two directions:

* a call arrives (or its wait passes a relax step): :func:`select_agent` picks the agent(s)
  to offer it to, or says it overflows;
* an agent becomes free: :func:`select_call` picks the best waiting call among every queue
  the agent serves that the agent qualifies for now (priority, then time waited).

These are the reference: a plain scan, easy to read. :class:`callcenter.routing.index.Router`
keeps indexes so the same decision takes microseconds with thousands of agents, and the
property tests prove it decides exactly as these do. Ties are broken by ids, so a decision
never depends on the order of the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from callcenter.config.models import Destination
from callcenter.routing.expr import Expr, evaluate
from callcenter.routing.policy import (
    AgentView,
    QueuePolicy,
    Stage,
    WaitingCall,
    call_requirement,
    language_base,
)

__all__ = [
    "Offer",
    "Overflow",
    "agent_key",
    "eligible",
    "next_change",
    "select_agent",
    "select_call",
    "skill_score",
]


@dataclass(frozen=True)
class Offer:
    """Ring ``agents`` (several only for ring_all) for ``call_id``; ``stage`` is the relax
    step whose requirement matched (0: the queue's own), for the call's record."""

    call_id: str
    agents: tuple[str, ...]
    stage: int


@dataclass(frozen=True)
class Overflow:
    """The call has waited past an overflow step: send it to ``destination``."""

    call_id: str
    destination: Destination
    stage: int


def skill_score(agent: AgentView, policy: QueuePolicy) -> int:
    """best_skill's score: sum of weight x level over the queue's preferred skills."""
    return sum(weight * agent.skills.get(skill, 0) for skill, weight in policy.preferred)


def agent_key(agent: AgentView, policy: QueuePolicy, cursor: str | None = None) -> tuple:
    """Order of preference among qualifying agents under the queue's strategy (smallest first).

    round_robin starts after ``cursor``, the agent last offered a call of this queue.
    """
    match policy.strategy:
        case "fewest_calls":
            return (agent.calls_taken, agent.idle_since, agent.id)
        case "best_skill":
            return (-skill_score(agent, policy), agent.idle_since, agent.id)
        case "round_robin":
            return (cursor is not None and agent.id <= cursor, agent.id)
        case _:  # longest_idle, ring_all
            return (agent.idle_since, agent.id)


def _speaks(agent: AgentView, call: WaitingCall, policy: QueuePolicy) -> bool:
    return (not policy.language_required or call.language is None
            or language_base(call.language) in agent.languages)


def eligible(agent: AgentView, call: WaitingCall, policy: QueuePolicy, stage: Stage) -> bool:
    """Whether ``agent`` may be offered ``call`` at ``stage`` (membership, language, skills)."""
    if policy.name not in agent.queues or not _speaks(agent, call, policy):
        return False
    requirement: Expr | None = call_requirement(call, stage)
    return requirement is None or evaluate(requirement, agent.skills)


def select_agent(call: WaitingCall, agents: Iterable[AgentView], policy: QueuePolicy,
                 now: float, cursor: str | None = None) -> Offer | Overflow | None:
    """Whom to offer ``call`` to now, among the *available* ``agents``; None: keep waiting."""
    stage = policy.stage_at(now - call.enqueued_at)
    if stage.overflow is not None:
        return Overflow(call.id, stage.overflow, stage.index)
    fit = [a for a in agents if eligible(a, call, policy, stage)]
    if not fit:
        return None
    if policy.strategy == "ring_all":
        return Offer(call.id, tuple(a.id for a in sorted(fit, key=lambda a: agent_key(a, policy))),
                     stage.index)
    best = min(fit, key=lambda a: agent_key(a, policy, cursor))
    return Offer(call.id, (best.id,), stage.index)


def select_call(agent: AgentView, calls: Iterable[WaitingCall],
                policies: Mapping[str, QueuePolicy], now: float) -> WaitingCall | None:
    """The call ``agent`` (just available) should be offered: among the calls of every queue
    it serves that it qualifies for now, the highest priority, then the longest waiting.
    Calls due to overflow are not offered (the router sends them on)."""
    best: WaitingCall | None = None
    for call in calls:
        policy = policies.get(call.queue)
        if policy is None or call.queue not in agent.queues:
            continue
        stage = policy.stage_at(now - call.enqueued_at)
        if stage.overflow is not None or not eligible(agent, call, policy, stage):
            continue
        if best is None or call.rank < best.rank:
            best = call
    return best


def next_change(calls: Iterable[WaitingCall], policies: Mapping[str, QueuePolicy],
                now: float) -> float | None:
    """The next time a waiting call reaches a relax step: the router sets one timer for it
    and decides again then, so callers already waiting are offered looser matches."""
    soonest: float | None = None
    for call in calls:
        policy = policies.get(call.queue)
        if policy is None:
            continue
        for stage in policy.stages[1:]:
            at = call.enqueued_at + stage.after
            if at > now:
                soonest = at if soonest is None else min(soonest, at)
                break
    return soonest
