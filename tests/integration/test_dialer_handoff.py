"""A campaign call handed to an inbound queue by its disposition, for real: our PBX, the
test carrier, two agents' softphones, the dialer, the queue router and the HTTP API.

Our node (:func:`tests.integration.carrier_trunk.dialer_node`) runs a progressive
campaign ``outbound`` worked by alice, whose ``warm_transfer_sales`` disposition names
queue ``sales`` (carmen's: sales 9; alice's 3 is under the queue's 5). The contact (the
carrier's talking number) answers and is bridged to alice; alice's disposition, posted
to the API with her own token while they talk (or given with ``callcenter campaigns
dispose``, over the home's ARI credentials), sends the contact to ``sales``.

What is asserted is what happened: the answer names the queue and the contact closed
(``done``); alice's phone call ends and she wraps up; the same contact channel is then
bridged by the queue router with carmen's phone (``PJSIP/carmen-``), its caller ID the
contact's number; when carmen hangs up, ``queued_calls`` holds the call (queue
``sales``, agent carmen, answered, the contact's channel), and the attempt is
``answered`` by alice with the disposition ``warm_transfer_sales``. The same
disposition again, the call over, is refused saying so (409; the CLI exits 1). Waits are on the dialer's and
the router's pulses and the phones' events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from textwrap import dedent
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result
from sqlalchemy import delete, select

from ari_apps.campaign_handoff import AriHandoff
from ari_apps.dialer import CampaignDialer
from callcenter.agents.state import (
    AgentStatus,
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
)
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ari.client import ARIClient
from callcenter.cli import main
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
from callcenter.web import TokenBook, create_api_app, users_from_config
from tests.conftest import PBX
from tests.integration.carrier_trunk import DialerNode as Node
from tests.integration.carrier_trunk import dialer_node
from tests.integration.router_harness import start_router

pytestmark = pytest.mark.integration

#: Answers, says "hello world", then listens for 30 s.
TALKS = "+15550100030"
CAMPAIGN = dedent("""\
    campaigns:
      outbound:
        mode: progressive
        agents: [alice]
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        safe_harbor: tt-weasels
        dispositions:
          sale: {label: Sale, final: true}
          warm_transfer_sales: {label: Warm transfer to sales, final: true, queue: sales}
          do_not_call: {label: Do not call, final: true}
    """)
USERS = "api_users:\n  alice_phone: {role: agent, agent: alice}\n"
TOKEN = "alice-token-0123456789abcdefghijklmnopqrstu"


@pytest.fixture(scope="module")
async def node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
               asterisk_installation) -> AsyncIterator[Node]:
    async with dialer_node(pbx, tmp_path_factory, asterisk_installation, "handoff",
                           {"campaigns.yaml": CAMPAIGN, "handoff_users.yaml": USERS}
                           ) as joined:
        yield joined


@dataclass
class Desk:
    """alice's side: the API with her token; the dialer and its ARI client."""

    client: TestClient
    dialer: CampaignDialer
    ari: ARIClient
    task: asyncio.Task[None]

    async def dispose(self, attempt: int, disposition: str,
                      status: int = 200) -> dict[str, Any]:
        async with self.client.post(
                f"/api/v1/campaigns/attempts/{attempt}/disposition",
                json={"disposition": disposition},
                headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == status, answer
            return answer

    async def kill_dialer(self) -> None:
        """The dialer stops dead (its task cancelled: no call closed, no leg hung up),
        as a killed ``campaigns run``; its Stasis app stays registered."""
        await cancel_and_wait(self.task)

    async def restart_dialer(self) -> None:
        """A new dialer of the same node: it recovers what the dead one left."""
        old = self.dialer
        self.dialer = CampaignDialer(old.config, old.name, self.ari, old.sessions,
                                     node="test", wrap_up=old.wrap_up, tick=old.tick)
        self.task = asyncio.create_task(self.dialer.run(), name="dialer again")
        async with asyncio.timeout(20):
            await self.dialer.ready.wait()


@contextlib.asynccontextmanager
async def start_desk(node: Node) -> AsyncIterator[Desk]:
    """The campaign's dialer and the API (hand-offs over the dialer's ARI client) on our
    node until the block ends (then stopped: the calls in progress end first)."""
    config = node.pbx.loaded.config
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    creds = node.pbx.instance.credentials
    async with ARIClient(node.pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=DIALER_APP) as ari, \
            ari.events() as stream:
        # A long wrap-up: alice is still in it when the test looks.
        dialer = CampaignDialer(config, "outbound", ari, sessions, node="test",
                                wrap_up=timedelta(seconds=60), tick=0.2)
        tokens = TokenBook.fixed(users_from_config(config), {"alice_phone": TOKEN})
        app = create_api_app(config=config, store=dialer.store, sessions=sessions,
                             tokens=tokens, clock=utc_now, handoff=lambda: AriHandoff(ari))
        desk: Desk | None = None

        async def read() -> None:
            async for event in stream:  # to the dialer of the moment
                await (desk.dialer if desk is not None else dialer).on_event(event)

        reader = asyncio.create_task(read(), name="dialer events")
        task = asyncio.create_task(dialer.run(), name="dialer")
        try:
            async with asyncio.timeout(20):
                await dialer.ready.wait()
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                desk = Desk(client, dialer, ari, task)
                yield desk
        finally:
            running = desk or Desk(None, dialer, ari, task)  # type: ignore[arg-type]
            running.dialer.stop()
            async with asyncio.timeout(60):
                await asyncio.gather(running.task, return_exceptions=True)
            await cancel_and_wait(reader)
            now = utc_now()
            for event in (EndWrapUp(), Logout()):
                with contextlib.suppress(IllegalTransition):
                    await dialer.store.apply("alice", event, now, reason="test cleanup")
            async with sessions.begin() as session:
                await session.execute(delete(ContactAttempt))
                await session.execute(delete(Contact))
            await engine.dispose()
    left = await node.pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"


def _cli(node: Node, *args: str) -> Result:
    """``callcenter campaigns dispose ARGS`` against our node's home, config and database
    (run in a thread: the command runs its own event loop)."""
    return CliRunner().invoke(main, [
        "--home", str(node.pbx.instance.home), "campaigns", "dispose", *args,
        "--config", str(node.pbx.config_dir), "--db", node.pbx.db_url])


@pytest.mark.parametrize("via", ["api", "cli"])
async def test_a_warm_transfer_hands_the_live_contact_to_the_sales_queue(
        node: Node, via: str) -> None:
    async with start_router(node.pbx) as router, start_desk(node) as desk, \
            node.pbx.agent_phone("alice") as alice_phone, \
            node.pbx.agent_phone("carmen") as carmen_phone:
        dialer = desk.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(TALKS, "UTC")])
        await router.login("carmen")
        await router.wait_state("carmen", AgentStatus.AVAILABLE)
        alice_call = asyncio.create_task(alice_phone.call())
        carmen_call = asyncio.create_task(carmen_phone.call())
        try:
            await dialer.store.apply("alice", Login(), utc_now(), reason="test")
            async with asyncio.timeout(60):
                await dialer.wait_until(lambda: "alice" in dialer.talking)
            live = dialer.live["alice"]
            contact_leg, attempt_id = live.channel_id, live.attempt_id
            assert (await desk.ari.channels.get(f"{contact_leg}-a")).name.startswith(
                "PJSIP/alice-")

            if via == "api":  # alice's own token
                answer = await desk.dispose(attempt_id, "warm_transfer_sales")
                assert (answer["queue"], answer["state"], answer["disposition"]) == (
                    "sales", "done", "warm_transfer_sales"), answer
            else:  # over the home's ARI credentials
                done = await asyncio.to_thread(_cli, node, str(attempt_id),
                                               "warm_transfer_sales", "--agent", "alice")
                assert done.exit_code == 0, done.output
                assert "warm_transfer_sales; handed to queue sales; contact" in done.stdout
                assert " done (" in done.stdout, done.stdout

            # alice's call ends (her leg hung up by the dialer); she wraps up.
            seen_by_alice = await alice_call
            assert seen_by_alice.answered, seen_by_alice.stderr
            assert (await dialer.store.get("alice", utc_now())).status \
                is AgentStatus.WRAP_UP
            assert attempt_id in dialer.ended

            # The same contact channel, now the router's, bridged with carmen's phone.
            await router.wait_state("carmen", AgentStatus.ON_CALL, timeout=30)
            contact = await desk.ari.channels.get(contact_leg)
            assert contact.name.startswith(f"Local/{TALKS}@cc-trunk-carrier-out-")
            assert contact.caller.number == TALKS
            (bridge,) = [b for b in await desk.ari.bridges.list()
                         if contact_leg in b.channels]
            (other,) = [c for c in bridge.channels if c != contact_leg]
            assert (await desk.ari.channels.get(other)).name.startswith("PJSIP/carmen-")
            await carmen_phone.hangup()  # carmen ends the call
            seen_by_carmen = await carmen_call
            assert seen_by_carmen.answered, seen_by_carmen.stderr
            assert TALKS.lstrip("+") in seen_by_carmen.peer_uri, seen_by_carmen.peer_uri
        finally:
            await cancel_and_wait(alice_call)
            await cancel_and_wait(carmen_call)
        queued = await router.queued(TALKS)
        assert (queued.queue, queued.agent, queued.outcome, queued.channel_id) == (
            "sales", "carmen", "answered", contact_leg)
        # The call is over: the same disposition again is refused, saying why.
        if via == "api":
            again = await desk.dispose(attempt_id, "warm_transfer_sales", status=409)
            assert "has ended" in again["error"], again
        else:
            refused = await asyncio.to_thread(_cli, node, str(attempt_id),
                                              "warm_transfer_sales")
            assert refused.exit_code == 1 and "has ended" in refused.stderr, refused.output
        async with dialer.sessions() as session:
            attempt = (await session.scalars(select(ContactAttempt))).one()
            contact_row = (await session.scalars(select(Contact))).one()
        assert (attempt.outcome, attempt.agent, attempt.disposition) == (
            AttemptOutcome.ANSWERED, "alice", "warm_transfer_sales")
        assert attempt.answered_at is not None and attempt.ended_at is not None
        assert (contact_row.state, contact_row.disposition) == (
            ContactState.DONE, "warm_transfer_sales")


async def test_a_contact_handed_over_while_the_dialer_was_down_stays_with_the_queue(
        node: Node) -> None:
    """The dialer dies while alice talks (both legs left bridged in its app); alice's
    disposition still hands the contact to sales (the API answers ``dialing``: no dialer
    closed the call within its wait), and carmen takes it. The restarted dialer closes
    the attempt: it hangs up alice's leg only, never the contact the router holds, frees
    alice but not carmen (whose call is the same channel), and records the
    disposition."""
    async with start_router(node.pbx) as router, start_desk(node) as desk, \
            node.pbx.agent_phone("alice") as alice_phone, \
            node.pbx.agent_phone("carmen") as carmen_phone:
        async with desk.dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(TALKS, "UTC")])
        await router.login("carmen")
        await router.wait_state("carmen", AgentStatus.AVAILABLE)
        alice_call = asyncio.create_task(alice_phone.call())
        carmen_call = asyncio.create_task(carmen_phone.call())
        try:
            await desk.dialer.store.apply("alice", Login(), utc_now(), reason="test")
            async with asyncio.timeout(60):
                await desk.dialer.wait_until(lambda: "alice" in desk.dialer.talking)
            live = desk.dialer.live["alice"]
            contact_leg, attempt_id = live.channel_id, live.attempt_id
            await desk.kill_dialer()

            answer = await desk.dispose(attempt_id, "warm_transfer_sales")
            assert (answer["queue"], answer["state"]) == ("sales", "dialing"), answer
            await router.wait_state("carmen", AgentStatus.ON_CALL, timeout=30)

            await desk.restart_dialer()
            seen_by_alice = await alice_call
            assert seen_by_alice.answered, seen_by_alice.stderr
            # carmen holds the same channel now: the dialer freed alice only.
            assert (await router.state("carmen")).status is AgentStatus.ON_CALL
            assert (await router.state("alice")).status is not AgentStatus.ON_CALL
            (bridge,) = [b for b in await desk.ari.bridges.list()
                         if contact_leg in b.channels]
            (other,) = [c for c in bridge.channels if c != contact_leg]
            assert (await desk.ari.channels.get(other)).name.startswith("PJSIP/carmen-")
            await carmen_phone.hangup()
            assert (await carmen_call).answered
        finally:
            await cancel_and_wait(alice_call)
            await cancel_and_wait(carmen_call)
        queued = await router.queued(TALKS)
        assert (queued.queue, queued.agent, queued.outcome, queued.channel_id) == (
            "sales", "carmen", "answered", contact_leg)
        async with desk.dialer.sessions() as session:
            attempt = (await session.scalars(select(ContactAttempt))).one()
            contact_row = (await session.scalars(select(Contact))).one()
        assert (attempt.outcome, attempt.agent, attempt.disposition) == (
            AttemptOutcome.ANSWERED, "alice", "warm_transfer_sales")
        assert (contact_row.state, contact_row.disposition) == (
            ContactState.DONE, "warm_transfer_sales")
