"""When nobody can take a queue's calls: pure decisions for the queue router.

A queue with ``when_unavailable`` (:class:`~callcenter.config.models.WhenUnavailable`)
sends callers on to a destination instead of letting them wait for nobody. The router
asks twice:

* **at entry** (:func:`entry_reason`): the caller never waits when the queue is closed
  (its ``schedule``), has no agents (``no_agents``) or is full (``max_callers``), in that
  order, as app_queue's ``joinempty`` and ``maxlen`` refuse a caller before it joins;
* **while waiting** (:func:`waiting_reason`, every matchmaking pass): the schedule closed,
  the queue has had no agents for ``grace`` seconds (app_queue's ``leavewhenempty``), or
  the caller waited ``max_wait`` seconds (the ``Queue()`` timeout).

"No agents" is judged on the agents' stored statuses, over the queue's members
(:func:`~callcenter.routing.policy.memberships`): ``logged_out`` (every member logged
out), ``paused`` (every member logged out or paused). An agent reserved, ringing, on a
call or in wrap-up is there: it will be free soon. Members who cannot meet a call's skill
requirement still count (as app_queue counts members whatever their penalty): a caller
waiting for a skill nobody logged in has is the relax steps' business.

The caller goes to the queue's ``cc-queue`` extension at :data:`UNAVAILABLE_LABEL`, which
the dialplan generator writes for every queue (to ``when_unavailable.destination``, else
the queue's ``fallback``). Nothing here reads a clock or does I/O; times are POSIX
seconds. :mod:`ari_apps.unavailable` feeds these functions from the router's state (agent
statuses, the schedules at the current time, since when a queue has had no agents).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from callcenter.config.models import WhenUnavailable

__all__ = ["CLOSED", "FULL", "MAX_WAIT", "NO_AGENTS", "REASONS", "UNAVAILABLE_LABEL",
           "Waiting", "empty_since", "entry_reason", "nobody_there", "overflow_to",
           "waiting_reason"]

#: The priority label of each queue's ``cc-queue`` extension where the router continues
#: a caller nobody can take: ``continue_in_dialplan(ch, "cc-queue", queue, label=...)``.
UNAVAILABLE_LABEL = "unavailable"

# Why a caller left (or never joined) the queue: what the record and the events say.
#: The queue's schedule is closed (a holiday counts as closed).
CLOSED = "closed"
#: No agent there (see ``no_agents``).
NO_AGENTS = "no_agents"
#: ``max_callers`` were waiting already (at entry only).
FULL = "full"
#: The caller waited ``max_wait`` seconds (while waiting only).
MAX_WAIT = "max_wait"
REASONS = (CLOSED, NO_AGENTS, FULL, MAX_WAIT)

#: Agent statuses (:class:`~callcenter.agents.state.AgentStatus` values) in which an agent
#: is not there, per ``no_agents``.
_ABSENT = {
    "logged_out": frozenset({"logged_out"}),
    "paused": frozenset({"logged_out", "paused"}),
    "never": frozenset(),
}


def overflow_to(reason: str) -> str:
    """``queued_calls.overflow_to`` of a caller sent on: where it went and why
    (``unavailable:no_agents``)."""
    return f"{UNAVAILABLE_LABEL}:{reason}"


def nobody_there(rule: WhenUnavailable, statuses: Iterable[str]) -> bool:
    """Whether a queue whose members are in *statuses* has no agents, per the rule.
    A queue with no members at all has none (``never``: never judged empty)."""
    if rule.no_agents == "never":
        return False
    absent = _ABSENT[rule.no_agents]
    return all(status in absent for status in statuses)


def empty_since(previous: float | None, empty: bool, now: float) -> float | None:
    """Since when a queue has had no agents, after seeing it *empty* (or not) at *now*:
    the earlier time while it stays empty, None once it has an agent."""
    if not empty:
        return None
    return now if previous is None else previous


@dataclass(frozen=True, slots=True)
class Waiting:
    """One caller waiting (not being offered) in a queue, as these decisions see it."""

    call: str
    queue: str
    #: POSIX seconds: when it entered the queue (its first entry, after a restart too).
    entered_at: float


def entry_reason(rule: WhenUnavailable, *, open_now: bool, empty: bool | None,
                 waiting: int) -> str | None:
    """Why a caller arriving now must not wait (None: it joins). *empty*: the queue has
    no agents now (None: not known yet, not judged); *waiting*: callers already there."""
    if not open_now:
        return CLOSED
    if empty:
        return NO_AGENTS
    if rule.max_callers is not None and waiting >= rule.max_callers:
        return FULL
    return None


def waiting_reason(rule: WhenUnavailable, *, open_now: bool, since: float | None,
                   entered_at: float, now: float) -> str | None:
    """Why a waiting caller must leave now (None: it waits on). *since*: when the queue
    started having no agents (:func:`empty_since`; None: it has some)."""
    if not open_now:
        return CLOSED
    if since is not None and now - since >= rule.grace:
        return NO_AGENTS
    if rule.max_wait is not None and now - entered_at >= rule.max_wait:
        return MAX_WAIT
    return None
