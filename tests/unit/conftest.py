"""Fixtures shared by the unit tests: a migrated SQLite database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.migrate import upgrade


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file in the test's tmp dir, migrated to the newest schema."""
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    return url


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()
