"""Transfers of a queue call to an external number, on real PBXs joined by a real trunk.

Our node is an Asterisk of its own with the example config plus a trunk to the test
carrier (:mod:`callcenter.testing.carrier`, a second Asterisk on 127.0.0.2 playing the
public network) named as ``settings.outbound_trunk``; the session's FastAGI server runs
its IVR, agents' phones (baresip) register to it with their usual passwords. A real
caller (sipp, through the IVR into sales) is answered by carmen, then sent blind to a
carrier number by the HTTP API or by carmen's phone (REFER).

What is asserted is what happened: the carrier's dialplan took a call to that number
from our trunk's caller ID (its AMI ``Newexten``), our side's trunk leg was answered
(``DialEnd`` ANSWER on ``PJSIP/carrier-...``), the call's own bridge held the caller and
the transfer's leg (``Local/<number>@cc-trunk-carrier-out``), carmen's phone was hung up
and she is available again after her wrap-up, the carrier's hang-up ended the caller's
call, and the records (``queued_calls``, ``call_transfers``) say so. Hostile numbers are
422s naming ``to.number`` and reach no dial string: no channel is created, the carrier
sees no call. A busy number sends the caller back to its place in the queue. Callback
calls (carmen rung, then the customer: a sipp UAS as in ``test_queue_callback``) go the
same way to a number, by the API and by REFER; other targets and attended mode are 409.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import agi_scripts
from callcenter.agents.state import AgentStatus
from callcenter.apply import apply_files
from callcenter.asterisk import variables as V
from callcenter.asterisk.ami.client import AMIClient, AMIMessage
from callcenter.asterisk.secrets import (
    AGENT_PASSWORDS,
    agent_passwords,
    ensure_secrets,
    read_secrets,
    set_trunk_password,
    trunk_passwords,
)
from callcenter.config.loader import load_config
from callcenter.testing.carrier import Carrier
from dialplan.generator import render, softphone_agents
from dialplan.trunks import auth_trunks, trunk_out_context
from tests.conftest import PBX
from tests.integration.carrier_trunk import wait_registered
from tests.integration.router_harness import (
    RunningRouter,
    place_call,
    start_router,
    with_queue,
)
from tests.integration.scratch_pbx import scratch_pbx
from tests.integration.test_queue_callback import (
    _ANSWER,
    ASKS_CALLBACK,
    callback_config,
    customer,
    pending_callbacks,
    records,
)
from tests.integration.transfer_harness import (
    api_on,
    ask,
    carmen_answers,
    transfers_of,
)

pytestmark = pytest.mark.integration

TRUNK_CALLER_ID = "+15550100000"
#: The carrier's numbers: answers, says "hello world", hangs up 8 s later.
TALKS_8S = "+15550100008"


@dataclass
class Trunked:
    """Our node (a :class:`PBX` the router harness and phones use) and the carrier."""

    pbx: PBX
    ami: AMIClient
    carrier: Carrier
    carrier_ami: AMIClient


def _config_with_trunk(pbx: PBX, dest: Path, carrier: Carrier) -> Path:
    """The session's example copy (its FastAGI port) plus the carrier trunk, named as
    ``settings.outbound_trunk``."""
    shutil.copytree(pbx.config_dir, dest)
    settings = dest / "settings.yaml"
    text = settings.read_text()
    assert "  queue_app: cc-queue" in text, "example settings.yaml changed: update the test"
    settings.write_text(text.replace("  queue_app: cc-queue",
                                     "  outbound_trunk: carrier\n  queue_app: cc-queue"))
    (dest / "trunks.yaml").write_text(carrier.trunk_yaml(
        caller_id=TRUNK_CALLER_ID, dids={"+15550109000": "main_line"}))
    return dest


@pytest.fixture(scope="module")
async def trunked(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
                  asterisk_installation) -> AsyncIterator[Trunked]:
    from callcenter.storage import default_sqlite_url
    from callcenter.storage.migrate import upgrade

    carrier = Carrier(tmp_path_factory.mktemp("carrier-home"))
    carrier.setup(asterisk_installation)
    await asyncio.to_thread(carrier.start)
    try:
        creds = carrier.instance.credentials
        host, port = carrier.instance.ami_address
        home = tmp_path_factory.mktemp("trunked-home")
        async with AMIClient(host, port, username=creds.ami_user,
                             secret=creds.ami_secret) as carrier_ami, \
                scratch_pbx(home, asterisk_installation) as ours:
            config_dir = _config_with_trunk(
                pbx, tmp_path_factory.mktemp("trunked-config") / "example", carrier)
            loaded = load_config(config_dir, sounds=asterisk_installation.sound_languages(),
                                 agi_scripts=agi_scripts.handlers().keys())
            secrets_file = ours.instance.secrets_file
            # The session's agent passwords: the phones' accounts work here too.
            ensure_secrets(secrets_file, {
                AGENT_PASSWORDS: read_secrets(pbx.instance.secrets_file)[AGENT_PASSWORDS]})
            set_trunk_password(secrets_file, "carrier", carrier.password)
            files = render(loaded.config, loaded.where,
                           agent_passwords=agent_passwords(secrets_file,
                                                           softphone_agents(loaded.config)),
                           trunk_passwords=trunk_passwords(secrets_file,
                                                           auth_trunks(loaded.config)))
            db_url = default_sqlite_url(home)
            await upgrade(db_url)
            node = PBX(ours.instance, loaded, config_dir, pbx.clock, pbx.agi, db_url,
                       _ports=pbx._ports)  # one port sequence for every phone and caller
            with ours.ami.subscribe("Registry") as registry:
                await asyncio.to_thread(apply_files, ours.instance, files)
                await wait_registered(ours, registry)
            await asyncio.to_thread(
                ours.instance.cli,
                f"dialplan set global {V.CLOCK_OVERRIDE} {int(pbx.clock.now.timestamp())}")
            yield Trunked(node, ours.ami, carrier, carrier_ami)
    finally:
        await asyncio.to_thread(carrier.stop)


@pytest.fixture
async def running(trunked: Trunked) -> AsyncIterator[RunningRouter]:
    async with start_router(trunked.pbx) as handle:
        yield handle
    left = await trunked.pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left on our node after the test"


def _carrier_calls(events: list[AMIMessage]) -> list[str]:
    """The carrier's ``NoOp(carrier call from <caller> to <number>)`` of each call."""
    return [e["AppData"] for e in events if e.event == "Newexten"
            and e.get("Context") == "carrier-in" and e.get("Application") == "NoOp"]


async def _collect(subscription, into: list[AMIMessage]) -> None:  # type: ignore[no-untyped-def]
    while True:
        into.append(await subscription.get())


async def _connected_to_number(running: RunningRouter, ami_seen: list[AMIMessage],
                               channel: str, number: str) -> str:
    """Wait until the transfer of *channel* has joined *number*'s leg to the party's
    bridge (the caller's, or a callback's customer leg in the callback's bridge); check
    the bridge and the trunk leg's answer; the leg's id."""
    router = running.router
    async with asyncio.timeout(30):
        await router.wait_until(lambda: (t := router.transfers.active.get(channel))
                                is not None and t.state == "connected")
    t = router.transfers.active[channel]
    caller = router.callers[channel]
    assert caller.agent_channel == t.leg_id
    attempt = router.callbacks.connected_attempt(channel)
    party, bridge_id = (channel, caller.bridge_id) if attempt is None else (
        attempt.customer_leg, attempt.bridge_id)
    bridge = await running.ari.bridges.get(bridge_id)
    assert set(bridge.channels) == {party, t.leg_id}, bridge.channels
    leg = await running.ari.channels.get(t.leg_id or "")
    assert leg.name.startswith(f"Local/{number}@{trunk_out_context('carrier')}-"), leg.name
    assert leg.state == "Up"
    # Our trunk leg (the Local channel's other half dialled it) was answered.
    answers = [e for e in ami_seen if e.event == "DialEnd"
               and e.get("DestChannel", "").startswith("PJSIP/carrier-")]
    assert [e["DialStatus"] for e in answers] == ["ANSWER"], answers
    return t.leg_id or ""


async def test_blind_to_an_external_number_by_api(trunked: Trunked,
                                                  running: RunningRouter) -> None:
    """Hostile numbers are refused (422, ``to.number``) and never dialled; carmen's own
    token sends the caller blind to a carrier number: the carrier answers the caller
    (the call's bridge: the caller and the number's leg), carmen is hung up, wraps up
    and is available again; the carrier's hang-up after 8 s ends the caller's call;
    the records say who had it."""
    caller = "15558870101"
    pbx = trunked.pbx
    carrier_seen: list[AMIMessage] = []
    ours_seen: list[AMIMessage] = []
    with trunked.carrier_ami.subscribe("Newexten") as carrier_events, \
            trunked.ami.subscribe("DialEnd") as our_events:
        watchers = [asyncio.create_task(_collect(carrier_events, carrier_seen)),
                    asyncio.create_task(_collect(our_events, ours_seen))]
        try:
            async with api_on(pbx, running) as api, carmen_answers(
                    pbx, running, caller, hold_ms=40_000) as (channel, _carmen, call,
                                                              carmen_call):
                path = f"/api/v1/calls/{channel}/transfer"
                before = {c.id for c in await running.ari.channels.list()}
                for hostile in ("1;Hangup", "${SHELL(x)}", "+1555abc0100", "",
                                "+" + "5" * 40, "5550100/n", "+15550100008&PJSIP/alice",
                                "+15550100008@carrier"):
                    refused = await ask(api, "carmen_phone", path, 422,
                                        {"to": {"number": hostile}})
                    assert refused["field"] == "to.number", refused
                assert {c.id for c in await running.ari.channels.list()} == before
                assert running.router.states["carmen"].status is AgentStatus.ON_CALL
                assert _carrier_calls(carrier_seen) == []

                started = await ask(api, "carmen_phone", path, 200,
                                    {"to": {"number": TALKS_8S}})
                assert (started["to"], started["mode"], started["via"]) == (
                    {"number": TALKS_8S}, "blind", "api:carmen_phone")
                leg = await _connected_to_number(running, ours_seen, channel, TALKS_8S)
                closed = await carmen_call
                assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
                assert running.router.states["carmen"].status is AgentStatus.WRAP_UP
                # The carrier talks 8 s, then hangs up: the caller's call ends with it.
                result = await call
                assert result.returncode == 0 and result.remote_hangup, result.stderr[-800:]
                # Free again once the wrap-up (sales: 10 s) is over.
                await running.wait_state("carmen", AgentStatus.AVAILABLE, timeout=30)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
    assert _carrier_calls(carrier_seen) == [
        f"carrier call from {TRUNK_CALLER_ID} to {TALKS_8S}"]
    queued = await running.queued(caller)
    assert (queued.queue, queued.agent, queued.outcome) == ("sales", "carmen", "answered")
    (row,) = await transfers_of(running, channel)
    assert (row.from_agent, row.from_queue, row.mode, row.target_kind, row.target,
            row.answered_by, row.result, row.via) == (
        "carmen", "sales", "blind", "number", TALKS_8S, TALKS_8S, "completed",
        "api:carmen_phone")
    assert row.answered_at is not None and row.ended_at is not None
    assert leg.startswith(channel)


async def test_blind_to_an_external_number_by_the_phones_refer(
        trunked: Trunked, running: RunningRouter) -> None:
    """carmen presses her phone's transfer key and keys a carrier number: the REFER comes
    to the router, the carrier answers the caller, carmen's call ends; the record says
    via refer."""
    caller = "15558870102"
    pbx = trunked.pbx
    ours_seen: list[AMIMessage] = []
    with trunked.ami.subscribe("DialEnd") as our_events:
        watcher = asyncio.create_task(_collect(our_events, ours_seen))
        try:
            async with carmen_answers(pbx, running, caller, hold_ms=40_000) as (
                    channel, carmen, call, carmen_call):
                await carmen.transfer(TALKS_8S)
                await _connected_to_number(running, ours_seen, channel, TALKS_8S)
                closed = await carmen_call
                assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
                result = await call
                assert result.returncode == 0 and result.remote_hangup, result.stderr[-800:]
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    queued = await running.queued(caller)
    assert (queued.agent, queued.outcome) == ("carmen", "answered")
    (row,) = await transfers_of(running, channel)
    assert (row.from_agent, row.mode, row.target_kind, row.target, row.via,
            row.result) == ("carmen", "blind", "number", TALKS_8S, "refer", "completed")



async def test_a_busy_number_sends_the_caller_back_to_its_place_in_the_queue(
        trunked: Trunked, running: RunningRouter) -> None:
    """The number is busy (486 at the carrier): carmen has left (wrap-up), the caller
    waits in sales again with its original entry time; the transfer's record says
    no_answer. The caller then hangs up while carmen still wraps up: abandoned."""
    caller = "15558870103"
    busy = "+15550101000"
    pbx = trunked.pbx
    ours_seen: list[AMIMessage] = []
    with trunked.ami.subscribe("DialEnd") as our_events:
        watcher = asyncio.create_task(_collect(our_events, ours_seen))
        try:
            async with api_on(pbx, running) as api, carmen_answers(
                    pbx, running, caller, hold_ms=8_000) as (channel, _carmen, call,
                                                             carmen_call):
                entered = running.router.callers[channel].waiting.enqueued_at
                await ask(api, "carmen_phone", f"/api/v1/calls/{channel}/transfer", 200,
                          {"to": {"number": busy}})
                router = running.router
                async with asyncio.timeout(30):
                    await router.wait_until(lambda: channel not in router.transfers.active)
                state = router.callers[channel]
                assert (state.phase, state.args.queue) == ("waiting", "sales")
                assert state.waiting.enqueued_at == entered
                assert router.states["carmen"].status is AgentStatus.WRAP_UP
                assert (await carmen_call).answered
                result = await call  # the caller hangs up, still waiting
                assert result.returncode == 0 and not result.remote_hangup, result.stderr
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    trunk_legs = [e["DialStatus"] for e in ours_seen if e.event == "DialEnd"
                  and e.get("DestChannel", "").startswith("PJSIP/carrier-")]
    assert trunk_legs == ["BUSY"], ours_seen
    queued = await running.queued(caller)
    assert (queued.queue, queued.agent, queued.outcome) == ("sales", None, "abandoned")
    (row,) = await transfers_of(running, channel)
    assert (row.target_kind, row.target, row.answered_by, row.result) == (
        "number", busy, None, "no_answer")

# -- callback calls: the router called carmen, then the customer ------------------------------

async def test_a_callback_call_goes_blind_to_an_external_number_by_api(
        trunked: Trunked) -> None:
    """carmen talks with a callback's customer; a queue or attended transfer of that call
    is 409 (the field named), a hostile number 422; blind to a carrier number: the
    carrier answers the customer in the callback's bridge, carmen leaves and wraps up,
    the carrier's hang-up 8 s later ends the customer's call; the records follow."""
    pbx = trunked.pbx
    phone = customer(pbx)
    number = "15558889101"
    ours_seen: list[AMIMessage] = []
    config = with_queue(callback_config(pbx, phone), "sales", wrapup=10)
    async with start_router(pbx, config) as running, \
            api_on(pbx, running) as api, pbx.agent_phone("carmen") as carmen:
        with trunked.ami.subscribe("DialEnd") as our_events:
            watcher = asyncio.create_task(_collect(our_events, ours_seen))
            try:
                asked = await place_call(pbx, number, ASKS_CALLBACK, hold_ms=20000)
                assert asked.returncode == 0 and asked.remote_hangup, asked.stderr
                await pending_callbacks(running, 1)
                channel = next(c for c, n in running.numbers.items() if n == number)
                answering = asyncio.create_task(phone.take(_ANSWER))
                carmen_call = asyncio.create_task(carmen.call())
                await running.login("carmen")
                async with asyncio.timeout(30):
                    await running.router.wait_until(
                        lambda: running.router.callbacks.connected_attempt(channel)
                        is not None)
                path = f"/api/v1/calls/{channel}/transfer"
                for body, status, field in (
                        ({"to": {"queue": "tech_support"}}, 409, "to"),
                        ({"to": {"agent": "alice"}}, 409, "to"),
                        ({"to": {"number": TALKS_8S}, "mode": "attended"}, 409, "mode"),
                        ({"to": {"number": "1;Hangup"}}, 422, "to.number")):
                    refused = await ask(api, "carmen_phone", path, status, body)
                    assert refused["field"] == field, refused
                assert running.router.states["carmen"].status is AgentStatus.ON_CALL
                started = await ask(api, "carmen_phone", path, 200,
                                    {"to": {"number": TALKS_8S}})
                assert started["to"] == {"number": TALKS_8S}
                await _connected_to_number(running, ours_seen, channel, TALKS_8S)
                closed = await carmen_call
                assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
                assert running.router.states["carmen"].status is AgentStatus.WRAP_UP
                # The carrier hangs up after 8 s: the customer's phone gets the BYE.
                await answering
                queued = await running.queued(number)
                await running.wait_state("carmen", AgentStatus.AVAILABLE, timeout=30)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        request, attempts = await records(running, number)
        (row,) = await transfers_of(running, channel)
    assert (queued.outcome, queued.agent) == ("answered", "carmen")
    assert request.status == "done"
    assert [(x.agent, x.result) for x in attempts] == [("carmen", "answered")]
    assert (row.from_agent, row.mode, row.target_kind, row.target, row.answered_by,
            row.result, row.via) == ("carmen", "blind", "number", TALKS_8S, TALKS_8S,
                                     "completed", "api:carmen_phone")
    assert await pbx.wait_no_channels() == 0


async def test_a_callback_call_goes_to_a_number_by_the_phones_refer(
        trunked: Trunked) -> None:
    """carmen, talking with a callback's customer, keys a carrier number on her phone's
    transfer key: the REFER comes to the router, the carrier takes the customer."""
    pbx = trunked.pbx
    phone = customer(pbx)
    number = "15558889102"
    ours_seen: list[AMIMessage] = []
    async with start_router(pbx, callback_config(pbx, phone)) as running, \
            pbx.agent_phone("carmen") as carmen:
        with trunked.ami.subscribe("DialEnd") as our_events:
            watcher = asyncio.create_task(_collect(our_events, ours_seen))
            try:
                asked = await place_call(pbx, number, ASKS_CALLBACK, hold_ms=20000)
                assert asked.returncode == 0 and asked.remote_hangup, asked.stderr
                await pending_callbacks(running, 1)
                channel = next(c for c, n in running.numbers.items() if n == number)
                answering = asyncio.create_task(phone.take(_ANSWER))
                carmen_call = asyncio.create_task(carmen.call())
                await running.login("carmen")
                async with asyncio.timeout(30):
                    await running.router.wait_until(
                        lambda: running.router.callbacks.connected_attempt(channel)
                        is not None)
                await carmen.transfer(TALKS_8S)
                await _connected_to_number(running, ours_seen, channel, TALKS_8S)
                closed = await carmen_call
                assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
                await answering
                queued = await running.queued(number)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        (row,) = await transfers_of(running, channel)
    assert (queued.outcome, queued.agent) == ("answered", "carmen")
    assert (row.target_kind, row.target, row.via, row.result) == (
        "number", TALKS_8S, "refer", "completed")
    assert await pbx.wait_no_channels() == 0
