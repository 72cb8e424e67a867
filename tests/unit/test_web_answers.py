"""``GET /api/v1/campaigns/{campaign}/answers`` on a real migrated SQLite database: an
agentless campaign's stored answers per contact's call; roles and other modes refused
with the status named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.answers import AnswerRepository
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.migrate import upgrade
from tests.web_api import Api, config_with_pause_reason, running_api

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
CONFIG = config_with_pause_reason()  # the example: campaign satisfaction, agentless


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    async with running_api(CONFIG, sessions) as running:
        yield running


async def _get(api: Api, user: str, path: str) -> tuple[int, Any]:
    async with api.client.get(path, headers=api.as_user(user)) as response:
        return response.status, await response.json()


async def test_the_answers_of_an_agentless_campaign_per_call(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "satisfaction", [NewContact("+12125550100", "UTC"),
                             NewContact("+12125550101", "UTC")])
    async with sessions.begin() as session:
        campaigns = CampaignRepository(session)
        first, second = await campaigns.claim_due("satisfaction", NOW, 2, claimer="t")
        one = await campaigns.start_attempt(first.id, at=NOW)
        two = await campaigns.start_attempt(second.id, at=NOW)
        answers = AnswerRepository(session)
        await answers.record(one, variable="SCORE", value="5", at=NOW)
        await answers.record(one, variable="RECOMMEND", value="1", at=NOW)
        await answers.record(two, variable="SCORE", value="2", at=NOW)
    status, body = await _get(api, "admin", "/api/v1/campaigns/satisfaction/answers")
    assert status == 200, body
    assert body == {"campaign": "satisfaction", "variables": ["SCORE", "RECOMMEND"],
                    "calls": [
                        {"contact": first.id, "number": "+12125550100", "attempt": one,
                         "complete": True, "answers": {"SCORE": "5", "RECOMMEND": "1"}},
                        {"contact": second.id, "number": "+12125550101", "attempt": two,
                         "complete": False, "answers": {"SCORE": "2"}}]}
    assert (await _get(api, "sue", "/api/v1/campaigns/satisfaction/answers"))[0] == 200


@pytest.mark.parametrize("user, campaign, status, words", [
    ("alice_phone", "satisfaction", 403, "read the answers of"),
    ("admin", "nope", 404, "no campaign 'nope'"),
    ("admin", "renewals", 409, "only agentless campaigns collect answers"),
])
async def test_refused_with_the_reason(api: Api, user: str, campaign: str, status: int,
                                       words: str) -> None:
    got, body = await _get(api, user, f"/api/v1/campaigns/{campaign}/answers")
    assert got == status and words in body["error"], body
