"""Persistence for the contact center: SQLAlchemy 2.x async models, repositories, migrations.

SQLite (``sqlite+aiosqlite``) by default, PostgreSQL (``postgresql+asyncpg``, the
``postgres`` extra) when configured; the same models, migrations and queries serve both.
Typical start-up::

    url = default_sqlite_url(state_dir)
    await upgrade(url)                      # Alembic migrations to head
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        account = await AccountRepository(session).find_by_phone(caller_id)
"""

from callcenter.storage.agent_states import AgentStateRepository
from callcenter.storage.engine import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.migrate import (
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    schema_differences,
    upgrade,
)
from callcenter.storage.models import (
    Account,
    AccountStatus,
    AgentStateRecord,
    AgentTransition,
    Base,
    Call,
    CallEvent,
    CallEventKind,
    CallOffer,
    DestinationKind,
    OfferResult,
    QueuedCall,
    QueueOutcome,
    normalise_phone,
)
from callcenter.storage.queued_calls import QueuedCallError, QueuedCallRepository
from callcenter.storage.repositories import (
    DEMO_ACCOUNTS,
    AcceptedRow,
    AccountRepository,
    CallRepository,
    ImportReport,
    RowError,
    import_csv,
    seed_demo_accounts,
)

__all__ = [
    "DEMO_ACCOUNTS",
    "AcceptedRow",
    "Account",
    "AccountRepository",
    "AccountStatus",
    "AgentStateRecord",
    "AgentStateRepository",
    "AgentTransition",
    "Base",
    "Call",
    "CallEvent",
    "CallEventKind",
    "CallOffer",
    "CallRepository",
    "DestinationKind",
    "ImportReport",
    "MigrationError",
    "OfferResult",
    "QueueOutcome",
    "QueuedCall",
    "QueuedCallError",
    "QueuedCallRepository",
    "RowError",
    "current_revision",
    "default_sqlite_url",
    "downgrade",
    "head_revision",
    "import_csv",
    "make_engine",
    "make_sessionmaker",
    "normalise_phone",
    "schema_differences",
    "seed_demo_accounts",
    "upgrade",
]
