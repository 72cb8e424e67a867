"""Alembic environment for callcenter's storage (run by Alembic, not imported).

There is no ``alembic.ini``: :mod:`callcenter.storage.migrate` builds the configuration in
code and normally hands over an open connection in ``config.attributes["connection"]``,
already inside a transaction (and, on SQLite, with foreign-key enforcement off; see
:func:`callcenter.storage.engine.make_engine`). Without one, the URL in
``config.attributes["url"]`` is opened with the same async engine factory.

``render_as_batch=True`` on every database: SQLite cannot ``ALTER`` most of a table, so a
migration generated against PostgreSQL without batch operations would not run on SQLite.
On PostgreSQL batch operations are plain ``ALTER TABLE`` statements.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from callcenter.storage.engine import make_engine
from callcenter.storage.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render model-only types as the plain SQL type they store.

    A migration is frozen history: it must not import today's models (which later change)
    nor list today's enum members (which are validated in Python, not by the database).
    """
    if type_ == "type" and isinstance(obj, postgresql.JSONB):
        # Alembic's default rendering, JSONB(astext_type=Text()), misses the "sa." prefix.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, sa.Enum) and not obj.native_enum:
        return f"sa.String(length={obj.length})"
    return False


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database URL: use callcenter.storage.migrate, which sets one"
        )
    return str(url)


def run_migrations_offline() -> None:
    """Emit the migration as SQL text (``--sql``) instead of running it."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on a synchronous connection (inside ``run_sync``)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    """Open the URL ourselves when no connection was handed over."""
    engine = make_engine(_url(), foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    _connection = config.attributes.get("connection")
    if _connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(_connection)
