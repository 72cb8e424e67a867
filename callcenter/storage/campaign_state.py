"""A campaign's run state in the database (``campaigns.state``), its audit
(``campaign_state_changes``) and the dialers' heartbeats (``dialer_nodes``).

The database is the only channel between whoever changes the state (``callcenter
campaigns start|pause|stop``, ``POST /api/v1/campaigns/{name}/start|pause|stop``) and
every dialer process of the campaign, on any machine: :meth:`CampaignStateRepository.
state` is what a dialer reads once per pass (one indexed row), :meth:`set` what a change
writes (the row and an audit line in the caller's transaction). What a state allows is
:mod:`callcenter.dialer.campaign_state`'s pure decision.

Takes an ``AsyncSession`` and never commits, like every repository here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.dialer.campaign_state import DEFAULT, Change, change
from callcenter.storage.campaigns import CampaignRepository
from callcenter.storage.models import (
    AGENT_NAME_MAX,
    BY_MAX,
    NAME_MAX,
    CampaignRecord,
    CampaignStateChange,
    DialerNode,
)

__all__ = ["CampaignStateRepository", "DialerSeen", "StateChanged", "StoredState"]


@dataclass(frozen=True, slots=True)
class StoredState:
    """A campaign's state as stored (``changed_by``/``changed_at`` None: never changed)."""

    campaign: str
    state: str
    changed_by: str | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StateChanged:
    """What a start, pause or stop did (``change.changed`` False: it was so already)."""

    change: Change
    stored: StoredState


@dataclass(frozen=True, slots=True)
class DialerSeen:
    """A dialer process that beat recently."""

    node: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


#: Reads and compare-and-set writes of one state change before it writes regardless.
_SET_TRIES = 5


class CampaignStateRepository:
    """The ``campaigns`` row's state columns, ``campaign_state_changes`` and
    ``dialer_nodes``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _campaign_id(self, name: str) -> int:
        return await CampaignRepository(self._session).campaign_id(name)

    async def state(self, campaign: str) -> StoredState:
        """The stored state of ``campaign`` (:data:`DEFAULT` when it has no row yet)."""
        return (await self._read(campaign))[1]

    async def _read(self, campaign: str) -> tuple[str | None, StoredState]:
        """The ``state`` column as stored (for a compare-and-set), and what it means."""
        row = (await self._session.execute(
            select(CampaignRecord.state, CampaignRecord.state_changed_by,
                   CampaignRecord.state_changed_at)
            .where(CampaignRecord.name == campaign))).first()
        if row is None:
            return None, StoredState(campaign, DEFAULT.value)
        return row.state, StoredState(campaign, row.state or DEFAULT.value,
                                      row.state_changed_by, row.state_changed_at)

    async def set(self, campaign: str, action: str, *, by: str, at: datetime,
                  via: str, reason: str | None = None) -> StateChanged:
        """Apply ``action`` (``start``, ``pause``, ``stop``) to ``campaign``, its row
        created on first use; a change is stored with who (``by``) and when, and written
        to the audit; asking for the current state again changes nothing.

        Raises:
            ValueError: an unknown action.
        """
        campaign_id = await self._campaign_id(campaign)
        who = by[:BY_MAX]
        for attempt in range(_SET_TRIES):
            raw, current = await self._read(campaign)
            done = change(current.state, action)
            if not done.changed:
                return StateChanged(done, current)
            # Compare-and-set: another writer's change between the read and this write
            # (two supervisors, the API and the CLI) is read again, never overwritten
            # unseen nor audited twice (the last try writes whatever it read).
            matches = (CampaignRecord.state.is_not_distinct_from(raw)
                       if attempt < _SET_TRIES - 1 else true())
            result = await self._session.execute(
                update(CampaignRecord).where(CampaignRecord.id == campaign_id, matches)
                .values(state=done.state.value, state_changed_by=who, state_changed_at=at)
                .execution_options(synchronize_session=False))
            if result.rowcount:  # type: ignore[attr-defined]
                break
        self._session.add(CampaignStateChange(
            campaign_id=campaign_id, state=done.state.value, previous=done.previous.value,
            changed_by=who, changed_at=at, via=via[:16],
            reason=reason[:NAME_MAX] if reason else None))
        await self._session.flush()
        return StateChanged(done, StoredState(campaign, done.state.value, who, at))

    async def history(self, campaign: str, limit: int = 20) -> list[CampaignStateChange]:
        """The latest ``limit`` changes of ``campaign``, newest first."""
        rows = await self._session.scalars(
            select(CampaignStateChange)
            .join(CampaignRecord, CampaignRecord.id == CampaignStateChange.campaign_id)
            .where(CampaignRecord.name == campaign)
            .order_by(CampaignStateChange.id.desc()).limit(limit))
        return list(rows)

    async def beat(self, campaign: str, node: str, *, host: str, pid: int,
                   at: datetime) -> None:
        """Dialer ``node`` of ``campaign`` is alive at ``at`` (its row created, or a
        restarted process's row taken over)."""
        campaign_id = await self._campaign_id(campaign)
        node = node[:AGENT_NAME_MAX]
        row = await self._session.scalar(select(DialerNode).where(
            DialerNode.campaign_id == campaign_id, DialerNode.node == node))
        if row is None:
            self._session.add(DialerNode(campaign_id=campaign_id, node=node,
                                         host=host[:NAME_MAX], pid=pid, started_at=at,
                                         seen_at=at))
        else:
            if (row.host, row.pid) != (host[:NAME_MAX], pid):
                row.host, row.pid, row.started_at = host[:NAME_MAX], pid, at
            row.seen_at = at
        await self._session.flush()

    async def leave(self, campaign: str, node: str) -> None:
        """Dialer ``node`` of ``campaign`` ended: its heartbeat row goes."""
        campaign_id = await self._session.scalar(
            select(CampaignRecord.id).where(CampaignRecord.name == campaign))
        if campaign_id is not None:
            await self._session.execute(delete(DialerNode).where(
                DialerNode.campaign_id == campaign_id,
                DialerNode.node == node[:AGENT_NAME_MAX]))

    async def dialers(self, campaign: str, *, now: datetime,
                      within: timedelta) -> list[DialerSeen]:
        """The dialers of ``campaign`` that beat within ``within`` of ``now``, by node."""
        rows = await self._session.scalars(
            select(DialerNode)
            .join(CampaignRecord, CampaignRecord.id == DialerNode.campaign_id)
            .where(CampaignRecord.name == campaign, DialerNode.seen_at >= now - within)
            .order_by(DialerNode.node))
        return [DialerSeen(r.node, r.host, r.pid, r.started_at, r.seen_at) for r in rows]
