"""Indexed routing: the decisions of :mod:`callcenter.routing.decide` in microseconds.

With 10,000 agents a scan evaluates every agent's skills per decision (milliseconds). The
:class:`Router` keeps, updated on each agent or call change:

* per skill and level ``n``, the set of available agents with that skill at level >= n, so
  ``billing >= 5`` is one set lookup, ``and`` intersects from the smallest operand, ``or``
  unites (``not`` and ``<`` hold for agents without the skill: no set, the walk below);
* per language, the available agents who speak it;
* per queue, its available members sorted in the strategy's order, so when the candidates
  are many the first qualifying agent is near the front;
* per queue, waiting calls sorted by rank (priority, then enqueue time);
* each (queue, stage, call skills) requirement compiled to a closure once.

It is still pure (no I/O, no clock): the router application calls :meth:`Router.agent_available`,
:meth:`Router.agent_unavailable`, :meth:`Router.enqueue`, :meth:`Router.dequeue` as states
change, and asks :meth:`Router.select_agent` / :meth:`Router.select_call` with ``now``.
The property tests check it against the scan for random agents, skills, calls and times.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator, Mapping
from itertools import chain

from callcenter.routing.decide import Offer, Overflow, agent_key
from callcenter.routing.expr import MAX_LEVEL, All, Any_, Expr, Has, Not, compile_expr
from callcenter.routing.policy import (
    AgentView,
    QueuePolicy,
    WaitingCall,
    call_requirement,
    language_base,
)

__all__ = ["Router"]

#: Up to this many candidates from the skill index are always filtered and compared
#: directly; beyond, the cheaper of that and walking the strategy-ordered list is chosen.
_FILTER_LIMIT = 32
_WALK_FACTOR = 8

_Check = Callable[[AgentView], bool]


class Router:
    """Available agents and waiting calls, indexed for :mod:`~callcenter.routing.decide`'s
    decisions. Not thread-safe: one owner (the router application's event loop)."""

    def __init__(self, policies: Mapping[str, QueuePolicy]) -> None:
        self.policies = dict(policies)
        self._agents: dict[str, AgentView] = {}
        # skill -> [None, level>=1 set, level>=2 set, ..., level>=10 set]
        self._at_least: dict[str, list[set[str]]] = {}
        # language base -> available agents speaking it
        self._speakers: dict[str, set[str]] = {}
        # queue -> sorted [(key, agent id)] of available members; queue -> agent id -> key
        self._order: dict[str, list[tuple[tuple, str]]] = {q: [] for q in self.policies}
        self._keys: dict[str, dict[str, tuple]] = {q: {} for q in self.policies}
        self._members: dict[str, set[str]] = {q: set() for q in self.policies}
        self._calls: dict[str, list[tuple[tuple, WaitingCall]]] = {q: [] for q in self.policies}
        self._call_rank: dict[str, tuple[str, tuple]] = {}
        #: queue -> agent last offered one of its calls (round robin starts after it).
        self.cursors: dict[str, str] = {}
        self._compiled: dict[tuple[str, int, tuple[str, ...]], _Check] = {}

    # -- agents --------------------------------------------------------------------------

    def agent_available(self, agent: AgentView) -> None:
        """Add ``agent`` to the available ones (replacing its previous view)."""
        self.agent_unavailable(agent.id)
        self._agents[agent.id] = agent
        for skill, level in agent.skills.items():
            sets = self._at_least.get(skill)
            if sets is None:
                sets = self._at_least[skill] = [set() for _ in range(MAX_LEVEL + 1)]
            for n in range(1, min(level, MAX_LEVEL) + 1):
                sets[n].add(agent.id)
        for lang in agent.languages:
            self._speakers.setdefault(lang, set()).add(agent.id)
        for queue in agent.queues:
            policy = self.policies.get(queue)
            if policy is None:
                continue
            key = _order_key(agent, policy)
            self._keys[queue][agent.id] = key
            self._members[queue].add(agent.id)
            insort(self._order[queue], (key, agent.id))

    def agent_unavailable(self, agent_id: str) -> None:
        """Remove an agent (reserved, on call, paused, logged out); unknown ids are ignored."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        for skill, level in agent.skills.items():
            sets = self._at_least[skill]
            for n in range(1, min(level, MAX_LEVEL) + 1):
                sets[n].discard(agent_id)
        for lang in agent.languages:
            self._speakers[lang].discard(agent_id)
        for queue in agent.queues:
            key = self._keys.get(queue, {}).pop(agent_id, None)
            if key is not None:
                self._members[queue].discard(agent_id)
                order = self._order[queue]
                del order[bisect_left(order, (key, agent_id))]

    def available(self) -> Iterator[AgentView]:
        return iter(self._agents.values())

    # -- calls ---------------------------------------------------------------------------

    def enqueue(self, call: WaitingCall) -> None:
        """Add a waiting call; its requirement at every relax stage is compiled now, once,
        so no later decision about it pays for that."""
        self.dequeue(call.id)
        policy = self.policies[call.queue]
        for stage in policy.stages:
            if stage.overflow is None:
                self._check(call, policy, stage.index)
        insort(self._calls[call.queue], (call.rank, call), key=lambda item: item[0])
        self._call_rank[call.id] = (call.queue, call.rank)

    def dequeue(self, call_id: str) -> None:
        found = self._call_rank.pop(call_id, None)
        if found is not None:
            queue, rank = found
            calls = self._calls[queue]
            del calls[bisect_left(calls, rank, key=lambda item: item[0])]

    def waiting(self) -> Iterator[WaitingCall]:
        return (call for calls in self._calls.values() for _, call in calls)

    # -- decisions -----------------------------------------------------------------------

    def select_agent(self, call: WaitingCall, now: float) -> Offer | Overflow | None:
        """:func:`~callcenter.routing.decide.select_agent` over the available agents, with
        the queue's round-robin cursor (:meth:`offered` moves it)."""
        policy = self.policies[call.queue]
        stage = policy.stage_at(now - call.enqueued_at)
        if stage.overflow is not None:
            return Overflow(call.id, stage.overflow, stage.index)
        check = self._check(call, policy, stage.index)
        order = self._order[call.queue]
        if policy.strategy == "ring_all":
            return self._offer(call, [a for _, a in order if check(self._agents[a])], stage.index)
        requirement = call_requirement(call, stage)
        candidates = None if requirement is None else self._candidates(requirement)
        keys = self._keys[call.queue]
        if candidates is not None and len(candidates) > _FILTER_LIMIT:
            # available members of this queue (& iterates the smaller set; a dict's keys
            # view would first be copied into a set)
            candidates = candidates & self._members[call.queue]
            if policy.language_required and call.language is not None:
                candidates &= self._speakers.get(language_base(call.language), set())
        # Filtering costs one check per candidate; walking the strategy order costs about
        # len(order) / len(candidates) checks: filter when that is the cheaper.
        if candidates is not None and (len(candidates) <= _FILTER_LIMIT or len(candidates) ** 2
                                       <= _WALK_FACTOR * len(order)):
            fit = [a for a in candidates if a in keys and check(self._agents[a])]
            if not fit:
                return None
            if policy.strategy == "round_robin":
                cursor = self.cursors.get(call.queue)
                return self._offer(call, [min(fit, key=lambda a: (cursor is not None
                                                                   and a <= cursor, a))],
                                   stage.index)
            return self._offer(call, [min(fit, key=keys.__getitem__)], stage.index)
        return self._offer(call, self._first(call.queue, policy, check), stage.index)

    def offered(self, queue: str, agent_id: str) -> None:
        """Record that ``agent_id`` was offered a call of ``queue`` (round robin moves on)."""
        self.cursors[queue] = agent_id

    def select_call(self, agent: AgentView, now: float) -> WaitingCall | None:
        """:func:`~callcenter.routing.decide.select_call` over the waiting calls."""
        best: WaitingCall | None = None
        for queue in agent.queues:
            policy = self.policies.get(queue)
            if policy is None:
                continue
            for rank, call in self._calls[queue]:
                if best is not None and rank >= best.rank:
                    break  # sorted: nothing further in this queue beats the best so far
                stage = policy.stage_at(now - call.enqueued_at)
                if stage.overflow is None and self._check(call, policy, stage.index)(agent):
                    best = call
                    break
        return best

    # -- internals -----------------------------------------------------------------------

    def _first(self, queue: str, policy: QueuePolicy, check: _Check) -> list[str]:
        order = self._order[queue]
        if policy.strategy == "round_robin" and queue in self.cursors:
            start = bisect_left(order, ((self.cursors[queue],), "\uffff"))
            walk: Iterator[tuple[tuple, str]] = chain(order[start:], order[:start])
        else:
            walk = iter(order)
        for _, agent_id in walk:
            if check(self._agents[agent_id]):
                return [agent_id]
        return []

    @staticmethod
    def _offer(call: WaitingCall, agents: list[str], stage: int) -> Offer | None:
        return Offer(call.id, tuple(agents), stage) if agents else None

    def _check(self, call: WaitingCall, policy: QueuePolicy, stage_index: int) -> _Check:
        """Compiled: member of the queue (implied by the queue's order), language, skills."""
        lang = (language_base(call.language)
                if policy.language_required and call.language is not None else None)
        key = (policy.name, stage_index, call.skills + ((f"@{lang}",) if lang else ()))
        check = self._compiled.get(key)
        if check is None:
            requirement = call_requirement(call, policy.stages[stage_index])
            queue = policy.name
            predicate = compile_expr(requirement) if requirement is not None else None
            if predicate is None and lang is None:
                def check(a: AgentView) -> bool:
                    return queue in a.queues
            elif predicate is None:
                def check(a: AgentView) -> bool:
                    return queue in a.queues and lang in a.languages
            elif lang is None:
                def check(a: AgentView) -> bool:
                    return queue in a.queues and predicate(a.skills)
            else:
                def check(a: AgentView) -> bool:
                    return queue in a.queues and lang in a.languages and predicate(a.skills)
            self._compiled[key] = check
        return check

    def _candidates(self, expr: Expr) -> set[str] | None:
        """A superset of the available agents satisfying ``expr`` (None: could be anyone),
        as cheap as possible: the decision filters it with the compiled check anyway.

        Never mutated by the caller: it may be one of the index's own sets.
        """
        match expr:
            case Has(skill=skill, op=op, level=level):
                sets = self._at_least.get(skill)
                low = {">=": level, ">": level + 1, "==": level}.get(op)
                if low is None or low < 1:
                    return None  # the comparison holds at level 0 too: agents without the skill
                if sets is None or low > MAX_LEVEL:
                    return set()
                return sets[low]
            case All(items=items):
                # From the operand with the fewest agents, intersect the next ones (each
                # ``&`` iterates the smaller set) until few enough remain for the check.
                bounded = sorted((b, n) for n, b in enumerate(map(self._bound, items))
                                 if b is not None)
                if not bounded:
                    return None
                found = self._candidates(items[bounded[0][1]])
                for _, n in bounded[1:]:
                    if found is None or len(found) <= _FILTER_LIMIT:
                        break
                    more = self._candidates(items[n])
                    found = found if more is None else found & more
                return found
            case Any_(items=items):
                parts = []
                for item in items:
                    part = self._candidates(item)
                    if part is None:
                        return None
                    parts.append(part)
                return set().union(*parts)
        return None

    def _bound(self, expr: Expr) -> int | None:
        """How many agents :meth:`_candidates` would return at most, without building it."""
        match expr:
            case Has():
                found = self._candidates(expr)
                return None if found is None else len(found)
            case All(items=items):
                bounds = [b for b in map(self._bound, items) if b is not None]
                return min(bounds) if bounds else None
            case Any_(items=items):
                total = 0
                for item in items:
                    bound = self._bound(item)
                    if bound is None:
                        return None
                    total += bound
                return total
        return None


def _order_key(agent: AgentView, policy: QueuePolicy) -> tuple:
    if policy.strategy == "round_robin":
        return (agent.id,)
    return agent_key(agent, policy)
