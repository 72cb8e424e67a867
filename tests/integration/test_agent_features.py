"""Feature codes and overflow labels on the real PBX.

- The generated feature codes as Asterisk loaded them (``dialplan show``), reachable from
  the agents' context.
- Agent alice's phone (sipp, digest auth as alice) dials ``*70``, ``*721``, ``*73``,
  ``*71``: each reaches ``Stasis(cc-agent)`` with the contract's args, the agent app
  (:func:`ari_apps.agent_features.handle_agent_command` on a real AgentStore) changes
  alice's stored state, plays the confirmation and hangs up (Asterisk's BYE). A logout
  while a caller is tied to her is refused with ``beeperr`` and changes nothing.
- No agent app: the feature code plays the failure prompt and hangs up (cause 41).
- A channel that is no agent's endpoint hears "login incorrect" and never reaches Stasis.
- Overflow: a caller in ``tech_support`` continued at ``overflow_label(1)`` lands in the
  ``customer_service`` queue (the config's overflow), and from there at ``overflow3`` in
  voicemail ``general``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.agent_features import PlaybackWaits, handle_agent_command
from callcenter.agents.state import AgentStatus, OfferFailed, Rules
from callcenter.agents.store import AgentStore
from callcenter.asterisk.ami.client import AMIClient
from callcenter.asterisk.ari import (
    ARIClient,
    ARIEventStream,
    ARINotFound,
    PlaybackFinished,
    StasisStart,
)
from callcenter.asterisk.stasis_args import AgentCommand, QueueCall, overflow_label
from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.migrate import upgrade
from tests.aio import cancel_and_wait
from tests.conftest import PBX
from tests.integration.agent_dialer import agent_dials

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


class AgentApp:
    """The agent app as the router runs it: each command in a task of its own, the
    channel's later events delivered to the PlaybackWaits it awaits."""

    def __init__(self, ari: ARIClient, store: AgentStore, agents: set[str]) -> None:
        self.ari = ari
        self.store = store
        self.agents = agents
        self.waits = PlaybackWaits(timeout=10.0)
        self.starts: list[StasisStart] = []
        self.played: list[str] = []
        self.changed: list[str] = []
        self.results: asyncio.Queue[str] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

    async def _handle(self, channel_id: str, command: AgentCommand) -> None:
        result = await handle_agent_command(
            self.ari, channel_id, command, self.store, NOW, self.changed.append,
            played=self.waits.wait, agents=self.agents)
        await self.results.put(result)

    async def run(self, events: ARIEventStream) -> None:
        async for event in events:
            if isinstance(event, StasisStart):
                self.starts.append(event)
                task = asyncio.create_task(self._handle(event.channel.id,
                                                        AgentCommand.parse(event.args)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            if isinstance(event, PlaybackFinished):
                self.played.append(event.playback.media_uri)
            self.waits.deliver(event)


@asynccontextmanager
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def agent_app(pbx: PBX, store: AgentStore) -> AsyncIterator[AgentApp]:
    creds = pbx.instance.credentials
    app = pbx.loaded.config.settings.agent_app
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=app) as ari, ari.events() as events:
        await ari.applications.get(app)  # registered before any call
        runner = AgentApp(ari, store, set(pbx.loaded.config.agents))
        reader = asyncio.create_task(runner.run(events), name="agent-app")
        try:
            yield runner
        finally:
            await cancel_and_wait(reader)
            for task in list(runner.tasks):
                await cancel_and_wait(task)


async def dial(pbx: PBX, number: str, agent: str = "alice"):
    sip, media = pbx.sipp_ports()
    return await agent_dials(number, agent=agent, password=pbx.agent_password(agent),
                             sip_port=pbx.sip_port, local_port=sip, media_port=media)


async def test_feature_codes_as_loaded_by_asterisk(pbx: PBX) -> None:
    _, shown = await asyncio.to_thread(pbx.instance.cli, "dialplan show *70@cc-extensions")
    # Reached from the agents' context through the include.
    assert "Stasis(cc-agent,login,agent=${CC_AGENT},reason=)" in shown, shown
    assert "Included" in shown and "cc-agent-features" in shown, shown
    _, shown = await asyncio.to_thread(pbx.instance.cli, "dialplan show *721@cc-extensions")
    assert "Stasis(cc-agent,pause,agent=${CC_AGENT},reason=lunch)" in shown, shown
    _, shown = await asyncio.to_thread(pbx.instance.cli, "dialplan show cc-agent-features")
    assert "'_*72X.' =>" in shown and "Playback(pbx-invalid)" in shown, shown
    _, shown = await asyncio.to_thread(pbx.instance.cli, "dialplan show tech_support@cc-queue")
    assert "[overflow1]" in shown and "Goto(cc-queue,customer_service,1)" in shown, shown


async def test_agent_changes_state_from_the_softphone(clean_pbx: PBX, tmp_path: Path) -> None:
    pbx = clean_pbx
    config = pbx.loaded.config
    async with sessions(tmp_path) as sm:
        store = AgentStore(sm, Rules(frozenset(config.pause_reasons)), node="test")
        await store.ensure(config.agents, NOW)
        async with agent_app(pbx, store) as app:

            async def feature(number: str) -> str:
                result = await dial(pbx, number)
                assert result.returncode == 0, result.stderr[-800:]
                assert result.remote_hangup, "the agent app did not hang the call up"
                async with asyncio.timeout(10):
                    return await app.results.get()

            assert await feature("*70") == "available"
            assert app.starts[-1].args == ("login", "agent=alice", "reason=")
            assert (await store.get("alice", NOW)).status is AgentStatus.AVAILABLE

            assert await feature("*721") == "paused"
            assert app.starts[-1].args == ("pause", "agent=alice", "reason=lunch")
            state = await store.get("alice", NOW)
            assert (state.status, state.pause_reason) == (AgentStatus.PAUSED, "lunch")

            assert await feature("*73") == "available"

            # A caller is tied to alice: logout is refused, nothing changes.
            reserved = await store.try_reserve("alice", "caller-1", NOW)
            assert reserved is not None
            assert await feature("*71") == "refused"
            after = await store.get("alice", NOW)
            assert (after.status, after.version) == (AgentStatus.RESERVED, reserved.version)

            await store.apply("alice", OfferFailed("caller-1", "no_answer"), NOW)
            assert await feature("*71") == "logged_out"
            assert app.starts[-1].args == ("logout", "agent=alice", "reason=")
            assert (await store.get("alice", NOW)).status is AgentStatus.LOGGED_OUT
    assert app.played == ["sound:agent-loginok", "sound:beep", "sound:beep", "sound:beeperr",
                          "sound:agent-loggedoff"]
    # The router hears of every change, and of nothing else (the refused logout).
    assert app.changed == ["alice"] * 4
    # The agent is the authenticated endpoint's: alice's phone, alice's state.
    assert {AgentCommand.parse(s.args).agent for s in app.starts} == {"alice"}


async def _dialplan_of(ami: AMIClient, prefix: str, start, suffix: str = "",
                       timeout: float = 20.0):
    """Newexten and Hangup events of channels named ``prefix...``, until the Hangup of
    the one whose name also ends with ``suffix`` (``;2``: the dialplan side of a Local
    channel)."""
    seen: list[dict[str, str]] = []
    with ami.subscribe("Newexten", "Hangup") as events:
        runner = asyncio.ensure_future(start())
        try:
            async with asyncio.timeout(timeout):
                async for event in events:
                    if not event.get("Channel", "").startswith(prefix):
                        continue
                    seen.append(dict(event))
                    if event["Event"] == "Hangup" and event["Channel"].endswith(suffix):
                        break
        finally:
            result = await runner
    return seen, result


async def test_feature_code_without_the_agent_app_plays_an_error(clean_pbx: PBX,
                                                                 ami: AMIClient) -> None:
    seen, result = await _dialplan_of(ami, "PJSIP/alice-", lambda: dial(clean_pbx, "*70"))
    assert result.remote_hangup and result.returncode == 0, result.stderr[-800:]
    apps = [(e["Context"], e.get("Application"), e.get("AppData")) for e in seen
            if e["Event"] == "Newexten"]
    assert ("cc-extensions", "Stasis", "cc-agent,login,agent=alice,reason=") in apps, apps
    assert ("cc-agent-identify", "Playback", "tt-somethingwrong") in apps, apps
    assert seen[-1]["Event"] == "Hangup" and seen[-1]["Cause"] == "41", seen[-1]


async def test_no_agent_endpoint_hears_login_incorrect(clean_pbx: PBX, ami: AMIClient) -> None:
    """A Local channel has no PJSIP endpoint: it is no agent, whatever its caller ID."""

    async def originate() -> None:
        await ami.action("Originate", Channel="Local/*70@cc-extensions", Application="Wait",
                         Data="20", CallerID="alice <1001>", Async="true")

    seen, _ = await _dialplan_of(ami, "Local/*70@cc-extensions", originate, ";2")
    apps = [(e["Context"], e.get("Application"), e.get("AppData")) for e in seen
            if e["Event"] == "Newexten"]
    assert ("cc-agent-identify", "Playback", "agent-incorrect") in apps, apps
    assert not [a for a in apps if a[1] == "Stasis"], apps
    # Call rejected (21); AMI reports a Local channel's cause as 0, so the step is checked.
    assert apps[-1] == ("cc-agent-identify", "Hangup", "21"), (apps, seen[-1])


async def test_overflow_labels_lead_where_the_config_says(clean_pbx: PBX, ari_app: ARIClient,
                                                          ami: AMIClient) -> None:
    app = clean_pbx.loaded.config.settings.queue_app
    queued: list[StasisStart] = []
    in_voicemail = asyncio.Event()
    with ami.subscribe("Newexten") as steps:
        async with ari_app.events() as events:
            await ari_app.channels.originate(
                "Local/tech_support@cc-queue", app=app, app_args=["offer"],
                channel_id=f"cc-test-{uuid.uuid4().hex[:8]}")
            local_one = None
            async with asyncio.timeout(20):
                async for event in events:
                    if not isinstance(event, StasisStart):
                        continue
                    if event.args == ("offer",):
                        local_one = event.channel.id  # ;1 holds the pair up; left alone
                        continue
                    queued.append(event)
                    call = QueueCall.parse(event.args)
                    stage = {"tech_support": 1, "customer_service": 3}[call.queue]
                    await ari_app.channels.continue_in_dialplan(
                        event.channel.id, "cc-queue", call.queue, label=overflow_label(stage))
                    if call.queue == "customer_service":
                        break
            name = queued[-1].channel.name
            async with asyncio.timeout(20):
                async for step in steps:
                    if step.get("Channel") == name and step.get("Application") == "VoiceMail":
                        in_voicemail.set()
                        break
            assert local_one is not None
            try:
                await ari_app.channels.hangup(local_one)
            except ARINotFound:
                pass
    first, second = (QueueCall.parse(s.args) for s in queued)
    assert first.queue == "tech_support" and first.skills == ("internet", "phone")
    # tech_support's relax step 1: {overflow: {queue: customer_service}}, with that
    # queue's skills, on the same channel.
    assert (second.queue, second.skills) == ("customer_service", ("billing",))
    assert queued[0].channel.id == queued[1].channel.id
    # customer_service's relax step 3: {overflow: {voicemail: general}} (mailbox 8000).
    assert in_voicemail.is_set()
