"""Reconciling agent states with what Asterisk says exists, pure.

ARI does not replay events: a router that restarts, reconnects or simply misses a
``ChannelDestroyed`` would leave an agent reserved, ringing or on a call forever, and an
agent whose softphone unregistered would still be offered calls that cannot ring. The
router therefore, after every (re)connect and every few seconds (the watchdog), asks
Asterisk what exists and feeds it here:

* ``live_channels``: the ids of the channels in this node's Asterisk (``GET /channels``,
  kept current from ``StasisStart`` / ``ChannelDestroyed``);
* ``contacts``: for each agent whose phone registers on this node, the status of its
  contact (``ContactStatusChange`` events; ``GET /endpoints/PJSIP/{agent}`` at start), or
  ``None`` when it has no contact at all (never registered, expired, ``Removed``). An
  agent whose device lives on the user's own PBX without registration is passed as
  ``NonQualified``. Agents that are not keys are not judged here: their phone registers
  on another node, whose router judges it.
* ``owned_calls``: with several nodes, the caller channels this node owns (its queued
  calls not yet ended, from ``queued_calls.node``); an agent tied to another node's
  caller is judged only by the watchdog's time limits, since that channel cannot be in
  this node's ``live_channels``. ``None`` (one node): every caller is this node's.

:func:`reconcile` returns corrections: each is an event for
:func:`callcenter.agents.state.transition`, legal in the agent's state when applied in
the order returned, with a reason for the log. The store applies them with the same
compare-and-set as every other change, so a correction computed from a stale read simply
loses to whatever changed the agent meanwhile, and the next pass looks again.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from callcenter.agents.state import (
    AgentEvent,
    AgentState,
    AgentStatus,
    CallGone,
    PhoneBack,
    PhoneLost,
    Tick,
)

__all__ = ["HELD_CALL_PREFIX", "ContactStatus", "Correction", "WatchdogLimits", "reconcile"]

#: The call id of a reservation no channel stands for yet: an agent reading a preview
#: campaign's contact before dialling it (:mod:`callcenter.dialer.preview`). Such a
#: reservation is judged by ``WatchdogLimits.held`` only, until the agent's phone rings.
HELD_CALL_PREFIX = "cc-preview-"


class ContactStatus(enum.StrEnum):
    """A PJSIP contact's status as ARI's ``ContactStatusChange`` spells it."""

    CREATED = "Created"
    REACHABLE = "Reachable"
    NON_QUALIFIED = "NonQualified"
    UNKNOWN = "Unknown"
    UNREACHABLE = "Unreachable"
    REMOVED = "Removed"

    @property
    def usable(self) -> bool:
        """Whether a call to the phone can ring. A contact is ``Created``/``Unknown`` right
        after registering, before its first qualify: Asterisk itself dials it then."""
        return self not in (ContactStatus.UNREACHABLE, ContactStatus.REMOVED)


@dataclass(frozen=True, slots=True)
class WatchdogLimits:
    """How long an agent may stay tied to a live caller without progress.

    ``reserved``: from the reservation to the offer leg ringing (the router died between
    the two, or its originate hangs). ``ringing``: from ringing to an answer or a failure;
    keep it above the longest ring timeout of any queue. ``held``: a preview's
    reservation (:data:`HELD_CALL_PREFIX`), from the contact shown to the agent to its
    dial (an agent who closed the console without skipping is freed after it).
    """

    reserved: timedelta = timedelta(seconds=15)
    ringing: timedelta = timedelta(seconds=120)
    held: timedelta = timedelta(minutes=10)


_DEFAULT_LIMITS = WatchdogLimits()


@dataclass(frozen=True, slots=True)
class Correction:
    """Apply *event* to *agent* because of *reason* (logged and stored with the change)."""

    agent: str
    event: AgentEvent
    reason: str


def reconcile(
    agent_states: Iterable[AgentState],
    live_channels: Collection[str],
    contacts: Mapping[str, ContactStatus | None],
    now: datetime,
    limits: WatchdogLimits = _DEFAULT_LIMITS,
    *,
    owned_calls: Collection[str] | None = None,
) -> tuple[Correction, ...]:
    """The corrections that make *agent_states* agree with this node's Asterisk at *now*.

    Ordered by agent name, then in the order they must be applied. Nothing is returned
    for agents that already agree, so an idle pass costs no database write. Apply each
    with ``AgentStore.apply(agent, event, now, reason=...)``; an ``IllegalTransition``
    there means the agent changed since it was read: skip it, the next pass looks again.
    """
    corrections: list[Correction] = []
    for state in sorted(agent_states, key=lambda s: s.agent):
        corrections += _for_agent(state, live_channels, contacts, now, limits, owned_calls)
    return tuple(corrections)


def _for_agent(
    state: AgentState,
    live_channels: Collection[str],
    contacts: Mapping[str, ContactStatus | None],
    now: datetime,
    limits: WatchdogLimits,
    owned_calls: Collection[str] | None,
) -> list[Correction]:
    if state.status is AgentStatus.LOGGED_OUT:
        return []
    fixes: list[Correction] = []
    status, phone_lost = state.status, state.phone_lost
    # A freed agent (CallGone, Tick) keeps phone_lost, so the phone check below still
    # holds after the first correction.
    if state.call is not None:
        waited = now - state.since
        why = None
        ours = owned_calls is None or state.call in owned_calls
        if status is AgentStatus.RESERVED and state.call.startswith(HELD_CALL_PREFIX):
            if waited > limits.held:  # no channel yet: only the time limit judges it
                why = f"held {waited.total_seconds():.0f} s for a preview never dialled"
        elif ours and state.call not in live_channels:
            why = f"caller channel {state.call} no longer exists"
        elif status is AgentStatus.RESERVED and waited > limits.reserved:
            why = f"reserved {waited.total_seconds():.0f} s without ringing"
        elif status is AgentStatus.RINGING and waited > limits.ringing:
            why = f"ringing {waited.total_seconds():.0f} s without an answer"
        if why is not None:
            fixes.append(Correction(state.agent, CallGone(state.call), why))
    elif (
        status is AgentStatus.WRAP_UP
        and state.wrap_up_until is not None
        and now >= state.wrap_up_until
    ):
        fixes.append(Correction(state.agent, Tick(), "wrap-up time is over"))

    if state.agent not in contacts:
        return fixes  # the phone registers on another node
    contact = contacts[state.agent]
    usable = contact is not None and contact.usable
    if not usable and not phone_lost:
        shown = contact.value if contact is not None else "no contact"
        fixes.append(Correction(state.agent, PhoneLost(), f"phone {shown}"))
    elif usable and phone_lost:
        assert contact is not None
        fixes.append(Correction(state.agent, PhoneBack(), f"phone {contact.value}"))
    return fixes
