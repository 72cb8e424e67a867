"""Campaign storage on SQLite: contacts imported in one transaction and merged, the DNC
list, claims (never the same contact twice, BEGIN IMMEDIATE), attempts written before the
dial and completed after; and the ``contacts``/``dnc`` commands end to end."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.cli import main
from callcenter.storage import (
    default_sqlite_url,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "config" / "example"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def _contacts(n: int, start: int = 2125550100) -> list[NewContact]:
    return [NewContact(f"+1{start + i}", "America/New_York", {"i": str(i)}) for i in range(n)]


async def test_import_merges_numbers_already_there_and_repeated(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        done = await CampaignRepository(session).import_contacts("renewals", _contacts(3))
    assert (done.inserted, done.merged) == (3, 0)
    async with sessions.begin() as session:
        done = await CampaignRepository(session).import_contacts("renewals", [
            NewContact("+12125550100", None, {"plan": "gold"}),
            NewContact("+12125550199", None, {"a": "1"}),
            NewContact("+12125550199", "America/Chicago", {"b": "2"}),
        ])
    assert (done.inserted, done.merged) == (1, 2)
    async with sessions() as session:
        rows = {c.number: c for c in await CampaignRepository(session).contacts("renewals")}
    assert len(rows) == 4
    assert rows["+12125550100"].data == {"i": "0", "plan": "gold"}
    assert rows["+12125550100"].timezone == "America/New_York"
    assert (rows["+12125550199"].data, rows["+12125550199"].timezone) == (
        {"a": "1", "b": "2"}, "America/Chicago")


async def test_an_import_that_fails_stores_nothing(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await CampaignRepository(session).import_contacts("renewals", _contacts(1200))
            raise RuntimeError("interrupted")
    async with sessions() as session:
        assert await CampaignRepository(session).contacts("renewals") == []


async def test_claims_take_due_contacts_once_and_skip_the_dnc_list(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        await repo.import_contacts("renewals", _contacts(5))
        await repo.import_contacts("other", _contacts(2))
        later = (await repo.contacts("renewals"))[4]
        later.next_attempt_at = NOW + timedelta(hours=1)
        assert await repo.add_dnc({"+12125550101": "asked"}, source="test") == 1
        assert await repo.add_dnc(["+12125550101"], source="test") == 0
    async with sessions.begin() as session:
        first = await CampaignRepository(session).claim_due("renewals", NOW, 2, claimer="n1")
    async with sessions.begin() as session:
        second = await CampaignRepository(session).claim_due("renewals", NOW, 10)
    assert [c.number for c in first] == ["+12125550100", "+12125550102"]
    assert [c.number for c in second] == ["+12125550103"]  # 101 on DNC, 104 not due yet
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        assert await repo.claim_due("renewals", NOW + timedelta(hours=2), 10) != []
        assert await repo.is_dnc("+12125550101")
        states = {c.number: c.state for c in await repo.contacts("renewals")}
    assert states["+12125550101"] == ContactState.DO_NOT_CALL
    assert await _claim_nothing(sessions, "unknown") == []


async def _claim_nothing(sessions: async_sessionmaker[AsyncSession], campaign: str) -> list:
    async with sessions.begin() as session:
        return await CampaignRepository(session).claim_due(campaign, NOW, 5)


async def test_a_claim_begins_immediate(sessions: async_sessionmaker[AsyncSession]) -> None:
    statements: list[str] = []
    engine = sessions.kw["bind"]

    def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    async with sessions.begin() as session:
        await CampaignRepository(session).claim_due("renewals", NOW, 1)
    event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert statements[0] == "BEGIN IMMEDIATE"


async def test_concurrent_claimers_never_share_a_contact(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts("renewals", _contacts(60))

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        for _ in range(40):  # bounded: 60 contacts, 3 per claim, 4 claimers
            async with sessions.begin() as session:
                claimed = await CampaignRepository(session).claim_due("renewals", NOW, 3,
                                                                      claimer=name)
            if not claimed:
                break
            got += [c.id for c in claimed]
        return got

    results = await asyncio.wait_for(
        asyncio.gather(*(claimer(f"n{i}") for i in range(4))), timeout=60)
    every = [i for got in results for i in got]
    assert len(every) == len(set(every)) == 60


async def test_attempts_are_written_before_the_dial_and_completed_after(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        await repo.import_contacts("renewals", _contacts(1))
    async with sessions.begin() as session:
        (due,) = await CampaignRepository(session).claim_due("renewals", NOW, 1)
    async with sessions.begin() as session:
        attempt = await CampaignRepository(session).start_attempt(
            due.id, at=NOW, caller_id="+15550100000", channel_id="cc-out-1")
    async with sessions() as session:
        assert [a.id for a in await CampaignRepository(session).open_attempts()] == [attempt]
    async with sessions.begin() as session:
        await CampaignRepository(session).end_attempt(
            attempt, outcome=AttemptOutcome.BUSY, at=NOW + timedelta(seconds=5), cause=17,
            next_state=ContactState.PENDING, next_attempt_at=NOW + timedelta(minutes=15))
    async with sessions() as session:
        contact = await session.scalar(select(Contact))
        row = await session.scalar(select(ContactAttempt))
        assert await CampaignRepository(session).open_attempts() == []
    assert contact is not None and row is not None
    assert (contact.state, contact.attempts, contact.last_outcome, contact.claimed_by) == (
        ContactState.PENDING, 1, AttemptOutcome.BUSY, None)
    assert contact.next_attempt_at == NOW + timedelta(minutes=15)
    assert (row.number, row.caller_id, row.cause, row.outcome) == (
        "+12125550100", "+15550100000", 17, AttemptOutcome.BUSY)
    async with sessions.begin() as session:
        assert await CampaignRepository(session).claim_due("renewals", NOW, 1) == []
    with pytest.raises(LookupError):
        async with sessions.begin() as session:
            await CampaignRepository(session).start_attempt(999, at=NOW)


# -- the commands ---------------------------------------------------------------------------

def test_contacts_import_export_and_dnc_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contacts = tmp_path / "contacts.csv"
    contacts.write_bytes("number;first_name;note\n(212) 555-0100;Zoë;=2+5\nbogus;x;\n"
                         "212.555.0100;Zoe;\n+44 20 7946 0000;Bob;\n".encode("cp1252"))
    dnc = tmp_path / "dnc.csv"
    dnc.write_text("phone,reason\n+442079460000,asked\n")

    def run(*args: str) -> object:
        return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)

    result = run("contacts", "import", "renewals", str(contacts), "--config", str(EXAMPLE))
    assert result.exit_code == 1  # a rejected record
    assert f"{contacts}:3: column 'number': not a phone number: 'bogus' (letters)" in (
        result.stderr)
    assert "renewals: imported 2 contacts, merged 1, 1 rejected" in result.stdout
    result = run("dnc", "import", str(dnc))
    assert (result.exit_code, result.stdout.strip()) == (
        0, "do-not-call: added 1 number, 0 already listed, 0 rejected")
    out = tmp_path / "out.csv"
    assert run("contacts", "export", "renewals", "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["number"], r["state"], r["first_name"], r["note"]) for r in rows] == [
        ("'+12125550100", "pending", "Zoe", "'=2+5"),
        ("'+442079460000", "do_not_call", "Bob", ""),
    ]
    result = run("contacts", "import", "nope", str(contacts), "--config", str(EXAMPLE))
    assert result.exit_code == 1 and "unknown campaign 'nope'" in result.stderr
    result = run("dnc", "import", str(dnc), "--region", "ZZ")
    assert result.exit_code == 2 and "expected a country code such as US or GB" in result.stderr


async def test_cli_database_work_holds_the_write_lock_from_its_first_statement(
        tmp_path: Path) -> None:
    """The CLI's one transaction (``contacts import``, ``dnc import``, ``campaigns
    dispose``...) takes SQLite's write lock at BEGIN. A deferred one that read first could
    not write once another writer (a running dialer) committed meanwhile: "database is
    locked" at once, no busy wait (seen: ``contacts import`` while a dialer ran). Here
    another writer tries between our read and our write: it must wait for us, and our
    write must succeed."""
    import sqlite3
    import threading

    from sqlalchemy import text

    from callcenter.lists_cli import _with_session

    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    database = next(tmp_path.glob("*.sqlite3"))
    other: list[str] = []

    def other_writer() -> None:
        connection = sqlite3.connect(database, timeout=0.3, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO campaigns (name, created_at, dnc_blocked) "
                                "VALUES ('other', '2026-12-01 00:00:00', 0)")
            connection.execute("COMMIT")
            other.append("committed")
        except sqlite3.OperationalError as exc:
            other.append(str(exc))
        finally:
            connection.close()

    async def work(session: Any) -> None:
        await session.execute(text("SELECT count(*) FROM contacts"))
        thread = threading.Thread(target=other_writer)
        thread.start()
        await asyncio.to_thread(thread.join, 5)
        await session.execute(text(
            "INSERT INTO campaigns (name, created_at, dnc_blocked) "
            "VALUES ('ours', '2026-12-01 00:00:00', 0)"))

    await _with_session(url, work)
    assert other == ["database is locked"]  # it waited for our transaction, not we for it
