"""Storage layer on a real SQLite file: migrations, no model/migration drift, repositories."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, delete, event, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.storage import (
    Account,
    AccountRepository,
    AccountStatus,
    Base,
    Call,
    CallEvent,
    CallEventKind,
    CallRepository,
    DestinationKind,
    current_revision,
    default_sqlite_url,
    downgrade,
    head_revision,
    import_csv,
    make_engine,
    make_sessionmaker,
    normalise_phone,
    schema_differences,
    seed_demo_accounts,
    upgrade,
)
from callcenter.storage.models import NAMING_CONVENTION

T0 = datetime(2025, 3, 30, 0, 59, 58, tzinfo=UTC)


async def _table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return set(
                await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            )
    finally:
        await engine.dispose()


# ----------------------------------------------------------------------------- migrations


async def test_upgrade_brings_a_new_database_to_head(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path)
    assert await current_revision(url) is None

    await upgrade(url)

    assert await current_revision(url) == head_revision() == "0011"
    assert await _table_names(url) == {
        "alembic_version",
        "accounts",
        "calls",
        "call_events",
        "agent_states",
        "agent_transitions",
        "queued_calls",
        "call_offers",
        "recordings",
        "callbacks",
        "callback_attempts",
        "call_transfers",
        "campaigns",
        "contacts",
        "dnc_entries",
        "contact_attempts",
        "contact_answers",
        "campaign_state_changes",
        "dialer_nodes",
    }


async def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    await upgrade(db_url)
    assert await current_revision(db_url) == head_revision()


async def test_models_and_migrations_do_not_drift(db_url: str) -> None:
    assert await schema_differences(db_url) == []


async def test_drift_check_notices_a_model_change(db_url: str) -> None:
    """Guards the guard: the no-drift test above would be worthless if it never fired."""
    changed = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["accounts"].append_column(Column("email", String(200)))

    differences = await schema_differences(db_url, changed)

    assert [(d[0], d[3].name) for d in differences] == [("add_column", "email")]


async def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    await downgrade(db_url, "base")
    assert await current_revision(db_url) is None
    assert await _table_names(db_url) == {"alembic_version"}

    await upgrade(db_url)
    assert await schema_differences(db_url) == []


# ----------------------------------------------------------------------------- engine


def test_default_sqlite_url_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_sqlite_url(Path("state")) == (
        f"sqlite+aiosqlite:///{tmp_path.resolve()}/state/callcenter.sqlite3"
    )


async def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(
    db_url: str,
) -> None:
    engine = make_engine(
        db_url.replace("sqlite+aiosqlite", "sqlite"), busy_timeout_ms=1234
    )
    try:
        assert engine.url.drivername == "sqlite+aiosqlite"
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 1234}


async def test_foreign_keys_are_enforced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            session.add(CallEvent(call_id=999, kind=CallEventKind.MENU))


async def test_a_rolled_back_transaction_leaves_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await AccountRepository(session).add("555", "Rolled Back")
            raise RuntimeError("abort the unit of work")
    async with sessions() as session:
        assert await AccountRepository(session).find_by_number("555") is None


async def test_a_task_cancelled_mid_statement_leaves_no_lock_behind(
    db_url: str,
) -> None:
    """A cancelled writer's invalidated connection lets go of the write lock at once.

    Cancelling a task in the middle of a statement makes SQLAlchemy invalidate its
    connection. The driver's close can itself be interrupted (a second cancellation; aiosqlite
    < 0.22 has no forced close), which is what the stubbed terminate stands for: the
    connection is dropped unclosed, and before the fix its open transaction kept the
    database's write lock until garbage collection ("database is locked" everywhere else).
    """
    engine = make_engine(db_url)
    other = make_engine(db_url, busy_timeout_ms=2000)
    dropped: list[object] = []
    real_terminate = engine.dialect.do_terminate
    engine.dialect.do_terminate = dropped.append  # type: ignore[method-assign]
    cancel_now = False

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _cancel_mid_statement(*_: object) -> None:
        # Runs inside the awaiting task, so the cancellation lands on the statement's await.
        if cancel_now:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()

    async def writer() -> None:
        nonlocal cancel_now
        async with make_sessionmaker(engine).begin() as session:
            await AccountRepository(session).add("100", "First Write")  # takes the lock
            cancel_now = True
            await AccountRepository(session).add("101", "Cancelled Write")

    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.create_task(writer())
        assert dropped, "the cancelled statement's connection was not invalidated"
        async with make_sessionmaker(other).begin() as session:
            await AccountRepository(session).add("200", "Next Writer")
        async with make_sessionmaker(other)() as session:
            repository = AccountRepository(session)
            assert await repository.find_by_number("200") is not None
            assert await repository.find_by_number("100") is None
    finally:
        for connection in dropped:
            real_terminate(connection)  # stop the worker threads the stub left running
        await other.dispose()
        await engine.dispose()


async def test_engine_log_hides_the_password(caplog: pytest.LogCaptureFixture) -> None:
    # Needs asyncpg (the 'postgres' extra, part of the test install): no skip.
    caplog.set_level(logging.DEBUG, logger="callcenter.storage.engine")
    engine = make_engine("postgresql://cc:s3cret-pw@127.0.0.1:1/callcenter")
    await engine.dispose()
    assert engine.url.drivername == "postgresql+asyncpg"
    assert "127.0.0.1" in caplog.text
    assert "s3cret-pw" not in caplog.text


# ----------------------------------------------------------------------------- accounts


async def test_account_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        added = await AccountRepository(session).add(
            "0042", "Ada Lovelace", phone="+1 (555) 123-0001", language="en", vip=True
        )
        assert added.id is not None

    async with sessions() as session:
        found = await AccountRepository(session).find_by_number(" 0042 ")
    assert found is not None
    assert (found.account_number, found.name, found.phone) == (
        "0042",
        "Ada Lovelace",
        "+15551230001",
    )
    assert (found.language, found.vip, found.status) == (
        "en",
        True,
        AccountStatus.ACTIVE,
    )
    assert found.created_at.tzinfo is not None
    assert found.created_at.utcoffset() == timedelta(0)


async def test_account_number_is_unique(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await AccountRepository(session).add("100", "First")
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await AccountRepository(session).add("100", "Second")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_number", "12a"),
        ("account_number", ""),
        ("phone", "call me"),
        ("language", "English"),
    ],
)
def test_account_rejects_malformed_values(field: str, value: str) -> None:
    values = {"account_number": "1", "name": "x", field: value}
    with pytest.raises(ValueError, match="expected"):
        Account(**values)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+15551230001", "+15551230001"),
        ("15551230001", "+15551230001"),
        (" +1 (555) 123-0001 ", "+15551230001"),
        ("1.555.123.0001", "+15551230001"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_normalise_phone(raw: str | None, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["anonymous", "555-CALL-NOW", "+", "--", "1" * 40])
def test_normalise_phone_rejects_non_numbers(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_phone(raw)


@pytest.mark.parametrize(
    ("caller_id", "expected"),
    [
        ("+15551230001", "100200"),
        ("15551230001", "100200"),  # trunk delivers caller ID without the +
        ("+1 555 123 0001", "100200"),
        ("+15551230002", "100300"),
        ("5551230001", None),  # national format: no country-code guessing
        ("+15551239999", None),
        ("anonymous", None),
        ("", None),
        (None, None),
    ],
)
async def test_find_by_phone_compares_digits_only(
    sessions: async_sessionmaker[AsyncSession],
    caller_id: str | None,
    expected: str | None,
) -> None:
    async with sessions.begin() as session:
        await seed_demo_accounts(session)
    async with sessions() as session:
        found = await AccountRepository(session).find_by_phone(caller_id)
    assert (found.account_number if found else None) == expected


async def test_find_by_phone_refuses_to_guess_between_shared_numbers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        accounts = AccountRepository(session)
        await accounts.add("1", "Parent", phone="+15550000000")
        await accounts.add("2", "Child", phone="15550000000")
        assert await accounts.find_by_phone("+15550000000") is None


@pytest.mark.parametrize("keyed", ["*100200", "100200#", "", "abc"])
async def test_find_by_number_ignores_non_digit_input(
    sessions: async_sessionmaker[AsyncSession], keyed: str
) -> None:
    async with sessions.begin() as session:
        await seed_demo_accounts(session)
        assert await AccountRepository(session).find_by_number(keyed) is None


async def test_seed_demo_accounts_is_idempotent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        assert await seed_demo_accounts(session) == ["100200", "100300", "100400"]
    async with sessions.begin() as session:
        assert await seed_demo_accounts(session) == []

    async with sessions() as session:
        rows = (
            await session.execute(select(Account).order_by(Account.account_number))
        ).scalars()
        summary = [
            (a.account_number, a.name, a.phone, a.language, a.vip, a.status)
            for a in rows
        ]
    assert summary == [
        ("100200", "Ada Lovelace", "+15551230001", "en", True, AccountStatus.ACTIVE),
        ("100300", "Grace Hopper", "+15551230002", "es", False, AccountStatus.ACTIVE),
        ("100400", "Alan Turing", "+15551230003", "en", False, AccountStatus.SUSPENDED),
    ]


async def test_seed_keeps_an_existing_account_as_it_is(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await AccountRepository(session).add("100200", "Renamed By Operator")
        assert await seed_demo_accounts(session) == ["100300", "100400"]
        account = await AccountRepository(session).find_by_number("100200")
        assert account is not None and account.name == "Renamed By Operator"


# ----------------------------------------------------------------------------- CSV import

GOOD_AND_BAD_CSV = """\
account_number,name,phone,language,vip
200001,Good One,+1 555 000 0001,en,true
200002,Bad Vip,+15550000002,en,maybe
20000x,Bad Number,+15550000003,,false
200004,"Multi
Line",+15550000004,es,FALSE
200005,Bad Lang And Phone,call me,English,no
200001,Duplicate In File,,,
100200,Already In Database,,,
200008,Too,Many,Fields,,
200009,Good Two,,,

200010,,15550000010,,1
"""


async def test_import_csv_keeps_good_rows_and_locates_errors(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await seed_demo_accounts(session)
    async with sessions.begin() as session:
        report = await import_csv(session, GOOD_AND_BAD_CSV.splitlines(keepends=True))

    assert [(row.line, row.account_number) for row in report.accepted] == [
        (2, "200001"),
        (5, "200004"),
        (11, "200009"),
    ]
    assert [str(error) for error in report.errors] == [
        "line 3: column 'vip': expected true/false, got 'maybe'",
        "line 4: column 'account_number': expected digits only, got '20000x'",
        "line 7: column 'phone': expected a phone number like +15551230001, got 'call me'",
        "line 7: column 'language': expected a language code like 'en' or 'es', got 'English'",
        "line 8: column 'account_number': account '200001' appears again (first on line 2)",
        "line 9: column 'account_number': account '100200' already exists",
        "line 10: expected 5 fields, got 6",
        "line 13: column 'name': expected a name, got an empty value",
    ]
    assert not report.ok

    async with sessions() as session:
        accounts = AccountRepository(session)
        multi = await accounts.find_by_number("200004")
        assert multi is not None and (multi.name, multi.language, multi.vip) == (
            "Multi\nLine",
            "es",
            False,
        )
        good = await accounts.find_by_phone("15550000001")
        assert good is not None and (good.account_number, good.vip) == ("200001", True)
        untouched = await accounts.find_by_number("100200")
        assert untouched is not None and untouched.name == "Ada Lovelace"
        count = (await session.execute(select(Account.id))).all()
    assert len(count) == 3 + 3  # demo accounts + accepted rows


async def test_import_csv_from_a_file_with_optional_columns_left_out(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("\ufeffname,account_number\r\nSolo,300001\r\n", encoding="utf-8")
    async with sessions.begin() as session:
        with path.open(newline="", encoding="utf-8") as rows:
            report = await import_csv(session, rows)
        assert report.ok and [a.account_number for a in report.accepted] == ["300001"]
        account = await AccountRepository(session).find_by_number("300001")
        assert account is not None and (account.phone, account.vip) == (None, False)


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        (
            "account_number,name,vipp\n1,x,true\n",
            [
                (
                    "line 1: column 'vipp': unknown column "
                    "(known: account_number, name, phone, language, vip)"
                )
            ],
        ),
        ("account_number,phone\n1,+1555\n", ["line 1: column 'name': missing column"]),
        (
            "account_number,name,name\n1,x,y\n",
            ["line 1: column 'name': column appears twice"],
        ),
        ("", ["line 1: empty file: expected a header row"]),
    ],
)
async def test_import_csv_rejects_a_bad_header_whole(
    sessions: async_sessionmaker[AsyncSession], csv_text: str, expected: list[str]
) -> None:
    async with sessions.begin() as session:
        report = await import_csv(session, csv_text.splitlines())
        assert report.accepted == ()
        assert [str(error) for error in report.errors] == expected
        assert (await session.execute(select(Account.id))).first() is None


# ----------------------------------------------------------------------------- calls


async def test_call_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        account = await AccountRepository(session).add(
            "7", "Caller", phone="+15557770000"
        )
        calls = CallRepository(session)
        call = await calls.start_call(
            "1711111111.42",
            "main",
            caller_id_num="+15557770000",
            caller_id_name="CALLER",
            language="en",
            account_id=account.id,
            priority=5,
            started_at=T0,
        )
        await calls.mark_answered(call, at=T0 + timedelta(seconds=1))
        await calls.add_event(
            call,
            "menu",
            name="main_menu",
            detail={"digits": "2"},
            at=T0 + timedelta(seconds=3),
        )
        await calls.add_event(
            call,
            CallEventKind.LOOKUP,
            name="find_account",
            detail={"found": True, "account": "7"},
            at=T0 + timedelta(seconds=2),
        )
        await calls.finish_call(
            call, "queue", destination="sales", ended_at=T0 + timedelta(minutes=5)
        )

    async with sessions() as session:
        calls = CallRepository(session)
        loaded = await calls.get_by_uniqueid("1711111111.42")
        assert loaded is not None
        assert (loaded.entry_point, loaded.caller_id_num, loaded.caller_id_name) == (
            "main",
            "+15557770000",
            "CALLER",
        )
        assert (loaded.language, loaded.account_id, loaded.priority) == (
            "en",
            account.id,
            5,
        )
        assert (loaded.started_at, loaded.answered_at, loaded.ended_at) == (
            T0,
            T0 + timedelta(seconds=1),
            T0 + timedelta(minutes=5),
        )
        assert loaded.started_at.tzinfo is not None
        assert (loaded.final_destination_kind, loaded.final_destination) == (
            DestinationKind.QUEUE,
            "sales",
        )
        events = await calls.events(loaded)
    assert [(e.kind, e.name, e.detail) for e in events] == [
        (CallEventKind.LOOKUP, "find_account", {"found": True, "account": "7"}),
        (CallEventKind.MENU, "main_menu", {"digits": "2"}),
    ]
    assert await _none_for_unknown_uniqueid(sessions)


async def _none_for_unknown_uniqueid(
    sessions: async_sessionmaker[AsyncSession],
) -> bool:
    async with sessions() as session:
        return await CallRepository(session).get_by_uniqueid("no-such-channel") is None


async def test_timestamps_are_stored_in_utc(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    paris_summer = timezone(timedelta(hours=2))
    async with sessions.begin() as session:
        await CallRepository(session).start_call(
            "u1", "main", started_at=T0.astimezone(paris_summer)
        )
    async with sessions() as session:
        call = await CallRepository(session).get_by_uniqueid("u1")
        raw = (await session.execute(text("SELECT started_at FROM calls"))).scalar_one()
    assert call is not None and call.started_at == T0 and call.started_at.tzinfo == UTC
    assert str(raw).startswith("2025-03-30 00:59:58")


async def test_naive_timestamps_are_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with sessions.begin() as session:
            await CallRepository(session).start_call(
                "u1", "main", started_at=datetime(2025, 1, 1)
            )


async def test_start_call_twice_for_one_uniqueid_fails(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await CallRepository(session).start_call("u1", "main")
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await CallRepository(session).start_call("u1", "main")


async def test_unknown_kinds_are_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        calls = CallRepository(session)
        call = await calls.start_call("u1", "main")
        with pytest.raises(ValueError):
            await calls.add_event(call, "menuu")
        with pytest.raises(ValueError):
            await calls.finish_call(call, "the moon")


async def test_history_outlives_accounts_and_events_go_with_their_call(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        account = await AccountRepository(session).add("9", "Leaving")
        calls = CallRepository(session)
        call = await calls.start_call("u1", "main", account_id=account.id)
        await calls.add_event(call, CallEventKind.HANGUP)
    async with sessions.begin() as session:
        await session.execute(delete(Account))
    async with sessions() as session:
        kept = await CallRepository(session).get_by_uniqueid("u1")
        assert kept is not None and kept.account_id is None
    async with sessions.begin() as session:
        await session.execute(delete(Call))
    async with sessions() as session:
        assert (await session.execute(select(CallEvent.id))).first() is None
