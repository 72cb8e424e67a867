"""One report from the database the service uses: open, query, compute, close.

The I/O edge of :mod:`callcenter.stats`: it checks that the database exists and is at
the schema this code knows (a clear :class:`StatsError` otherwise, never a traceback),
reads the records in one read-only transaction and hands them to
:func:`~callcenter.stats.compute.build_report`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.config.models import CallCenterConfig
from callcenter.stats import queries
from callcenter.stats.compute import build_report, realtime
from callcenter.stats.records import Report
from callcenter.storage.engine import make_engine, make_sessionmaker
from callcenter.storage.migrate import current_revision, head_revision

__all__ = ["StatsError", "collect", "read_report"]


class StatsError(Exception):
    """The database cannot give statistics (missing, not migrated, unreachable)."""


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


async def _check_schema(url: str) -> None:
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        raise StatsError(f"not a database URL: {url!r} (sqlite:///PATH or "
                         "postgresql://USER@HOST/NAME)") from None
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        raise StatsError(f"no database at {path}: nothing recorded yet (is --home / "
                         "CALLCENTER_HOME or --db / CALLCENTER_DB the service's?)")
    try:
        revision = await current_revision(url)
    except (SQLAlchemyError, OSError) as exc:
        raise StatsError(f"cannot read the database {shown}: {exc}") from None
    if revision != head_revision():
        raise StatsError(f"the database {shown} is at schema revision {revision or 'none'}, "
                         f"this callcenter reads {head_revision()}: run 'callcenter db upgrade'")


async def collect(url: str, config: CallCenterConfig, *, start: datetime, end: datetime,
                  by: str, now: datetime, interval: timedelta = timedelta(minutes=15),
                  queue: str | None = None) -> Report:
    """The report of ``[start, end)`` (of *queue* only, when given), with the real-time
    figures as of *now*.

    Raises:
        StatsError: the database is missing, not at this code's schema, or unreachable.
    """
    await _check_schema(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await read_report(session, config, start=start, end=end, by=by, now=now,
                                     interval=interval,
                                     queues=[queue] if queue is not None else None)
    except SQLAlchemyError as exc:
        raise StatsError(f"cannot read the database: {exc}") from None
    finally:
        await engine.dispose()


async def read_report(session: AsyncSession, config: CallCenterConfig, *, start: datetime,
                      end: datetime, by: str, now: datetime,
                      interval: timedelta = timedelta(minutes=15),
                      queues: Collection[str] | None = None,
                      agents: Collection[str] | None = None) -> Report:
    """The report of ``[start, end)`` read in *session* (``callcenter stats`` and the HTTP
    API's ``/api/v1/stats`` both come here, so they give the same numbers): the calls of
    *queues* only and the time of *agents* only when given (None: every configured one).
    """
    shown_queues = list(queues) if queues is not None else list(config.queues)
    calls = await queries.calls_entered(session, start, end,
                                        shown_queues if queues is not None else None)
    initial, changes = await queries.status_changes(session, start, end, calls)
    waiting = [w for w in await queries.waiting_calls(session)
               if queues is None or w.queue in shown_queues]
    if agents is None:
        statuses = await queries.agent_statuses(session)
    else:
        statuses = [s for a, s in (await queries.agent_states(session)).items() if a in agents]
        initial = {a: s for a, s in initial.items() if a in agents}
        changes = [c for c in changes if c.agent in agents]
    report = build_report(
        calls, initial, changes,
        rules={name: q.service_level for name, q in config.queues.items()},
        start=start, end=end, now=now, by=by, interval=interval,
        tz=ZoneInfo(config.settings.timezone), queues=shown_queues,
        agents=list(agents) if agents is not None else list(config.agents))
    return replace(report, realtime=realtime(waiting, statuses, now, shown_queues))
