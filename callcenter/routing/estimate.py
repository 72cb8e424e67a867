"""How long a waiting caller will still wait: measured handle times, the agents serving
the queue, the caller's position. Pure: no I/O, no clock (every input is given).

The formula (:func:`estimate_wait`)::

    H = S + T + W          the handle time: S mean setup (offer to answer), T mean talk
                           (answer to hang-up) over the queue's recent answered calls,
                           W the queue's wrap-up
    f_i                    seconds until serving agent i is free (:func:`free_in`):
                             0 if available, reserved or ringing (the agent rung for the
                               caller at position 1 counts as free for it),
                             wrap_up_until - now in wrap-up,
                             max(T - talking, 0) + W on a call
    wait(p) = S + (p-th smallest of { f_i + k * H : serving agent i, k = 0, 1, 2, ... })

Agents serve callers in turn: the first agent to be free takes position 1, the next
position 2, and each agent is free again one handle time after it took a caller. The
estimate is None (the wait is not announced) while no call of the queue has been measured
or no agent serves it. Limits: an agent serving several queues is counted whole in each,
and callers of other queues it may take first are not seen.

Times are seconds on one clock the caller chooses (POSIX timestamps in the announcer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["HandleStats", "estimate_wait", "free_in", "handle_stats", "minutes_to_say"]


@dataclass(frozen=True)
class HandleStats:
    """Means over the recent answered calls of a queue, in seconds."""

    calls: int
    setup: float
    talk: float
    wrapup: float

    @property
    def handle(self) -> float:
        """How long one call keeps an agent: setup + talk + wrap-up."""
        return self.setup + self.talk + self.wrapup


def handle_stats(calls: Iterable[tuple[float, float, float]],
                 wrapup: float) -> HandleStats | None:
    """Means of *calls* (``(offered, answered, ended)`` of each answered call) with the
    queue's *wrapup*; None without any call."""
    setups: list[float] = []
    talks: list[float] = []
    for offered, answered, ended in calls:
        setups.append(max(answered - offered, 0.0))
        talks.append(max(ended - answered, 0.0))
    if not talks:
        return None
    return HandleStats(len(talks), sum(setups) / len(setups), sum(talks) / len(talks),
                       float(wrapup))


def free_in(status: str, *, since: float, wrap_up_until: float | None,
            now: float, stats: HandleStats) -> float | None:
    """Seconds until an agent in *status* (an :class:`~callcenter.agents.state.AgentStatus`
    value) is free to take a waiting caller; None if it does not serve (logged out,
    paused)."""
    match status:
        case "available" | "reserved" | "ringing":
            return 0.0
        case "wrap_up":
            if wrap_up_until is None:
                return stats.wrapup
            return max(wrap_up_until - now, 0.0)
        case "on_call":
            talking = max(now - since, 0.0)
            return max(stats.talk - talking, 0.0) + stats.wrapup
    return None


def estimate_wait(position: int, free: Sequence[float],
                  stats: HandleStats | None) -> float | None:
    """Seconds until the caller at *position* (1: next) is answered, given *free* (each
    serving agent's :func:`free_in`); see the module docstring for the formula."""
    if position < 1:
        raise ValueError(f"position starts at 1, got {position}")
    if stats is None or not free:
        return None
    handle = max(stats.handle, 0.001)
    slots = [max(f, 0.0) for f in free]  # when each agent next takes a caller
    slot = 0.0
    for _ in range(position):  # positions are small: a scan, no heap
        first = min(range(len(slots)), key=slots.__getitem__)
        slot = slots[first]
        slots[first] = slot + handle
    return stats.setup + slot


def minutes_to_say(wait: float) -> int:
    """The wait as announced: whole minutes, rounded up (a caller told "2 minutes" is not
    still waiting after 2); under a minute is said as "less than 1 minute" (0 here)."""
    if wait < 60:
        return 0
    return -int(-wait // 60)
