"""The agent state machine, pure: ``transition(state, event, now, rules) -> Outcome``.

States and the events that leave them (anything else is refused)::

    logged_out  Login -> available
    available   Reserve(call) -> reserved; Pause -> paused; Logout -> logged_out
    reserved    Ring -> ringing; Answer -> on_call; OfferFailed, CallGone -> available*
    ringing     Answer -> on_call; OfferFailed, CallGone -> available*
    on_call     Hangup(wrap_up) -> wrap_up (or available* without wrap-up); CallGone -> available*
    wrap_up     EndWrapUp, Tick at its end -> available*; Pause -> paused; Logout
    paused      Unpause -> available; Pause (another reason); Logout
    (* paused instead when a pause is pending or the phone is lost)

* ``reserved`` is the database-held claim of one caller (``call`` = the caller's channel
  id) before the agent's phone rings; ``ringing`` once the offer leg exists. Either ends in
  ``on_call`` (answered) or back in ``available`` / ``paused`` (no answer, busy, reject,
  the caller gone): never anywhere else.
* A pause asked for while a caller is tied to the agent (reserved, ringing, on a call) is
  kept as ``pending_pause`` and taken when the agent frees up, the way an ACD lets an agent
  press "pause" during a call without cutting it; ``Unpause`` drops it.
* ``PhoneLost`` (the softphone unregistered, found by :mod:`callcenter.agents.reconcile`)
  pauses the agent with the system reason :data:`PHONE_LOST_REASON`, cancelling an offer in
  progress (a call in progress goes on; the pause comes after it). Only ``PhoneBack`` ends
  that pause (a manual ``Unpause`` would offer calls to a phone that cannot ring), returning
  to the pause the agent had chosen, if any.

Every change bumps ``version`` by one: the store writes a new state only where the row
still has the version it was computed from (compare-and-set), so two routers can never both
reserve one agent. Illegal events raise :class:`IllegalTransition` (the state is
unchanged): the caller decides whether that is a user error (``callcenter agents pause``
on a logged-out agent) or a lost race. A ``Tick`` is never illegal; it ends an expired
wrap-up and otherwise changes nothing.

The module imports no I/O library; ``now`` is always passed in (a fake clock in tests).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

__all__ = [
    "BUSY_STATUSES",
    "NO_ANSWER_REASON",
    "PHONE_LOST_REASON",
    "SYSTEM_PAUSE_REASONS",
    "AgentEvent",
    "AgentState",
    "AgentStateError",
    "AgentStatus",
    "Answer",
    "CallGone",
    "CancelOffer",
    "Effect",
    "EndWrapUp",
    "Hangup",
    "IllegalTransition",
    "Login",
    "Logout",
    "OfferFailed",
    "Outcome",
    "Pause",
    "PhoneBack",
    "PhoneLost",
    "ReadyForCalls",
    "Reserve",
    "Ring",
    "Rules",
    "ScheduleWrapUpEnd",
    "Tick",
    "UnknownPauseReason",
    "Unpause",
    "WrongCall",
    "logged_out",
    "transition",
]

PHONE_LOST_REASON: Final = "unregistered"
"""Pause reason set by :class:`PhoneLost`; no config reason may use it."""
NO_ANSWER_REASON: Final = "no_answer"
"""Pause reason the router uses to auto-pause an agent after missed offers."""
SYSTEM_PAUSE_REASONS: Final = frozenset({PHONE_LOST_REASON, NO_ANSWER_REASON})


class AgentStatus(enum.StrEnum):
    """Where an agent is; stored as these strings."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


BUSY_STATUSES: Final = frozenset(
    {AgentStatus.RESERVED, AgentStatus.RINGING, AgentStatus.ON_CALL}
)
"""The statuses tied to one caller (``AgentState.call`` is set exactly in these)."""
_PENDING_STATUSES: Final = BUSY_STATUSES | {AgentStatus.WRAP_UP}
_PHONE_LOST_STATUSES: Final = frozenset(
    {AgentStatus.ON_CALL, AgentStatus.WRAP_UP, AgentStatus.PAUSED}
)


# -- errors ------------------------------------------------------------------


class AgentStateError(Exception):
    """Base of the errors of this package."""


class IllegalTransition(AgentStateError):
    """*event* is not allowed in *status*; the state was not changed."""

    def __init__(self, agent: str, status: AgentStatus, event: AgentEvent, why: str = "") -> None:
        self.agent, self.status, self.event = agent, status, event
        text = f"agent {agent!r}: {event.cause} is not allowed while {status.value}"
        super().__init__(f"{text} ({why})" if why else text)


class WrongCall(IllegalTransition):
    """The event names another caller than the one the agent is reserved for or talking to."""


class UnknownPauseReason(AgentStateError, ValueError):
    """A pause reason that is neither in the config's ``pause_reasons`` nor a system one."""

    def __init__(self, reason: str, known: frozenset[str]) -> None:
        self.reason = reason
        super().__init__(
            f"unknown pause reason {reason!r} (known: {', '.join(sorted(known)) or 'none'})"
        )


# -- state ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent's state; constructing an inconsistent one raises ``ValueError``.

    ``call``: the caller's channel id, set exactly while reserved, ringing or on a call.
    ``pause_reason``: set exactly while paused. ``wrap_up_until``: set exactly in wrap-up.
    ``phone_lost``: the phone has no reachable contact; the agent is then paused for
    :data:`PHONE_LOST_REASON`, or finishes the call or wrap-up it is in and pauses after.
    ``pending_pause``: the pause to take when the agent frees up (asked for while busy),
    or, while paused for the lost phone, the pause to return to when it is back.
    ``since``: when the current status began. ``version``: bumped by every change.
    ``changed_at``: when the change that made this version was logged (``None``: not
    known, e.g. a state built by hand); it is bookkeeping, not state, so it takes no part
    in equality and is carried unchanged by :func:`transition` (the store sets it).
    """

    agent: str
    status: AgentStatus
    since: datetime
    version: int = 0
    call: str | None = None
    pause_reason: str | None = None
    pending_pause: str | None = None
    wrap_up_until: datetime | None = None
    phone_lost: bool = False
    changed_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        status = AgentStatus(self.status)
        problems = []
        if (self.call is not None) != (status in BUSY_STATUSES):
            problems.append("a call is held exactly while reserved, ringing or on a call")
        if (self.pause_reason is not None) != (status is AgentStatus.PAUSED):
            problems.append("a pause reason is set exactly while paused")
        if (self.wrap_up_until is not None) != (status is AgentStatus.WRAP_UP):
            problems.append("a wrap-up end is set exactly in wrap-up")
        if self.phone_lost and status not in _PHONE_LOST_STATUSES:
            problems.append("a lost phone leaves the agent paused, on its call or in wrap-up")
        if status is AgentStatus.PAUSED and (
            self.phone_lost != (self.pause_reason == PHONE_LOST_REASON)
        ):
            problems.append(f"paused for {PHONE_LOST_REASON!r} exactly while the phone is lost")
        if self.pending_pause is not None and (
            self.pending_pause == PHONE_LOST_REASON
            or not (status in _PENDING_STATUSES or self.phone_lost)
        ):
            problems.append("a pending pause exists only while busy, in wrap-up or phone-lost")
        if self.version < 0:
            problems.append("the version is never negative")
        if self.since.tzinfo is None or (
            self.changed_at is not None and self.changed_at.tzinfo is None
        ):
            problems.append("times are timezone-aware")
        if problems:
            raise ValueError(f"inconsistent state of agent {self.agent!r}: {'; '.join(problems)}")

    @property
    def offerable(self) -> bool:
        """Whether the router may reserve this agent for a caller now."""
        return self.status is AgentStatus.AVAILABLE


def logged_out(agent: str, now: datetime) -> AgentState:
    """The state of an agent the store has never seen (version 0)."""
    return AgentState(agent, AgentStatus.LOGGED_OUT, now)


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    @property
    def cause(self) -> str:
        """The event's name as stored in the transition log (``offer_failed``)."""
        return _CAUSES[type(self)]

    def detail(self) -> dict[str, Any]:
        """The event's fields, stored with the transition."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Login(_Event):
    """The agent logs in (feature code, CLI): ready for calls."""


@dataclass(frozen=True, slots=True)
class Logout(_Event):
    """The agent logs out; refused while a caller is tied to the agent."""


@dataclass(frozen=True, slots=True)
class Pause(_Event):
    """The agent pauses with a reason code from the config (or a system reason)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unpause(_Event):
    """The agent is ready again (or drops a pause asked for during a call)."""


@dataclass(frozen=True, slots=True)
class Reserve(_Event):
    """The router claims the available agent for the caller on channel *call*."""

    call: str


@dataclass(frozen=True, slots=True)
class Ring(_Event):
    """The offer leg to the agent's phone exists and rings."""

    call: str


@dataclass(frozen=True, slots=True)
class Answer(_Event):
    """The agent answered the offer: caller and agent are bridged."""

    call: str


@dataclass(frozen=True, slots=True)
class OfferFailed(_Event):
    """The offer ended unanswered: *result* is ``no_answer``, ``busy``, ``rejected``,
    ``unregistered``, ``caller_gone``... (stored as the offer's result)."""

    call: str
    result: str


@dataclass(frozen=True, slots=True)
class Hangup(_Event):
    """The answered call ended; the agent gets *wrap_up* before the next call."""

    call: str
    wrap_up: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class EndWrapUp(_Event):
    """The agent ends wrap-up early (feature code, CLI)."""


@dataclass(frozen=True, slots=True)
class Tick(_Event):
    """The clock: ends a wrap-up whose time is up; otherwise no change."""


@dataclass(frozen=True, slots=True)
class CallGone(_Event):
    """Reconciliation: the caller's channel no longer exists (or the watchdog expired the
    reservation), but the router never saw its end."""

    call: str


@dataclass(frozen=True, slots=True)
class PhoneLost(_Event):
    """Reconciliation: the agent's phone has no reachable contact."""


@dataclass(frozen=True, slots=True)
class PhoneBack(_Event):
    """Reconciliation: the agent's phone is reachable again."""


AgentEvent = (
    Login | Logout | Pause | Unpause | Reserve | Ring | Answer | OfferFailed | Hangup
    | EndWrapUp | Tick | CallGone | PhoneLost | PhoneBack
)

_CAUSES: Final[dict[type, str]] = {
    Login: "login", Logout: "logout", Pause: "pause", Unpause: "unpause",
    Reserve: "reserve", Ring: "ring", Answer: "answer", OfferFailed: "offer_failed",
    Hangup: "hangup", EndWrapUp: "end_wrap_up", Tick: "tick", CallGone: "call_gone",
    PhoneLost: "phone_lost", PhoneBack: "phone_back",
}


# -- effects -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyForCalls:
    """The agent became available: run the routing decision in the agent's direction
    (the best waiting call among the queues the agent serves)."""

    agent: str


@dataclass(frozen=True, slots=True)
class ScheduleWrapUpEnd:
    """Feed a ``Tick`` for *agent* at *at* (the wrap-up's end)."""

    agent: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Hang up the offer leg ringing *agent* for the caller on *call*, if it exists
    (the caller stays in the queue and is routed again)."""

    agent: str
    call: str


Effect = ReadyForCalls | ScheduleWrapUpEnd | CancelOffer


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event did: the new state (``changed`` False: the same state, as from a
    ``Tick`` before the wrap-up's end) and what the router must carry out."""

    state: AgentState
    effects: tuple[Effect, ...] = ()
    changed: bool = True


@dataclass(frozen=True, slots=True)
class Rules:
    """What the config decides: the pause reason codes agents may use."""

    pause_reasons: frozenset[str] = field(default_factory=frozenset)

    def check_reason(self, reason: str) -> None:
        """Raise :class:`UnknownPauseReason` unless *reason* may be used by ``Pause``."""
        allowed = (self.pause_reasons | {NO_ANSWER_REASON}) - {PHONE_LOST_REASON}
        if reason not in allowed:
            raise UnknownPauseReason(reason, allowed)


# -- the machine ---------------------------------------------------------------------


def transition(
    state: AgentState, event: AgentEvent, now: datetime, rules: Rules = Rules()
) -> Outcome:
    """Apply *event* to *state* at *now*.

    Raises:
        IllegalTransition: the event is not allowed in the state (``WrongCall`` when it
            names another caller).
        UnknownPauseReason: ``Pause`` with a reason the config does not define.
    """
    status = state.status

    def refuse(why: str = "") -> IllegalTransition:
        return IllegalTransition(state.agent, status, event, why)

    def moved(new_status: AgentStatus, **fields: Any) -> AgentState:
        values: dict[str, Any] = {
            "status": new_status,
            "since": now if new_status is not status else state.since,
            "version": state.version + 1,
            "call": None,
            "pause_reason": None,
            "pending_pause": None,
            "wrap_up_until": None,
            "phone_lost": state.phone_lost,
        }
        values.update(fields)
        return replace(state, **values)

    def kept(**fields: Any) -> AgentState:
        """The same status with *fields* changed (a pending pause, the lost phone)."""
        values: dict[str, Any] = {
            "call": state.call, "pause_reason": state.pause_reason,
            "pending_pause": state.pending_pause, "wrap_up_until": state.wrap_up_until,
        }
        return moved(status, **(values | fields))

    def paused(reason: str | None, *effects: Effect) -> Outcome:
        """Pause for *reason*; with the phone lost, for it, returning to *reason* after."""
        if state.phone_lost:
            return Outcome(
                moved(AgentStatus.PAUSED, pause_reason=PHONE_LOST_REASON, pending_pause=reason),
                effects,
            )
        assert reason is not None
        return Outcome(moved(AgentStatus.PAUSED, pause_reason=reason), effects)

    def freed(*effects: Effect) -> Outcome:
        """No caller holds the agent any more: pause if the phone is lost or a pause is
        pending, else available."""
        if state.phone_lost or state.pending_pause is not None:
            return paused(state.pending_pause, *effects)
        return Outcome(moved(AgentStatus.AVAILABLE), (*effects, ReadyForCalls(state.agent)))

    def same_call(call: str) -> None:
        if status not in BUSY_STATUSES:
            raise refuse("no caller is tied to the agent")
        if call != state.call:
            raise WrongCall(
                state.agent, status, event, f"the agent holds caller {state.call!r}, not {call!r}"
            )

    match event:
        case Login():
            if status is not AgentStatus.LOGGED_OUT:
                raise refuse("already logged in")
            return Outcome(moved(AgentStatus.AVAILABLE), (ReadyForCalls(state.agent),))

        case Logout():
            if status in BUSY_STATUSES:
                raise refuse("a caller is tied to the agent; end the call first")
            if status is AgentStatus.LOGGED_OUT:
                raise refuse("not logged in")
            return Outcome(moved(AgentStatus.LOGGED_OUT, phone_lost=False))

        case Pause(reason=reason):
            rules.check_reason(reason)
            if status is AgentStatus.LOGGED_OUT:
                raise refuse("not logged in")
            if status in BUSY_STATUSES:
                return Outcome(kept(pending_pause=reason))
            if status is AgentStatus.PAUSED and reason in (state.pause_reason, state.pending_pause):
                raise refuse(f"already paused for {reason!r}")
            # available, wrap-up (a pause ends it) or paused for another reason
            return paused(reason)

        case Unpause():
            if status is AgentStatus.PAUSED and not state.phone_lost:
                return Outcome(moved(AgentStatus.AVAILABLE), (ReadyForCalls(state.agent),))
            if state.pending_pause is not None:  # busy, wrap-up or phone lost: drop it
                return Outcome(kept(pending_pause=None))
            raise refuse("the phone is not registered" if state.phone_lost else "not paused")

        case Reserve(call=call):
            if status is not AgentStatus.AVAILABLE:
                raise refuse("only an available agent can be reserved")
            return Outcome(moved(AgentStatus.RESERVED, call=call))

        case Ring(call=call):
            same_call(call)
            if status is not AgentStatus.RESERVED:
                raise refuse("the agent is not reserved")
            return Outcome(moved(AgentStatus.RINGING, call=call, pending_pause=state.pending_pause))

        case Answer(call=call):
            same_call(call)
            if status is AgentStatus.ON_CALL:
                raise refuse("already on this call")
            return Outcome(moved(AgentStatus.ON_CALL, call=call, pending_pause=state.pending_pause))

        case OfferFailed(call=call):
            same_call(call)
            if status is AgentStatus.ON_CALL:
                raise refuse("the offer was answered; the call ends with hangup")
            return freed()

        case Hangup(call=call, wrap_up=wrap_up):
            same_call(call)
            if status is not AgentStatus.ON_CALL:
                raise refuse("the offer was not answered; it ends with offer_failed")
            if wrap_up <= timedelta(0):
                return freed()
            until = now + wrap_up
            return Outcome(
                moved(AgentStatus.WRAP_UP, wrap_up_until=until, pending_pause=state.pending_pause),
                (ScheduleWrapUpEnd(state.agent, until),),
            )

        case EndWrapUp():
            if status is not AgentStatus.WRAP_UP:
                raise refuse("not in wrap-up")
            return freed()

        case Tick():
            if status is AgentStatus.WRAP_UP and state.wrap_up_until is not None \
                    and now >= state.wrap_up_until:
                return freed()
            return Outcome(state, changed=False)

        case CallGone(call=call):
            same_call(call)
            if status is AgentStatus.ON_CALL:
                return freed()
            return freed(CancelOffer(state.agent, call))

        case PhoneLost():
            if status is AgentStatus.LOGGED_OUT:
                raise refuse("not logged in")
            if state.phone_lost:
                raise refuse("the phone is already lost")
            if status in (AgentStatus.ON_CALL, AgentStatus.WRAP_UP):
                # The call may well go on (media does not need the registration): pause
                # when it and its wrap-up end.
                return Outcome(kept(phone_lost=True))
            back_to = state.pause_reason if status is AgentStatus.PAUSED else state.pending_pause
            effects: tuple[Effect, ...] = ()
            if status in (AgentStatus.RESERVED, AgentStatus.RINGING):
                assert state.call is not None
                effects = (CancelOffer(state.agent, state.call),)
            return Outcome(
                moved(AgentStatus.PAUSED, pause_reason=PHONE_LOST_REASON,
                      pending_pause=back_to, phone_lost=True),
                effects,
            )

        case PhoneBack():
            if not state.phone_lost:
                raise refuse("the phone was not lost")
            if status is AgentStatus.PAUSED:
                if state.pending_pause is not None:
                    return Outcome(moved(AgentStatus.PAUSED, pause_reason=state.pending_pause,
                                         phone_lost=False))
                return Outcome(moved(AgentStatus.AVAILABLE, phone_lost=False),
                               (ReadyForCalls(state.agent),))
            return Outcome(kept(phone_lost=False))

    raise TypeError(f"not an agent event: {event!r}")  # pragma: no cover
