"""The queue benchmark's arithmetic, apart from any process: per caller, the time from
entering the queue to the agent's phone ringing, read from AMI events both contenders
emit; which load step is clean; the highest clean rate of a ramp.

Both sides are measured from the same two events, stamped by Asterisk itself
(``manager.conf`` ``timestampevents=yes``):

* the caller's ``Newexten`` whose ``Application`` is the contender's queue application
  (``Queue`` for app_queue, ``Stasis`` for the ARI router): the caller enters the queue;
* the first ``DialBegin`` whose ``DestLinkedid`` is that caller's ``Linkedid``: the agent
  leg starts ringing. app_queue dials the member with the caller as requestor, and the
  router creates its offer leg with ``originator`` = the caller (``channels/create``), so
  in both cases the agent leg inherits the caller's linked id; ``channels/dial`` raises
  ``DialBegin`` like ``Dial()`` and app_queue do (with no ``Channel`` when ARI dials
  without a caller, hence the match on the agent leg's ``DestLinkedid``).

``DialEnd`` with ``DialStatus: ANSWER`` on that agent leg says the agent answered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bench.measure import percentile

__all__ = ["WAIT_LIMIT_MS", "CallerTimes", "QueueStep", "asterisk_ms_per_call", "caller_times",
           "contender_ms_per_call", "cores_needed", "highest_clean"]

#: A step is clean when no call failed and p99 entry->ring is under this: past the
#: contender's capacity callers pile up in the queue and wait seconds, yet a bounded step
#: may still end with every call completed.
WAIT_LIMIT_MS = 1000.0


@dataclass
class CallerTimes:
    """One caller, keyed by its linked id: when it entered the queue, when its first
    agent leg began ringing, and whether an agent answered it."""

    entered: float | None = None
    ringing: float | None = None
    answered: bool = False

    @property
    def wait_ms(self) -> float | None:
        if self.entered is None or self.ringing is None:
            return None
        return (self.ringing - self.entered) * 1000


def caller_times(events: Iterable[Mapping[str, str]], app: str) -> dict[str, CallerTimes]:
    """Callers who entered ``app`` (``Queue`` / ``Stasis``), by linked id, with the first
    ``DialBegin`` and any answered ``DialEnd`` of an agent leg linked to them. Events of
    other channels (an agent leg's own dialplan, other apps) are ignored."""
    callers: dict[str, CallerTimes] = {}
    legs: dict[str, str] = {}  # agent leg's uniqueid -> caller's linked id
    for event in events:
        name = event.get("Event")
        stamp = _stamp(event)
        if name == "Newexten" and event.get("Application") == app:
            linked = event.get("Linkedid", "")
            if event.get("Uniqueid") == linked and linked not in callers:
                callers[linked] = CallerTimes(entered=stamp)
        elif name == "DialBegin":
            caller = callers.get(event.get("DestLinkedid", ""))
            if caller is None:
                continue
            legs[event.get("DestUniqueid", "")] = event.get("DestLinkedid", "")
            if caller.ringing is None:
                caller.ringing = stamp
        elif name == "DialEnd" and event.get("DialStatus") == "ANSWER":
            linked = legs.get(event.get("DestUniqueid", ""))
            if linked is not None:
                callers[linked].answered = True
    return callers


def _stamp(event: Mapping[str, str]) -> float | None:
    try:
        return float(event["Timestamp"])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class QueueStep:
    """One sipp caller run at one rate against one contender, what the agents' phones
    saw, and the CPU it cost."""

    contender: str
    rate: float
    repeat: int
    calls: int
    #: sipp callers: calls completed (BYE from Asterisk answered), calls failed.
    ok: int
    failed: int
    #: From AMI: callers that entered the queue app, got an agent leg, were answered.
    entered: int
    rung: int
    answered: int
    #: sipp agents (UAS): calls received, completed (answered, talked, hung up), failed.
    agent_calls: int
    agent_ok: int
    agent_failed: int
    wait_ms: tuple[float, ...]
    left_channels: int
    wall: float
    #: Most callers in progress at once (sipp's own count).
    concurrent: int = 0
    asterisk_cpu_s: float = math.nan
    contender_cpu_s: float = math.nan
    other_cpu_s: float = math.nan

    @property
    def failed_calls(self) -> int:
        """Calls that did not go caller -> queue -> agent answered -> completed, on
        every count (sipp callers, AMI, sipp agents); at least sipp's own failures."""
        served = min(self.ok, self.entered, self.rung, self.answered, self.agent_ok)
        return max(self.failed, self.calls - served, self.agent_failed)

    @property
    def p50(self) -> float:
        return percentile(self.wait_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.wait_ms, 99)

    @property
    def clean(self) -> bool:
        return (self.failed_calls == 0 and self.left_channels == 0 and bool(self.wait_ms)
                and self.p99 < WAIT_LIMIT_MS)

    @property
    def other_cores(self) -> float:
        return self.other_cpu_s / self.wall if self.wall > 0 else math.nan

    @property
    def cpu_ms_per_call(self) -> float:
        """Asterisk + contender process CPU per completed call."""
        cpu = self.asterisk_cpu_s + (0.0 if math.isnan(self.contender_cpu_s)
                                     else self.contender_cpu_s)
        return math.nan if not self.ok else cpu * 1000 / self.ok


def highest_clean(ramp: Iterable[QueueStep]) -> float:
    """Highest rate of one contender's ramp (one repeat) before its first unclean step
    (0 when the first is not clean): a clean step above an unclean one is luck."""
    best = 0.0
    for step in sorted(ramp, key=lambda s: s.rate):
        if not step.clean:
            break
        best = step.rate
    return best


def asterisk_ms_per_call(steps: Iterable[QueueStep]) -> float:
    """Asterisk's CPU per completed call over ``steps``, weighted by calls (a step's CPU
    is read in clock ticks: one short step alone is coarse, their sum is not)."""
    steps = list(steps)
    calls = sum(s.ok for s in steps)
    return math.nan if not calls else sum(s.asterisk_cpu_s for s in steps) * 1000 / calls


def contender_ms_per_call(steps: Iterable[QueueStep]) -> float:
    """The contender's own process CPU per completed call (NaN: it lives in Asterisk)."""
    steps = [s for s in steps if not math.isnan(s.contender_cpu_s)]
    calls = sum(s.ok for s in steps)
    return math.nan if not calls else sum(s.contender_cpu_s for s in steps) * 1000 / calls


def cores_needed(ms_per_call: float, rate: float) -> float:
    """Cores kept busy by ``ms_per_call`` of CPU at ``rate`` calls/s."""
    return ms_per_call * rate / 1000
