"""Dispositions on SQLite: validated against the campaign's list, stored on the attempt
and the contact, applied by the retry rules (do_not_call lists the number in the same
transaction); the compliance inputs; and the ``campaigns`` commands end to end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.cli import main
from callcenter.config.campaign import Campaign
from callcenter.storage import (
    default_sqlite_url,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from callcenter.storage.campaigns import (
    CampaignRepository,
    DispositionError,
    NewContact,
)
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from tests.web_api import Api, config_with_pause_reason, running_api

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)   # 10:00 in New York, a Tuesday
EXAMPLE = Path(__file__).parents[2] / "config" / "example"
CAMPAIGNS = {"renewals": Campaign.model_validate({
    "mode": "progressive", "trunk": "carrier", "caller_id": "+15550100000",
    "safe_harbor": "tt-weasels"})}


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _called(sessions: async_sessionmaker[AsyncSession], number: str = "+12125550100",
                  outcome: AttemptOutcome = AttemptOutcome.ANSWERED, agent: str | None = "alice",
                  at: datetime = NOW) -> int:
    """One contact called once, the call ended; the attempt's id."""
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact(number, "America/New_York")])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", at, 1)  # first in its transaction
        attempt = await repo.start_attempt(due.id, at=at)
        await repo.end_attempt(attempt, outcome=outcome, at=at + timedelta(seconds=30),
                               next_state=ContactState.DONE, agent=agent)
    return attempt


async def _dispose(sessions: async_sessionmaker[AsyncSession], attempt: int,
                   disposition: str, **kw: object) -> object:
    async with sessions.begin() as session:
        return await CampaignRepository(session).dispose(
            attempt, disposition, campaigns=CAMPAIGNS, now=NOW + timedelta(minutes=1),
            **kw)  # type: ignore[arg-type]


async def test_a_callback_disposition_schedules_the_time_asked(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _called(sessions)
    at = NOW + timedelta(days=1)
    done = await _dispose(sessions, attempt, "callback", agent="alice", note="after lunch",
                          callback_at=at)
    assert (done.state, done.next_attempt_at) == ("pending", at)  # type: ignore[attr-defined]
    async with sessions() as session:
        contact = await session.scalar(select(Contact))
        row = await session.scalar(select(ContactAttempt))
    assert contact is not None and row is not None
    assert (contact.state, contact.next_attempt_at, contact.disposition) == (
        ContactState.PENDING, at, "callback")
    assert (row.disposition, row.note, row.disposed_at) == (
        "callback", "after lunch", NOW + timedelta(minutes=1))


async def test_do_not_call_lists_the_number_at_once(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _called(sessions)
    done = await _dispose(sessions, attempt, "do_not_call", agent="alice")
    assert done.added_dnc and done.state == "do_not_call"  # type: ignore[attr-defined]
    async with sessions() as session:
        repo = CampaignRepository(session)
        assert await repo.is_dnc("+12125550100")
        assert (await repo.contacts("renewals"))[0].state == ContactState.DO_NOT_CALL


@pytest.mark.parametrize(("disposition", "kw", "field"), [
    ("frobnicate", {}, "disposition"),
    ("sale", {"agent": "bob", "own_only": True}, "agent"),
    ("sale", {"note": "x" * 1001}, "note"),
    ("callback", {"callback_at": datetime(2026, 12, 2, 10, 0)}, "callback_at"),
])
async def test_bad_dispositions_name_the_field(
        sessions: async_sessionmaker[AsyncSession], disposition: str, kw: dict[str, object],
        field: str) -> None:
    attempt = await _called(sessions)
    with pytest.raises(DispositionError) as caught:
        await _dispose(sessions, attempt, disposition, **kw)
    assert caught.value.field == field
    with pytest.raises(DispositionError, match="no contact attempt 999"):
        await _dispose(sessions, 999, "sale")


async def test_an_attempt_in_progress_cannot_be_disposed(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact("+12125550100", None)])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", NOW, 1)
        attempt = await repo.start_attempt(due.id, at=NOW)
    with pytest.raises(DispositionError, match="still in progress"):
        await _dispose(sessions, attempt, "sale")


async def test_compliance_inputs_and_last_abandon(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    first = await _called(sessions, outcome=AttemptOutcome.ABANDONED)
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        await repo.add_dnc(["+12125550100"], source="test", at=NOW + timedelta(hours=1))
        contact = (await repo.contacts("renewals"))[0]
        second = await repo.start_attempt(contact.id, at=NOW + timedelta(hours=2))
        assert await repo.last_abandon_at(contact.id) == NOW
    async with sessions() as session:
        contacts, attempts = await CampaignRepository(session).compliance_inputs("renewals")
        assert await CampaignRepository(session).compliance_inputs("nope") == ([], [])
    assert [(c.number, c.attempts) for c in contacts] == [("+12125550100", 2)]
    assert [(a.id, a.outcome, a.on_dnc) for a in attempts] == [
        (first, "abandoned", False), (second, None, True)]


def test_campaigns_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("number,timezone\n+12125550100,America/New_York\n")

    def run(*args: str) -> object:
        return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)

    assert run("contacts", "import", "renewals", str(contacts), "--config",
               str(EXAMPLE)).exit_code == 0
    result = run("campaigns", "status", "renewals", "--config", str(EXAMPLE),
                 "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pending"] == 1
    result = run("campaigns", "report", "renewals", "--config", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "calls_outside_window" in result.stdout and "compliant" in result.stdout
    result = run("campaigns", "report", "renewals", "--config", str(EXAMPLE),
                 "--format", "csv")
    assert result.stdout.startswith("figure,value")
    result = run("campaigns", "dispose", "1", "sale", "--config", str(EXAMPLE))
    assert result.exit_code == 1 and "attempt: no contact attempt 1" in result.stderr
    result = run("campaigns", "dispose", "1", "sale", "--callback-at", "tomorrow",
                 "--config", str(EXAMPLE))
    assert result.exit_code == 2 and "not an ISO 8601 time" in result.stderr
    result = run("campaigns", "report", "nope", "--config", str(EXAMPLE))
    assert result.exit_code == 1 and "unknown campaign 'nope'" in result.stderr


# -- the HTTP API -----------------------------------------------------------------------

_PATH = "/api/v1/campaigns/attempts/{}/disposition"


async def _post(api: Api, user: str, attempt: object, body: object) -> tuple[int, dict]:
    async with api.client.post(_PATH.format(attempt), json=body,
                               headers=api.as_user(user)) as response:
        return response.status, await response.json()


async def test_the_api_disposes_as_roles_allow(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    config = config_with_pause_reason()
    alice = await _called(sessions, agent="alice")
    nobody = await _called(sessions, number="+12125550101", agent=None)
    async with running_api(config, sessions) as api:
        api.clock.now = NOW + timedelta(minutes=1)
        # another supervisor's agent, an agentless call: not theirs
        assert (await _post(api, "sam", alice, {"disposition": "sale"}))[0] == 403
        assert (await _post(api, "alice_phone", nobody, {"disposition": "sale"}))[0] == 403
        status, answer = await _post(api, "alice_phone", alice, {
            "disposition": "callback", "callback_at": "2026-12-02T15:00:00+00:00",
            "note": "after lunch"})
        assert status == 200, answer
        assert answer == {"attempt": alice, "contact": 1, "campaign": "renewals",
                          "disposition": "callback", "state": "pending",
                          "next_attempt_at": "2026-12-02T15:00:00+00:00",
                          "reason": answer["reason"], "added_dnc": False, "queue": None}
        status, answer = await _post(api, "sue", alice, {"disposition": "do_not_call"})
        assert (status, answer["state"], answer["added_dnc"]) == (200, "do_not_call", True)
        status, answer = await _post(api, "admin", nobody, {"disposition": "frobnicate"})
        assert (status, answer["field"]) == (422, "disposition"), answer
        assert "known: " in answer["error"]
        for body, field in [({}, "disposition"), ({"disposition": 5}, "disposition"),
                            ({"disposition": "callback", "callback_at": "soon"},
                             "callback_at"),
                            ({"disposition": "callback", "callback_at": "2026-12-02T15:00"},
                             "callback_at"),
                            ({"disposition": "sale", "note": ["x"]}, "note"),
                            ({"disposition": "sale", "when": 1}, "when")]:
            status, answer = await _post(api, "admin", nobody, body)
            assert (status, answer.get("field")) == (422, field), (body, answer)
        for attempt in (999, "abc", 0, "9" * 30):
            assert (await _post(api, "admin", attempt, {"disposition": "sale"}))[0] == 404
    async with sessions() as session:
        assert await CampaignRepository(session).is_dnc("+12125550100")


async def test_the_api_refuses_a_call_in_progress(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact("+12125550100", None)])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", NOW, 1)
        attempt = await repo.start_attempt(due.id, at=NOW)
    async with running_api(config_with_pause_reason(), sessions) as api:
        status, answer = await _post(api, "admin", attempt, {"disposition": "sale"})
    assert status == 409 and "still in progress" in answer["error"]
