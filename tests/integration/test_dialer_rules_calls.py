"""The progressive dialer obeys the rules with real calls, and survives ``kill -9``.

The node of :mod:`tests.integration.test_dialer_progressive` (our Asterisk, the test
carrier on 127.0.0.2, carmen's baresip phone; a node of this module's own). What the
carrier's AMI sees is what was dialled:

* a contact whose number is on the do-not-call list is never dialled, is closed
  ``do_not_call`` and counted: ``callcenter campaigns report`` shows it blocked;
* a contact whose zone puts now outside the calling window is not dialled and is due at
  the window's next opening there; the contact inside its window is called;
* ``callcenter campaigns run`` killed with SIGKILL while carmen talks to a contact, then
  a dialer of the same node started again: the contact is dialled once, its attempt
  closed ``answered`` by carmen, the contact done (not lost, not called again), carmen
  free.

Every attempt row carries the rule that allowed it (``ok``, with its reason) and the
pacing rule that placed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from callcenter.agents.state import (
    AgentStatus,
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
)
from callcenter.agents.store import AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami.client import AMIMessage
from callcenter.cli import main
from callcenter.config.models import CallCenterConfig
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import (
    AttemptOutcome,
    Contact,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.aio import cancel_and_wait
from tests.integration.carrier_trunk import TRUNK_CALLER_ID
from tests.integration.carrier_trunk import DialerNode as Node
from tests.integration.dialer_process import campaign_run
from tests.integration.test_dialer_progressive import (
    TALKS,
    _carrier_calls,
    _collect,
    node,
    start_dialer,
)

pytestmark = pytest.mark.integration

__all__ = ["node"]  # the module's own node (a fixture imported is this module's too)

#: Numbers the carrier would answer if they were dialled (they must not be).
LISTED = "+15550100041"
OUTSIDE = "+15550100042"


def _zone_at_local_hours(hours: range, now: datetime) -> str:
    """A fixed-offset zone where ``now``'s local hour is in ``hours``."""
    for offset in range(-12, 15):
        zone = f"Etc/GMT{'+' if offset <= 0 else '-'}{abs(offset)}"
        if now.astimezone(ZoneInfo(zone)).hour in hours:
            return zone
    raise AssertionError(f"no zone has local hour in {hours}")


def _with_window(config: CallCenterConfig, window: str) -> CallCenterConfig:
    """The config, its campaign calling every day at ``window`` only."""
    campaign = config.campaigns["outbound"]
    windows = type(campaign).model_validate({  # validated (model_copy does not)
        "mode": "progressive", "trunk": campaign.trunk, "caller_id": campaign.caller_id,
        "safe_harbor": campaign.safe_harbor,
        "calling_windows": {"mon-sun": window}}).calling_windows
    campaign = campaign.model_copy(update={"calling_windows": windows})
    return config.model_copy(update={"campaigns": {**config.campaigns, "outbound": campaign}})


@contextlib.asynccontextmanager
async def carrier_calls(node: Node) -> AsyncIterator[list[AMIMessage]]:
    """The carrier's AMI ``Newexten`` events while the block runs."""
    seen: list[AMIMessage] = []
    with node.carrier_ami.subscribe("Newexten") as events:
        watcher = asyncio.create_task(_collect(events, seen))
        try:
            yield seen
        finally:
            await cancel_and_wait(watcher)


async def _talk_once(running, phone) -> int:  # type: ignore[no-untyped-def]
    """carmen logs in, answers the dialer's contact and hangs up; the attempt's id."""
    dialer = running.dialer
    call = asyncio.create_task(phone.call())
    try:
        await dialer.store.apply("carmen", Login(), utc_now(), reason="test")
        async with asyncio.timeout(60):
            await dialer.wait_until(lambda: "carmen" in dialer.talking)
        attempt_id = dialer.live["carmen"].attempt_id
        await phone.hangup()
        assert (await call).answered
    finally:
        await cancel_and_wait(call)
    async with asyncio.timeout(20):
        await dialer.wait_until(lambda: attempt_id in dialer.ended)
    return attempt_id


async def test_a_dnc_number_is_never_dialled_and_the_report_counts_it_blocked(
        node: Node) -> None:
    async with start_dialer(node) as running, node.pbx.agent_phone("carmen") as phone, \
            carrier_calls(node) as seen:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            repo = CampaignRepository(session)
            await repo.add_dnc([LISTED], source="test")
            # Listed first, imported after: pending, and claimed first.
            await repo.import_contacts("outbound", [NewContact(LISTED, "UTC"),
                                                    NewContact(TALKS, "UTC")])
        attempt_id = await _talk_once(running, phone)
        assert _carrier_calls(seen) == [f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]
        async with dialer.sessions() as session:
            contacts = {c.number: c for c in await session.scalars(select(Contact))}
            attempt = await session.get(ContactAttempt, attempt_id)
        assert contacts[LISTED].state is ContactState.DO_NOT_CALL
        assert contacts[LISTED].attempts == 0
        assert attempt is not None and attempt.number == TALKS
        assert (attempt.rule, attempt.pacing_rule) == ("ok", "progressive")
        assert attempt.reason and "UTC" in attempt.reason
        result = await asyncio.to_thread(CliRunner().invoke, main, [
            "--home", str(node.pbx.instance.home), "campaigns", "report", "outbound",
            "--config", str(node.pbx.config_dir), "--db", node.pbx.db_url,
            "--format", "json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["dnc_numbers_blocked"] == 1 and report["calls_to_dnc_numbers"] == []
        assert report["attempts"] == 1 and report["compliant"] is True


async def test_a_contact_outside_its_calling_window_is_not_dialled(node: Node) -> None:
    """Calling hours 09:00-17:00 in the contact's zone: the contact in a zone where it is
    evening or night now is put back until 09:00 there; the one where it is midday is
    called."""
    now = utc_now()
    night = _zone_at_local_hours(range(20, 24), now)
    midday = _zone_at_local_hours(range(11, 15), now)
    config = _with_window(node.pbx.loaded.config, "09:00-17:00")
    async with start_dialer(node, config=config) as running, \
            node.pbx.agent_phone("carmen") as phone, carrier_calls(node) as seen:
        dialer = running.dialer
        async with dialer.sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "outbound", [NewContact(OUTSIDE, night), NewContact(TALKS, midday)])
        await _talk_once(running, phone)
        assert _carrier_calls(seen) == [f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]
        async with dialer.sessions() as session:
            contacts = {c.number: c for c in await session.scalars(select(Contact))}
        outside = contacts[OUTSIDE]
        assert (outside.state, outside.attempts, outside.claimed_by) == (
            ContactState.PENDING, 0, None)
        due = outside.next_attempt_at
        assert due is not None and due > now
        local = due.astimezone(ZoneInfo(night))
        assert (local.hour, local.minute) == (9, 0), local
        assert contacts[TALKS].state is ContactState.DONE


async def test_a_dialer_killed_mid_call_and_restarted_neither_redials_nor_loses_the_contact(
        node: Node) -> None:
    engine = make_engine(node.pbx.db_url, sqlite_immediate=True)
    sessions = make_sessionmaker(engine)
    store = AgentStore(sessions, node="test")
    try:
        await store.ensure(node.pbx.loaded.config.agents, utc_now())
        async with sessions.begin() as session:
            await CampaignRepository(session).import_contacts("outbound",
                                                              [NewContact(TALKS, "UTC")])
        async with node.pbx.agent_phone("carmen") as phone, carrier_calls(node) as seen:
            async with campaign_run(node.pbx.instance.home, node.pbx.config_dir,
                                    node.pbx.db_url, "outbound", "test") as first:
                await first.expect("campaign outbound (progressive)")
                await store.apply("carmen", Login(), utc_now(), reason="test")
                await phone.event("CALL_ESTABLISHED", timeout=60)
                await first.expect("carmen talks to contact")
                await first.kill()  # SIGKILL mid-call: no cleanup of any kind
            async with sessions() as session:
                (open_attempt,) = await session.scalars(select(ContactAttempt))
            assert open_attempt.ended_at is None and open_attempt.answered_at is not None
            # The same node's dialer again: it closes what the killed one left open.
            async with start_dialer(node) as running:
                await phone.event("CALL_CLOSED", timeout=30)
                async with asyncio.timeout(20):
                    while (await store.get("carmen", utc_now())).status \
                            is not AgentStatus.AVAILABLE:
                        await running.passes(1)
                await running.passes(15)  # carmen free, passes go by: nothing is dialled
                assert running.dialer.live == {}
                # The killed run's mixing bridge went with its call.
                bridges = await running.dialer.ari.bridges.list()
                assert [b.id for b in bridges if b.id.startswith("cc-")] == []
                async with sessions() as session:
                    (attempt,) = await session.scalars(select(ContactAttempt))
                    (contact,) = await session.scalars(select(Contact))
        assert _carrier_calls(seen) == [f"carrier call from {TRUNK_CALLER_ID} to {TALKS}"]
        assert (attempt.id, attempt.outcome, attempt.agent) == (
            open_attempt.id, AttemptOutcome.ANSWERED, "carmen")
        assert attempt.ended_at is not None
        assert (attempt.rule, attempt.pacing_rule) == ("ok", "progressive")
        assert (contact.state, contact.attempts, contact.claimed_by) == (
            ContactState.DONE, 1, None)
    finally:
        now = utc_now()
        for event in (EndWrapUp(), Logout()):
            with contextlib.suppress(IllegalTransition):
                await store.apply("carmen", event, now, reason="test cleanup")
        await engine.dispose()

