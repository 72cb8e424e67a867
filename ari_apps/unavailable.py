"""When nobody can take a queue's calls: the router's side of
:mod:`callcenter.routing.availability`.

:class:`Gate` turns what the router knows (the agents' stored statuses, the config's
schedules at the current time) into the pure decisions' inputs, and keeps the one memory
they need: since when each queue has had no agents (for ``grace``). The router asks
:meth:`Gate.at_entry` in ``_admit`` (a caller refused goes to ``cc-queue,<queue>,
unavailable`` at once) and :meth:`Gate.leaving` on every matchmaking pass (waiting
callers who must leave go there too). No I/O: the router carries the answers out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from callcenter.agents.state import AgentStatus
from callcenter.config.models import CallCenterConfig, WhenUnavailable
from callcenter.flows.schedule import schedule_state
from callcenter.routing.availability import (
    Waiting,
    empty_since,
    entry_reason,
    nobody_there,
    waiting_reason,
)
from callcenter.routing.policy import memberships

__all__ = ["Gate"]


class Gate:
    """The queues' ``when_unavailable`` rules, judged against the router's state."""

    def __init__(self, config: CallCenterConfig) -> None:
        #: Queue -> its rule, for the queues that have one.
        self.rules: dict[str, WhenUnavailable] = {
            name: q.when_unavailable for name, q in config.queues.items()
            if q.when_unavailable is not None}
        self._schedules = {name: config.schedules.get(rule.schedule) if rule.schedule else None
                           for name, rule in self.rules.items()}
        self._timezone = config.settings.timezone
        members: dict[str, list[str]] = {name: [] for name in self.rules}
        for agent, queues in memberships(config).items():
            for queue in queues & members.keys():
                members[queue].append(agent)
        self._members = {queue: tuple(sorted(agents)) for queue, agents in members.items()}
        self._empty_since: dict[str, float] = {}

    def _empty(self, queue: str, statuses: Mapping[str, AgentStatus]) -> bool:
        """Members the store has not shown yet are logged out (as it creates them)."""
        return nobody_there(self.rules[queue], (statuses.get(a, AgentStatus.LOGGED_OUT)
                                                for a in self._members[queue]))

    def _open(self, queue: str, now: dt.datetime) -> bool:
        """The same judgement as the dialplan's ``check_schedule``: a holiday is closed."""
        schedule = self._schedules[queue]
        return schedule is None or schedule_state(schedule, now, self._timezone) == "open"

    def is_open(self, queue: str, now: dt.datetime) -> bool:
        """Whether *queue*'s schedule is open at *now* (a queue with no rule or no
        schedule always is): when a message callback may be offered."""
        return queue not in self.rules or self._open(queue, now)

    def at_entry(self, queue: str, statuses: Mapping[str, AgentStatus] | None, waiting: int,
                 now: dt.datetime) -> str | None:
        """Why a caller arriving in *queue* at *now* goes on at once (None: it joins).
        *statuses*: every agent's status (None: not read yet, "no agents" not judged);
        *waiting*: callers of the queue not answered yet."""
        rule = self.rules.get(queue)
        if rule is None:
            return None
        empty = None if statuses is None else self._empty(queue, statuses)
        return entry_reason(rule, open_now=self._open(queue, now), empty=empty,
                            waiting=waiting)

    def leaving(self, waiting: Iterable[Waiting], statuses: Mapping[str, AgentStatus],
                now: dt.datetime) -> list[tuple[str, str]]:
        """(call, reason) for each waiting caller who must leave now, in the order given.
        Called on every pass: it also notes since when each queue has had no agents."""
        ts = now.timestamp()
        for queue in self.rules:
            since = empty_since(self._empty_since.get(queue), self._empty(queue, statuses), ts)
            if since is None:
                self._empty_since.pop(queue, None)
            else:
                self._empty_since[queue] = since
        opened = {queue: self._open(queue, now) for queue in self.rules}
        out = []
        for caller in waiting:
            rule = self.rules.get(caller.queue)
            if rule is None:
                continue
            reason = waiting_reason(rule, open_now=opened[caller.queue],
                                    since=self._empty_since.get(caller.queue),
                                    entered_at=caller.entered_at, now=ts)
            if reason is not None:
                out.append((caller.call, reason))
        return out
