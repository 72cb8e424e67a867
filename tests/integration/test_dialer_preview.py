"""A preview campaign worked for real over the HTTP API: our PBX, the test carrier, an
agent's softphone.

Our node is an Asterisk of its own with the example config, the carrier's trunk and a
preview campaign ``outbound`` worked by carmen (the carrier, :mod:`callcenter.testing.
carrier`, is a second Asterisk on 127.0.0.2 playing the public network). carmen's phone
is baresip, registered with her usual password; she uses the HTTP API with her own
agent token, served on loopback by :func:`callcenter.web.create_api_app` with
:class:`ari_apps.preview.PreviewDialer` (Stasis app ``cc-preview``) behind its dial.

What is asserted is what happened: carmen logs in and gets the contact over HTTP
(reserved meanwhile, the carrier sees no call); she dials: her phone rings and answers
first, then the carrier's number answers, and both legs are in one bridge; when she hangs
up, the attempt is completed ``answered`` by carmen and the contact is done. A second
contact she skips goes back to pending, she is free again, and the carrier never sees a
call to it. Waits are on the dialer's events, the phone's events and AMI events; nothing
sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, select

from ari_apps.preview import PREVIEW_APP, PreviewDialer
from callcenter.agents.rules import rules_from_config
from callcenter.agents.state import AgentStatus, EndWrapUp, IllegalTransition, Logout
from callcenter.agents.store import AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami.client import AMIMessage
from callcenter.asterisk.ari.client import ARIClient
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.aio import cancel_and_wait
from callcenter.testing.ports import free_port
from callcenter.web import TokenBook, create_api_app, users_from_config
from tests.conftest import PBX, _example_copy
from tests.integration.carrier_trunk import TRUNK_CALLER_ID, dialer_node
from tests.integration.carrier_trunk import DialerNode as Node
from tests.integration.csv_import import assert_imported, import_csv

pytestmark = pytest.mark.integration

#: Answers, says "hello world", then listens for 30 s.
TALKS = "+15550100030"
#: Would answer as well: skipped, never dialled.
SKIPPED = "+15550100031"
CAMPAIGN = dedent("""\
    campaigns:
      outbound:
        mode: preview
        agents: [carmen]
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        abandon: null
        script: "Hello {first_name}, this is carmen."
    """)
USERS = "api_users:\n  carmen_phone: {role: agent, agent: carmen}\n"
TOKEN = "carmen-token-0123456789abcdefghijklmnopqrstu"


@pytest.fixture(scope="module")
async def node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
               asterisk_installation) -> AsyncIterator[Node]:
    async with dialer_node(pbx, tmp_path_factory, asterisk_installation, "preview",
                           {"campaigns.yaml": CAMPAIGN, "preview_users.yaml": USERS}) as joined:
        yield joined


@dataclass
class Desk:
    """carmen's side: the API with her token, and the preview dialer behind it."""

    client: TestClient
    dialer: PreviewDialer
    ari: ARIClient

    async def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        async with self.client.post(path, json=body, headers={
                "Authorization": f"Bearer {TOKEN}"}) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == status, answer
            return answer


@contextlib.asynccontextmanager
async def start_desk(node: Node, **options: Any) -> AsyncIterator[Desk]:
    """The API and the preview dialer on our node until the block ends; ``options`` go
    to :class:`PreviewDialer`."""
    config = node.pbx.loaded.config
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    store = AgentStore(sessions, rules_from_config(config), node="test")
    await store.ensure(config.agents, utc_now())
    creds = node.pbx.instance.credentials
    async with ARIClient(node.pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=PREVIEW_APP) as ari, \
            ari.events() as stream:
        dialer = PreviewDialer(config, ari, sessions, store=store,
                               **{"wrap_up": timedelta(seconds=30), **options})

        async def read() -> None:
            async for event in stream:
                await dialer.on_event(event)

        reader = asyncio.create_task(read(), name="preview events")
        task = asyncio.create_task(dialer.run(), name="preview dialer")
        tokens = TokenBook.fixed(users_from_config(config), {"carmen_phone": TOKEN})
        app = create_api_app(config=config, store=store, sessions=sessions, tokens=tokens,
                             clock=utc_now, preview=lambda: dialer)
        try:
            async with asyncio.timeout(20):
                await dialer.ready.wait()
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                yield Desk(client, dialer, ari)
        finally:
            dialer.stop()
            async with asyncio.timeout(60):
                await asyncio.gather(task, return_exceptions=True)
            await cancel_and_wait(reader)
            now = utc_now()
            for event in (EndWrapUp(), Logout()):
                with contextlib.suppress(IllegalTransition):
                    await store.apply("carmen", event, now, reason="test cleanup")
            # The next test's contacts are its own.
            async with sessions.begin() as session:
                await session.execute(delete(ContactAttempt))
                await session.execute(delete(Contact))
            await engine.dispose()
    left = await node.pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"


async def _collect(subscription, into: list[AMIMessage]) -> None:  # type: ignore[no-untyped-def]
    while True:
        into.append(await subscription.get())


def _carrier_calls(events: list[AMIMessage]) -> list[str]:
    """The carrier's ``NoOp(carrier call from <caller> to <number>)`` of each call."""
    return [e["AppData"] for e in events if e.event == "Newexten"
            and e.get("Context") == "carrier-in" and e.get("Application") == "NoOp"]


async def test_an_agent_previews_dials_and_skips_over_http(node: Node, tmp_path: Path) -> None:
    carrier_seen: list[AMIMessage] = []
    async with start_desk(node) as desk, node.pbx.agent_phone("carmen") as phone:
        sessions = desk.dialer.sessions
        # From a CSV file by the CLI: the first_name column is the contact's data.
        assert_imported(await import_csv(
            node.pbx, "outbound", [f"{TALKS},UTC,Tess", "not-a-number,UTC,Nobody",
                                   f"{SKIPPED},UTC,Sid"], tmp_path,
            header="number,timezone,first_name"), 3, 2)
        with node.carrier_ami.subscribe("Newexten") as carrier_events:
            watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
            try:
                assert (await desk.post("/api/v1/agents/carmen/login"))["status"] \
                    == "available"
                shown = await desk.post("/api/v1/campaigns/outbound/preview")
                assert (shown["number"], shown["data"], shown["agent"]) == (
                    TALKS, {"first_name": "Tess"}, "carmen")
                assert shown["script"] == "Hello {first_name}, this is carmen."
                state = await desk.dialer.store.get("carmen", utc_now())
                assert state.status is AgentStatus.RESERVED

                call = asyncio.create_task(phone.call())  # carmen's phone answers
                try:
                    dialled = await desk.post(
                        f"/api/v1/campaigns/preview/{shown['contact']}/dial")
                    assert dialled["state"] == "ringing_agent"
                    attempt_id = dialled["attempt"]
                    live = desk.dialer.calls[attempt_id]
                    async with asyncio.timeout(60):
                        await live.connected.wait()
                    assert live.stage == "talking", live
                    assert live.bridge_id is not None
                    bridge = await desk.ari.bridges.get(live.bridge_id)
                    assert set(bridge.channels) == {live.agent_leg, live.contact_leg}
                    agent_leg = await desk.ari.channels.get(live.agent_leg)
                    assert agent_leg.name.startswith("PJSIP/carmen-"), agent_leg.name
                    contact_leg = await desk.ari.channels.get(live.contact_leg)
                    assert contact_leg.name.startswith(
                        f"Local/{TALKS}@cc-trunk-carrier-out-"), contact_leg.name
                    assert contact_leg.state == "Up"
                    assert (await desk.dialer.store.get("carmen", utc_now())).status \
                        is AgentStatus.ON_CALL
                    assert _carrier_calls(carrier_seen) == [
                        f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]
                    await phone.hangup()  # carmen ends the call
                    seen = await call
                finally:
                    await cancel_and_wait(call)
                assert seen.answered, seen.stderr
                async with asyncio.timeout(20):
                    await live.ended.wait()
                async with sessions() as session:
                    (attempt,) = await session.scalars(select(ContactAttempt))
                    talked = (await session.scalars(
                        select(Contact).where(Contact.number == TALKS))).one()
                assert (attempt.id, attempt.number, attempt.outcome, attempt.agent) == (
                    attempt_id, TALKS, AttemptOutcome.ANSWERED, "carmen")
                assert attempt.answered_at is not None and attempt.ended_at is not None
                assert attempt.caller_id == TRUNK_CALLER_ID
                # The rules checked again at the dial, for the audit trail.
                assert (attempt.rule, attempt.pacing_rule) == ("ok", "preview")
                assert (talked.state, talked.attempts) == (ContactState.DONE, 1)
                assert (await desk.dialer.store.get("carmen", utc_now())).status \
                    is AgentStatus.WRAP_UP

                # Wrap-up over: the next contact, skipped.
                assert (await desk.post("/api/v1/agents/carmen/end-wrapup"))["status"] \
                    == "available"
                shown = await desk.post("/api/v1/campaigns/outbound/preview")
                assert shown["number"] == SKIPPED
                skipped = await desk.post(
                    f"/api/v1/campaigns/preview/{shown['contact']}/skip",
                    {"reason": "asked by email not to be called today"})
                assert (skipped["state"], skipped["agent_freed"]) == ("pending", True)
                assert (await desk.dialer.store.get("carmen", utc_now())).status \
                    is AgentStatus.AVAILABLE
                async with sessions() as session:
                    back = (await session.scalars(
                        select(Contact).where(Contact.number == SKIPPED))).one()
                    attempts = list(await session.scalars(select(ContactAttempt)))
                assert (back.state, back.attempts, back.claimed_by) == (
                    ContactState.PENDING, 0, None)
                assert len(attempts) == 1
            finally:
                await cancel_and_wait(watcher)
    # The carrier saw the one call dialled, none to the contact skipped.
    assert _carrier_calls(carrier_seen) == [f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]


async def test_the_agent_not_answering_cancels_the_dial_before_the_contact_is_called(
        node: Node) -> None:
    """carmen dials, her phone rings and nobody answers: the contact is never dialled
    (the carrier sees no call), the attempt is ``cancelled``, the contact due again at
    once, and carmen available."""
    carrier_seen: list[AMIMessage] = []
    async with start_desk(node, agent_ring_seconds=4) as desk, \
            node.pbx.agent_phone("carmen", auto_answer=False) as phone:
        sessions = desk.dialer.sessions
        async with sessions.begin() as session:
            await CampaignRepository(session).import_contacts("outbound",
                                                              [NewContact(TALKS, "UTC")])
        with node.carrier_ami.subscribe("Newexten") as carrier_events:
            watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
            try:
                await desk.post("/api/v1/agents/carmen/login")
                shown = await desk.post("/api/v1/campaigns/outbound/preview")
                dialled = await desk.post(f"/api/v1/campaigns/preview/{shown['contact']}/dial")
                rang = await phone.event("CALL_INCOMING", timeout=30)
                assert rang["type"] == "CALL_INCOMING"
                live = desk.dialer.calls[dialled["attempt"]]
                async with asyncio.timeout(40):
                    await live.ended.wait()
            finally:
                await cancel_and_wait(watcher)
        assert not live.connected.is_set()
        async with sessions() as session:
            (attempt,) = await session.scalars(select(ContactAttempt))
            (contact,) = await session.scalars(select(Contact))
        assert (attempt.outcome, attempt.agent, attempt.answered_at) == (
            AttemptOutcome.CANCELLED, None, None)
        assert (contact.state, contact.claimed_by) == (ContactState.PENDING, None)
        assert (await desk.dialer.store.get("carmen", utc_now())).status \
            is AgentStatus.AVAILABLE
    assert _carrier_calls(carrier_seen) == []


async def test_serve_runs_the_preview_dialer_when_a_preview_campaign_is_configured(
        pbx: PBX, tmp_path: Path) -> None:
    """``callcenter serve`` with a preview campaign: its dialer's Stasis app is registered
    (the API's dial reaches it), and SIGTERM still stops the service cleanly."""
    config = _example_copy(tmp_path / "example", free_port(), http_api_port=free_port())
    (config / "preview_campaign.yaml").write_text(dedent("""\
        campaigns:
          leads:
            mode: preview
            agents: [alice]
            trunk: carrier
            caller_id: "+15550100000"
            assume_timezone: America/New_York
            abandon: null
        """))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from callcenter.cli import main; main()", "-v",
        "--home", str(pbx.instance.home), "serve", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any(f"ARI events connected for ('{PREVIEW_APP}',)" in line
                          for line in output[-1:]):
                line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
                assert line, "callcenter serve exited early:\n" + "".join(output)
                output.append(line)
        assert f"Preview dialer: Stasis app {PREVIEW_APP}\n" in output
        creds = pbx.instance.credentials
        # REST only (no websocket): the app name here is never registered.
        async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                             password=creds.ari_password, app="cc-preview-check") as ari:
            assert (await ari.applications.get(PREVIEW_APP)).name == PREVIEW_APP
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "".join(output) + rest.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
