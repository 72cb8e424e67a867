"""Two dialer processes, two nodes, one PostgreSQL: every contact is dialled once.

Two nodes of our own (each its own Asterisk, joined to the one test carrier by the trunk
``carrier``), one PostgreSQL database (``pg_url``) holding a progressive campaign of
twelve contacts on numbers the carrier answers and hangs up a few seconds later, and
three agents whose baresip phones are registered on both nodes. On each node a real
``callcenter campaigns run outbound --node east|west`` process dials the campaign; both
claim contacts from the same table (``FOR UPDATE SKIP LOCKED``) and reserve agents
through the same compare-and-set.

Half-way through, the dialer that placed more calls is stopped as an operator would
(SIGTERM: it places nothing more, ends its calls and exits 0), so the other one surely
dials too and finishes the list. What is asserted is what happened:

* the carrier was called once per number (its ``NoOp(carrier call ...)``), and the
  database holds one attempt per contact, answered by an agent, every contact done;
* both processes placed calls: each attempt's agent reservation was written by the
  dialer (``dialer:east`` or ``dialer:west``) whose log says it placed that attempt;
* no agent was offered two calls at once: no phone ever had two calls (its baresip
  events, both nodes' accounts), and an agent's attempts never overlap in time.

Waits are on the processes' log lines and the phones' events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from textwrap import dedent

import pytest
from sqlalchemy import select

from callcenter.agents.state import AgentStatus, Login
from callcenter.agents.store import AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami.client import AMIClient, AMIMessage
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AgentTransition,
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.aio import cancel_and_wait
from callcenter.testing.ports import free_port
from callcenter.testing.softphone import Softphone
from tests.conftest import PBX
from tests.integration.carrier_trunk import (
    TRUNK_CALLER_ID,
    joined_node,
    running_carrier,
)
from tests.integration.dialer_process import DialerProcess, campaign_run, until
from tests.integration.test_dialer_progressive import _carrier_calls, _collect
from tests.integration.test_multinode import calls_at_once

pytestmark = pytest.mark.integration

AGENTS = ("alice", "bob", "carmen")
CAMPAIGN = dedent("""\
    campaigns:
      outbound:
        mode: progressive
        agents: [alice, bob, carmen]
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        safe_harbor: tt-weasels
    """)
#: Twelve numbers the carrier answers, then hangs up after their last two digits in
#: seconds (5 or 6 s: time for the agent to answer, short enough for a quick list).
NUMBERS = tuple(f"+15550100{h}{s:02d}" for s in (5, 6) for h in range(10))[:12]
#: The dialer's log lines of a call placed and of an attempt ended (ari_apps.dialer).
CALLING = re.compile(r"calling contact \d+ \((\+\d+)\) for (\w+), attempt (\d+)")
ENDED = re.compile(r"attempt (\d+) ended (\w+)")


@dataclass
class TwoNodes:
    east: PBX
    west: PBX
    carrier_ami: AMIClient


@pytest.fixture
async def nodes(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
                asterisk_installation) -> AsyncIterator[TwoNodes]:
    """The carrier and two nodes joined to it, with the campaign in their config."""
    files = {"campaigns.yaml": CAMPAIGN}
    async with running_carrier(tmp_path_factory, asterisk_installation) as (
            carrier, carrier_ami), \
            joined_node(pbx, tmp_path_factory, asterisk_installation, "east", files,
                        carrier) as east, \
            joined_node(pbx, tmp_path_factory, asterisk_installation, "west", files,
                        carrier) as west:
        yield TwoNodes(east, west, carrier_ami)
        for node in (east, west):
            left = await node.wait_no_channels()
            assert left == 0, f"{left} channel(s) left on {node.instance.node}"


@contextlib.asynccontextmanager
async def phones(nodes: TwoNodes) -> AsyncIterator[dict[str, Softphone]]:
    """Each agent's baresip phone, one account on each node (each node rings its own)."""
    async with contextlib.AsyncExitStack() as stack:
        by_agent = {}
        for agent in AGENTS:
            sip, media = nodes.east.sipp_ports()
            by_agent[agent] = await stack.enter_async_context(Softphone(
                agent, nodes.east.agent_password(agent), registrar_port=nodes.east.sip_port,
                more_registrars=(nodes.west.sip_port,), sip_port=sip, ctrl_port=free_port(),
                rtp_port=media))
        yield by_agent


@contextlib.asynccontextmanager
async def carrier_calls(carrier_ami: AMIClient) -> AsyncIterator[list[AMIMessage]]:
    """The carrier's AMI ``Newexten`` events while the block runs."""
    seen: list[AMIMessage] = []
    with carrier_ami.subscribe("Newexten") as events:
        watcher = asyncio.create_task(_collect(events, seen))
        try:
            yield seen
        finally:
            await cancel_and_wait(watcher)


def _ended(processes: Sequence[DialerProcess]) -> int:
    return sum(len(p.matches(ENDED)) for p in processes)


async def test_two_dialer_processes_on_one_postgresql_dial_every_contact_once(
        nodes: TwoNodes, pg_url: str) -> None:
    config = nodes.east.loaded.config
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    store = AgentStore(sessions, node="test")
    try:
        await store.ensure(config.agents, utc_now())
        async with sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(number, "UTC") for number in NUMBERS])
        # The whole run bounded (each wait below has its own bound too).
        async with asyncio.timeout(90), phones(nodes) as by_agent, \
                carrier_calls(nodes.carrier_ami) as seen, \
                campaign_run(nodes.east.instance.home, nodes.east.config_dir, pg_url,
                             "outbound", "east", "--wrap-up", "0") as east, \
                campaign_run(nodes.west.instance.home, nodes.west.config_dir, pg_url,
                             "outbound", "west", "--wrap-up", "0") as west:
            both = (east, west)
            for process in both:
                await process.expect("campaign outbound (progressive)")
            for agent in AGENTS:
                await store.apply(agent, Login(), utc_now(), reason="test")
            await until(both, lambda: _ended(both) >= len(NUMBERS) // 2, 60,
                        what="half the contacts called")
            busier, other = sorted(both, key=lambda p: len(p.matches(CALLING)), reverse=True)
            assert await busier.stop() == 0, busier.tail()
            await until(both, lambda: _ended(both) >= len(NUMBERS), 60,
                        what="every contact called")
            assert await other.stop() == 0, other.tail()
        placed = {int(m[3]): (p.node, m[1], m[2]) for p in both for m in p.matches(CALLING)}
        async with sessions() as session:
            attempts = list(await session.scalars(
                select(ContactAttempt).order_by(ContactAttempt.id)))
            contacts = list(await session.scalars(select(Contact)))
            reservations = {t.detail["call"]: t.reason for t in await session.scalars(
                select(AgentTransition).where(AgentTransition.to_status
                                              == AgentStatus.RESERVED))
                            if t.detail}
        # Dialled once each: by the carrier's count and by the attempts.
        assert Counter(_carrier_calls(seen)) == {
            f"carrier call from {TRUNK_CALLER_ID} to {number}": 1 for number in NUMBERS}
        assert sorted(a.number for a in attempts) == sorted(NUMBERS)
        assert [(a.outcome, a.rule, a.pacing_rule) for a in attempts] == [
            (AttemptOutcome.ANSWERED, "ok", "progressive")] * len(NUMBERS)
        assert all(a.ended_at is not None and a.agent in AGENTS for a in attempts)
        assert [(c.state, c.attempts, c.claimed_by) for c in contacts] == [
            (ContactState.DONE, 1, None)] * len(NUMBERS)
        # Both placed calls: the logs and the reservations' writers agree, attempt by
        # attempt.
        assert set(placed) == {a.id for a in attempts}
        assert placed == {a.id: (placed[a.id][0], a.number, a.agent) for a in attempts}
        assert {a.id: reservations[a.channel_id] for a in attempts} == {
            attempt: f"dialer:{node}" for attempt, (node, _, _) in placed.items()}
        assert {node for node, _, _ in placed.values()} == {"east", "west"}
        # Never two calls at once for an agent: on the phones, and in the attempts.
        for agent, phone in by_agent.items():
            assert calls_at_once(phone.seen) <= 1, (agent, phone.seen)
        assert sum(e.get("type") == "CALL_ESTABLISHED"
                   for phone in by_agent.values() for e in phone.seen) == len(NUMBERS)
        by_agent_attempts: dict[str, list[ContactAttempt]] = defaultdict(list)
        for attempt in attempts:
            by_agent_attempts[attempt.agent or ""].append(attempt)
        for agent, theirs in by_agent_attempts.items():
            theirs.sort(key=lambda a: a.started_at)
            for before, after in itertools.pairwise(theirs):
                assert before.ended_at is not None and before.ended_at <= after.started_at, (
                    agent, before.id, after.id)
    finally:
        await engine.dispose()
