"""Agent states shared by every router instance, through the database.

:class:`AgentStore` is the only way the router changes an agent: read the stored state,
decide with the pure :func:`~callcenter.agents.state.transition`, write with
compare-and-set (:meth:`~callcenter.storage.agent_states.AgentStateRepository.compare_and_set`).
When another router (or a CLI command, or a reconcile pass) changed the agent in between,
the write matches no row; the store reads again and decides again, so the event is judged
against the state that really holds: a second ``Reserve`` then finds the agent reserved
and is refused. Read and write are separate transactions, so on SQLite the write's
``UPDATE`` is the first statement of its transaction and waits for the lock instead of
failing. A caller that keeps a copy of the state (the router) passes it as ``known``:
the read is skipped, and a stale copy costs one failed compare-and-set, never a wrong
decision.

How the router calls it::

    store = AgentStore(sessions, Rules(frozenset(config.pause_reasons)), node="pbx1")
    await store.ensure(config.agents, now)                # rows for configured agents
    state = await store.try_reserve(agent, caller_channel_id, now)
    if state is None:                                     # someone else got the agent
        ...pick the next candidate...
    outcome = await store.apply(agent, Ring(caller_channel_id), now)
    for effect in outcome.effects: ...                    # ReadyForCalls, CancelOffer...
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.reconcile import Correction
from callcenter.agents.state import (
    AgentEvent,
    AgentState,
    AgentStateError,
    IllegalTransition,
    Outcome,
    Reserve,
    Rules,
    logged_out,
    transition,
)
from callcenter.storage.agent_states import AgentStateRepository

__all__ = ["AgentChangeListener", "AgentStore", "StoreConflict", "not_before"]

log = logging.getLogger(__name__)

#: Told of every change the store wrote: ``(before, after)`` (events, reports).
AgentChangeListener = Callable[[AgentState, AgentState], None]


class StoreConflict(AgentStateError):
    """The agent kept changing under us: every compare-and-set of one ``apply`` lost."""


def _jsonable(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.total_seconds() if isinstance(value, timedelta) else value
        for key, value in detail.items()
    }


def not_before(state: AgentState, now: datetime) -> datetime:
    """When a change of *state* decided at *now* happens: *now*, or the time of the change
    already stored if that is later.

    A caller reads its clock and then awaits (a reconcile pass reads the states, then
    Asterisk's channels) while another task writes a change at a later time. Logged at
    the earlier *now*, the change would come before the one it follows: the log's times
    would run backwards, and the statistics built from it (time per status, occupancy)
    would count a negative interval. A change is never earlier than its predecessor.
    """
    latest = state.since if state.changed_at is None else max(state.since, state.changed_at)
    return max(now, latest)


class AgentStore:
    """Agent states in the database, changed only through the state machine."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rules: Rules | None = None,
        *,
        node: str | None = None,
        max_attempts: int = 50,
        on_change: AgentChangeListener | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change
        self._rules = rules if rules is not None else Rules()
        self._node = node
        self._max_attempts = max_attempts

    async def get(self, agent: str, now: datetime) -> AgentState:
        """The agent's state (logged out, version 0, for one never stored)."""
        async with self._sessions() as session:
            state = await AgentStateRepository(session).get(agent)
        return state if state is not None else logged_out(agent, now)

    async def all(self) -> list[AgentState]:
        """Every stored agent, by name (what :func:`~callcenter.agents.reconcile.reconcile`
        takes)."""
        async with self._sessions() as session:
            return await AgentStateRepository(session).all()

    async def ensure(self, agents: Iterable[str], now: datetime) -> None:
        """Store the agents not stored yet as logged out; existing rows are untouched
        (several routers may start at once)."""
        async with self._sessions.begin() as session:
            repository = AgentStateRepository(session)
            for agent in agents:
                await repository.create(logged_out(agent, now))

    async def apply(
        self,
        agent: str,
        event: AgentEvent,
        now: datetime,
        *,
        reason: str | None = None,
        known: AgentState | None = None,
        also: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> Outcome:
        """Apply *event* to *agent* at *now* and store the change; return its outcome.

        *reason* is stored with the transition (a reconcile correction's reason, ``cli``).
        *known*: the state the caller last saw (the router's copy). The first attempt
        decides from it and goes straight to the compare-and-set, saving the read; when
        it is stale the write matches no row and the loop reads and decides again. Only
        a write is trusted to it: a refusal (or no change) decided from *known* is
        decided again from the stored state, so a stale copy never refuses an event.
        *also*: more writes (the queued call's record) to commit in the transaction of the
        agent's change, after its compare-and-set; not run when the agent does not change
        (no change, or refused), which the caller sees as *also* not having run.

        Raises:
            IllegalTransition: the event is not allowed in the agent's current state.
            UnknownPauseReason: ``Pause`` with a reason the config does not define.
            StoreConflict: the agent changed under us ``max_attempts`` times in a row.
        """
        why = reason if reason is not None else self._node
        hint = known if known is not None and known.agent == agent else None
        for _ in range(self._max_attempts):
            current: AgentState | None
            if hint is not None:
                current, hint = hint, None
                at = not_before(current, now)
                try:
                    outcome = transition(current, event, at, self._rules)
                except AgentStateError:
                    continue  # judged again from the stored state
                if not outcome.changed:
                    continue
                if written := await self._write(current, outcome, event, at, why, also):
                    return written
                continue
            async with self._sessions() as session:
                current = await AgentStateRepository(session).get(agent)
            if current is None:
                async with self._sessions.begin() as session:
                    await AgentStateRepository(session).create(logged_out(agent, now))
                continue
            at = not_before(current, now)
            outcome = transition(current, event, at, self._rules)
            if not outcome.changed:
                return outcome
            if written := await self._write(current, outcome, event, at, why, also):
                return written
        raise StoreConflict(
            f"agent {agent!r} changed {self._max_attempts} times while applying {event.cause}"
        )

    async def _write(
        self, current: AgentState, outcome: Outcome, event: AgentEvent, at: datetime,
        why: str | None, also: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> Outcome | None:
        """One compare-and-set transaction: *current* -> ``outcome.state`` (and *also*),
        logged *at*; the outcome with its state's ``changed_at`` set, ``None`` if lost."""
        async with self._sessions.begin() as session:
            written = await AgentStateRepository(session).compare_and_set(
                current,
                outcome.state,
                cause=event.cause,
                at=at,
                detail=_jsonable(event.detail()) or None,
                reason=why,
            )
            if written and also is not None:
                await also(session)
        if not written:
            return None
        stored = replace(outcome, state=replace(outcome.state, changed_at=at))
        self._tell(current, stored.state)
        return stored

    def _tell(self, before: AgentState, after: AgentState) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(before, after)
        except Exception:  # the change is stored: a listener's bug must not undo the call
            log.exception("agent %s: change listener failed", after.agent)

    async def apply_corrections(
        self, corrections: Iterable[Correction], now: datetime
    ) -> list[tuple[Correction, Outcome]]:
        """Apply :func:`~callcenter.agents.reconcile.reconcile`'s corrections in order,
        each stored with its reason; return those applied with their outcomes (whose
        effects the router carries out: cancel offers, route to freed agents).

        A correction the agent's current state refuses is skipped: the agent changed
        since the states were read (another router, an event), and the next pass judges
        it again from fresh state.
        """
        applied = []
        for correction in corrections:
            try:
                outcome = await self.apply(
                    correction.agent, correction.event, now, reason=correction.reason
                )
            except IllegalTransition:
                continue
            applied.append((correction, outcome))
        return applied

    async def try_reserve(
        self, agent: str, call: str, now: datetime, *, known: AgentState | None = None
    ) -> AgentState | None:
        """Reserve *agent* for the caller on channel *call*: the reserved state if this
        router won the agent, ``None`` if it is not available (taken by another router,
        paused, logged out...). Of concurrent reservers across every router, one wins."""
        try:
            return (await self.apply(agent, Reserve(call), now, known=known)).state
        except IllegalTransition:
            return None
