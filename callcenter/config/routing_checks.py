"""Cross-checks of the queues' routing rules (requires, preferred, relax, agents, strategy).

The models already parsed each skill expression (a syntax error is reported there with its
column); here the expressions are checked against the declared skills and the agents, so an
admin learns at validate time, not from a caller waiting forever, that ``requires: bilingual``
names no skill or that no agent of the queue can ever meet it. A problem inside an expression
names its column in the expression::

    config/queues.yaml:9:15: queues.sales.requires: unknown skill 'englsh' at column 19 of
    the expression (did you mean 'english'?)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from callcenter.config.checks import Problem
from callcenter.config.models import CallCenterConfig, QueueDest
from callcenter.config.partial import Broken
from callcenter.routing.expr import KEYWORDS, evaluate, parse_expr, skills_of

__all__ = ["RING_ALL_MAX", "check_routing"]

#: ring_all rings every qualifying phone at once: fine for a small team, a storm beyond.
RING_ALL_MAX = 20
_NOTHING_BROKEN = Broken()


def check_routing(c: CallCenterConfig, broken: Broken = _NOTHING_BROKEN) -> Iterator[Problem]:
    """Every problem in the queues' routing rules."""
    for i, skill in enumerate(c.skills):
        if skill in KEYWORDS:
            yield Problem(("skills", i), f"'{skill}' cannot be a skill name: it is a keyword "
                                         "of skill expressions (and, or, not)")
    skills_known = not broken.touches("skills")
    agents_known = not broken.touches("agents")
    declared = set(c.skills)
    for name, queue in c.queues.items():
        base = ("queues", name)
        expressions = [(base + ("requires",), queue.requires)]
        expressions += [(base + ("relax", i, "requires"), step.requires)
                        for i, step in enumerate(queue.relax)]
        if skills_known:
            for path, text in expressions:
                if text is not None:
                    yield from _unknown_skills(path, text, declared)
            for skill in queue.preferred:
                if skill not in declared:
                    yield Problem(base + ("preferred", skill),
                                  f"unknown skill '{skill}'{_hint(skill, declared)}")
        yield from _relax_order(c, name)
        yield from _when_unavailable(c, name, broken)
        if not agents_known:
            continue
        for i, agent in enumerate(queue.agents):
            if agent not in c.agents:
                yield Problem(base + ("agents", i),
                              f"unknown agent '{agent}'{_hint(agent, c.agents)}")
        members = [a for a in c.agents if _serves(c, name, a)]
        if queue.strategy == "ring_all" and len(members) > RING_ALL_MAX:
            yield Problem(base + ("strategy",),
                          f"ring_all rings every agent at once: queue '{name}' has "
                          f"{len(members)} agents (at most {RING_ALL_MAX}); use longest_idle")
        if not members:
            continue
        if queue.language_required and not any(c.agents[a].languages for a in members):
            yield Problem(base + ("language_required",),
                          f"no agent of queue '{name}' lists languages: every caller with a "
                          "language would wait")
        if queue.requires is not None and skills_known and _all_known(queue.requires,
                                                                      declared) and not any(
                evaluate(parse_expr(queue.requires), c.agents[a].skills) for a in members):
            yield Problem(base + ("requires",),
                          f"no agent of queue '{name}' meets {queue.requires!r}: calls would "
                          "wait for a relax step")


def _serves(c: CallCenterConfig, queue: str, agent: str) -> bool:
    q = c.queues[queue]
    if q.agents:
        return agent in q.agents
    return not q.skills or any(s in c.agents[agent].skills for s in q.skills)


def _unknown_skills(path: tuple, text: str, declared: set[str]) -> Iterator[Problem]:
    for has in skills_of(parse_expr(text)):
        if has.skill not in declared:
            yield Problem(path, f"unknown skill '{has.skill}' at column {has.column} of the "
                                f"expression{_hint(has.skill, declared)}")


def _all_known(text: str, declared: set[str]) -> bool:
    return all(has.skill in declared for has in skills_of(parse_expr(text)))


def _relax_order(c: CallCenterConfig, name: str) -> Iterator[Problem]:
    steps = c.queues[name].relax
    for i, step in enumerate(steps):
        path = ("queues", name, "relax", i)
        if i and step.after <= steps[i - 1].after:
            yield Problem(path + ("after",),
                          f"after: {step.after} is not later than the step before "
                          f"(after: {steps[i - 1].after}); relax steps go in increasing after")
        if step.overflow is not None and i != len(steps) - 1:
            yield Problem(path + ("overflow",),
                          "overflow ends the wait in this queue: it must be the last relax step")
        if isinstance(step.overflow, QueueDest) and step.overflow.queue == name:
            yield Problem(path + ("overflow", "queue"),
                          f"queue '{name}' overflows to itself")


def _when_unavailable(c: CallCenterConfig, name: str, broken: Broken) -> Iterator[Problem]:
    """A queue's ``when_unavailable``: its schedule exists, it does not send callers back
    to itself, ``take_message`` has a schedule to wait for and a callback to call back
    with, and ``max_wait`` leaves every relax step time to happen."""
    rule = c.queues[name].when_unavailable
    if rule is None:
        return
    path = ("queues", name, "when_unavailable")
    if rule.schedule is not None and rule.schedule not in c.schedules \
            and not broken.has("schedules", rule.schedule):
        yield Problem(path + ("schedule",),
                      f"unknown schedule '{rule.schedule}'{_hint(rule.schedule, c.schedules)}")
    if isinstance(rule.destination, QueueDest) and rule.destination.queue == name:
        yield Problem(path + ("destination", "queue"),
                      f"queue '{name}' sends the callers nobody can take back to itself")
    if rule.take_message is not None:
        if rule.schedule is None:
            yield Problem(path + ("take_message",),
                          "take_message needs when_unavailable.schedule: the message becomes "
                          "a callback when the schedule opens")
        if c.queues[name].callback is None:
            yield Problem(path + ("take_message",),
                          f"take_message needs queue '{name}' to have callback: its dial "
                          "calls the customer back")
    if rule.max_wait is not None:
        late = [(i, step) for i, step in enumerate(c.queues[name].relax)
                if step.after >= rule.max_wait]
        if late:
            i, step = late[0]
            what = "overflow" if step.overflow is not None else "relax"
            yield Problem(path + ("max_wait",),
                          f"max_wait: {rule.max_wait} sends callers on before relax[{i}] "
                          f"({what} after {step.after} s) can happen; make max_wait longer "
                          "than every relax step's after")


def _hint(name: str, known: object) -> str:
    names = sorted(known)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(names)})" if names else " (none defined)"
