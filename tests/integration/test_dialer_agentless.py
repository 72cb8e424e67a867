"""An agentless survey dialled for real: our PBX, the test carrier, no agent.

Our node is an Asterisk of its own with the example config, the carrier's trunk and a
campaign ``survey`` (mode agentless, 2 lines) running the flow ``survey``: two
questions (``collect`` Q1 and Q2, one key each), goodbye, hang up. Contacts are imported
into the campaign; :class:`ari_apps.agentless.AgentlessDialer` runs against our Asterisk
(Stasis app ``cc-dialer``) and the node's database. The carrier's respondents
(``+1555010 6 xyz``) answer and press x, y, z seconds apart; its busy number is busy.

What is asserted is what happened: each respondent's contact holds exactly the answers
its keys gave (Q1=4, Q2=2 for ``+15550106420``), its attempt ended ``answered`` and the
contact is done; the busy contact's attempt ended ``busy`` and it is due again after the
campaign's busy delay; never more than ``lines`` calls at once (the attempts' own start
and end times, and the carrier's count of calls). ``campaigns answers`` prints them. A
dialer killed mid-survey is taken over by the next, and both answers are kept. With AMD
(campaign ``screened``) the carrier's answering machine is hung up (``machine``, retried)
and the respondent still answers. A ``message`` campaign (``notice``) plays it and hangs
up. Waits are on the dialer's pulses and AMI events;
nothing sleeps.
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
from click.testing import CliRunner
from sqlalchemy import delete, select

from ari_apps.agentless import AgentlessDialer
from callcenter.asterisk.ami.client import AMIMessage
from callcenter.asterisk.ari.client import ARIClient
from callcenter.dialer.amd import DIALER_APP
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.answers import AnswerRepository
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAnswer,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.aio import cancel_and_wait
from tests.integration.carrier_trunk import TRUNK_CALLER_ID, dialer_node
from tests.integration.carrier_trunk import DialerNode as Node
from tests.integration.csv_import import BAD_ROW, assert_imported, import_csv

pytestmark = pytest.mark.integration

#: Respondents: answer, press the last three digits one by one (4, 2, then 0 after
#: the survey hung up; 5, 1, 0).
ANSWERS_4_2 = "+15550106420"
ANSWERS_5_1 = "+15550106510"
BUSY = "+15550101000"
LINES = 2
CAMPAIGN = dedent("""\
    campaigns:
      survey:
        mode: agentless
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        retry: {busy: 10m}
        flow: survey
        lines: 2
      screened:
        mode: agentless
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        retry: {machine: 1h}
        amd: {enabled: true}
        flow: survey
        lines: 2
      notice:
        mode: agentless
        trunk: carrier
        caller_id: "+15550100000"
        calling_windows: {mon-sun: "00:00-24:00"}
        assume_timezone: UTC
        ring_seconds: 15
        message: vm-goodbye
    flows:
      survey:
        steps:
          - collect:
              variable: Q1
              prompts: [beep]
              max_digits: 1
              pattern: "^[1-5]$"
              timeout: 10
              retries: 2
          - collect: {variable: Q2, prompts: [beep], max_digits: 1, timeout: 10, retries: 2}
          - play: vm-goodbye
    """)


@pytest.fixture(scope="module")
async def node(pbx, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
               asterisk_installation) -> AsyncIterator[Node]:
    async with dialer_node(pbx, tmp_path_factory, asterisk_installation, "agentless",
                           {"campaigns.yaml": CAMPAIGN}) as joined:
        yield joined


@dataclass
class Running:
    dialer: AgentlessDialer
    ari: ARIClient


@contextlib.asynccontextmanager
async def start_dialer(node: Node, *, crash: bool = False, clean: bool = True,
                       campaign: str = "survey") -> AsyncIterator[Running]:
    """The campaign's dialer on our node until the block ends (then stopped: the calls
    in progress end first; the contacts are deleted for the next test). ``crash``: the
    dialer is cancelled instead, as a killed process would stop (no call hung up, no row
    written); ``clean`` False keeps the rows and the calls for the next dialer."""
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    creds = node.pbx.instance.credentials
    async with ARIClient(node.pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=DIALER_APP) as ari, \
            ari.events() as stream:
        dialer = AgentlessDialer(node.pbx.loaded.config, campaign, ari, sessions,
                                 node="test", tick=0.2)

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
            if crash:
                await cancel_and_wait(task)
            else:
                dialer.stop()
                async with asyncio.timeout(60):
                    await asyncio.gather(task, return_exceptions=True)
            await cancel_and_wait(reader)
            if clean:
                async with sessions.begin() as session:
                    await session.execute(delete(ContactAnswer))
                    await session.execute(delete(ContactAttempt))
                    await session.execute(delete(Contact))
            await engine.dispose()
    if clean:
        left = await node.pbx.wait_no_channels()
        assert left == 0, f"{left} channel(s) left on our node after the test"


async def _collect(subscription, into: list[AMIMessage]) -> None:  # type: ignore[no-untyped-def]
    while True:
        into.append(await subscription.get())


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at a tie)."""
    marks = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
                   key=lambda m: (m[0], m[1]))
    most = now = 0
    for _, step in marks:
        now += step
        most = max(most, now)
    return most


async def test_an_agentless_survey_stores_its_answers(node: Node) -> None:
    async with start_dialer(node) as running:
        dialer = running.dialer
        carrier_seen: list[AMIMessage] = []
        with node.carrier_ami.subscribe("Newexten", "Hangup") as carrier_events:
            watcher = asyncio.create_task(_collect(carrier_events, carrier_seen))
            try:
                async with dialer.sessions.begin() as session:
                    await CampaignRepository(session).import_contacts("survey", [
                        NewContact(ANSWERS_4_2, "UTC"), NewContact(BUSY, "UTC"),
                        NewContact(ANSWERS_5_1, "UTC")])
                async with asyncio.timeout(120):
                    await dialer.wait_until(lambda: len(dialer.ended) == 3)
            finally:
                await cancel_and_wait(watcher)
        async with dialer.sessions() as session:
            contacts = {c.number: c for c in await session.scalars(select(Contact))}
            attempts = {a.number: a for a in await session.scalars(select(ContactAttempt))}
            answers = await AnswerRepository(session).for_campaign("survey")

    by_contact: dict[str, dict[str, str]] = {}
    for row in answers:
        by_contact.setdefault(row.number, {})[row.variable] = row.value
    assert by_contact == {ANSWERS_4_2: {"Q1": "4", "Q2": "2"},
                          ANSWERS_5_1: {"Q1": "5", "Q2": "1"}}
    for number in (ANSWERS_4_2, ANSWERS_5_1):
        attempt = attempts[number]
        assert attempt.outcome is AttemptOutcome.ANSWERED, attempt
        assert attempt.answered_at is not None and attempt.cause == 16
        assert attempt.caller_id == TRUNK_CALLER_ID and attempt.pacing_rule == "lines"
        assert contacts[number].state is ContactState.DONE
    busy, busy_contact = attempts[BUSY], contacts[BUSY]
    assert (busy.outcome, busy.cause) == (AttemptOutcome.BUSY, 17)
    assert busy_contact.state is ContactState.PENDING and busy.ended_at is not None
    assert busy_contact.next_attempt_at == busy.ended_at + timedelta(minutes=10)

    # Never more than `lines` calls at once: on the attempts' records, the dialer's
    # own count, and the carrier's (its calls' first and last events).
    spans = [(a.started_at.timestamp(), a.ended_at.timestamp())
             for a in attempts.values() if a.ended_at is not None]
    assert len(spans) == 3 and _most_at_once(spans) <= LINES
    assert dialer.peak == LINES
    carrier_calls = [e for e in carrier_seen if e.event == "Newexten"
                     and e.get("Context") == "carrier-in" and e.get("Application") == "NoOp"]
    assert sorted(e["AppData"].rsplit(" ", 1)[-1] for e in carrier_calls) == sorted(
        [ANSWERS_4_2, BUSY, ANSWERS_5_1])
    open_calls = most = 0
    started = {e["Uniqueid"] for e in carrier_calls}
    for event in carrier_seen:
        if event in carrier_calls:
            open_calls += 1
        elif event.event == "Hangup" and event.get("Uniqueid") in started:
            open_calls -= 1
        most = max(most, open_calls)
    assert most <= LINES


async def test_answers_are_exported_from_the_cli(node: Node) -> None:
    """``callcenter campaigns answers``: one row per contact, a column per answer."""
    from callcenter.cli import main

    async with start_dialer(node) as running:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "survey", [NewContact(ANSWERS_4_2, "UTC")])
        async with asyncio.timeout(60):
            await dialer.wait_until(lambda: len(dialer.ended) == 1)
        result = await asyncio.to_thread(
            CliRunner().invoke, main,
            ["campaigns", "answers", "survey", "--config", str(node.pbx.config_dir),
             "--db", node.pbx.db_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "contact,number,attempt,complete,Q1,Q2"
    assert lines[1].split(",")[1:2] + lines[1].split(",")[3:] == [ANSWERS_4_2, "yes", "4", "2"]


async def test_a_dialer_killed_mid_survey_is_taken_over_and_keeps_every_answer(
        node: Node) -> None:
    """The dialer stops dead after the first answer (cancelled: nothing hung up, nothing
    written); the next one (same node) takes the call back from the database and the
    channel, and the second answer, given meanwhile or after, is stored too."""
    async with start_dialer(node, crash=True, clean=False) as running:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "survey", [NewContact(ANSWERS_4_2, "UTC")])
        async with asyncio.timeout(60):
            await dialer.wait_until(lambda: any(
                call.given.get("Q1") == "4" for call in dialer.live.values()))
        (channel_id,) = dialer.live
    async with start_dialer(node) as running:
        dialer = running.dialer
        async with asyncio.timeout(60):
            await dialer.wait_until(lambda: len(dialer.ended) == 1)
        async with dialer.sessions() as session:
            (attempt,) = await session.scalars(select(ContactAttempt))
            answers = await AnswerRepository(session).for_attempt(attempt.id)
            contact = await session.get(Contact, attempt.contact_id)
        assert attempt.channel_id == channel_id
        assert answers == {"Q1": "4", "Q2": "2"}
        assert attempt.outcome is AttemptOutcome.ANSWERED and attempt.cause == 16
        assert contact is not None and contact.state is ContactState.DONE


async def test_with_amd_a_machine_is_hung_up_and_a_person_still_answers(node: Node) -> None:
    """Campaign ``screened`` (AMD on, machines hung up): the carrier's answering machine
    ends ``machine`` and is due again after ``retry.machine``, with no answer stored; the
    respondent, judged a person, answers the survey as before."""
    machine = "+15550104002"
    async with start_dialer(node, campaign="screened") as running:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "screened", [NewContact(ANSWERS_4_2, "UTC"), NewContact(machine, "UTC")])
        async with asyncio.timeout(90):
            await dialer.wait_until(lambda: len(dialer.ended) == 2)
        async with dialer.sessions() as session:
            contacts = {c.number: c for c in await session.scalars(select(Contact))}
            attempts = {a.number: a for a in await session.scalars(select(ContactAttempt))}
            answers = await AnswerRepository(session).for_campaign("screened")
    assert {(row.number, row.variable, row.value) for row in answers} == {
        (ANSWERS_4_2, "Q1", "4"), (ANSWERS_4_2, "Q2", "2")}
    assert attempts[ANSWERS_4_2].outcome is AttemptOutcome.ANSWERED
    assert contacts[ANSWERS_4_2].state is ContactState.DONE
    hung_up = attempts[machine]
    assert hung_up.outcome is AttemptOutcome.MACHINE and hung_up.ended_at is not None
    assert contacts[machine].state is ContactState.PENDING
    assert contacts[machine].next_attempt_at == hung_up.ended_at + timedelta(hours=1)


async def test_a_message_campaign_plays_it_and_hangs_up(node: Node) -> None:
    """Campaign ``notice`` (``message``, no flow): whoever answers hears the message, then
    the dialer hangs up; the attempt is ``answered``, the contact done, nothing stored."""
    async with start_dialer(node, campaign="notice") as running:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "notice", [NewContact(ANSWERS_4_2, "UTC")])
        async with asyncio.timeout(60):
            await dialer.wait_until(lambda: len(dialer.ended) == 1)
        async with dialer.sessions() as session:
            (attempt,) = await session.scalars(select(ContactAttempt))
            contact = await session.get(Contact, attempt.contact_id)
            answers = await AnswerRepository(session).for_campaign("notice")
    assert attempt.outcome is AttemptOutcome.ANSWERED and attempt.answered_at is not None
    assert attempt.cause == 16 and attempt.ended_at is not None
    # The message (vm-goodbye, about 1 s) was played, then we hung up: well before the
    # respondent hangs up itself (about 23 s after answering).
    assert (attempt.ended_at - attempt.answered_at).total_seconds() < 15
    assert contact is not None and contact.state is ContactState.DONE
    assert answers == []


async def test_one_run_dials_two_campaigns_and_a_second_run_on_this_asterisk_is_refused(
        node: Node, tmp_path: Path) -> None:
    """``campaigns run survey notice``: one process, both campaigns' contacts dialled over
    one events connection (each dialer takes its own channels' events). A second
    ``campaigns run`` on the same Asterisk would take the app's events from the first
    (Asterisk gives them to the latest connection): it is refused, exit 1, and the first
    goes on dialling."""
    from tests.integration.dialer_process import campaign_run

    pbx = node.pbx
    engine = make_engine(pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    try:
        async with campaign_run(pbx.instance.home, pbx.config_dir, pbx.db_url, "survey",
                                "both", "notice", "survey") as first:
            await first.expect("campaign notice is running")
            await first.expect("campaign survey is running")
            async with campaign_run(pbx.instance.home, pbx.config_dir, pbx.db_url,
                                    "notice", "second") as second:
                async with asyncio.timeout(60):
                    status = await second.proc.wait()
                await second.kill()  # its output read to the end
            assert status == 1, second.tail()
            assert any("another dialer is connected to this Asterisk" in line
                       for line in second.lines), second.tail()
            # From CSV files by the CLI, each with a bad line reported and skipped.
            assert_imported(await import_csv(pbx, "survey", [BAD_ROW, f"{ANSWERS_4_2},UTC"],
                                             tmp_path), 2, 1)
            assert_imported(await import_csv(pbx, "notice", [f"{ANSWERS_5_1},UTC", BAD_ROW],
                                             tmp_path), 3, 1)
            await first.expect("attempt 1 ended answered", timeout=90)
            await first.expect("attempt 2 ended answered", timeout=90)
            assert await first.stop() == 0, first.tail()
        async with sessions() as session:
            attempts = {a.number: a for a in await session.scalars(select(ContactAttempt))}
            answers = await AnswerRepository(session).for_campaign("survey")
        assert {number: a.outcome for number, a in attempts.items()} == {
            ANSWERS_4_2: AttemptOutcome.ANSWERED, ANSWERS_5_1: AttemptOutcome.ANSWERED}
        assert [(a.variable, a.value) for a in answers] == [("Q1", "4"), ("Q2", "2")]
    finally:
        async with sessions.begin() as session:
            await session.execute(delete(ContactAnswer))
            await session.execute(delete(ContactAttempt))
            await session.execute(delete(Contact))
        await engine.dispose()
    left = await pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"
