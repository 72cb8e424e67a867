"""Indexed routing: the decisions of :mod:`callcenter.routing.decide` in microseconds.

With 10,000 agents a scan evaluates every agent's skills per decision (milliseconds). The
:class:`Router` keeps, updated on each agent or call change, *bitmaps* over agent slots
(Python ints: an ``&`` or ``|`` of 10,000 bits is one C loop over 157 machine words):

* per skill and level ``n``, the available agents with that skill at level >= n; so a
  whole requirement (``billing >= 5 and (english or spanish >= 7)``, ``not``, ``<``, ``==``)
  is a handful of bitmap operations giving *exactly* the qualifying agents;
* per queue, its available members; per language, the available agents who speak it;
* per queue, its available members sorted in the strategy's order: when many agents
  qualify, the first of them in that order is near the front; when few do, they are
  read out of the bitmap and compared directly;
* per queue, waiting calls sorted by rank (priority, then enqueue time), and each
  (queue, stage, call skills) requirement compiled to a closure once, at enqueue.

It is still pure (no I/O, no clock): the router application calls :meth:`Router.agent_available`,
:meth:`Router.agent_unavailable`, :meth:`Router.enqueue`, :meth:`Router.dequeue` as states
change, and asks :meth:`Router.select_agent` / :meth:`Router.select_call` with ``now``.
The property tests check it against the scan for random agents, skills, calls and times.
"""

from __future__ import annotations

import re
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

#: Up to this many qualifying agents are read out of the bitmap and compared directly;
#: beyond, the queue's strategy-ordered list is walked to the first qualifying one (on
#: average len(order) / count steps): at ~3,000 members the two cost about the same here.
_READ_OUT_LIMIT = 40

_NONZERO = re.compile(rb"[^\x00]")
#: byte value -> the bit positions set in it
_BITS = tuple(tuple(b for b in range(8) if v >> b & 1) for v in range(256))

_Check = Callable[[AgentView], bool]


class Router:
    """Available agents and waiting calls, indexed for :mod:`~callcenter.routing.decide`'s
    decisions. Not thread-safe: one owner (the router application's event loop)."""

    def __init__(self, policies: Mapping[str, QueuePolicy], *,
                 read_out_limit: int = _READ_OUT_LIMIT) -> None:
        self.policies = dict(policies)
        #: Qualifying agents up to this count are compared directly, beyond the order walked
        #: (a tuning knob; tests set 0 to prove the walk decides the same).
        self.read_out_limit = read_out_limit
        self._agents: dict[str, AgentView] = {}
        # Each agent ever seen has a slot (a bit position); freed slots are reused, so the
        # bitmaps stay as wide as the largest number of agents available at once.
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self._ids: list[str] = []
        self._available = 0
        # skill -> [unused, level>=1 bitmap, ..., level>=10 bitmap]
        self._at_least: dict[str, list[int]] = {}
        self._speakers: dict[str, int] = {}  # language base -> bitmap
        self._members: dict[str, int] = {q: 0 for q in self.policies}  # queue -> bitmap
        # queue -> sorted [(key, agent id)] of available members; queue -> agent id -> key
        self._order: dict[str, list[tuple[tuple, str]]] = {q: [] for q in self.policies}
        self._keys: dict[str, dict[str, tuple]] = {q: {} for q in self.policies}
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
        slot = self._free.pop() if self._free else len(self._ids)
        if slot == len(self._ids):
            self._ids.append(agent.id)
        else:
            self._ids[slot] = agent.id
        self._slot[agent.id] = slot
        bit = 1 << slot
        self._available |= bit
        for skill, level in agent.skills.items():
            maps = self._at_least.get(skill)
            if maps is None:
                maps = self._at_least[skill] = [0] * (MAX_LEVEL + 1)
            for n in range(1, min(level, MAX_LEVEL) + 1):
                maps[n] |= bit
        for lang in agent.languages:
            self._speakers[lang] = self._speakers.get(lang, 0) | bit
        for queue in agent.queues:
            policy = self.policies.get(queue)
            if policy is None:
                continue
            key = _order_key(agent, policy)
            self._keys[queue][agent.id] = key
            self._members[queue] |= bit
            insort(self._order[queue], (key, agent.id))

    def agent_unavailable(self, agent_id: str) -> None:
        """Remove an agent (reserved, on call, paused, logged out); unknown ids are ignored."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        slot = self._slot.pop(agent_id)
        self._free.append(slot)
        keep = ~(1 << slot)
        self._available &= keep
        for skill, level in agent.skills.items():
            maps = self._at_least[skill]
            for n in range(1, min(level, MAX_LEVEL) + 1):
                maps[n] &= keep
        for lang in agent.languages:
            self._speakers[lang] &= keep
        for queue in agent.queues:
            key = self._keys.get(queue, {}).pop(agent_id, None)
            if key is not None:
                self._members[queue] &= keep
                order = self._order[queue]
                del order[bisect_left(order, (key, agent_id))]

    def available(self) -> Iterator[AgentView]:
        return iter(self._agents.values())

    # -- calls ---------------------------------------------------------------------------

    def enqueue(self, call: WaitingCall) -> None:
        """Add a waiting call; its requirement at every relax stage is compiled now, once,
        so no later decision about it pays for that. Its queue must be one of the policies'."""
        self.dequeue(call.id)
        policy = self.policies[call.queue]
        for stage in policy.stages:
            if stage.overflow is None:
                self._check(call, policy, stage.index)
        insort(self._calls[call.queue], (call.rank, call), key=lambda item: item[0])
        self._call_rank[call.id] = (call.queue, call.rank)

    def dequeue(self, call_id: str) -> None:
        """Remove a waiting call (offered and answered, hung up, overflowed); unknown ids
        are ignored."""
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
        the queue's round-robin cursor (:meth:`offered` moves it). ``call.queue`` must be
        one of the policies' (the router checks the Stasis args first: KeyError otherwise)."""
        policy = self.policies[call.queue]
        stage = policy.stage_at(now - call.enqueued_at)
        if stage.overflow is not None:
            return Overflow(call.id, stage.overflow, stage.index)
        requirement = call_requirement(call, stage)
        fit = self._members[call.queue]
        if requirement is not None:
            fit &= self._bitmap(requirement)
        if policy.language_required and call.language is not None:
            fit &= self._speakers.get(language_base(call.language), 0)
        if not fit:
            return None
        count = fit.bit_count()
        if policy.strategy == "ring_all":
            agents = [a for a in self._read_out(fit)]
            agents.sort(key=self._keys[call.queue].__getitem__)
            return Offer(call.id, tuple(agents), stage.index)
        if count <= self.read_out_limit:
            agents = self._read_out(fit)
            if policy.strategy == "round_robin":
                cursor = self.cursors.get(call.queue)
                best = min(agents, key=lambda a: (cursor is not None and a <= cursor, a))
            else:
                best = min(agents, key=self._keys[call.queue].__getitem__)
            return Offer(call.id, (best,), stage.index)
        return Offer(call.id, (self._first(call.queue, policy, fit),), stage.index)

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

    def _read_out(self, bitmap: int) -> list[str]:
        """The agent ids whose bits are set: the bitmap's bytes, non-zero ones found by a
        regular expression (C speed), each byte's bits from a table."""
        data = bitmap.to_bytes((bitmap.bit_length() + 7) // 8, "little")
        ids = self._ids
        return [ids[m.start() * 8 + b] for m in _NONZERO.finditer(data)
                for b in _BITS[data[m.start()]]]

    def _first(self, queue: str, policy: QueuePolicy, fit: int) -> str:
        """The first agent of the queue's strategy order whose bit is set in ``fit``."""
        order = self._order[queue]
        if policy.strategy == "round_robin" and queue in self.cursors:
            start = bisect_left(order, ((self.cursors[queue],), "\uffff"))
            walk: Iterator[tuple[tuple, str]] = chain(order[start:], order[:start])
        else:
            walk = iter(order)
        data = fit.to_bytes((len(self._ids) + 7) // 8, "little")  # every slot has a byte
        slots = self._slot
        for _, agent_id in walk:
            slot = slots[agent_id]
            if data[slot >> 3] >> (slot & 7) & 1:
                return agent_id
        raise AssertionError("a set bit of a queue's members is in its order")

    def _bitmap(self, expr: Expr) -> int:
        """The available agents satisfying ``expr``, exactly, as a bitmap."""
        match expr:
            case Has(skill=skill, op=op, level=level):
                if op == ">=":
                    return self._level(skill, level)
                if op == ">":
                    return self._level(skill, level + 1)
                if op == "<":
                    return self._available & ~self._level(skill, level)
                if op == "<=":
                    return self._available & ~self._level(skill, level + 1)
                exact = self._level(skill, level) & ~self._level(skill, level + 1)
                return exact if op == "==" else self._available & ~exact
            case Not(item=item):
                return self._available & ~self._bitmap(item)
            case All(items=items):
                out = self._bitmap(items[0])
                for item in items[1:]:
                    if not out:
                        break
                    out &= self._bitmap(item)
                return out
            case Any_(items=items):
                out = 0
                for item in items:
                    out |= self._bitmap(item)
                return out
        raise TypeError(f"not an expression: {expr!r}")

    def _level(self, skill: str, level: int) -> int:
        """Available agents with ``skill`` at ``level`` or more (everyone at level 0)."""
        if level <= 0:
            return self._available
        if level > MAX_LEVEL:
            return 0
        maps = self._at_least.get(skill)
        return maps[level] if maps is not None else 0

    def _check(self, call: WaitingCall, policy: QueuePolicy, stage_index: int) -> _Check:
        """Compiled: member of the queue, language, skills (for :meth:`select_call`)."""
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


def _order_key(agent: AgentView, policy: QueuePolicy) -> tuple:
    if policy.strategy == "round_robin":
        return (agent.id,)
    return agent_key(agent, policy)
