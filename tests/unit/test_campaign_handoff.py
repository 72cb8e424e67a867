"""A disposition that names a queue: the config (validated, located errors), the pure
decision (:func:`callcenter.dialer.handoff.plan_handoff`), and the API's and the CLI's
answers, with a fake PBX side that does what the dialer would (the real one:
tests/integration/test_dialer_handoff.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.ari.client import ARINotFound
from callcenter.cli import main
from callcenter.config.campaign import Campaign
from callcenter.config.models import Queue
from callcenter.dialer.dispose import dispose_or_hand_off
from callcenter.dialer.handoff import (
    AttemptView,
    HandoffPlan,
    HandoffRefused,
    handoff_disposition,
    plan_handoff,
)
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
from tests.unit.test_checks import errors, find, load
from tests.web_api import Api, config_with_pause_reason, running_api

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "config" / "example"
_PATH = "/api/v1/campaigns/attempts/{}/disposition"

TRUNKS = """\
    trunks:
      carrier: {host: 127.0.0.2, port: 5070, ring_timeout: 40}
    """
CAMPAIGN = """\
    campaigns:
      renewals:
        mode: progressive
        agents: [alice]
        trunk: carrier
        caller_id: "+15550100000"
        safe_harbor: tt-weasels
        dispositions:
          do_not_call: {label: DNC, final: true}
          warm: {label: Warm lead, final: true, queue: QUEUE, skills: [SKILL], priority: 7}
    """


def _campaign(mode: str = "progressive") -> Campaign:
    return Campaign.model_validate({
        "mode": mode, "trunk": "carrier", "caller_id": "+15550100000",
        "safe_harbor": "tt-weasels", "dispositions": {
            "do_not_call": {"label": "DNC", "final": True},
            "sale": {"label": "Sale", "final": True},
            "warm": {"label": "Warm", "final": True, "queue": "sales"},
            "vip": {"label": "VIP", "final": True, "queue": "sales",
                    "skills": ["english"], "priority": 20}}})


QUEUES = {"sales": Queue.model_validate({"skills": ["sales"], "priority": 5})}


def _view(**changes: object) -> AttemptView:
    fields: dict[str, object] = {
        "attempt_id": 7, "campaign": "renewals", "contact_id": 3, "number": "+15550100030",
        "channel_id": "cc-dial-ab12", "agent": "alice", "answered": True, "ended": False}
    fields.update(changes)
    return AttemptView(**fields)  # type: ignore[arg-type]


# -- the config ---------------------------------------------------------------------------

def test_a_disposition_names_a_known_queue_and_skills(tmp_path: Path) -> None:
    loaded = load(tmp_path, trunks=TRUNKS,
                  campaigns=CAMPAIGN.replace("QUEUE", "sales").replace("SKILL", "sales"))
    warm = loaded.config.campaigns["renewals"].dispositions["warm"]
    assert (warm.queue, warm.skills, warm.priority) == ("sales", ("sales",), 7)


def test_an_unknown_queue_or_skill_is_located(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks=TRUNKS,
                  campaigns=CAMPAIGN.replace("QUEUE", "sails").replace("SKILL", "sells"))
    queue = find(errs, "campaigns.renewals.dispositions.warm.queue")
    assert queue.message == ("unknown queue 'sails' (known: sales): the queue a warm "
                             "transfer hands the call to")
    assert queue.file.endswith("campaigns.yaml") and queue.line == 10
    skill = find(errs, "campaigns.renewals.dispositions.warm.skills[0]")
    assert skill.message == "unknown skill 'sells' (known: sales)"


@pytest.mark.parametrize("spec, words", [
    ("{label: X, skills: [sales]}", "'skills' and 'priority' go with 'queue'"),
    ("{label: X, priority: 3}", "'skills' and 'priority' go with 'queue'"),
    ("{label: X, retry: true, queue: sales}", "cannot be retried"),
    ("{label: X, queue: Sales}", "queue"),
])
def test_bad_queue_dispositions_are_refused(tmp_path: Path, spec: str, words: str) -> None:
    text = CAMPAIGN.replace(
        "{label: Warm lead, final: true, queue: QUEUE, skills: [SKILL], priority: 7}", spec)
    errs = errors(tmp_path, trunks=TRUNKS, campaigns=text)
    assert any(words in e.message or words in e.path for e in errs.errors), errs.errors


# -- the decision -------------------------------------------------------------------------

def test_a_disposition_without_a_queue_is_no_hand_off() -> None:
    assert plan_handoff(_view(), _campaign(), QUEUES, "sale") is None
    assert plan_handoff(_view(ended=True), _campaign(), QUEUES, "nonsense") is None
    assert plan_handoff(_view(), None, QUEUES, "warm") is None


def test_a_live_answered_call_is_handed_with_the_queues_skills_and_priority() -> None:
    plan = plan_handoff(_view(), _campaign(), QUEUES, "warm")
    assert plan == HandoffPlan(7, "renewals", 3, "cc-dial-ab12", "+15550100030", "warm",
                               "sales", ("sales",), 5)
    assert plan.variables() == {
        "CC_QUEUE_SKILLS": "sales", "CC_QUEUE_PRIORITY": "5",
        "CALLERID(num)": "+15550100030", "CC_CAMPAIGN": "renewals", "CC_CONTACT_ID": "3",
        "CC_ATTEMPT_ID": "7", "CC_HANDOFF": "warm"}
    vip = plan_handoff(_view(), _campaign(), QUEUES, "vip")
    assert vip is not None and (vip.skills, vip.priority) == (("english",), 25)


@pytest.mark.parametrize("view, mode, queues, callback, status, words", [
    (_view(ended=True), "progressive", QUEUES, None, 409, "attempt 7 has ended"),
    (_view(answered=False), "progressive", QUEUES, None, 409, "not with an agent yet"),
    (_view(channel_id=None), "progressive", QUEUES, None, 409, "not with an agent yet"),
    (_view(), "preview", QUEUES, None, 409, "'renewals' is preview"),
    (_view(), "progressive", {}, None, 409, "not in the configuration"),
    (_view(number="1;Hangup()"), "progressive", QUEUES, None, 409, "not a phone number"),
    (_view(), "progressive", QUEUES, NOW, 422, "no callback time"),
])
def test_what_cannot_be_handed_over_says_why(view: AttemptView, mode: str, queues: dict,
                                             callback: datetime | None, status: int,
                                             words: str) -> None:
    with pytest.raises(HandoffRefused) as info:
        plan_handoff(view, _campaign(mode), queues, "warm", callback_at=callback)
    assert info.value.status == status and words in info.value.message, info.value
    assert "queue 'sales'" in info.value.message or status == 422


def test_the_dialer_reads_back_only_a_hand_off_disposition() -> None:
    campaign = _campaign()
    assert handoff_disposition("warm", campaign) == "warm"
    for value in (None, "", "sale", "nonsense", "warm,x"):
        assert handoff_disposition(value, campaign) is None


# -- the API and the CLI, with a fake PBX side ---------------------------------------------

@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _live(sessions: async_sessionmaker[AsyncSession], *, answered: bool = True,
                ended: bool = False, number: str = "+12125550100") -> int:
    """A renewals contact called, the call live with alice (or not yet answered, or
    ended); the attempt's id."""
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact(number, "America/New_York")])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", NOW, 1)
        attempt = await repo.start_attempt(due.id, at=NOW, channel_id=f"cc-dial-{number[-4:]}")
        if answered:
            await repo.mark_answered(attempt, at=NOW, agent="alice")
        if ended:
            await repo.end_attempt(attempt, outcome=AttemptOutcome.ANSWERED,
                                   at=NOW + timedelta(seconds=30),
                                   next_state=ContactState.DONE, agent="alice",
                                   answered_at=NOW)
    return attempt


class FakeDialerSide:
    """Takes the hand-off as Asterisk and the dialer would: the attempt ends answered
    (unless ``closes`` is False: a dialer that never gets to it); or refuses it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, closes: bool = True,
                 refuse: HandoffRefused | None = None) -> None:
        self.sessions, self.closes, self.refuse = sessions, closes, refuse
        self.plans: list[HandoffPlan] = []

    async def hand_off(self, plan: HandoffPlan) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.plans.append(plan)
        if self.closes:
            async with self.sessions.begin() as session:
                await CampaignRepository(session).end_attempt(
                    plan.attempt_id, outcome=AttemptOutcome.ANSWERED,
                    at=NOW + timedelta(seconds=40), next_state=ContactState.DONE,
                    agent="alice", answered_at=NOW)


async def _post(api: Api, user: str, attempt: object, body: object) -> tuple[int, dict]:
    async with api.client.post(_PATH.format(attempt), json=body,
                               headers=api.as_user(user)) as response:
        return response.status, await response.json()


async def test_the_api_hands_a_live_call_to_the_queue(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _live(sessions)
    side = FakeDialerSide(sessions)
    async with running_api(config_with_pause_reason(), sessions,
                           handoff=lambda: side) as api:
        api.clock.now = NOW + timedelta(minutes=1)
        status, answer = await _post(api, "alice_phone", attempt, {
            "disposition": "warm_transfer_sales", "note": "wants the fibre offer"})
    assert status == 200, answer
    assert answer == {"attempt": attempt, "contact": 1, "campaign": "renewals",
                      "disposition": "warm_transfer_sales", "state": "done",
                      "next_attempt_at": None, "reason": answer["reason"],
                      "added_dnc": False, "queue": "sales"}
    (plan,) = side.plans
    assert (plan.channel_id, plan.queue, plan.number, plan.skills) == (
        "cc-dial-0100", "sales", "+12125550100", ("sales",))
    async with sessions() as session:
        row = (await session.scalars(select(ContactAttempt))).one()
        contact = (await session.scalars(select(Contact))).one()
    assert (row.outcome, row.disposition, row.note, row.agent) == (
        AttemptOutcome.ANSWERED, "warm_transfer_sales", "wants the fibre offer", "alice")
    assert (contact.state, contact.disposition) == (ContactState.DONE, "warm_transfer_sales")


async def test_the_api_refuses_a_hand_off_it_cannot_make(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    ended = await _live(sessions, ended=True)
    side = FakeDialerSide(sessions)
    body = {"disposition": "warm_transfer_sales"}
    async with running_api(config_with_pause_reason(), sessions,
                           handoff=lambda: side) as api:
        status, answer = await _post(api, "admin", ended, body)
        assert status == 409 and "has ended" in answer["error"], answer
        assert "queue 'sales'" in answer["error"]
        # Not alice's: refused before anything reaches the PBX.
        assert (await _post(api, "sam", ended, body))[0] == 403
        status, answer = await _post(api, "admin", ended, {
            **body, "callback_at": "2026-12-02T15:00:00+00:00"})
        assert (status, answer.get("field")) == (422, "callback_at"), answer
        # The same disposition without a queue would be an ordinary one: it still is.
        status, answer = await _post(api, "admin", ended, {"disposition": "sale"})
        assert (status, answer["queue"]) == (200, None)
    assert side.plans == []


async def test_a_hand_off_without_a_pbx_or_refused_by_it_is_no_500(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _live(sessions)
    unanswered = await _live(sessions, answered=False, number="+12125550101")
    body = {"disposition": "warm_transfer_sales"}
    async with running_api(config_with_pause_reason(), sessions) as api:
        status, answer = await _post(api, "admin", attempt, body)
        assert status == 503 and "no connection to the PBX" in answer["error"], answer
    gone = FakeDialerSide(sessions, refuse=HandoffRefused(409, "attempt", "call ended"))
    async with running_api(config_with_pause_reason(), sessions,
                           handoff=lambda: gone) as api:
        status, answer = await _post(api, "admin", attempt, body)
        assert status == 409 and "call ended" in answer["error"], answer
        status, answer = await _post(api, "admin", unanswered, body)
        assert status == 409 and "not with an agent yet" in answer["error"], answer
    async with sessions() as session:
        rows = list(await session.scalars(select(ContactAttempt)))
    assert all(r.ended_at is None and r.disposition is None for r in rows)


async def test_a_dialer_slow_to_close_leaves_the_disposition_to_it(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _live(sessions)
    side = FakeDialerSide(sessions, closes=False)
    handled = await dispose_or_hand_off(
        sessions, config_with_pause_reason(), attempt, "warm_transfer_sales",
        port=lambda: side, agent="alice", note=None, callback_at=None,
        clock=lambda: NOW, wait=0.3)
    assert handled.queue == "sales" and handled.disposed.state == "dialing"
    assert "the dialer records the disposition" in handled.disposed.reason
    with pytest.raises(DispositionError) as info:  # a second request: still live, so
        await dispose_or_hand_off(  # it goes to the PBX, which knows the call moved on
            sessions, config_with_pause_reason(), attempt, "warm_transfer_sales",
            port=lambda: FakeDialerSide(sessions, refuse=HandoffRefused(
                409, "attempt", "handed over already")),
            agent="alice", note=None, callback_at=None, clock=lambda: NOW, wait=0.3)
    assert info.value.status == 409


def test_the_cli_hands_over_only_a_live_call(tmp_path: Path) -> None:
    import asyncio

    home = tmp_path / "home"
    home.mkdir()
    url = default_sqlite_url(home)

    async def setup() -> tuple[int, int]:
        await upgrade(url)
        engine = make_engine(url)
        try:
            made = make_sessionmaker(engine)
            return (await _live(made, ended=True),
                    await _live(made, number="+12125550101"))
        finally:
            await engine.dispose()

    ended, live = asyncio.run(setup())
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["--home", str(home), "campaigns", "dispose", *args,
                                    "--config", str(EXAMPLE), "--db", url])

    result = run(str(ended), "warm_transfer_sales")
    assert result.exit_code == 1 and "has ended" in result.stderr, result.output
    # Live, but this home has no Asterisk: said so, no traceback.
    result = run(str(live), "warm_transfer_sales")
    assert result.exit_code == 1 and "cannot reach the PBX" in result.stderr, result.output
    result = run(str(ended), "sale")
    assert result.exit_code == 0 and "contact 1 done" in result.stdout, result.output


# -- the dialer's restart after a hand-off it did not see ---------------------------------

class _HandedChannels:
    """ARI's channels: ``cc-dial-9`` is alive in the queue router's app with the
    hand-off's ``CC_HANDOFF``; every other channel is gone."""

    def __init__(self) -> None:
        self.hung_up: list[str] = []

    async def get_variable(self, channel_id: str, name: str) -> str:
        if channel_id == "cc-dial-9" and name == "CC_HANDOFF":
            return "warm_transfer_sales"
        raise ARINotFound(404, "Channel not found", "GET", f"/channels/{channel_id}/variable")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append(channel_id)
        if channel_id != "cc-dial-9":
            raise ARINotFound(404, "Channel not found", "DELETE", f"/channels/{channel_id}")


class _Bridges:
    def __init__(self) -> None:
        self.destroyed: list[str] = []

    async def destroy(self, bridge_id: str) -> None:
        self.destroyed.append(bridge_id)


class _Ari:
    def __init__(self) -> None:
        self.channels = _HandedChannels()
        self.bridges = _Bridges()


async def test_a_restarted_dialer_leaves_a_handed_over_contact_to_the_queue(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """The dialer died while alice talked; the contact was handed to sales meanwhile and
    carmen took it there (her state holds the same channel). On restart only alice's leg
    is hung up, the bridge id (the router's now) is left alone, alice is freed and not
    carmen, and the attempt ends answered with the disposition."""
    from ari_apps.dialer import CampaignDialer
    from callcenter.agents.state import AgentStatus, Answer, Login, Reserve, Ring

    config = config_with_pause_reason()  # renewals: warm_transfer_sales -> sales
    ari = _Ari()
    dialer = CampaignDialer(config, "renewals", ari, sessions,  # type: ignore[arg-type]
                            node="d1", clock=lambda: NOW)
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact("+12125550109", "America/New_York")])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", NOW, 1, claimer=dialer.claimer)
        attempt = await repo.start_attempt(due.id, at=NOW, channel_id="cc-dial-9")
        await repo.mark_answered(attempt, at=NOW, agent="alice")
    await dialer.store.ensure(["alice", "carmen"], NOW)
    for agent in ("alice", "carmen"):
        for event in (Login(), Reserve("cc-dial-9"), Ring("cc-dial-9"), Answer("cc-dial-9")):
            await dialer.store.apply(agent, event, NOW)

    await dialer.recover()

    assert ari.channels.hung_up == ["cc-dial-9-a"]
    assert ari.bridges.destroyed == []
    assert (await dialer.store.get("alice", NOW)).status is AgentStatus.AVAILABLE
    assert (await dialer.store.get("carmen", NOW)).status is AgentStatus.ON_CALL
    async with sessions() as session:
        row = (await session.scalars(select(ContactAttempt))).one()
        contact = (await session.scalars(select(Contact))).one()
    assert (row.outcome, row.agent, row.disposition) == (
        AttemptOutcome.ANSWERED, "alice", "warm_transfer_sales")
    assert (contact.state, contact.claimed_by) == (ContactState.DONE, None)


class _SlowSide(FakeDialerSide):
    """The PBX side taking its time over the first hand-off (as ARI's seven requests do),
    so that a second disposition arrives meanwhile."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.inside = asyncio.Event()
        self.go_on = asyncio.Event()

    async def hand_off(self, plan: HandoffPlan) -> None:
        if not self.inside.is_set():  # the first one waits; any other goes through
            self.inside.set()
            await self.go_on.wait()
        await super().hand_off(plan)


async def test_two_dispositions_at_once_hand_the_call_over_once(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _live(sessions)
    side = _SlowSide(sessions)

    def dispose(disposition: str) -> Any:
        return dispose_or_hand_off(
            sessions, config_with_pause_reason(), attempt, disposition, port=lambda: side,
            agent="alice", note=None, callback_at=None, clock=lambda: NOW, wait=2)

    first = asyncio.create_task(dispose("warm_transfer_sales"))
    async with asyncio.timeout(5):
        await side.inside.wait()
    with pytest.raises(DispositionError) as info:  # the CLI's, or a second click
        async with asyncio.timeout(5):
            await dispose("warm_transfer_sales")
    assert (info.value.status, info.value.field) == (409, "attempt")
    assert "being handed over already" in str(info.value)
    side.go_on.set()
    async with asyncio.timeout(5):
        handled = await first
    assert handled.queue == "sales" and handled.disposed.state == "done"
    assert len(side.plans) == 1


async def test_a_refused_hand_off_gives_its_claim_back(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    attempt = await _live(sessions)
    refusing = FakeDialerSide(sessions, refuse=HandoffRefused(503, "attempt", "no answer"))
    args: dict[str, Any] = {"port": lambda: refusing, "agent": "alice", "note": None,
                            "callback_at": None, "clock": lambda: NOW, "wait": 0.3}
    with pytest.raises(DispositionError) as info:
        await dispose_or_hand_off(sessions, config_with_pause_reason(), attempt,
                                  "warm_transfer_sales", **args)
    assert info.value.status == 503
    side = FakeDialerSide(sessions)
    handled = await dispose_or_hand_off(
        sessions, config_with_pause_reason(), attempt, "warm_transfer_sales",
        **{**args, "port": lambda: side})
    assert handled.disposed.state == "done" and len(side.plans) == 1


# -- the agent hangs up while the disposition hands the contact over ----------------------

class _TalkAri:
    """ARI for one call the dialer bridges: ``handoff`` is the contact's ``CC_HANDOFF``
    (set by a hand-off under way); hang-ups and bridge destructions are recorded."""

    def __init__(self, handoff: str = "") -> None:
        self.channels = self.bridges = self
        self.handoff = handoff
        self.hung_up: list[str] = []
        self.destroyed: list[str] = []

    async def create(self, kind: str, *, bridge_id: str, name: str) -> None: ...

    async def add_channel(self, bridge_id: str, channels: list[str]) -> None: ...

    async def ring_stop(self, channel_id: str) -> None: ...

    async def get_variable(self, channel_id: str, name: str) -> str:
        return self.handoff if (channel_id, name) == ("cc-dial-7", "CC_HANDOFF") else ""

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append(channel_id)

    async def destroy(self, bridge_id: str) -> None:
        self.destroyed.append(bridge_id)


def _channel_event(kind: str, channel_id: str, **fields: object) -> Any:
    from callcenter.asterisk.ari.events import parse_event

    nobody = {"name": "", "number": ""}
    return parse_event({"type": kind, "application": "cc-dialer", **fields, "channel": {
        "id": channel_id, "name": "", "state": "Up", "caller": nobody, "connected": nobody,
        "dialplan": {"context": "", "exten": "", "priority": 0}}})


async def _talking(sessions: async_sessionmaker[AsyncSession], ari: _TalkAri,
                   events: list[Any]) -> tuple[Any, int]:
    """alice's call to a renewals contact (``cc-dial-7``, her leg ``cc-dial-7-a``) run
    by the dialer's ``_talk`` over ``events``; the dialer and the attempt's id."""
    from ari_apps.dialer import CampaignDialer, _Live
    from callcenter.agents.state import Login, Reserve, Ring

    dialer = CampaignDialer(config_with_pause_reason(), "renewals", ari,  # type: ignore[arg-type]
                            sessions, node="d1", clock=lambda: NOW)
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact("+12125550107", "America/New_York")])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", NOW, 1, claimer=dialer.claimer)
        attempt = await repo.start_attempt(due.id, at=NOW, channel_id="cc-dial-7")
    await dialer.store.ensure(["alice"], NOW)
    for event in (Login(), Reserve("cc-dial-7"), Ring("cc-dial-7")):
        await dialer.store.apply("alice", event, NOW)
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    for event in events:
        inbox.put_nowait(event)
    async with asyncio.timeout(10):
        await dialer._talk(_Live("alice", "cc-dial-7", due, attempt), "cc-dial-7-a", inbox)
    return dialer, attempt


async def test_the_agent_hanging_up_during_a_hand_off_leaves_the_contact_to_the_queue(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """alice's leg ends first, while her disposition moves the contact (CC_HANDOFF set):
    the dialer waits for the contact to leave and neither hangs it up nor destroys the
    bridge id (the queue router's next), and records the disposition."""
    ari = _TalkAri(handoff="warm_transfer_sales")
    _, attempt = await _talking(sessions, ari, [
        _channel_event("StasisEnd", "cc-dial-7-a"),
        _channel_event("ChannelDestroyed", "cc-dial-7-a", cause=16, cause_txt="Normal"),
        _channel_event("StasisEnd", "cc-dial-7")])
    assert ari.hung_up == [] and ari.destroyed == []
    async with sessions() as session:
        row = (await session.scalars(select(ContactAttempt))).one()
    assert (row.id, row.outcome, row.agent, row.disposition) == (
        attempt, AttemptOutcome.ANSWERED, "alice", "warm_transfer_sales")


async def test_the_agent_hanging_up_without_a_hand_off_ends_the_call(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    ari = _TalkAri()
    await _talking(sessions, ari, [_channel_event("StasisEnd", "cc-dial-7-a")])
    assert ari.hung_up == ["cc-dial-7"] and ari.destroyed == ["cc-dialer-cc-dial-7"]
    async with sessions() as session:
        row = (await session.scalars(select(ContactAttempt))).one()
    assert (row.outcome, row.disposition) == (AttemptOutcome.ANSWERED, None)


async def test_a_hand_off_that_does_not_move_the_contact_in_time_ends_the_call(
        sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    import ari_apps.dialer

    monkeypatch.setattr(ari_apps.dialer, "HANGUP_BUDGET", 0.2)
    ari = _TalkAri(handoff="warm_transfer_sales")
    await _talking(sessions, ari, [_channel_event("StasisEnd", "cc-dial-7-a")])
    assert ari.hung_up == ["cc-dial-7"] and ari.destroyed == ["cc-dialer-cc-dial-7"]


class _RefusingAri:
    """ARI where the contact is in the dialer's bridge but ``continue`` fails (500)."""

    def __init__(self) -> None:
        self.channels = self.bridges = self
        self.variables: list[tuple[str, str, str]] = []

    async def get(self, bridge_id: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(name="dialer renewals",
                               channels=("cc-dial-ab12", "cc-dial-ab12-a"))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self.variables.append((channel_id, name, value))

    async def destroy(self, bridge_id: str) -> None: ...

    async def create(self, kind: str, *, bridge_id: str, name: str) -> None: ...

    async def add_channel(self, bridge_id: str, channels: list[str]) -> None: ...

    async def continue_in_dialplan(self, channel_id: str, context: str, exten: str,
                                   priority: int) -> None:
        from callcenter.asterisk.ari.client import ARIError

        raise ARIError(500, "Internal Server Error", "POST", f"/channels/{channel_id}/continue")


async def test_a_failed_hand_off_unmarks_the_contact() -> None:
    """Its CC_HANDOFF cleared: the call goes on with the agent, and its end is a hang-up
    (cause kept), not a hand-off the dialer would record."""
    from ari_apps.campaign_handoff import AriHandoff

    ari = _RefusingAri()
    plan = plan_handoff(_view(), _campaign(), QUEUES, "warm")
    assert plan is not None
    with pytest.raises(HandoffRefused) as info:
        await AriHandoff(ari).hand_off(plan)  # type: ignore[arg-type]
    assert info.value.status == 503
    assert ("cc-dial-ab12", "CC_HANDOFF", "warm") in ari.variables
    assert ari.variables[-1] == ("cc-dial-ab12", "CC_HANDOFF", "")


async def test_a_contact_hanging_up_as_its_hand_off_begins_is_a_hang_up(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """CC_HANDOFF was set, then the contact hung up before it could continue: its hang-up
    request comes before its StasisEnd. The call ends as a hang-up (agent's leg and bridge
    gone, the cause kept), no hand-off recorded."""
    ari = _TalkAri(handoff="warm_transfer_sales")
    await _talking(sessions, ari, [
        _channel_event("ChannelHangupRequest", "cc-dial-7", cause=16),
        _channel_event("StasisEnd", "cc-dial-7"),
        _channel_event("ChannelDestroyed", "cc-dial-7", cause=16, cause_txt="Normal")])
    assert ari.hung_up == ["cc-dial-7-a"] and ari.destroyed == ["cc-dialer-cc-dial-7"]
    async with sessions() as session:
        row = (await session.scalars(select(ContactAttempt))).one()
    assert (row.outcome, row.cause, row.disposition) == (AttemptOutcome.ANSWERED, 16, None)


async def test_a_contact_hanging_up_while_the_agent_left_mid_hand_off_is_a_hang_up(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    ari = _TalkAri(handoff="warm_transfer_sales")
    await _talking(sessions, ari, [
        _channel_event("StasisEnd", "cc-dial-7-a"),
        _channel_event("ChannelHangupRequest", "cc-dial-7", cause=16),
        _channel_event("StasisEnd", "cc-dial-7"),
        _channel_event("ChannelDestroyed", "cc-dial-7", cause=17, cause_txt="Busy")])
    assert ari.destroyed == ["cc-dialer-cc-dial-7"]
    async with sessions() as session:
        row = (await session.scalars(select(ContactAttempt))).one()
    assert (row.outcome, row.cause, row.disposition) == (AttemptOutcome.ANSWERED, 17, None)
