"""Async engine and session factory: SQLite by default, PostgreSQL when configured.

SQLite is tuned on every new connection (a ``connect`` event listener), because its
settings are per connection, not per file:

* ``journal_mode=WAL``: wallboard reads don't block the call-flow writes and vice versa.
* ``foreign_keys=ON``: SQLite ignores ``REFERENCES`` unless told otherwise.
* ``busy_timeout``: a writer waits for another writer's lock instead of failing at once.
* **Real transactions**: the Python ``sqlite3`` driver (under aiosqlite) only emits
  ``BEGIN`` before DML and never before DDL, so a migration could stop half-applied and
  ``SAVEPOINT`` misbehaves. SQLAlchemy's documented recipe turns the driver's transaction
  handling off and emits ``BEGIN`` itself, giving SQLite the same transaction semantics as
  PostgreSQL, DDL included.
* **An invalidated connection lets go of its locks at once**: a task cancelled in the
  middle of a statement makes SQLAlchemy invalidate the connection (it can't know what
  state the statement left it in). Closing it is up to the driver, and aiosqlite's close is
  itself an ``await`` that a second cancellation interrupts (aiosqlite < 0.22 has no forced
  close to fall back on), leaving the ``sqlite3`` connection open, its transaction and the
  database's write lock held until garbage collection: every other writer then fails with
  "database is locked". An ``invalidate`` listener queues the close on aiosqlite's worker
  thread, which needs no ``await`` and runs right after the statement in flight.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = [
    "DEFAULT_SQLITE_FILENAME",
    "SQLITE_IMMEDIATE",
    "default_sqlite_url",
    "make_engine",
    "make_sessionmaker",
]

log = logging.getLogger(__name__)

DEFAULT_SQLITE_FILENAME = "callcenter.sqlite3"

SQLITE_IMMEDIATE = "callcenter_sqlite_immediate"
"""Execution option: this connection's transaction starts with ``BEGIN IMMEDIATE`` (SQLite
only; ignored elsewhere). A read-then-write transaction such as claiming due contacts
takes the write lock at ``BEGIN``, waiting for it up to the busy timeout, instead of
failing at once with "database is locked" when it upgrades a read lock::

    await session.connection(execution_options={SQLITE_IMMEDIATE: True})
"""

# A bare dialect name picks a synchronous driver, which create_async_engine rejects with an
# unhelpful message; map it to the async driver this package supports.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def default_sqlite_url(state_dir: Path) -> str:
    """URL of the SQLite database file in *state_dir* (``<state_dir>/callcenter.sqlite3``).

    The path is made absolute so the URL means the same thing whatever the working
    directory of the process that opens it. *state_dir* must exist before the engine
    connects (SQLite creates the file, not its directory).
    """
    return f"sqlite+aiosqlite:///{Path(state_dir).resolve() / DEFAULT_SQLITE_FILENAME}"


def _async_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    return parsed


def make_engine(
    url: str,
    *,
    foreign_keys: bool = True,
    busy_timeout_ms: int = 5000,
    echo: bool = False,
    sqlite_immediate: bool = False,
) -> AsyncEngine:
    """Create the async engine for *url* (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``).

    Args:
        url: database URL; ``sqlite://`` and ``postgresql://`` get their async driver.
        foreign_keys: SQLite only. Migrations turn enforcement off, because rebuilding a
            table (Alembic's batch mode) drops it, and with enforcement on that drop
            cascades to the rows that reference it. Keep the default everywhere else.
        busy_timeout_ms: SQLite only: how long a connection waits for a lock.
        echo: log every SQL statement (debugging).
        sqlite_immediate: SQLite only: every transaction takes the database's write lock
            at ``BEGIN IMMEDIATE`` (waiting up to *busy_timeout_ms* for it), so it runs
            alone among writers from its first statement: what migrations need.

    The caller owns the engine and must ``await engine.dispose()`` when done.
    """
    parsed = _async_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "postgresql":
        # A long-running service outlives database restarts and idle-connection reapers.
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(
            engine,
            foreign_keys=foreign_keys,
            busy_timeout_ms=busy_timeout_ms,
            immediate=sqlite_immediate,
        )
    log.debug("storage engine for %s", engine.url.render_as_string(hide_password=True))
    return engine


def _tune_sqlite(
    engine: AsyncEngine, *, foreign_keys: bool, busy_timeout_ms: int, immediate: bool = False
) -> None:
    """Install the per-connection SQLite settings described in the module docstring."""
    foreign_keys_value = "ON" if foreign_keys else "OFF"
    busy_timeout = int(busy_timeout_ms)
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # The driver must not manage transactions itself (see "_on_begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # PRAGMA foreign_keys is a no-op inside a transaction: set it first.
            cursor.execute(f"PRAGMA foreign_keys={foreign_keys_value}")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is durable against application crashes and much faster
            # than FULL; only a power loss can lose the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(SQLITE_IMMEDIATE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql(begin)

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(
        dbapi_connection: Any, connection_record: Any, exception: BaseException | None
    ) -> None:
        _close_on_worker_thread(dbapi_connection)


def _close_on_worker_thread(dbapi_connection: Any) -> None:
    """Close the ``sqlite3`` connection under an invalidated aiosqlite one, without awaiting.

    aiosqlite runs every call on one worker thread, in order, from a queue: putting the
    ``sqlite3`` close on that queue makes it run right after the statement in flight (a
    ``sqlite3`` connection may only be used from its own thread), and closing rolls back
    the open transaction, which releases the write lock. Closing twice is harmless, so the
    driver's own close, if it gets to run, still succeeds. Only the attributes of
    aiosqlite 0.20 to 0.22 are used; anything else is left to the driver.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    sqlite_connection = getattr(driver, "_connection", None)
    queue = getattr(driver, "_tx", None)
    if sqlite_connection is None or queue is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # Garbage collection outside the event loop: the driver's own forced close applies.
        return
    # aiosqlite < 0.22 sets a result on every queued call's future, so it needs a real one.
    done = loop.create_future()
    done.add_done_callback(_log_close_failure)
    queue.put_nowait((done, partial(_roll_back_and_close, sqlite_connection)))
    log.debug("invalidated SQLite connection %r: close queued", sqlite_connection)


def _roll_back_and_close(sqlite_connection: Any) -> None:
    """Roll back, then close: ``sqlite3``'s close (``sqlite3_close_v2``) only *defers* the
    close while a statement of the cancelled query is still unfinalized, and the open
    transaction, with its write lock, lives on until garbage collection finalizes it.
    ``ROLLBACK`` ends the transaction at once (pending statements are aborted)."""
    try:
        if sqlite_connection.in_transaction:
            sqlite_connection.execute("ROLLBACK")
    except sqlite3.Error as exc:  # the close below still runs (closed twice is harmless)
        log.debug("rollback of an invalidated SQLite connection failed: %s", exc)
    sqlite_connection.close()


def _log_close_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning(
            "closing an invalidated SQLite connection failed: %s", done.exception()
        )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory for *engine*.

    ``expire_on_commit=False``: after a commit, reading an attribute of an expired object
    would need I/O, which asyncio cannot do implicitly; objects keep their loaded values.
    """
    return async_sessionmaker(engine, expire_on_commit=False)
