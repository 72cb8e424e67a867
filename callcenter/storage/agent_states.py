"""Agent states in the database: read them, and change one only by compare-and-set.

Like every repository here, it takes an ``AsyncSession`` and never commits. The write,
:meth:`AgentStateRepository.compare_and_set`, is one conditional ``UPDATE``::

    UPDATE agent_states SET ..., version = :new
     WHERE agent = :agent AND version = :old AND status = :old_status

followed, when it changed a row, by the transition's row in ``agent_transitions``. The
``UPDATE`` is atomic on both databases: on PostgreSQL a second writer blocks on the row
lock and then re-checks the ``WHERE`` against the committed row (no match: 0 rows); on
SQLite writers are serialised by the database lock. So of any number of routers that
computed a change from the same version, exactly one writes it, with the same SQL on
SQLite and PostgreSQL. ``(agent, version)`` being unique in the log makes a lost update
impossible to hide.

On SQLite, let the ``UPDATE`` be the first statement of its transaction (read in an
earlier one, as :class:`callcenter.agents.store.AgentStore` does): a transaction that
read first and then writes after another writer committed fails with "database is
locked" instead of waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.agents.state import AgentState
from callcenter.storage.models import AgentStateRecord, AgentTransition

__all__ = ["AgentStateRepository", "to_state"]

_STATE_COLUMNS = (
    "status", "since", "version", "call", "pause_reason", "pending_pause",
    "wrap_up_until", "phone_lost",
)


def to_state(record: AgentStateRecord | Any) -> AgentState:
    """The pure state a row holds (``ValueError`` if the row is inconsistent); *record*
    is an ORM object or a Core row of ``agent_states``, with ``changed_at`` when the row
    was read with it (:meth:`AgentStateRepository.get` and ``all`` do)."""
    return AgentState(
        record.agent,
        **{name: getattr(record, name) for name in _STATE_COLUMNS},
        changed_at=getattr(record, "changed_at", None),
    )


def _values(state: AgentState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in _STATE_COLUMNS}


# The compare-and-set runs several times per call: its two statements are built once, on
# the tables (Core, no ORM unit of work), with the values bound at execution.
_STATES = AgentStateRecord.__table__
_CAS = (
    update(_STATES)
    .where(
        _STATES.c.agent == bindparam("old_agent"),
        _STATES.c.version == bindparam("old_version"),
        _STATES.c.status == bindparam("old_status"),
    )
    .values({name: bindparam(name, type_=_STATES.c[name].type) for name in _STATE_COLUMNS})
)
_TRANSITIONS = AgentTransition.__table__
_LOG = insert(_TRANSITIONS)
# When the row's current version was written: the ``at`` of its own transition, found
# through the unique (agent, version) index (no scan of the agent's history). The store
# never logs a change before it (see AgentStore), so the log stays in time order.
_CHANGED_AT = (
    select(_TRANSITIONS.c.at)
    .where(
        _TRANSITIONS.c.agent == _STATES.c.agent,
        _TRANSITIONS.c.version == _STATES.c.version,
    )
    .scalar_subquery()
    .label("changed_at")
)
_ALL = select(_STATES, _CHANGED_AT).order_by(_STATES.c.agent)
_ONE = select(_STATES, _CHANGED_AT).where(_STATES.c.agent == bindparam("agent"))


class AgentStateRepository:
    """The ``agent_states`` rows and their ``agent_transitions`` log."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, agent: str) -> AgentState | None:
        """The stored state of *agent*, or ``None`` for an agent never stored."""
        connection = await self._session.connection()
        record = (await connection.execute(_ONE, {"agent": agent})).first()
        return None if record is None else to_state(record)

    async def all(self) -> list[AgentState]:
        """Every stored agent, by name (plain rows, no ORM objects: the router re-reads
        them every second)."""
        connection = await self._session.connection()
        result = await connection.execute(_ALL)
        return [to_state(row) for row in result]

    async def create(self, state: AgentState) -> bool:
        """Store *state* for a new agent; ``False`` (and nothing written) if the agent
        exists already, e.g. created by another router at the same moment."""
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[
            self._session.get_bind().dialect.name
        ]
        statement = (
            insert(AgentStateRecord)
            .values(agent=state.agent, **_values(state))
            .on_conflict_do_nothing(index_elements=["agent"])
        )
        result: CursorResult[Any] = await self._session.execute(statement)  # type: ignore[assignment]
        return result.rowcount == 1

    async def compare_and_set(
        self,
        old: AgentState,
        new: AgentState,
        *,
        cause: str,
        at: datetime,
        detail: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> bool:
        """Write *new* where the row still holds *old*'s version and status, and log the
        transition. ``False``: someone changed the agent since *old* was read; nothing
        was written (read again, decide again).

        Raises:
            ValueError: *new* is not *old*'s successor (another agent, or not version+1).
        """
        if new.agent != old.agent or new.version != old.version + 1:
            raise ValueError(f"{new!r} does not follow {old!r}")
        connection = await self._session.connection()
        result = await connection.execute(
            _CAS,
            {"old_agent": old.agent, "old_version": old.version, "old_status": old.status,
             **_values(new)},
        )
        if result.rowcount != 1:
            return False
        await connection.execute(
            _LOG,
            {"agent": new.agent, "version": new.version, "at": at, "cause": cause,
             "from_status": old.status, "to_status": new.status, "detail": detail,
             "reason": reason},
        )
        return True

    async def transitions(self, agent: str) -> Sequence[AgentTransition]:
        """The log of *agent*'s changes, oldest first."""
        result = await self._session.execute(
            select(AgentTransition)
            .where(AgentTransition.agent == agent)
            .order_by(AgentTransition.version)
        )
        return result.scalars().all()
