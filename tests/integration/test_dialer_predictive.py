"""A predictive campaign dialled for real: our PBX, the test carrier, one agent's softphone.

Same node as :mod:`tests.integration.test_dialer_progressive` (our Asterisk with the
carrier's trunk, the carrier on 127.0.0.2, carmen's baresip), with a predictive campaign
worked by carmen, alice and bob. alice and bob have no phone: they are stored on a call
for longer than any measured talk time (1 s), so the Pacer expects them free any moment;
carmen is the only free agent. The campaign's history is seeded in the database (past the
Pacer's cold start), so what it measures decides:

* with no abandon measured, the dialer has two calls in progress for carmen alone; the
  first live answer is bridged to carmen; the second finds no agent, hears the
  safe-harbor message (its playback starts on its channel within ~2 s of its answer)
  and its attempt is ``abandoned``; that contact, due again, is not dialled within 72 h;
* with the measured abandon rate at the 3 % cap, the dialer places no more calls than
  free agents (one, for carmen), whatever the model would want.

Waits are on the dialer's pulses, the phone's events and ARI/AMI events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import delete, select, update

from ari_apps.dialer import CampaignDialer
from callcenter.agents.state import (
    Answer,
    EndWrapUp,
    Hangup,
    IllegalTransition,
    Login,
    Logout,
    Ring,
)
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami.client import AMIMessage
from callcenter.asterisk.ari.client import ARIClient
from callcenter.asterisk.ari.events import PlaybackStarted
from callcenter.dialer.amd import DIALER_APP
from callcenter.dialer.eligibility import ABANDON_QUIET
from callcenter.dialer.pacing import Rule
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.aio import cancel_and_wait
from tests.conftest import PBX
from tests.integration.carrier_trunk import TRUNK_CALLER_ID, dialer_node
from tests.integration.carrier_trunk import DialerNode as Node
from tests.integration.csv_import import BAD_ROW, assert_imported, import_csv
from tests.integration.test_dialer_progressive import _carrier_calls, _collect

pytestmark = pytest.mark.integration

#: Both answer, say "hello world", then listen for 30 s.
TALKS = "+15550100030"
TALKS_TOO = "+15550100130"
#: The seeded history's contact (never dialled: done).
PAST = "+15550100999"
#: Agents of the campaign stored on a call, with no phone.
ON_CALL = ("alice", "bob")
CAMPAIGN = dedent("""\
    campaigns:
      outbound:
        mode: predictive
        agents: [carmen, alice, bob]
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        abandon: {rule: us_30_days, max_percent: 3}
        safe_harbor: tt-weasels
    """)


@pytest.fixture(scope="module")
async def node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
               asterisk_installation) -> AsyncIterator[Node]:
    async with dialer_node(pbx, tmp_path_factory, asterisk_installation, "pdialer",
                           {"campaigns.yaml": CAMPAIGN}) as joined:
        yield joined


class Running:
    """The dialer, its ARI client, and when each playback started (monotonic)."""

    def __init__(self, dialer: CampaignDialer, ari: ARIClient) -> None:
        self.dialer = dialer
        self.ari = ari
        self.playbacks: dict[str, float] = {}  # channel id -> first playback's start

    async def passes(self, n: int, timeout: float = 20) -> None:
        target = self.dialer.passes + n
        async with asyncio.timeout(timeout):
            await self.dialer.wait_until(lambda: self.dialer.passes >= target)


async def _seed(sessions, *, live: int, no_answer: int, abandoned: int) -> None:  # type: ignore[no-untyped-def]
    """The campaign's past attempts, an hour ago: answered ones rang 5 s and talked 1 s."""
    async with sessions.begin() as session:
        repository = CampaignRepository(session)
        await repository.import_contacts("outbound", [NewContact(PAST, "UTC")])
        contact = await session.scalar(select(Contact).where(Contact.number == PAST))
        assert contact is not None
        contact.state = ContactState.DONE
        start = utc_now() - timedelta(hours=1)
        for outcome, n in ((AttemptOutcome.ANSWERED, live),
                           (AttemptOutcome.NO_ANSWER, no_answer),
                           (AttemptOutcome.ABANDONED, abandoned)):
            for _ in range(n):
                answered = outcome is AttemptOutcome.ANSWERED
                session.add(ContactAttempt(
                    contact_id=contact.id, number=PAST, started_at=start,
                    answered_at=start + timedelta(seconds=5) if answered else None,
                    ended_at=start + timedelta(seconds=6 if answered else 15),
                    outcome=outcome, agent="carmen" if answered else None))


@contextlib.asynccontextmanager
async def start_dialer(node: Node, *, live: int, no_answer: int,
                       abandoned: int) -> AsyncIterator[Running]:
    """The seeded history, alice and bob on a call, and the campaign's dialer
    until the block ends (then stopped; the calls in progress end first)."""
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    creds = node.pbx.instance.credentials
    await _seed(sessions, live=live, no_answer=no_answer, abandoned=abandoned)
    async with ARIClient(node.pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=DIALER_APP) as ari, \
            ari.events() as stream:
        dialer = CampaignDialer(node.pbx.loaded.config, "outbound", ari, sessions,
                                node="test", wrap_up=timedelta(seconds=2), tick=0.2)
        running = Running(dialer, ari)
        now = utc_now()
        for agent in ON_CALL:
            await dialer.store.apply(agent, Login(), now)
            assert await dialer.store.try_reserve(agent, f"c-{agent}", now)
            await dialer.store.apply(agent, Ring(f"c-{agent}"), now)
            await dialer.store.apply(agent, Answer(f"c-{agent}"), now)

        async def read() -> None:
            async for event in stream:
                if isinstance(event, PlaybackStarted):
                    target = event.playback.target_uri.removeprefix("channel:")
                    running.playbacks.setdefault(target, time.monotonic())
                await dialer.on_event(event)

        reader = asyncio.create_task(read(), name="dialer events")
        task = asyncio.create_task(dialer.run(), name="dialer")
        try:
            async with asyncio.timeout(20):
                await dialer.ready.wait()
            yield running
        finally:
            dialer.stop()
            async with asyncio.timeout(60):
                await asyncio.gather(task, return_exceptions=True)
            await cancel_and_wait(reader)
            now = utc_now()
            for agent in ("carmen", *ON_CALL):
                for event in (Hangup(f"c-{agent}"), EndWrapUp(), Logout()):
                    with contextlib.suppress(IllegalTransition):
                        await dialer.store.apply(agent, event, now, reason="test cleanup")
            async with sessions.begin() as session:
                await session.execute(delete(ContactAttempt))
                await session.execute(delete(Contact))
            await engine.dispose()
    left = await node.pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"


async def _carmen_free(running: Running, node: Node, directory: Path) -> None:
    """carmen logs in; once the Pacer counts her free (after the router's 2 s), the
    campaign's two contacts are imported (from a CSV file by the CLI, with a bad line)."""
    dialer = running.dialer
    predictive = dialer.predictive
    assert predictive is not None
    await dialer.store.apply("carmen", Login(), utc_now(), reason="test")
    async with asyncio.timeout(20):
        await dialer.wait_until(lambda: predictive.decision is not None
                                and predictive.decision.free_agents == 1)
    assert_imported(await import_csv(node.pbx, "outbound",
                                     [f"{TALKS},UTC", BAD_ROW, f"{TALKS_TOO},UTC"],
                                     directory), 3, 2)


async def test_predictive_places_more_calls_than_agents_and_abandons_with_safe_harbor(
        node: Node, tmp_path: Path) -> None:
    carrier_seen: list[AMIMessage] = []
    async with start_dialer(node, live=60, no_answer=30, abandoned=0) as running, \
            node.pbx.agent_phone("carmen") as phone:
        dialer = running.dialer
        predictive = dialer.predictive
        assert predictive is not None
        with node.carrier_ami.subscribe("Newexten") as carrier_events:
            watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
            call = asyncio.create_task(phone.call())
            try:
                await _carmen_free(running, node, tmp_path)
                # Two calls placed at once for one free agent: the Pacer's prediction.
                async with asyncio.timeout(30):
                    await dialer.wait_until(lambda: predictive.placed is not None
                                            and predictive.placed[1] >= 2)
                assert predictive.placed is not None
                decision, placed = predictive.placed
                assert decision.rule is Rule.PREDICTIVE and placed == 2
                assert decision.free_agents == 1 and decision.calls >= 2, decision.explain()
                async with asyncio.timeout(60):
                    await dialer.wait_until(lambda: "carmen" in dialer.talking
                                            and len(dialer.ended) == 1)
                talking = dialer.live["carmen"]
                bridge = await running.ari.bridges.get(dialer.talking["carmen"])
                assert set(bridge.channels) == {talking.channel_id,
                                                f"{talking.channel_id}-a"}
                # The other live answer: no agent within 2 s, the safe-harbor message.
                (abandoned_leg,) = set(predictive.answered) - {talking.channel_id}
                assert abandoned_leg in running.playbacks, running.playbacks
                waited = running.playbacks[abandoned_leg] - predictive.answered[abandoned_leg]
                assert 1.5 <= waited <= 3.5, waited
                assert dialer.safe_harbor_played == [abandoned_leg]
                await phone.hangup()
                seen = await call
                assert seen.answered, seen.stderr
                async with asyncio.timeout(20):
                    await dialer.wait_until(lambda: len(dialer.ended) == 2)
            finally:
                await cancel_and_wait(call)
                await cancel_and_wait(watcher)
            assert sorted(_carrier_calls(carrier_seen)) == sorted([
                f"carrier call from {TRUNK_CALLER_ID} to {TALKS}",
                f"carrier call from {TRUNK_CALLER_ID} to {TALKS_TOO}"])
            async with dialer.sessions() as session:
                attempts = {a.channel_id: a for a in await session.scalars(
                    select(ContactAttempt).where(ContactAttempt.number != PAST))}
            # Both started in that one pass, before either was answered.
            assert len({a.started_at for a in attempts.values()}) == 1
            assert {(a.rule, a.pacing_rule) for a in attempts.values()} == {
                ("ok", "predictive")}  # the audit trail: allowed, and by which pacing rule
            assert attempts[talking.channel_id].outcome is AttemptOutcome.ANSWERED
            assert attempts[talking.channel_id].agent == "carmen"
            gone = attempts[abandoned_leg]
            assert (gone.outcome, gone.agent) == (AttemptOutcome.ABANDONED, None)
            # Due again (its retry), the abandoned contact is still not dialled within 72 h.
            async with dialer.sessions.begin() as session:
                await session.execute(update(Contact).where(Contact.id == gone.contact_id)
                                      .values(next_attempt_at=utc_now()))
            for _ in range(100):  # claimed and put back, or not yet
                await running.passes(1)
                async with dialer.sessions() as session:
                    contact = await session.get(Contact, gone.contact_id)
                assert contact is not None and contact.next_attempt_at is not None
                if contact.next_attempt_at > utc_now() + timedelta(hours=1):
                    break
            assert contact.state is ContactState.PENDING
            quiet = (contact.next_attempt_at - gone.started_at) - ABANDON_QUIET
            assert abs(quiet.total_seconds()) < 1, quiet
            assert len(_carrier_calls(carrier_seen)) == 2


async def test_at_the_abandon_cap_predictive_places_no_more_calls_than_free_agents(
        node: Node, tmp_path: Path) -> None:
    carrier_seen: list[AMIMessage] = []
    async with start_dialer(node, live=97, no_answer=30, abandoned=3) as running, \
            node.pbx.agent_phone("carmen") as phone:
        dialer = running.dialer
        predictive = dialer.predictive
        assert predictive is not None
        with node.carrier_ami.subscribe("Newexten") as carrier_events:
            watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
            call = asyncio.create_task(phone.call())
            try:
                await _carmen_free(running, node, tmp_path)
                async with asyncio.timeout(60):
                    await dialer.wait_until(lambda: "carmen" in dialer.talking)
                await running.passes(5)  # carmen talks: nothing more is placed
                decision = predictive.decision
                assert decision is not None and decision.rule is Rule.GUARD_PROGRESSIVE
                assert decision.abandon_rate == pytest.approx(0.03)
                assert len(_carrier_calls(carrier_seen)) == 1
                assert predictive.dialing == {} and dialer.safe_harbor_played == []
                await phone.hangup()
                assert (await call).answered
                async with asyncio.timeout(20):
                    await dialer.wait_until(lambda: len(dialer.ended) == 1)
            finally:
                await cancel_and_wait(call)
                await cancel_and_wait(watcher)
