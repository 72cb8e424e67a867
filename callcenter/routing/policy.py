"""What routing decides on: queue policies (compiled from the config), agents, waiting calls.

Plain frozen values with no I/O: the router application builds them from the config, the
agent-state store and the Stasis args, and hands them to :mod:`callcenter.routing.decide`
(or the indexed :class:`callcenter.routing.index.Router`). Times are seconds on one clock
the caller chooses (``time.monotonic()`` in the service, a fake clock in tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callcenter.config.models import Agent, CallCenterConfig, Destination, Queue
from callcenter.routing.expr import All, Expr, Has, parse_expr

__all__ = [
    "AgentView",
    "QueuePolicy",
    "Stage",
    "WaitingCall",
    "call_requirement",
    "language_base",
    "memberships",
    "policies",
]


def language_base(language: str) -> str:
    """``pt_BR`` -> ``pt``: a caller in Brazilian Portuguese is served by a Portuguese speaker."""
    return language.split("_", 1)[0]


@dataclass(frozen=True)
class Stage:
    """One step of a queue's requirements: ``index`` 0 is the queue's own, then each relax step.

    Exactly one meaning: ``requires`` (None = no expression), ``any_agent``, or ``overflow``.
    """

    index: int
    after: int
    requires: Expr | None = None
    any_agent: bool = False
    overflow: Destination | None = None


@dataclass(frozen=True)
class QueuePolicy:
    """A queue's routing rules, with its expressions parsed once."""

    name: str
    stages: tuple[Stage, ...] = (Stage(0, 0),)
    strategy: str = "longest_idle"
    #: (skill, weight) pairs; best_skill scores sum(weight x level).
    preferred: tuple[tuple[str, int], ...] = ()
    language_required: bool = False
    ring_timeout: int = 15
    wrapup: int = 10
    auto_pause_after: int = 3
    #: The queue's base priority (``Queue.priority``).
    priority: int = 0

    def call_priority(self, stasis_priority: int) -> int:
        """A call's priority: the Stasis ``priority`` arg as it is. The dialplan already
        adds the queue's base, the destination's and the caller's (VIP) priority (the
        ``cc-queue`` context fills in the base for calls from the admin's own dialplan),
        and ``simulate`` shows that same sum; adding the base here would count it twice.
        Comparable across queues, so an agent serving several takes the higher first."""
        return stasis_priority

    def stage_at(self, waited: float) -> Stage:
        """The stage in force after ``waited`` seconds: relaxation is a function of time only,
        so callers already waiting move to a looser stage as soon as their wait passes it."""
        current = self.stages[0]
        for stage in self.stages[1:]:
            if waited < stage.after:
                break
            current = stage
        return current

    @classmethod
    def from_config(cls, name: str, queue: Queue) -> QueuePolicy:
        stages = [Stage(0, 0, parse_expr(queue.requires) if queue.requires else None)]
        for i, step in enumerate(queue.relax, start=1):
            stages.append(Stage(i, step.after,
                                parse_expr(step.requires) if step.requires else None,
                                bool(step.any_agent), step.overflow))
        return cls(name, tuple(stages), queue.strategy, tuple(queue.preferred.items()),
                   queue.language_required, queue.ring_timeout, queue.wrapup,
                   queue.auto_pause_after, queue.priority)


@dataclass(frozen=True, eq=False)
class AgentView:
    """An agent as routing sees it. Only agents that are available are passed to decisions."""

    id: str
    skills: Mapping[str, int]
    #: Queues the agent serves (see :func:`memberships`).
    queues: frozenset[str]
    #: Language bases the agent speaks (``en``, ``es``).
    languages: frozenset[str] = frozenset()
    #: When the agent last became available (longest idle = smallest).
    idle_since: float = 0.0
    #: Calls answered today, for fewest_calls.
    calls_taken: int = 0

    @classmethod
    def from_config(cls, name: str, agent: Agent, queues: frozenset[str], *,
                    idle_since: float, calls_taken: int = 0) -> AgentView:
        """The view of a configured agent (``queues`` from :func:`memberships`, the times
        and counts from the agent-state store); languages reduced to their base."""
        return cls(name, dict(agent.skills), queues,
                   frozenset(language_base(lang) for lang in agent.languages),
                   idle_since, calls_taken)


@dataclass(frozen=True)
class WaitingCall:
    """A caller in a queue: from the Stasis args (queue, skills, priority, language)."""

    id: str
    queue: str
    enqueued_at: float
    #: Higher first: :meth:`QueuePolicy.call_priority` of the Stasis ``priority`` arg.
    priority: int = 0
    #: Skills the IVR asked for (``{queue: x, skills: [...]}``): each needs level >= 1.
    skills: tuple[str, ...] = ()
    language: str | None = None
    #: Arrival order, to break ties between equal times deterministically.
    seq: int = 0

    @property
    def rank(self) -> tuple[int, float, int, str]:
        """Sort key among waiting calls: priority, then time waited, then arrival."""
        return (-self.priority, self.enqueued_at, self.seq, self.id)


def call_requirement(call: WaitingCall, stage: Stage) -> Expr | None:
    """The skills an agent needs for ``call`` at ``stage`` (None: any member of the queue)."""
    if stage.any_agent:
        return None
    parts: list[Expr] = [Has(s) for s in call.skills]
    if stage.requires is not None:
        parts.append(stage.requires)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def memberships(config: CallCenterConfig) -> dict[str, frozenset[str]]:
    """Agent name -> queues it serves: listed in a queue's ``agents``, or else having one of
    the queue's ``skills`` (every agent, for a queue with neither)."""
    out: dict[str, set[str]] = {name: set() for name in config.agents}
    for qname, queue in config.queues.items():
        for aname, agent in config.agents.items():
            if queue.agents:
                member = aname in queue.agents
            else:
                member = not queue.skills or any(s in agent.skills for s in queue.skills)
            if member:
                out[aname].add(qname)
    return {name: frozenset(queues) for name, queues in out.items()}


def policies(config: CallCenterConfig) -> dict[str, QueuePolicy]:
    """Every queue's compiled policy."""
    return {name: QueuePolicy.from_config(name, q) for name, q in config.queues.items()}
