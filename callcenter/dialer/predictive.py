"""Predictive pacing from what the dialer knows (pure): the Pacer's inputs, and who takes a
live answer.

The predictive dialer (:mod:`ari_apps.predictive`) places calls before any agent is
reserved; a live answer takes the longest-idle available agent at that moment. These
functions turn its knowledge into the :class:`~callcenter.dialer.pacing.Pacer`'s terms:

* :func:`measured`: the campaign's attempt history (:class:`AttemptRow`, from the
  database) as :class:`~callcenter.dialer.pacing.Measured`: outcome counts, ring time to
  each kind of answer, talk times, and the live answers and abandons inside the abandon
  rule's window (30 days US, 24 h UK). The hard guard reads the abandon rate from these
  counts, so it is the rate really measured, not a guess.
* :func:`snapshot`: the campaign's agents (from the agent store's states) and the calls
  in progress (how long each has rung, whether it waits for an agent).
* :func:`policy`: the campaign's ``abandon`` limit as a
  :class:`~callcenter.dialer.pacing.PacingPolicy`.
* :func:`longest_idle`: the agent a live answer goes to.

Nothing here reads a clock or does I/O: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from callcenter.agents.state import AgentState, AgentStatus
from callcenter.config.campaign import Campaign
from callcenter.dialer.pacing import AgentState as PacerAgentState
from callcenter.dialer.pacing import (
    AgentView,
    CallView,
    Distribution,
    Measured,
    Mode,
    PacingPolicy,
    Snapshot,
)

__all__ = [
    "AttemptRow",
    "Dialing",
    "longest_idle",
    "measured",
    "policy",
    "snapshot",
]

#: How a stored outcome counts for the Pacer (cancelled attempts do not count).
_LIVE = frozenset({"answered", "abandoned", "callback_requested"})
_BUSY = frozenset({"busy"})
_FAILED = frozenset({"failed", "invalid_number"})
_NO_ANSWER = frozenset({"no_answer", "hangup_at_once"})
_MACHINE = frozenset({"machine"})
#: Agent store states that count as "on a call" for the Pacer (held for a call).
_ON_CALL = frozenset({AgentStatus.RESERVED, AgentStatus.RINGING, AgentStatus.ON_CALL})


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One ended attempt of the campaign, as stored (``outcome``: the stored value)."""

    outcome: str
    started_at: datetime
    ended_at: datetime
    answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Dialing:
    """A call in progress with no agent yet: when it was placed, when it was answered."""

    placed_at: datetime
    answered_at: datetime | None = None


def _seconds(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


def measured(rows: Iterable[AttemptRow], now: datetime, *, window: timedelta,
             wrap_up: timedelta) -> Measured:
    """What the campaign measured: ``rows`` are its ended attempts (any age; those older
    than ``window`` count for the distributions, not for the abandon rate).

    The ring time to a live answer is the time to the agent's answer where one took it
    (a little late, so the Pacer errs toward fewer calls); abandons have none. Wrap-up
    is the dialer's fixed ``wrap_up`` (the store keeps no wrap-up history).
    """
    counts = dict.fromkeys(("live", "machine", "busy", "no_answer", "failed"), 0)
    to_live: list[float] = []
    to_machine: list[float] = []
    to_busy: list[float] = []
    talk: list[float] = []
    window_live = window_abandoned = 0
    since = now - window
    for row in rows:
        outcome = str(row.outcome)
        ring = _seconds(row.started_at, row.ended_at)
        if outcome in _LIVE:
            counts["live"] += 1
            if row.answered_at is not None:
                to_live.append(_seconds(row.started_at, row.answered_at))
                talk.append(_seconds(row.answered_at, row.ended_at))
            if row.started_at > since:
                window_live += 1
                window_abandoned += outcome == "abandoned"
        elif outcome in _MACHINE:
            counts["machine"] += 1
            to_machine.append(ring)
        elif outcome in _BUSY or outcome in _FAILED:
            counts["busy" if outcome in _BUSY else "failed"] += 1
            to_busy.append(ring)
        elif outcome in _NO_ANSWER:
            counts["no_answer"] += 1

    def dist(samples: list[float]) -> Distribution | None:
        return Distribution.from_samples(samples) if samples else None

    return Measured(**counts, to_live=dist(to_live), to_machine=dist(to_machine),
                    to_busy=dist(to_busy), talk=dist(talk),
                    wrap_up=Distribution.point(wrap_up.total_seconds()),
                    window_live=window_live, window_abandoned=window_abandoned)


def _free(state: AgentState, now: datetime, inbound_first: timedelta) -> bool:
    return state.status is AgentStatus.AVAILABLE and now - state.since >= inbound_first


def snapshot(states: Iterable[AgentState], working: frozenset[str], now: datetime,
             calls: Iterable[Dialing], history: Measured, *,
             busy: frozenset[str] = frozenset(),
             inbound_first: timedelta = timedelta(seconds=2)) -> Snapshot:
    """The Pacer's view: the campaign's agents (``busy``: those this dialer handles a call
    for, whatever their stored state says; an agent available for less than
    ``inbound_first`` is left to the queue router, so it counts as not free yet), and
    ``calls`` in progress with no agent yet. Logged-out and paused agents are left out."""
    agents = []
    for state in states:
        if state.agent not in working:
            continue
        for_s = _seconds(state.since, now)
        if state.agent in busy or state.status in _ON_CALL:
            agents.append(AgentView(PacerAgentState.ON_CALL, for_s))
        elif state.status is AgentStatus.WRAP_UP:
            agents.append(AgentView(PacerAgentState.WRAP_UP, for_s))
        elif _free(state, now, inbound_first):
            agents.append(AgentView(PacerAgentState.AVAILABLE, for_s))
        elif state.status is AgentStatus.AVAILABLE:  # just freed: wrap-up's last moments
            agents.append(AgentView(PacerAgentState.WRAP_UP, 1e6))
    views = tuple(CallView(_seconds(c.placed_at, c.answered_at or now),
                           answered=c.answered_at is not None) for c in calls)
    return Snapshot(tuple(agents), views, history)


def policy(campaign: Campaign, *, patience: float = 2.0) -> PacingPolicy:
    """The campaign's pacing: its abandon cap (a fraction), its ring timeout, and the
    ``patience`` an answered contact waits for an agent (2 s by the rule)."""
    target = (campaign.abandon.max_percent if campaign.abandon is not None else 3.0) / 100
    return PacingPolicy(mode=Mode.PREDICTIVE, abandon_target=target,
                        ring_timeout=float(campaign.ring_seconds), patience=patience)


def longest_idle(states: Iterable[AgentState], working: frozenset[str], *,
                 busy: frozenset[str] = frozenset()) -> str | None:
    """The campaign's available agent idle the longest (a live answer waits: no
    ``inbound_first`` delay here), or None."""
    free = sorted((s for s in states if s.agent in working and s.agent not in busy
                   and s.status is AgentStatus.AVAILABLE), key=lambda s: (s.since, s.agent))
    return free[0].agent if free else None
