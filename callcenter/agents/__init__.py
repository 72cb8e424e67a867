"""Agent state: the pure state machine, the pure reconciliation with Asterisk, and the
database-backed store that makes a reservation atomic across router instances.

The router uses it like this (see each module for details)::

    store = AgentStore(sessions, rules)                 # I/O: callcenter.agents.store
    state = await store.try_reserve("alice", caller_channel_id, now)
    if state is not None:                               # we, and only we, hold alice
        ... originate to alice's phone, then
        await store.apply("alice", Ring(caller_channel_id), now)

    # every few seconds and after an ARI (re)connect:
    fixes = reconcile(await store.all(), live_channels, contacts, now, limits,
                      owned_calls=...)                  # see callcenter.agents.reconcile
    for fix, outcome in await store.apply_corrections(fixes, now):
        ...carry out outcome.effects...

``callcenter.agents.store`` is imported on its own (it needs the storage layer, which
itself imports the pure :mod:`callcenter.agents.state`).
"""

from callcenter.agents.reconcile import (
    ContactStatus,
    Correction,
    WatchdogLimits,
    reconcile,
)
from callcenter.agents.state import (
    PHONE_LOST_REASON,
    SYSTEM_PAUSE_REASONS,
    AgentEvent,
    AgentState,
    AgentStateError,
    AgentStatus,
    Answer,
    CallGone,
    CancelOffer,
    Effect,
    EndWrapUp,
    Hangup,
    IllegalTransition,
    Login,
    Logout,
    OfferFailed,
    Outcome,
    Pause,
    PhoneBack,
    PhoneLost,
    ReadyForCalls,
    Reserve,
    Ring,
    Rules,
    ScheduleWrapUpEnd,
    Tick,
    UnknownPauseReason,
    Unpause,
    WrongCall,
    logged_out,
    transition,
)

__all__ = [
    "PHONE_LOST_REASON",
    "SYSTEM_PAUSE_REASONS",
    "AgentEvent",
    "AgentState",
    "AgentStateError",
    "AgentStatus",
    "Answer",
    "CallGone",
    "CancelOffer",
    "ContactStatus",
    "Correction",
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
    "WatchdogLimits",
    "WrongCall",
    "logged_out",
    "reconcile",
    "transition",
]
