"""The plain records the statistics are computed from, and the figures they give.

The queries (:mod:`callcenter.stats.queries`) turn database rows into these records; the
computations (:mod:`callcenter.stats.compute`) never see a session. Every figure is a
count or a sum of seconds, so figures of parts add up to the figures of the whole
(:meth:`CallFigures.__add__`); the rates and averages are derived from them on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Self

from callcenter.agents.state import AgentStatus

__all__ = [
    "AgentTime",
    "CallFigures",
    "CallRecord",
    "RealTime",
    "Report",
    "Row",
    "StatusChange",
    "WaitingRecord",
    "ratio",
]


def ratio(part: float, whole: float) -> float:
    """``part / whole``, and 0 for an empty whole (an empty range gives zeros, not errors)."""
    return part / whole if whole > 0 else 0.0


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One caller's stay in a queue (a ``queued_calls`` row)."""

    queue: str
    channel: str
    entered_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    #: ``answered``, ``abandoned``, ``overflowed``, ``timed_out``; None while open.
    outcome: str | None = None
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One agent transition (an ``agent_transitions`` row): from *at*, *agent* is in
    *status*; *call* is the caller's channel a wrap-up follows (the ``hangup`` event's)."""

    agent: str
    at: datetime
    status: AgentStatus
    call: str | None = None


@dataclass(frozen=True, slots=True)
class WaitingRecord:
    """A caller waiting now (not answered, not ended)."""

    queue: str
    entered_at: datetime


class _Summable:
    """Field-wise addition of dataclasses made only of numbers."""

    def __add__(self, other: Self) -> Self:
        return type(self)(**{  # type: ignore[call-arg]
            f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)  # type: ignore[arg-type]
        })


@dataclass(frozen=True, slots=True)
class CallFigures(_Summable):
    """What happened to the calls of a group (a queue, an agent, an interval).

    ``offered`` = ``answered`` + ``abandoned`` + ``unanswered_other`` + ``open``.
    ``judged`` is the denominator of the service level and the abandon rate: calls whose
    wait is over, without the short abandons when the queue does not count them.
    """

    offered: int = 0
    answered: int = 0
    answered_in_threshold: int = 0
    #: Every caller who hung up while waiting, short abandons included.
    abandoned: int = 0
    #: Of ``abandoned``: those who waited less than the queue's ``short_abandon``.
    short_abandoned: int = 0
    #: Of ``abandoned``: those the service level and abandon rate count.
    abandoned_counted: int = 0
    #: Overflowed or timed out: left the queue unanswered by the queue's own rules.
    unanswered_other: int = 0
    #: Still waiting at the time of the report.
    open: int = 0
    judged: int = 0
    #: Seconds from entering the queue to the answer, summed over answered calls.
    answer_wait: float = 0.0
    #: Answered calls whose talk has ended (the AHT's denominator).
    handled: int = 0
    #: Seconds from the answer to the hang-up, over ``handled`` calls.
    talk: float = 0.0
    #: Seconds of the agent's wrap-up after each of the ``handled`` calls.
    wrap_up: float = 0.0

    @property
    def service_level(self) -> float:
        return ratio(self.answered_in_threshold, self.judged)

    @property
    def abandon_rate(self) -> float:
        return ratio(self.abandoned_counted, self.judged)

    @property
    def asa(self) -> float:
        return ratio(self.answer_wait, self.answered)

    @property
    def average_talk(self) -> float:
        return ratio(self.talk, self.handled)

    @property
    def average_wrap_up(self) -> float:
        return ratio(self.wrap_up, self.handled)

    @property
    def aht(self) -> float:
        return ratio(self.talk + self.wrap_up, self.handled)


@dataclass(frozen=True, slots=True)
class AgentTime(_Summable):
    """Seconds an agent (or several, summed) spent in each kind of state in a window."""

    #: Logged in and not paused: available, reserved, ringing, on a call, in wrap-up.
    staffed: float = 0.0
    on_call: float = 0.0
    wrap_up: float = 0.0
    paused: float = 0.0

    @property
    def busy(self) -> float:
        """Time on calls and in wrap-up: what occupancy counts as work."""
        return self.on_call + self.wrap_up

    @property
    def occupancy(self) -> float:
        # on_call + wrap_up may round a hair past staffed (1023.367188 + 1.0 > 1024.367188)
        return min(1.0, ratio(self.busy, self.staffed))


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a report: *key* is a queue or agent name, or an interval's start."""

    key: str
    calls: CallFigures
    time: AgentTime | None = None
    #: Longest wait, seconds, of the calls of the row (answered or not).
    longest_wait: float = 0.0


@dataclass(frozen=True, slots=True)
class RealTime:
    """Now: callers waiting and the longest wait per queue, agents by state."""

    at: datetime
    waiting: dict[str, int]
    longest_wait: dict[str, float]
    agents: dict[str, int]


@dataclass(frozen=True, slots=True)
class Report:
    """The figures of ``[start, end)`` grouped *by* ``queue``, ``agent`` or ``interval``."""

    start: datetime
    end: datetime
    by: str
    rows: tuple[Row, ...]
    total: Row
    realtime: RealTime | None = None
