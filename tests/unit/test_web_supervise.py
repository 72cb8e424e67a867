"""Supervisor actions over the HTTP API (``POST /api/v1/agents/{name}/listen|whisper|barge``)
against a fake of the router's supervision that speaks its interface
(``supervise(supervisor, agent, mode)`` -> session, or ``SupervisionRefused``): who may,
whose phone gets the snoop leg, and each refusal's status. The real snoop is
tests/integration/test_web_live.py's.

Users (tests.web_api): sue supervises sales (alice, carmen), sam tech_support (bob), alice_phone
is the agent alice; bob is an agent with role supervisor of sales (tests.web_live)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.supervision import SupervisionRefused
from callcenter.web.supervise import router_hook
from tests.web_live import LiveApi, assert_schema, live_api, live_config

CONFIG = live_config()


@dataclass
class FakeSession:
    channel_id: str
    snoop_id: str
    bridge_id: str


@dataclass
class FakeSupervision:
    """The router's ``supervision`` as the API sees it: refuses with *refusal* (a reason)
    or starts a session, and records each request."""

    refusal: str | None = None
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    async def supervise(self, supervisor: str, agent: str, mode: str) -> FakeSession:
        self.asked.append((supervisor, agent, mode))
        if self.refusal is not None:
            raise SupervisionRefused(self.refusal, f"refused: {self.refusal}")
        return FakeSession("cc-svcall-1", "cc-snoop-cc-svcall-1", "cc-sv-cc-svcall-1")


@pytest.fixture
def supervision() -> FakeSupervision:
    return FakeSupervision()


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession],
              supervision: FakeSupervision) -> AsyncIterator[LiveApi]:
    async with live_api(CONFIG, sessions, supervise=router_hook(supervision)) as running:
        yield running


async def _post(api: LiveApi, user: str, path: str, status: int, body=None) -> dict:
    async with api.client.post(path, headers=api.as_user(user), json=body) as response:
        answer = await response.json()
        assert response.status == status, answer
        return answer


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
async def test_a_supervisor_rings_the_named_supervisors_phone_onto_the_call(
        api: LiveApi, supervision: FakeSupervision, mode: str) -> None:
    answer = await _post(api, "sue", f"/api/v1/agents/carmen/{mode}", 200,
                         {"supervisor": "bob"})
    assert answer == {"supervisor": "bob", "agent": "carmen", "mode": mode,
                      "channel": "cc-svcall-1", "snoop": "cc-snoop-cc-svcall-1",
                      "bridge": "cc-sv-cc-svcall-1"}
    assert supervision.asked == [("bob", "carmen", mode)]
    assert_schema(answer, "Supervision")


@pytest.mark.parametrize(("user", "agent", "status"), [
    ("alice_phone", "alice", 403),   # an agent token, even for itself
    ("alice_phone", "carmen", 403),
    ("sue", "bob", 403),             # bob serves tech_support, not sue's sales
    ("sam", "carmen", 403),
    ("sam", "bob", 200),
    ("admin", "alice", 200),
    ("boss", "carmen", 200),
    ("sue", "zoe", 404),
])
async def test_only_admins_and_the_agents_supervisors_may(
        api: LiveApi, supervision: FakeSupervision, user: str, agent: str,
        status: int) -> None:
    answer = await _post(api, user, f"/api/v1/agents/{agent}/listen", status,
                         {"supervisor": "bob"})
    assert supervision.asked == ([("bob", agent, "listen")] if status == 200 else [])
    if status == 403:
        assert answer["error"].startswith(f"user {user!r}"), answer


@pytest.mark.parametrize(("body", "field"), [
    (None, "supervisor"),                    # admin is no agent: say whose phone
    ({}, "supervisor"),
    ({"supervisor": 7}, "supervisor"),
    ({"supervisor": "zoe"}, "supervisor"),
    ({"supervisor": "bob", "mode": "barge"}, "mode"),
    ({"": 1}, '""'),
])
async def test_a_bad_body_names_its_field_and_rings_nobody(
        api: LiveApi, supervision: FakeSupervision, body, field: str) -> None:
    answer = await _post(api, "admin", "/api/v1/agents/carmen/whisper", 422, body)
    assert answer["field"] == field
    assert supervision.asked == []


@pytest.mark.parametrize(("reason", "status", "field"), [
    ("not_on_call", 409, None),
    ("no_answer", 409, None),
    ("not_supervisor", 422, "supervisor"),
    ("not_supervised", 403, None),
    ("failed", 503, None),
])
async def test_each_refusal_of_the_supervision_has_its_status(
        api: LiveApi, supervision: FakeSupervision, reason: str, status: int,
        field: str | None) -> None:
    supervision.refusal = reason
    answer = await _post(api, "admin", "/api/v1/agents/carmen/barge", status,
                         {"supervisor": "alice"})
    assert answer.get("field") == field
    assert f"refused: {reason}" in answer["error"]
    assert_schema(answer, "Error")


async def test_without_a_router_it_is_a_503(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with live_api(CONFIG, sessions) as api:
        answer = await _post(api, "admin", "/api/v1/agents/carmen/listen", 503,
                             {"supervisor": "bob"})
        assert "no queue router" in answer["error"]


async def test_the_other_agent_actions_are_still_served(api: LiveApi) -> None:
    answer = await _post(api, "admin", "/api/v1/agents/carmen/login", 200)
    assert answer["status"] == "available"
