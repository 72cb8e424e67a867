"""The preview routes of the HTTP API on a real migrated SQLite database: an agent holds
its next contact (reserved meanwhile), sees it again, dials or skips it; roles, bad
input and states refused with the status and field named."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import AgentStatus, CallGone, Login
from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.preview import HeldPreview, PreviewError
from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.migrate import upgrade
from callcenter.storage.models import Contact, ContactState
from tests.web_api import EXAMPLE, PAUSE_YAML, USERS_YAML, Api, running_api

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
PREVIEW_YAML = """\
campaigns:
  leads:
    mode: preview
    agents: [alice, bob]
    trunk: carrier
    caller_id: "+15550100000"
    calling_windows: {mon-fri: "09:00-20:00"}
    assume_timezone: America/New_York
    max_attempts: 2
    abandon: null
    script: "Hello {first_name}, about your order."
    dispositions:
      sale: {label: Sale, final: true}
      callback: {label: Call back later, retry: true}
      do_not_call: {label: Do not call, final: true}
"""
NY = "America/New_York"


def _config() -> CallCenterConfig:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "example"
        shutil.copytree(EXAMPLE, copy)
        (copy / "api_test_pause.yaml").write_text(PAUSE_YAML)
        (copy / "api_test_users.yaml").write_text(USERS_YAML)
        (copy / "preview_test.yaml").write_text(PREVIEW_YAML)
        return load_config(copy).config


CONFIG = _config()


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@dataclass
class FakeDialer:
    """Speaks the :class:`~callcenter.web.preview.PreviewPort` protocol: records the
    previews it was asked to dial and answers as the real dialer does at once."""

    dialled: list[HeldPreview] = field(default_factory=list)
    refuse: PreviewError | None = None

    @dataclass
    class Dialled:
        attempt_id: int
        stage: str = "ringing_agent"

    async def dial(self, held: HeldPreview) -> FakeDialer.Dialled:
        if self.refuse is not None:
            raise self.refuse
        self.dialled.append(held)
        return self.Dialled(100 + len(self.dialled))


async def _import(sessions: async_sessionmaker[AsyncSession],
                  *contacts: NewContact) -> None:
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts("leads", list(contacts))


async def _post(api: Api, user: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    async with api.client.post(path, json=body, headers=api.as_user(user)) as response:
        return response.status, await response.json()


async def _contact(sessions: async_sessionmaker[AsyncSession], number: str) -> Contact:
    async with sessions() as session:
        found: Contact = (await session.scalars(
            select(Contact).where(Contact.number == number))).one()
        return found


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    dialer = FakeDialer()
    async with running_api(CONFIG, sessions, preview=lambda: dialer) as running:
        running.clock.now = NOW
        running.dialer = dialer  # type: ignore[attr-defined]
        yield running


async def test_an_agent_holds_its_next_contact_sees_it_again_then_skips_it(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    await _import(sessions, NewContact("+12125550100", NY, {"first_name": "Ann"}),
                  NewContact("+12125550101", NY, {"first_name": "Ben"}))
    await api.store.apply("alice", Login(), NOW)
    status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert status == 200, shown
    assert shown == {
        "contact": shown["contact"], "campaign": "leads", "agent": "alice",
        "number": "+12125550100", "timezone": NY, "attempts": 0,
        "data": {"first_name": "Ann"}, "script": "Hello {first_name}, about your order.",
        "dispositions": [
            {"key": "sale", "label": "Sale", "final": True, "retry": False},
            {"key": "callback", "label": "Call back later", "final": False, "retry": True},
            {"key": "do_not_call", "label": "Do not call", "final": True, "retry": False}],
        "reason": shown["reason"], "again": False}
    assert "calling window" in shown["reason"]
    state = await api.store.get("alice", NOW)
    assert state.status is AgentStatus.RESERVED and state.call is not None
    assert state.call.startswith(f"cc-preview-{shown['contact']}-")
    held = await _contact(sessions, "+12125550100")
    assert (held.state, held.claimed_by) == (ContactState.DIALING, "preview:alice")
    assert api.changed == ["alice"]

    # A console reloaded: the same contact, the same reservation.
    status, again = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview", {})
    assert (status, again["contact"], again["again"]) == (200, shown["contact"], True)
    assert (await api.store.get("alice", NOW)).call == state.call

    status, skipped = await _post(api, "alice_phone",
                                  f"/api/v1/campaigns/preview/{shown['contact']}/skip",
                                  {"reason": "already a customer"})
    assert (status, skipped) == (200, {
        "contact": shown["contact"], "campaign": "leads", "agent": "alice", "state": "pending",
        "reason": "already a customer", "agent_freed": True})
    assert (await api.store.get("alice", NOW)).status is AgentStatus.AVAILABLE
    back = await _contact(sessions, "+12125550100")
    assert (back.state, back.claimed_by, back.attempts) == (ContactState.PENDING, None, 0)
    assert back.next_attempt_at == NOW
    # Next: the contact never tried comes before the one skipped.
    status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert (status, shown["number"]) == (200, "+12125550101")
    assert api.dialer.dialled == []  # type: ignore[attr-defined]


async def test_dial_hands_the_held_contact_to_the_dialer(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    await _import(sessions, NewContact("+12125550100", NY))
    await api.store.apply("bob", Login(), NOW)
    # sue supervises sales, which bob does not serve; sam supervises bob.
    status, refused = await _post(api, "sue", "/api/v1/campaigns/leads/preview",
                                  {"agent": "bob"})
    assert status == 403, refused
    status, shown = await _post(api, "sam", "/api/v1/campaigns/leads/preview", {"agent": "bob"})
    assert status == 200, shown
    path = f"/api/v1/campaigns/preview/{shown['contact']}/dial"
    for user in ("alice_phone", "sue"):
        assert (await _post(api, user, path))[0] == 403
    status, dialled = await _post(api, "sam", path)
    assert (status, dialled) == (200, {"contact": shown["contact"], "campaign": "leads",
                                       "agent": "bob", "number": "+12125550100",
                                       "attempt": 101, "state": "ringing_agent"})
    (held,) = api.dialer.dialled  # type: ignore[attr-defined]
    state = await api.store.get("bob", NOW)
    assert (held.agent, held.call, held.number) == ("bob", state.call, "+12125550100")


async def test_a_hold_the_agent_lost_is_not_dialled_but_can_be_skipped(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    await _import(sessions, NewContact("+12125550100", NY))
    await api.store.apply("alice", Login(), NOW)
    status, shown = await _post(api, "admin", "/api/v1/campaigns/leads/preview",
                                {"agent": "alice"})
    assert status == 200, shown
    call = (await api.store.get("alice", NOW)).call
    assert call is not None
    await api.store.apply("alice", CallGone(call), NOW, reason="the watchdog")
    base = f"/api/v1/campaigns/preview/{shown['contact']}"
    status, answer = await _post(api, "alice_phone", f"{base}/dial")
    assert status == 409 and "no longer held" in answer["error"], answer
    status, answer = await _post(api, "alice_phone", f"{base}/skip")
    assert (status, answer["agent_freed"], answer["reason"]) == (200, False, "skipped")
    # Skipped: no longer held by a preview.
    status, answer = await _post(api, "alice_phone", f"{base}/dial")
    assert status == 409 and "not held by a preview" in answer["error"], answer


async def test_the_rules_screen_what_is_claimed(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Attempts used up: closed; midnight in Tokyo: back until its window opens; the
    contact the rules allow is the one shown."""
    await _import(sessions, NewContact("+12125550100", NY),
                  NewContact("+81312345678", "Asia/Tokyo"),
                  NewContact("+12125550102", NY))
    async with sessions.begin() as session:
        used = (await session.scalars(select(Contact).where(
            Contact.number == "+12125550100"))).one()
        used.attempts = 2
    await api.store.apply("alice", Login(), NOW)
    status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert (status, shown["number"]) == (200, "+12125550102"), shown
    assert (await _contact(sessions, "+12125550100")).state is ContactState.EXHAUSTED
    later = await _contact(sessions, "+81312345678")
    assert later.state is ContactState.PENDING and later.next_attempt_at is not None
    # 09:00 in Tokyo, Wednesday
    assert later.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


async def test_refusals_name_what_is_wrong(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    preview = "/api/v1/campaigns/leads/preview"
    # Nothing due, nobody logged in, and every bad request before that.
    cases: list[tuple[str, str, Any, int, str | None]] = [
        ("admin", preview, {}, 422, "agent"),
        ("admin", preview, {"agent": "zoe"}, 422, "agent"),
        ("admin", preview, {"agent": 5}, 422, "agent"),
        ("admin", preview, {"agent": "alice", "force": True}, 422, "force"),
        ("admin", preview, {"agent": "carmen"}, 409, "agent"),
        ("alice_phone", preview, {"agent": "bob"}, 403, None),
        ("alice_phone", "/api/v1/campaigns/nope/preview", {}, 404, None),
        ("alice_phone", "/api/v1/campaigns/renewals/preview", {}, 409, None),
        ("alice_phone", preview, {}, 409, None),  # logged out
        ("admin", "/api/v1/campaigns/preview/abc/dial", None, 404, None),
        ("admin", "/api/v1/campaigns/preview/0/skip", None, 404, None),
        ("admin", "/api/v1/campaigns/preview/99/dial", None, 404, None),
        ("admin", "/api/v1/campaigns/preview/1/dial", {"now": True}, 422, "now"),
        ("admin", "/api/v1/campaigns/preview/1/skip", {"reason": ""}, 422, "reason"),
        ("admin", "/api/v1/campaigns/preview/1/skip", {"reason": "a\nb"}, 422, "reason"),
    ]
    for user, path, body, status, field_name in cases:
        got, answer = await _post(api, user, path, body)
        assert (got, answer.get("field")) == (status, field_name), (user, path, body, answer)
        assert isinstance(answer["error"], str) and answer["error"]
    await api.store.apply("alice", Login(), NOW)
    got, answer = await _post(api, "alice_phone", preview)
    assert got == 404 and "no contact of campaign 'leads'" in answer["error"], answer
    await _import(sessions, NewContact("+12125550100", NY))
    got, shown = await _post(api, "alice_phone", preview)
    assert got == 200
    # Not held: another contact; no dialer in this service; the dialer refusing.
    await _import(sessions, NewContact("+12125550101", NY))
    other = (await _contact(sessions, "+12125550101")).id
    got, answer = await _post(api, "admin", f"/api/v1/campaigns/preview/{other}/dial")
    assert got == 409 and "not held by a preview" in answer["error"], answer
    api.dialer.refuse = PreviewError(409, "contact is being called already")  # type: ignore[attr-defined]
    got, answer = await _post(api, "admin", f"/api/v1/campaigns/preview/{shown['contact']}/dial")
    assert (got, answer["error"]) == (409, "contact is being called already")
    assert api.changed == ["alice"]


async def test_without_a_preview_dialer_a_dial_is_a_503(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    await _import(sessions, NewContact("+12125550100", NY))
    async with running_api(CONFIG, sessions) as api:
        api.clock.now = NOW
        await api.store.apply("alice", Login(), NOW)
        status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
        assert status == 200, shown
        api.clock.now = NOW + timedelta(seconds=5)
        status, answer = await _post(api, "alice_phone",
                                     f"/api/v1/campaigns/preview/{shown['contact']}/dial")
        assert (status, answer["error"]) == (
            503, "this service runs no preview dialer: it cannot dial")


async def test_the_dialer_checks_the_rules_again_at_the_dial(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Listed on the do-not-call list while the agent read it: the dial is refused with
    the rule, nothing is written and nothing dialled (the refusal comes before any ARI
    request, so no Asterisk is needed here)."""
    import asyncio
    from typing import cast

    from ari_apps.preview import PreviewDialer
    from callcenter.asterisk.ari.client import ARIClient
    from callcenter.storage.models import ContactAttempt

    await _import(sessions, NewContact("+12125550100", NY))
    await api.store.apply("alice", Login(), NOW)
    status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert status == 200, shown
    async with sessions.begin() as session:
        await CampaignRepository(session).add_dnc({"+12125550100": "asked"}, source="test")
    dialer = PreviewDialer(CONFIG, cast(ARIClient, None), sessions, store=api.store,
                           clock=lambda: NOW)
    running = asyncio.create_task(dialer.run())
    try:
        async with asyncio.timeout(10):
            await dialer.ready.wait()
        held = HeldPreview(shown["contact"], "leads", "alice",
                           (await api.store.get("alice", NOW)).call or "", "+12125550100",
                           NY, 0)
        with pytest.raises(PreviewError) as refused:
            await dialer.dial(held)
        assert refused.value.status == 409 and "(dnc: " in refused.value.message
    finally:
        dialer.stop()
        async with asyncio.timeout(10):
            await running
    async with sessions() as session:
        assert list(await session.scalars(select(ContactAttempt))) == []
    assert dialer.calls == {}


async def test_a_paused_campaign_offers_no_preview_and_dials_none(
        api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    from callcenter.storage.campaign_state import CampaignStateRepository

    async def state(action: str) -> None:
        async with sessions.begin() as session:
            await CampaignStateRepository(session).set("leads", action, by="ops", at=NOW,
                                                       via="cli")

    await _import(sessions, NewContact("+12125550100", NY), NewContact("+12125550101", NY))
    await api.store.apply("alice", Login(), NOW)
    status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert status == 200, shown
    await state("pause")
    path = f"/api/v1/campaigns/preview/{shown['contact']}"
    status, answer = await _post(api, "alice_phone", f"{path}/dial")
    assert status == 409 and "campaign leads is paused" in answer["error"], answer
    assert api.dialer.dialled == []  # type: ignore[attr-defined]
    assert (await _post(api, "alice_phone", f"{path}/skip"))[0] == 200
    status, answer = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert status == 409 and "no preview is offered" in answer["error"], answer
    assert (await api.store.get("alice", NOW)).status is AgentStatus.AVAILABLE
    await state("stop")
    status, answer = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert status == 409 and "is stopped" in answer["error"], answer
    await state("start")
    status, shown = await _post(api, "alice_phone", "/api/v1/campaigns/leads/preview")
    assert status == 200, shown
