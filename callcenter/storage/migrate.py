"""Run the storage's Alembic migrations from code, on SQLite or PostgreSQL.

There is deliberately no ``alembic.ini``: the configuration is built here
(:func:`alembic_config`) with ``script_location`` pointing at the ``migrations`` folder
shipped inside this package, so migrations run the same from a checkout, an installed
wheel or a test, with no working-directory assumptions.

Each command opens its own engine (from :func:`~callcenter.storage.engine.make_engine`,
so SQLite gets the same pragmas as the application) and runs in **one transaction**: a
failing migration leaves the database at the previous revision, on SQLite too. On SQLite
foreign-key enforcement is off while migrating (see ``make_engine(foreign_keys=...)``) and
``PRAGMA foreign_key_check`` must come back clean before the transaction commits.

Migrations never race. Several processes may start on one fresh database at once (two
routers, a router and ``callcenter serve``); each :func:`upgrade` first takes a lock held
until its transaction ends, then lets Alembic read the revision: the first applies the
migrations, the others wait, find the database at head and do nothing. On PostgreSQL the
lock is a transaction-scoped advisory lock (:data:`ADVISORY_LOCK_KEY`). On SQLite it is an
exclusive ``flock`` on ``<database>.migrate-lock`` next to the database file, taken before
the first connection: the first connection to a fresh file switches it to WAL, and
SQLite answers a concurrent switch with "database is locked" at once, without waiting
for its busy timeout. The transaction then also starts with ``BEGIN IMMEDIATE``, so a
migration never interleaves with the application's writers. Both wait at most
:data:`LOCK_TIMEOUT_S` for the migration in progress.

For developers, ``python -m callcenter.storage.migrate --url URL COMMAND``:
``upgrade [REV]``, ``downgrade REV``, ``current``, ``check`` (models vs database) and
``revision -m MESSAGE`` (autogenerate the next numbered migration from the models).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, make_url

from callcenter.storage.engine import make_engine
from callcenter.storage.models import Base

__all__ = [
    "ADVISORY_LOCK_KEY",
    "LOCK_TIMEOUT_S",
    "MIGRATIONS_DIR",
    "MigrationError",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "main",
    "schema_differences",
    "upgrade",
]

MIGRATIONS_DIR: Path = Path(__file__).resolve().with_name("migrations")
"""The Alembic script directory shipped with the package (``package_data`` in setup.cfg)."""

_T = TypeVar("_T")

ADVISORY_LOCK_KEY: int = 0x63616C6C63656E74  # "callcent"
"""PostgreSQL advisory lock id held by every migration transaction (a 64-bit key; other
applications sharing the database would have to pick this very number to collide)."""
LOCK_TIMEOUT_S: float = 120.0
"""How long a migration waits for another one to finish (SQLite; PostgreSQL waits on
its advisory lock for as long as the other transaction runs)."""
_LOCK_POLL_S = 0.02


class MigrationError(Exception):
    """A migration ran but left the database inconsistent; it was rolled back."""


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration for this package's migrations, built in code.

    The URL goes into ``config.attributes`` rather than the ``sqlalchemy.url`` option:
    options pass through ``configparser`` interpolation, which breaks on a ``%`` in a
    password, and attributes are never written anywhere.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Numbered migrations (0001_initial.py, 0002_...) read in order in a directory listing.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.attributes["url"] = url
    return config


def head_revision() -> str:
    """The newest revision shipped with this package (what :func:`upgrade` reaches)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


@asynccontextmanager
async def _sqlite_file_lock(url: str) -> AsyncIterator[None]:
    """Hold the exclusive ``flock`` of the SQLite database at *url* (nothing for an
    in-memory database, which no other connection can see).

    ``flock`` locks belong to one open file, so two tasks of one process exclude each
    other as two processes do. Waiting polls with ``LOCK_NB`` rather than blocking a
    thread: a cancelled wait then leaves nothing behind.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MigrationError(
                        f"another migration of {database} has held {lock_path} "
                        f"for over {LOCK_TIMEOUT_S:.0f} s"
                    ) from None
                await asyncio.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


async def _in_migration_transaction(url: str, work: Callable[[Connection], _T]) -> _T:
    """Run *work* on a synchronous connection inside one transaction, then commit.

    The migration lock (see the module docstring) is held from before the first
    connection until the transaction has ended.
    """
    if make_url(url).get_backend_name() == "sqlite":
        async with _sqlite_file_lock(url):
            return await _locked_migration_transaction(url, work)
    return await _locked_migration_transaction(url, work)


async def _locked_migration_transaction(url: str, work: Callable[[Connection], _T]) -> _T:
    engine = make_engine(
        url,
        foreign_keys=False,
        sqlite_immediate=True,
        busy_timeout_ms=int(LOCK_TIMEOUT_S * 1000),
    )
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            result = await connection.run_sync(work)
            if connection.dialect.name == "sqlite":
                violations = (
                    await connection.exec_driver_sql("PRAGMA foreign_key_check")
                ).all()
                if violations:
                    raise MigrationError(
                        f"foreign keys violated after migrating, rolled back: {violations[:10]}"
                    )
            return result
    finally:
        await engine.dispose()


def _run_command(
    url: str, alembic_command: Callable[[Config], Any]
) -> Callable[[Connection], None]:
    def work(connection: Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        alembic_command(config)

    return work


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at *url* up to *revision* (default: the newest)."""
    await _in_migration_transaction(
        url, _run_command(url, lambda c: command.upgrade(c, revision))
    )


async def downgrade(url: str, revision: str) -> None:
    """Migrate the database at *url* down to *revision* (``"base"`` drops every table)."""
    await _in_migration_transaction(
        url, _run_command(url, lambda c: command.downgrade(c, revision))
    )


async def current_revision(url: str) -> str | None:
    """The revision the database at *url* is at, or ``None`` if it was never migrated.

    Compare with :func:`head_revision` at start-up to refuse running on an old schema.
    """
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def schema_differences(url: str, metadata: MetaData = Base.metadata) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match *metadata*.

    Empty when the models and the migrated database agree. The test-suite asserts exactly
    that, so a model change without its migration (or the reverse) cannot land.
    """
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    metadata,
                )
            )
    finally:
        await engine.dispose()


def _next_revision_id() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    numbers = [
        int(rev.revision) for rev in script.walk_revisions() if rev.revision.isdigit()
    ]
    return f"{max(numbers, default=0) + 1:04d}"


async def _autogenerate_revision(url: str, message: str) -> None:
    rev_id = _next_revision_id()
    await _in_migration_transaction(
        url,
        _run_command(
            url,
            lambda c: command.revision(
                c, message=message, autogenerate=True, rev_id=rev_id
            ),
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Developer entry point: ``python -m callcenter.storage.migrate --url URL COMMAND``."""
    parser = argparse.ArgumentParser(prog="python -m callcenter.storage.migrate")
    parser.add_argument(
        "--url", required=True, help="database URL, e.g. sqlite+aiosqlite:///x.db"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="migrate up (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate down to REVISION")
    down.add_argument("revision")
    sub.add_parser("current", help="print the database's revision")
    sub.add_parser("check", help="exit 1 if models and database differ")
    rev = sub.add_parser(
        "revision", help="autogenerate the next migration from the models"
    )
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)

    if args.command == "upgrade":
        asyncio.run(upgrade(args.url, args.revision))
    elif args.command == "downgrade":
        asyncio.run(downgrade(args.url, args.revision))
    elif args.command == "current":
        print(asyncio.run(current_revision(args.url)) or "(none)")
    elif args.command == "check":
        differences = asyncio.run(schema_differences(args.url))
        for difference in differences:
            print(difference)
        return 1 if differences else 0
    elif args.command == "revision":
        asyncio.run(_autogenerate_revision(args.url, args.message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
