"""A progressive campaign dialled for real: our PBX, the test carrier, an agent's softphone.

Our node is an Asterisk of its own with the example config, the carrier's trunk and a
campaign ``outbound`` worked by carmen (the carrier, :mod:`callcenter.testing.carrier`,
is a second Asterisk on 127.0.0.2 playing the public network). Contacts are imported into
the campaign; :class:`ari_apps.dialer.CampaignDialer` runs against our Asterisk (Stasis
app ``cc-dialer``) and the node's database; carmen's phone is baresip, registered with
her usual password.

What is asserted is what happened: while nobody is logged in, the dialer passes and
places nothing (the carrier's AMI sees no call, the contacts are untouched); once carmen
is logged in, the busy number's attempt ends ``busy`` with the contact due again after
the campaign's busy delay; the live number is answered by the carrier, carmen's phone
rings and answers, and the call's bridge holds the contact's leg and carmen's; when she
hangs up she wraps up and the attempt is completed ``answered`` by carmen. A live answer
she does not take hears the safe-harbor message (``abandoned``). With the queue router
running too, a waiting inbound caller gets carmen first; the contact after. Waits are on
the dialer's pulses, the phone's events and AMI events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import delete, select

from ari_apps.dialer import CampaignDialer
from callcenter.agents.state import (
    AgentStatus,
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
)
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami.client import AMIMessage
from callcenter.asterisk.ari.client import ARIClient
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.amd import DIALER_APP
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
from tests.integration.router_harness import (
    place_call,
    start_router,
    talk_then_hang_up,
    waiting,
    with_queue,
)

pytestmark = pytest.mark.integration

BUSY = "+15550101000"
#: Answers, says "hello world", then listens for 30 s.
TALKS = "+15550100030"
CAMPAIGN = dedent("""\
    campaigns:
      outbound:
        mode: progressive
        agents: [carmen]
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        retry: {busy: 10m}
        safe_harbor: tt-weasels
    """)


@pytest.fixture(scope="module")
async def node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
               asterisk_installation) -> AsyncIterator[Node]:
    async with dialer_node(pbx, tmp_path_factory, asterisk_installation, "dialer",
                           {"campaigns.yaml": CAMPAIGN}) as joined:
        yield joined


@dataclass
class Running:
    dialer: CampaignDialer
    ari: ARIClient

    async def passes(self, n: int, timeout: float = 20) -> None:
        """Wait until the dialer has made ``n`` more passes of its loop."""
        target = self.dialer.passes + n
        async with asyncio.timeout(timeout):
            await self.dialer.wait_until(lambda: self.dialer.passes >= target)


@contextlib.asynccontextmanager
async def start_dialer(node: Node, *, config: CallCenterConfig | None = None,
                       **options: object) -> AsyncIterator[Running]:
    """The campaign's dialer on our node until the block ends (then stopped: the calls
    in progress end first); ``config`` replaces the node's, ``options`` go to
    :class:`CampaignDialer`."""
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    creds = node.pbx.instance.credentials
    async with ARIClient(node.pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=DIALER_APP) as ari, \
            ari.events() as stream:
        dialer = CampaignDialer(config or node.pbx.loaded.config, "outbound", ari, sessions,
                                node="test", **{"wrap_up": timedelta(seconds=2),
                                                "tick": 0.2, **options})  # type: ignore[arg-type]

        async def read() -> None:
            async for event in stream:
                await dialer.on_event(event)

        reader = asyncio.create_task(read(), name="dialer events")
        task = asyncio.create_task(dialer.run(), name="dialer")
        try:
            async with asyncio.timeout(20):
                await dialer.ready.wait()
            yield Running(dialer, ari)
        finally:
            dialer.stop()
            async with asyncio.timeout(60):
                await asyncio.gather(task, return_exceptions=True)
            await cancel_and_wait(reader)
            now = utc_now()
            for event in (EndWrapUp(), Logout()):
                with contextlib.suppress(IllegalTransition):
                    await dialer.store.apply("carmen", event, now, reason="test cleanup")
            # The next test's contacts are its own.
            async with sessions.begin() as session:
                await session.execute(delete(ContactAttempt))
                await session.execute(delete(Contact))
            await engine.dispose()
    left = await node.pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"


@pytest.fixture
async def running(node: Node) -> AsyncIterator[Running]:
    async with start_dialer(node) as handle:
        yield handle


async def _collect(subscription, into: list[AMIMessage]) -> None:  # type: ignore[no-untyped-def]
    while True:
        into.append(await subscription.get())


def _carrier_calls(events: list[AMIMessage]) -> list[str]:
    """The carrier's ``NoOp(carrier call from <caller> to <number>)`` of each call."""
    return [e["AppData"] for e in events if e.event == "Newexten"
            and e.get("Context") == "carrier-in" and e.get("Application") == "NoOp"]


async def test_progressive_campaign_dials_only_for_a_free_agent_and_bridges_the_answer(
        node: Node, running: Running, tmp_path: Path) -> None:
    dialer = running.dialer
    # Imported from a CSV file by the CLI, its bad line reported and skipped.
    assert_imported(await import_csv(node.pbx, "outbound",
                                     [f"{BUSY},UTC", BAD_ROW, f"{TALKS},UTC"], tmp_path),
                    3, 2)
    carrier_seen: list[AMIMessage] = []
    with node.carrier_ami.subscribe("Newexten") as carrier_events:
        watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
        try:
            # Nobody logged in: the dialer passes and places nothing.
            assert (await dialer.store.get("carmen", utc_now())).status \
                is AgentStatus.LOGGED_OUT
            await running.passes(5)
            assert _carrier_calls(carrier_seen) == []
            async with dialer.sessions() as session:
                contacts = list(await session.scalars(select(Contact).order_by(Contact.id)))
            assert [(c.state, c.attempts) for c in contacts] == [
                (ContactState.PENDING, 0), (ContactState.PENDING, 0)]

            async with node.pbx.agent_phone("carmen") as phone:
                call = asyncio.create_task(phone.call())
                try:
                    await dialer.store.apply("carmen", Login(), utc_now(), reason="test")
                    async with asyncio.timeout(60):
                        await dialer.wait_until(lambda: "carmen" in dialer.talking)
                    bridge = await running.ari.bridges.get(dialer.talking["carmen"])
                    live = next(c for c in dialer.live.values() if c.agent == "carmen")
                    assert set(bridge.channels) == {live.channel_id, f"{live.channel_id}-a"}
                    contact_leg = await running.ari.channels.get(live.channel_id)
                    assert contact_leg.name.startswith(
                        f"Local/{TALKS}@cc-trunk-carrier-out-"), contact_leg.name
                    assert contact_leg.state == "Up"
                    assert (await running.ari.channels.get(f"{live.channel_id}-a")
                            ).name.startswith("PJSIP/carmen-")
                    assert (await dialer.store.get("carmen", utc_now())).status \
                        is AgentStatus.ON_CALL
                    attempt_id = live.attempt_id
                    await phone.hangup()  # carmen ends the call
                    seen = await call
                finally:
                    await cancel_and_wait(call)
                assert seen.answered, seen.stderr
                async with asyncio.timeout(20):
                    await dialer.wait_until(lambda: attempt_id in dialer.ended)
                state = await dialer.store.get("carmen", utc_now())
                assert state.status in (AgentStatus.WRAP_UP, AgentStatus.AVAILABLE)
        finally:
            await cancel_and_wait(watcher)
    # The busy number first (imported first), then the live one: each dialled once.
    assert _carrier_calls(carrier_seen) == [
        f"carrier call from {TRUNK_CALLER_ID} to {BUSY}",
        f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]
    async with dialer.sessions() as session:
        attempts = list(await session.scalars(select(ContactAttempt)
                                              .order_by(ContactAttempt.id)))
        by_number = {c.number: c for c in await session.scalars(select(Contact))}
    busy, talked = attempts
    assert (busy.number, busy.outcome, busy.cause, busy.agent) == (
        BUSY, AttemptOutcome.BUSY, 17, None)
    assert by_number[BUSY].state is ContactState.PENDING
    due = by_number[BUSY].next_attempt_at
    assert due is not None and busy.ended_at is not None
    assert abs((due - busy.ended_at).total_seconds() - 600) < 1  # retry.busy: 10m
    assert (talked.number, talked.outcome, talked.agent) == (
        TALKS, AttemptOutcome.ANSWERED, "carmen")
    assert talked.answered_at is not None and talked.ended_at is not None
    assert talked.caller_id == TRUNK_CALLER_ID
    assert by_number[TALKS].state is ContactState.DONE and by_number[TALKS].attempts == 1


async def test_a_live_answer_the_agent_does_not_take_hears_the_safe_harbor_message(
        node: Node) -> None:
    """carmen's phone rings for the live contact and nobody answers: the contact hears
    the campaign's safe-harbor message and is hung up; the attempt is ``abandoned``,
    carmen is free again, and the contact is due again after the failed delay."""
    async with start_dialer(node, agent_ring_seconds=4) as running, \
            node.pbx.agent_phone("carmen", auto_answer=False) as phone:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(TALKS, "UTC")])
        await dialer.store.apply("carmen", Login(), utc_now(), reason="test")
        rang = await phone.event("CALL_INCOMING", timeout=60)
        assert rang["type"] == "CALL_INCOMING"
        async with asyncio.timeout(40):
            await dialer.wait_until(lambda: len(dialer.ended) == 1)
        # The whole message was played to the contact (PlaybackFinished, state done).
        assert len(dialer.safe_harbor_played) == 1
        async with dialer.sessions() as session:
            (attempt,) = await session.scalars(select(ContactAttempt))
            (contact,) = await session.scalars(select(Contact))
        assert (attempt.outcome, attempt.agent) == (AttemptOutcome.ABANDONED, None)
        assert contact.state is ContactState.PENDING and contact.next_attempt_at is not None
        async with asyncio.timeout(10):
            while (await dialer.store.get("carmen", utc_now())).status \
                    is not AgentStatus.AVAILABLE:
                await running.passes(1)


async def test_inbound_first_the_router_and_the_dialer_share_carmen(node: Node) -> None:
    """The queue router runs too, a caller waits in sales and the campaign has a contact
    due. carmen logs in: the router takes her for the caller (the dialer leaves a
    just-freed agent to it), and the carrier sees no call while she talks. After the call
    and her wrap-up, the dialer takes her for the contact."""
    config = with_queue(node.pbx.loaded.config, "sales", wrapup=1)
    carrier_seen: list[AMIMessage] = []
    async with start_router(node.pbx, config) as router, start_dialer(node) as running, \
            node.pbx.agent_phone("carmen") as phone:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(TALKS, "UTC")])
        with node.carrier_ami.subscribe("Newexten") as carrier_events:
            watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
            try:
                caller = asyncio.create_task(place_call(node.pbx, "15558870201",
                                                        hold_ms=40_000))
                try:
                    await waiting(router, 1)
                    await router.login("carmen")
                    inbound = await talk_then_hang_up(router, "carmen", phone)
                    assert inbound.answered, inbound.stderr
                    assert _carrier_calls(carrier_seen) == []
                    assert dialer.live == {}
                    await caller
                finally:
                    await cancel_and_wait(caller)
                queued = await router.queued("15558870201")
                assert (queued.queue, queued.agent, queued.outcome) == (
                    "sales", "carmen", "answered")
                # Wrap-up over, carmen is free: now the campaign's contact.
                outbound = asyncio.create_task(phone.call())
                try:
                    async with asyncio.timeout(60):
                        await dialer.wait_until(lambda: "carmen" in dialer.talking)
                    await phone.hangup()
                    assert (await outbound).answered
                finally:
                    await cancel_and_wait(outbound)
                async with asyncio.timeout(20):
                    await dialer.wait_until(lambda: len(dialer.ended) == 1)
            finally:
                await cancel_and_wait(watcher)
    assert _carrier_calls(carrier_seen) == [f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]
