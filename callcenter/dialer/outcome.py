"""How an outbound call ended, decided from what ARI showed (pure).

The placer (:mod:`callcenter.dialer.placer`) records an :class:`Observation` of each call
it places through a trunk's dial context (``Local/<number>@cc-trunk-<name>-out``):
whether and when the originated channel was answered (``StasisStart``), when it ended
and with which Q.850 cause (``ChannelDestroyed``), the ``DIALSTATUS`` when known, the
answering-machine verdict (:mod:`callcenter.dialer.amd`) and whether we cancelled it.
:func:`decide` turns that into one :class:`Outcome`; nothing here does I/O or reads a
clock (times are the events' own timestamps, in seconds).

Causes as the dial context passes them on (README "Trunks and the test carrier"):
17 busy (486), 19 no answer (the ring time ran out), 34 congestion (a 503), 16 normal
clearing after an answer, 28 a number the context refused before dialling; a provider's
404/484 arrive as 1 (unallocated number) and 28 (invalid format).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from callcenter.dialer.amd import AmdResult

__all__ = [
    "AT_ONCE_SECONDS",
    "BUSY_CAUSES",
    "INVALID_NUMBER_CAUSES",
    "NO_ANSWER_CAUSES",
    "Observation",
    "Outcome",
    "decide",
]

#: An answered call that ends within this many seconds was hung up "at once" (a fax
#: tone, a wrong number dropped, a screening service): nobody to give an agent.
AT_ONCE_SECONDS = 2.0

#: Q.850 causes that mean the callee is busy: 17 user busy.
BUSY_CAUSES = frozenset({17})
#: ... that nobody answered in time: 18 no user responding, 19 no answer (alerted),
#: 20 subscriber absent (a mobile off).
NO_ANSWER_CAUSES = frozenset({18, 19, 20})
#: ... that the number itself is wrong: 1 unallocated (404), 3 no route to destination,
#: 22 number changed, 28 invalid number format (484, or refused by our dial context).
INVALID_NUMBER_CAUSES = frozenset({1, 3, 22, 28})

#: DIALSTATUS values (Dial()'s) when a cause is not known.
_BUSY_STATUSES = frozenset({"BUSY"})
_NO_ANSWER_STATUSES = frozenset({"NOANSWER"})
_INVALID_STATUSES = frozenset({"INVALIDARGS"})


class Outcome(Enum):
    """What the campaign does next depends on it: LIVE goes to an agent, MACHINE may
    get a message or a retry, BUSY/NO_ANSWER a later retry, INVALID_NUMBER none."""

    LIVE = "live"
    MACHINE = "machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    HANGUP_AT_ONCE = "hangup_at_once"
    CANCELLED = "cancelled"

    @property
    def answered(self) -> bool:
        """Someone (or something) picked up."""
        return self in (Outcome.LIVE, Outcome.MACHINE, Outcome.HANGUP_AT_ONCE)


@dataclass(frozen=True, slots=True)
class Observation:
    """What ARI showed of one placed call.

    ``answered_at``/``ended_at`` are event timestamps (seconds, any epoch, the same for
    both); ``ended_at`` is None while the call is still up (a live answer handed on).
    ``cause`` is the originated channel's hangup cause (None: not ended, or unknown);
    ``dial_status`` Dial()'s ``DIALSTATUS`` when known; ``amd`` the AMD verdict (None: not
    analysed); ``cancelled``: we hung the call up ourselves before it was answered.
    """

    answered_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None
    dial_status: str | None = None
    amd: AmdResult | None = None
    cancelled: bool = False

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def talk_seconds(self) -> float | None:
        """Seconds from answer to end (None unless both are known)."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.answered_at)


def decide(observation: Observation) -> Outcome:
    """The outcome of one call. Total: every observation gets exactly one outcome.

    Not answered: cancelled by us, else busy / no answer / invalid number from the cause
    (or, lacking one, from ``DIALSTATUS``), else failed (congestion, channel unavailable,
    no cause at all). Answered: hung up at once when AMD saw the hangup; MACHINE when AMD
    said so (however soon the call ended after: the dialer hangs machines up); hung up
    at once when it ended within :data:`AT_ONCE_SECONDS` of the answer; otherwise
    LIVE -- a NOTSURE or unanalysed answer goes to an agent, because dropping a person
    is worse than an agent hearing a machine.
    """
    o = observation
    if not o.answered:
        if o.cancelled:
            return Outcome.CANCELLED
        status = (o.dial_status or "").upper()
        if o.cause in BUSY_CAUSES or (o.cause is None and status in _BUSY_STATUSES):
            return Outcome.BUSY
        if o.cause in NO_ANSWER_CAUSES or (o.cause is None and status in _NO_ANSWER_STATUSES):
            return Outcome.NO_ANSWER
        if o.cause in INVALID_NUMBER_CAUSES or (o.cause is None and status in _INVALID_STATUSES):
            return Outcome.INVALID_NUMBER
        return Outcome.FAILED
    if o.amd is not None and o.amd.status == "HANGUP":
        return Outcome.HANGUP_AT_ONCE
    if o.amd is not None and o.amd.status == "MACHINE":
        # Whoever hung up after the verdict (the dialer does, at once), it was a machine.
        return Outcome.MACHINE
    talk = o.talk_seconds
    if talk is not None and talk < AT_ONCE_SECONDS:
        return Outcome.HANGUP_AT_ONCE
    return Outcome.LIVE
