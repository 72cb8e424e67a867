"""The statistics, pure: plain records in, figures out (no I/O, ``now`` passed in).

Definitions (also in the README, "Statistics"); *wait* is from entering the queue
(``queued_calls.entered_at``) to the answer or to the caller's hang-up:

* A call belongs to the range, the queue and the interval in which it **entered** the
  queue. Calls still waiting at the time of the report are ``open``: counted as offered,
  judged by nothing.
* **Service level**: calls answered with a wait of at most the queue's
  ``service_level.threshold`` seconds, over the *judged* calls: answered, abandoned,
  overflowed and timed out, minus the short abandons unless the queue's
  ``count_short_abandons`` is true. Each call is judged by its own queue's definition, so
  a total over queues with different thresholds stays meaningful.
* **Short abandon**: a caller who hung up while waiting after less than the queue's
  ``short_abandon`` seconds (a misdial, a caller who changed their mind).
* **Abandon rate**: counted abandons over the judged calls (same denominator).
* **ASA** (average speed of answer): the mean wait of answered calls.
* **AHT** (average handle time) = talk + wrap-up, over answered calls whose talk has
  ended: talk from the answer to the hang-up, wrap-up the agent's ``wrap_up`` state that
  followed that call (from the ``hangup`` transition to the agent's next change: ended
  early by the agent, by its timer, or still running at ``now``).
* **Occupancy** of an agent: time on calls and in wrap-up over time *staffed* (logged in
  and not paused: available, reserved, ringing, on a call, in wrap-up), both from the
  agent's transitions and clipped to the range (and to ``now``).
* **Intervals** start at the center's local midnight of the range's first day and follow
  each other every ``interval``; agent time is split at their edges, so the intervals'
  figures add up to the totals.

Rates with nothing to divide by are 0 (an empty range gives zeros, never an error).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from callcenter.agents.state import AgentStatus
from callcenter.config.models import ServiceLevel
from callcenter.stats.records import (
    AgentTime,
    CallFigures,
    CallRecord,
    RealTime,
    Report,
    Row,
    StatusChange,
    WaitingRecord,
)

__all__ = [
    "BY",
    "MAX_INTERVALS",
    "agent_segments",
    "agent_times",
    "build_report",
    "classify",
    "interval_edges",
    "realtime",
    "waited",
    "wrap_ups",
]

BY = ("queue", "agent", "interval")
#: More interval rows than this is a mistake in the range or the interval length.
MAX_INTERVALS = 10_000

_STAFFED = frozenset(AgentStatus) - {AgentStatus.LOGGED_OUT, AgentStatus.PAUSED}
_DEFAULT_RULE = ServiceLevel()

Segment = tuple[str, AgentStatus, datetime, datetime]
"""(agent, status, begin, end): the agent was in *status* from *begin* to *end*."""


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def classify(call: CallRecord, rule: ServiceLevel, wrap_up: float = 0.0) -> CallFigures:
    """The figures of one call under its queue's *rule*; *wrap_up*: seconds of the
    agent's wrap-up after it (:func:`wrap_ups`)."""
    if call.answered_at is not None:
        wait = _seconds(call.answered_at - call.entered_at)
        handled = call.ended_at is not None
        return CallFigures(
            offered=1, answered=1, judged=1, answer_wait=wait,
            answered_in_threshold=int(wait <= rule.threshold),
            handled=int(handled),
            talk=_seconds(call.ended_at - call.answered_at) if call.ended_at else 0.0,
            wrap_up=wrap_up if handled else 0.0,
        )
    if call.ended_at is None:
        return CallFigures(offered=1, open=1)
    if call.outcome == "abandoned":
        short = _seconds(call.ended_at - call.entered_at) < rule.short_abandon
        counted = not short or rule.count_short_abandons
        return CallFigures(offered=1, abandoned=1, short_abandoned=int(short),
                           abandoned_counted=int(counted), judged=int(counted))
    return CallFigures(offered=1, unanswered_other=1, judged=1)


def waited(call: CallRecord, now: datetime) -> float:
    """Seconds the caller waited: to the answer, to the end, or until *now* if open."""
    until = call.answered_at or call.ended_at or now
    return _seconds(until - call.entered_at)


def _by_agent(changes: Iterable[StatusChange]) -> dict[str, list[StatusChange]]:
    grouped: dict[str, list[StatusChange]] = defaultdict(list)
    for change in changes:
        grouped[change.agent].append(change)
    for agent_changes in grouped.values():
        agent_changes.sort(key=lambda c: c.at)
    return grouped


def wrap_ups(changes: Iterable[StatusChange], until: datetime) -> dict[str, float]:
    """Seconds of wrap-up after each call (by the caller's channel): from the agent's
    ``wrap_up`` change that names the call to the agent's next change (or *until*)."""
    result: dict[str, float] = {}
    for agent_changes in _by_agent(changes).values():
        for change, following in zip(agent_changes, [*agent_changes[1:], None], strict=True):
            if change.status is AgentStatus.WRAP_UP and change.call is not None:
                end = following.at if following is not None else until
                result[change.call] = result.get(change.call, 0.0) + _seconds(end - change.at)
    return result


def agent_segments(initial: Mapping[str, AgentStatus], changes: Iterable[StatusChange],
                   start: datetime, end: datetime) -> list[Segment]:
    """Each agent's statuses over ``[start, end)``: *initial* holds the status each agent
    was in at *start* (its last change before; agents absent were logged out)."""
    segments: list[Segment] = []
    grouped = _by_agent(c for c in changes if start <= c.at < end)
    for agent in sorted(set(initial) | set(grouped)):
        status, since = initial.get(agent, AgentStatus.LOGGED_OUT), start
        for change in grouped.get(agent, ()):
            if change.at > since:
                segments.append((agent, status, since, change.at))
            status, since = change.status, change.at
        if end > since:
            segments.append((agent, status, since, end))
    return segments


def _time_of(status: AgentStatus, seconds: float) -> AgentTime:
    return AgentTime(
        staffed=seconds if status in _STAFFED else 0.0,
        on_call=seconds if status is AgentStatus.ON_CALL else 0.0,
        wrap_up=seconds if status is AgentStatus.WRAP_UP else 0.0,
        paused=seconds if status is AgentStatus.PAUSED else 0.0,
    )


def agent_times(segments: Iterable[Segment]) -> dict[str, AgentTime]:
    """Time per kind of state, per agent."""
    times: dict[str, AgentTime] = {}
    for agent, status, begin, end in segments:
        times[agent] = times.get(agent, AgentTime()) + _time_of(status, _seconds(end - begin))
    return times


def interval_edges(start: datetime, end: datetime, length: timedelta,
                   tz: tzinfo) -> list[datetime]:
    """The edges of the intervals covering ``[start, end)``: the first edge is the last
    one at or before *start*, counting from the local midnight of *start*'s day in *tz*.

    Raises:
        ValueError: *length* is not positive, or more than :data:`MAX_INTERVALS` intervals.
    """
    if length <= timedelta(0):
        raise ValueError(f"the interval must be positive, got {length}")
    # In UTC: an aware datetime of a zone adds timedeltas on the wall clock, which
    # would make an interval across a DST change an hour long or short.
    anchor = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    count = -(-(end - anchor) // length) if end > anchor else 1
    first = (start - anchor) // length
    if count - first > MAX_INTERVALS:
        raise ValueError(f"{count - first} intervals of {length} in the range (at most "
                         f"{MAX_INTERVALS}): choose a longer interval or a shorter range")
    return [anchor + k * length for k in range(first, max(count, first + 1) + 1)]


def _bucket(edges: Sequence[datetime], at: datetime) -> int:
    """Index of the interval of *edges* holding *at* (the last interval if past it)."""
    low, high = 0, len(edges) - 2
    while low < high:
        middle = (low + high + 1) // 2
        if edges[middle] <= at:
            low = middle
        else:
            high = middle - 1
    return low


def _split(segments: Iterable[Segment], edges: Sequence[datetime]) -> list[AgentTime]:
    """Agent time (all agents) per interval, segments cut at the edges."""
    times = [AgentTime() for _ in edges[:-1]]
    for _, status, begin, end in segments:
        index = _bucket(edges, begin)
        while begin < end and index < len(times):
            piece_end = min(end, edges[index + 1])
            times[index] = times[index] + _time_of(status, _seconds(piece_end - begin))
            begin, index = piece_end, index + 1
    return times


def _row(key: str, items: Iterable[tuple[CallFigures, float]],
         time: AgentTime | None = None) -> Row:
    figures, longest = CallFigures(), 0.0
    for call_figures, wait in items:
        figures, longest = figures + call_figures, max(longest, wait)
    return Row(key, figures, time, longest)


def build_report(
    calls: Iterable[CallRecord],
    initial: Mapping[str, AgentStatus],
    changes: Sequence[StatusChange],
    *,
    rules: Mapping[str, ServiceLevel],
    start: datetime,
    end: datetime,
    now: datetime,
    by: str,
    interval: timedelta = timedelta(minutes=15),
    tz: tzinfo | None = None,
    queues: Iterable[str] = (),
    agents: Iterable[str] = (),
) -> Report:
    """The report of ``[start, end)`` grouped *by* ``queue``, ``agent`` or ``interval``.

    *calls*: the calls that entered a queue in the range; *initial* and *changes*: the
    agents' statuses at *start* and their changes from then on (changes after *end* are
    needed only for the wrap-ups of the range's last calls); *rules*: each queue's
    service-level definition (an unknown queue gets the defaults); *queues* and
    *agents*: rows shown even when empty (the configured ones).
    """
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    if not start < end:
        raise ValueError(f"the range is empty: {start.isoformat()} is not before {end.isoformat()}")
    calls = [c for c in calls if start <= c.entered_at < end]
    wraps = wrap_ups(changes, now)
    judged = [
        (call, classify(call, rules.get(call.queue, _DEFAULT_RULE), wraps.get(call.channel, 0.0)),
         waited(call, now))
        for call in calls
    ]
    segments = agent_segments(initial, changes, start, max(start, min(end, now)))
    total_time = sum(agent_times(segments).values(), AgentTime())
    if by == "queue":
        names = sorted(set(queues) | {c.queue for c in calls})
        rows = tuple(_row(q, ((f, w) for c, f, w in judged if c.queue == q)) for q in names)
        total = _row("total", ((f, w) for _, f, w in judged))
    elif by == "agent":
        times = agent_times(segments)
        names = sorted(set(agents) | set(times) | {c.agent for c in calls if c.agent})
        rows = tuple(_row(a, ((f, w) for c, f, w in judged if c.agent == a),
                          times.get(a, AgentTime())) for a in names)
        total = _row("total", ((f, w) for c, f, w in judged if c.agent), total_time)
    else:
        zone = tz or UTC
        edges = interval_edges(start, end, interval, zone)
        per_interval: list[list[tuple[CallFigures, float]]] = [[] for _ in edges[:-1]]
        for call, figures, wait in judged:
            per_interval[_bucket(edges, call.entered_at)].append((figures, wait))
        split = _split(segments, edges)
        rows = tuple(_row(edge.astimezone(zone).isoformat(), items, time)
                     for edge, items, time in zip(edges, per_interval, split, strict=False))
        total = _row("total", ((f, w) for _, f, w in judged), total_time)
    return Report(start, end, by, rows, total)


def realtime(waiting: Iterable[WaitingRecord], statuses: Iterable[AgentStatus],
             now: datetime, queues: Iterable[str] = ()) -> RealTime:
    """Callers waiting and the longest wait per queue (configured queues always listed),
    agents by state (every state listed)."""
    counts = dict.fromkeys(sorted(queues), 0)
    longest = dict.fromkeys(counts, 0.0)
    for call in waiting:
        counts[call.queue] = counts.get(call.queue, 0) + 1
        longest[call.queue] = max(longest.get(call.queue, 0.0), _seconds(now - call.entered_at))
    agents = {status.value: 0 for status in AgentStatus}
    for status in statuses:
        agents[AgentStatus(status).value] += 1
    return RealTime(now, dict(sorted(counts.items())), dict(sorted(longest.items())), agents)
