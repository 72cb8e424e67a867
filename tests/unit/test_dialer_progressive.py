"""The progressive dialer's decisions (pure: who works the campaign, which agent gets the
next call, what an outcome means for the attempt and the contact) and its restart
recovery on a real SQLite database."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.dialer import CampaignDialer
from callcenter.agents.state import AgentState, AgentStatus, Login, Reserve, Ring
from callcenter.agents.store import AgentStore
from callcenter.asterisk.ari.client import ARINotFound
from callcenter.config.campaign import Campaign
from callcenter.config.loader import load_config
from callcenter.dialer import progressive
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.pacing import Rule
from callcenter.dialer.progressive import (
    AttemptOutcome,
    ContactState,
    attempt_outcome,
    campaign_agents,
    pick_agents,
    reschedule,
)
from callcenter.storage import (
    default_sqlite_url,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from callcenter.storage import models as M
from callcenter.storage.campaigns import CampaignRepository, NewContact

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "config" / "example"


def _campaign(**changes: object) -> Campaign:
    base = {"mode": "progressive", "trunk": "carrier", "caller_id": "+15550100000",
            "safe_harbor": "tt-weasels", "agents": ["alice"], "skills": ["sales"]}
    return Campaign.model_validate(base | changes)


def _state(agent: str, status: AgentStatus, idle_s: float = 0, **fields: object) -> AgentState:
    return AgentState(agent, status, NOW - timedelta(seconds=idle_s), version=1,
                      **fields)  # type: ignore[arg-type]


# -- who works the campaign, who gets a call ---------------------------------------------


def test_campaign_agents_are_those_named_and_those_with_a_skill() -> None:
    skills = {"alice": ["billing"], "bob": ["internet"], "carmen": ["sales", "spanish"],
              "dave": []}
    assert campaign_agents(_campaign(), skills) == {"alice", "carmen"}
    assert campaign_agents(_campaign(agents=[], skills=[]), skills) == set()
    assert campaign_agents(_campaign(agents=["ghost"], skills=[]), skills) == set()


def test_only_available_agents_of_the_campaign_longest_idle_first() -> None:
    states = [
        _state("alice", AgentStatus.AVAILABLE, idle_s=5),
        _state("carmen", AgentStatus.AVAILABLE, idle_s=60),
        _state("bob", AgentStatus.AVAILABLE, idle_s=600),  # not in the campaign
        _state("erin", AgentStatus.WRAP_UP, wrap_up_until=NOW + timedelta(seconds=5)),
        _state("fred", AgentStatus.RESERVED, call="inbound-1"),  # the router's
    ]
    working = frozenset({"alice", "carmen", "erin", "fred"})
    pick = pick_agents(states, working, NOW)
    assert pick.agents == ("carmen", "alice")
    assert pick.decision.rule is Rule.PROGRESSIVE and pick.decision.calls == 2
    assert "2 call(s) by rule progressive" in pick.explain()


def test_an_agent_just_freed_is_left_to_the_queue_router_first() -> None:
    states = [_state("alice", AgentStatus.AVAILABLE, idle_s=1.9),
              _state("carmen", AgentStatus.AVAILABLE, idle_s=2)]
    assert pick_agents(states, frozenset({"alice", "carmen"}), NOW).agents == ("carmen",)
    later = NOW + timedelta(seconds=0.1)
    assert pick_agents(states, frozenset({"alice", "carmen"}), later).agents == (
        "carmen", "alice")


def test_an_agent_the_dialer_is_handling_is_not_picked_again() -> None:
    states = [_state("alice", AgentStatus.AVAILABLE, idle_s=5),
              _state("carmen", AgentStatus.AVAILABLE, idle_s=5)]
    pick = pick_agents(states, frozenset({"alice", "carmen"}), NOW, busy=frozenset({"alice"}))
    assert pick.agents == ("carmen",)


def test_nobody_available_places_nothing() -> None:
    states = [_state("alice", AgentStatus.PAUSED, idle_s=60, pause_reason="lunch"),
              _state("carmen", AgentStatus.LOGGED_OUT)]
    pick = pick_agents(states, frozenset({"alice", "carmen"}), NOW)
    assert pick.agents == () and pick.decision.calls == 0


# -- what an outcome means -----------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "took", "stored"), [
    (Outcome.LIVE, True, AttemptOutcome.ANSWERED),
    (Outcome.LIVE, False, AttemptOutcome.ABANDONED),
    (Outcome.BUSY, False, AttemptOutcome.BUSY),
    (Outcome.NO_ANSWER, False, AttemptOutcome.NO_ANSWER),
    (Outcome.MACHINE, False, AttemptOutcome.MACHINE),
    (Outcome.FAILED, False, AttemptOutcome.FAILED),
    (Outcome.INVALID_NUMBER, False, AttemptOutcome.INVALID_NUMBER),
    (Outcome.HANGUP_AT_ONCE, False, AttemptOutcome.HANGUP_AT_ONCE),
    (Outcome.CANCELLED, False, AttemptOutcome.CANCELLED),
])
def test_attempt_outcome(outcome: Outcome, took: bool, stored: AttemptOutcome) -> None:
    assert attempt_outcome(outcome, agent_answered=took) is stored


def test_every_outcome_has_a_stored_one_that_storage_knows() -> None:
    for outcome in Outcome:
        stored = attempt_outcome(outcome, agent_answered=False)
        assert M.AttemptOutcome(stored.value).value == stored.value
    assert {o.value for o in AttemptOutcome} == {o.value for o in M.AttemptOutcome}
    assert {s.value for s in ContactState} == {s.value for s in M.ContactState}


def test_busy_is_retried_after_the_campaigns_busy_delay() -> None:
    step = reschedule(_campaign(retry={"busy": "10m"}), AttemptOutcome.BUSY, 1, NOW)
    assert (step.state, step.at) == (ContactState.PENDING, NOW + timedelta(minutes=10))
    assert step.reason.startswith("busy: retry at")  # retry.after_attempt's words


def test_answered_and_invalid_numbers_are_done() -> None:
    for outcome in (AttemptOutcome.ANSWERED, AttemptOutcome.INVALID_NUMBER):
        step = reschedule(_campaign(), outcome, 1, NOW)
        assert (step.state, step.at) == (ContactState.DONE, None)


def test_the_last_allowed_attempt_exhausts_the_contact() -> None:
    campaign = _campaign(max_attempts=3)
    assert reschedule(campaign, AttemptOutcome.NO_ANSWER, 2, NOW).state is ContactState.PENDING
    step = reschedule(campaign, AttemptOutcome.NO_ANSWER, 3, NOW)
    assert (step.state, step.at) == (ContactState.EXHAUSTED, None)


def test_a_rule_switched_off_closes_the_contact() -> None:
    step = reschedule(_campaign(retry={"machine": False}), AttemptOutcome.MACHINE, 1, NOW)
    assert step.state is ContactState.DONE and "retry.machine is off" in step.reason


@pytest.mark.parametrize(("outcome", "rule"), [
    (AttemptOutcome.HANGUP_AT_ONCE, "no_answer"), (AttemptOutcome.ABANDONED, "no_answer"),
    (AttemptOutcome.CANCELLED, "failed"), (AttemptOutcome.CALLBACK_REQUESTED,
                                           "callback_requested")])
def test_other_outcomes_follow_a_named_rule(outcome: AttemptOutcome, rule: str) -> None:
    campaign = _campaign()
    step = reschedule(campaign, outcome, 1, NOW)
    delay = getattr(campaign.retry, rule).delay
    assert (step.state, step.at) == (ContactState.PENDING, NOW + timedelta(seconds=delay))


def test_the_decisions_import_no_io_library() -> None:
    tree = ast.parse(Path(progressive.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and m.startswith(("callcenter.storage", "sqlalchemy",
                                                           "aiohttp", "asyncio"))}


# -- restart: what a stopped dialer left open ----------------------------------------------


class _Channels:
    def __init__(self) -> None:
        self.hung_up: list[str] = []

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append(channel_id)
        raise ARINotFound(404, "Channel not found", "DELETE", f"/channels/{channel_id}")

    async def get_variable(self, channel_id: str, name: str) -> str:
        raise ARINotFound(404, "Channel not found", "GET", f"/channels/{channel_id}/variable")


class _Bridges:
    def __init__(self) -> None:
        self.destroyed: list[str] = []

    async def destroy(self, bridge_id: str) -> None:
        self.destroyed.append(bridge_id)
        raise ARINotFound(404, "Bridge not found", "DELETE", f"/bridges/{bridge_id}")


class _Ari:
    def __init__(self) -> None:
        self.channels = _Channels()
        self.bridges = _Bridges()


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_restart_closes_open_attempts_and_frees_their_agents(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    config = load_config(EXAMPLE).config
    ari = _Ari()
    dialer = CampaignDialer(config, "renewals", ari, sessions,  # type: ignore[arg-type]
                            node="d1", clock=lambda: NOW)
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        await repo.import_contacts("renewals", [
            NewContact(f"+1212555010{i}", "America/New_York") for i in range(4)])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        claimed = await repo.claim_due("renewals", NOW, 3, claimer=dialer.claimer)
        ringing = await repo.start_attempt(claimed[0].id, at=NOW, channel_id="cc-dial-1")
        talked = await repo.start_attempt(claimed[1].id, at=NOW, channel_id="cc-dial-2")
        await repo.mark_answered(talked, at=NOW, agent="carmen")
    async with sessions.begin() as session:  # claimed[2]: claimed, never dialled
        # Another dialer's claim is not ours.
        await CampaignRepository(session).claim_due("renewals", NOW, 1, claimer="dialer:other")
    await dialer.store.ensure(["alice"], NOW)
    for event in (Login(), Reserve("cc-dial-1"), Ring("cc-dial-1")):
        await dialer.store.apply("alice", event, NOW)

    await dialer.recover()

    assert ari.channels.hung_up == ["cc-dial-1", "cc-dial-1-a", "cc-dial-2", "cc-dial-2-a"]
    assert ari.bridges.destroyed == ["cc-dialer-cc-dial-1", "cc-dialer-cc-dial-2"]
    assert (await dialer.store.get("alice", NOW)).status is AgentStatus.AVAILABLE
    async with sessions() as session:
        attempts = {a.id: a for a in await session.scalars(select(M.ContactAttempt))}
        contacts = {c.id: c for c in await session.scalars(select(M.Contact))}
    assert attempts[ringing].outcome is M.AttemptOutcome.CANCELLED
    assert attempts[talked].outcome is M.AttemptOutcome.ANSWERED
    assert attempts[talked].agent == "carmen" and attempts[talked].ended_at is not None
    first, second, third = (contacts[c.id] for c in claimed)
    assert first.state is M.ContactState.PENDING and first.next_attempt_at is not None
    assert second.state is M.ContactState.DONE  # reached: never dialled again
    assert third.state is M.ContactState.PENDING and third.attempts == 0
    others = [c for c in contacts.values() if c.claimed_by == "dialer:other"]
    assert len(others) == 1 and others[0].state is M.ContactState.DIALING
    async with sessions() as session:
        assert await CampaignRepository(session).open_claims("renewals", dialer.claimer) == []


def test_only_progressive_and_predictive_campaigns_and_known_ones_are_run() -> None:
    config = load_config(EXAMPLE).config
    with pytest.raises(ValueError, match="unknown campaign 'nope'"):
        CampaignDialer(config, "nope", None, None)  # type: ignore[arg-type]
    preview = config.campaigns["renewals"].model_copy(update={"mode": "preview"})
    changed = config.model_copy(update={"campaigns": {"renewals": preview}})
    with pytest.raises(ValueError, match="progressive and predictive campaigns only"):
        CampaignDialer(changed, "renewals", None, None)  # type: ignore[arg-type]
    predictive = config.campaigns["renewals"].model_copy(update={"mode": "predictive"})
    changed = config.model_copy(update={"campaigns": {"renewals": predictive}})
    dialer = CampaignDialer(changed, "renewals", None, None)  # type: ignore[arg-type]
    assert dialer.predictive is not None


async def test_an_agent_the_router_takes_meanwhile_is_left_to_it_and_the_contact_goes_back(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """Inbound first: the router reserves carmen between the dialer's read of the agents
    and its reservation. The dialer's compare-and-set loses, nothing is dialled, and the
    contact it had claimed is due again, untried."""
    config = load_config(EXAMPLE).config
    campaign = _campaign(agents=["carmen"], skills=[], assume_timezone="UTC",
                         calling_windows={"mon-sun": "00:00-24:00"})
    config = config.model_copy(update={"campaigns": {"renewals": campaign}})
    dialer = CampaignDialer(config, "renewals", _Ari(), sessions,  # type: ignore[arg-type]
                            node="d1", clock=lambda: NOW)
    router = AgentStore(sessions, node="router")
    await dialer.store.ensure(config.agents, NOW - timedelta(seconds=10))
    await dialer.store.apply("carmen", Login(), NOW - timedelta(seconds=10))
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts("renewals", [
            NewContact("+12125550100", "UTC")])
    read = dialer.store.all

    async def read_then_router_reserves() -> list[AgentState]:
        states = await read()
        assert await router.try_reserve("carmen", "inbound-1", NOW) is not None
        raced.append("carmen")
        return states

    raced: list[str] = []

    dialer.store.all = read_then_router_reserves  # type: ignore[method-assign]
    async with asyncio.TaskGroup() as tg:
        await dialer._pass(tg)
    assert raced == ["carmen"] and dialer.live == {}
    state = await dialer.store.get("carmen", NOW)
    assert (state.status, state.call) == (AgentStatus.RESERVED, "inbound-1")
    async with sessions() as session:
        (contact,) = await session.scalars(select(M.Contact))
        attempts = list(await session.scalars(select(M.ContactAttempt)))
    assert (contact.state, contact.attempts, attempts) == (M.ContactState.PENDING, 0, [])
    # It had been claimed, then put back (due at once), not left alone.
    assert contact.next_attempt_at == NOW and contact.claimed_by is None


def test_campaigns_run_refuses_an_unknown_campaign_and_a_missing_asterisk(
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from callcenter.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(tmp_path), "campaigns", "run", "nope",
                                  "--config", str(EXAMPLE)])
    assert result.exit_code == 1 and "unknown campaign 'nope'" in result.output
    assert "(known: payment_reminder, renewals, satisfaction)" in result.output
    result = runner.invoke(main, ["--home", str(tmp_path), "campaigns", "run", "renewals",
                                  "--config", str(EXAMPLE)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output


async def test_a_leg_that_ended_while_the_websocket_was_down_is_ended_on_reconnect(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    from ari_apps.dialer import _Live
    from callcenter.asterisk.ari.events import ChannelDestroyed
    from callcenter.storage.campaigns import DueContact

    class _Listing(_Channels):
        async def list(self) -> list[object]:
            return []  # Asterisk has no channel left

    ari = _Ari()
    ari.channels = _Listing()
    dialer = CampaignDialer(load_config(EXAMPLE).config, "renewals", ari,  # type: ignore[arg-type]
                            sessions, clock=lambda: NOW)
    dialer.live["carmen"] = _Live("carmen", "cc-dial-9", DueContact(1, "+1", None, {}, 0), 1)
    with dialer.inboxes.open("cc-dial-9", "cc-dial-9-a") as inbox:
        await dialer.resync()
        ends = [inbox.get_nowait(), inbox.get_nowait()]
    assert all(isinstance(e, ChannelDestroyed) for e in ends)
    assert [e.channel.id for e in ends] == ["cc-dial-9", "cc-dial-9-a"]  # type: ignore[attr-defined]
