"""Real SIP calls through ``tests/configs/agreement``: the PBX and ``simulate`` agree.

The config holds the cases where the two used to disagree:

- a ``branch`` on ``CC_ACCOUNT_VIP``, a variable only the lookup sets (the
  simulator ignored it and took the default);
- ``branch`` cases ``*1``, ``#1`` and ``11`` (the first two rendered to one
  extension name, Asterisk refused the second, and ``#1`` went where ``*1`` goes);
- a caller-ID rule whose destination is a queue (it reached ``Stasis`` on an
  unanswered channel).

Each case is a real call (sipp, RFC 2833 DTMF) into a private Asterisk running
the generated dialplan with a FastAGI server on the demo accounts, and the same
caller through ``simulate`` with the same database: same route, same outcome.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import agi_scripts
from callcenter.apply import apply_files
from callcenter.asterisk.agi import AGIContext, FastAGIServer
from callcenter.config.loader import LoadedConfig, load_config
from callcenter.flows.lookup import perform_lookup
from callcenter.flows.simulate import simulate
from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
from callcenter.storage.directory import AccountDirectory
from callcenter.storage.migrate import upgrade
from callcenter.storage.repositories import seed_demo_accounts
from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port
from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.integration.scratch_pbx import CallTrace, ScratchPBX, scratch_pbx
from tests.passwords import instance_render

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "agreement"
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@dataclass
class Agreement:
    pbx: ScratchPBX
    loaded: LoadedConfig
    accounts: AccountDirectory


@pytest.fixture(scope="module")
async def agreement(tmp_path_factory: pytest.TempPathFactory,
                    asterisk_installation) -> AsyncIterator[Agreement]:
    config_dir = tmp_path_factory.mktemp("agreement") / "agreement"
    shutil.copytree(CONFIG, config_dir)
    settings = config_dir / "settings.yaml"
    settings.write_text(settings.read_text().replace("port: 4573", f"port: {free_port()}"))
    loaded = load_config(config_dir, sounds=asterisk_installation.sound_languages(),
                         agi_scripts=agi_scripts.handlers().keys())
    home = tmp_path_factory.mktemp("agreement-home")
    db_url = default_sqlite_url(home)
    await upgrade(db_url)
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as session, session.begin():
        await seed_demo_accounts(session)
    accounts = AccountDirectory(db_url)
    fa = loaded.config.settings.fastagi
    server = FastAGIServer(agi_scripts.handlers(),
                           AGIContext(config=loaded.config, accounts=accounts),
                           host=fa.host, port=fa.port)
    await server.start()
    try:
        async with scratch_pbx(home, asterisk_installation) as pbx:
            await asyncio.to_thread(apply_files, pbx.instance,
                                    instance_render(pbx.instance, loaded))
            yield Agreement(pbx, loaded, accounts)
    finally:
        await server.stop()
        await accounts.close()
        await engine.dispose()


async def _call(a: Agreement, caller_id: str, keys: tuple[Keypress, ...] = ()) -> CallTrace:
    run = run_call(Caller("5552000", caller_id=caller_id, keys=keys, hold_ms=6000),
                   sip_port=a.pbx.sip_port, local_port=free_udp_tcp_port(),
                   media_port=free_udp_range(4)[0], timeout=40)
    return await a.pbx.trace(caller_id, run)


async def _simulate(a: Agreement, caller_id: str, keys: str = ""):
    config = a.loaded.config

    async def lookup(name: str, key: str):
        return await perform_lookup(config.lookups[name], key, accounts=a.accounts)

    return await simulate(config, "agree", keys=list(keys), caller_id=caller_id, now=NOW,
                          lookup=lookup)


@pytest.mark.parametrize("caller_id, flow", [
    ("+15551230001", "vip"),       # demo account Ada Lovelace, VIP
    ("+15551230002", "regular"),   # demo account Grace Hopper, not VIP
])
async def test_branch_on_a_lookup_variable(agreement: Agreement, caller_id: str,
                                           flow: str) -> None:
    sim = await _simulate(agreement, caller_id)
    trace = await _call(agreement, caller_id)
    assert trace.route == ["flow:start", f"flow:{flow}"], trace.apps()
    assert sim.route == trace.route, sim.events
    assert trace.hangup is not None and trace.hangup["Cause"] == "16", trace.hangup
    assert str(sim.outcome) == "hangup 16"


@pytest.mark.parametrize("keys, flow", [("*1", "star"), ("#1", "hash"), ("11", "eleven")])
async def test_branch_cases_differing_in_star_and_hash(agreement: Agreement, keys: str,
                                                       flow: str) -> None:
    caller_id = f"1555999000{'*#1'.index(keys[0])}"  # not an account: the keys decide
    sim = await _simulate(agreement, caller_id, keys)
    presses = (Keypress(keys[0], 1500), Keypress(keys[1], 400))
    trace = await _call(agreement, caller_id, presses)
    assert trace.route == ["flow:start", "flow:keys", f"flow:{flow}"], trace.apps()
    assert sim.route == trace.route, sim.events


async def test_rule_straight_to_a_queue_reaches_stasis_answered(agreement: Agreement) -> None:
    caller_id = "+15557770001"
    sim = await _simulate(agreement, caller_id)
    trace = await _call(agreement, caller_id)
    stasis = trace.app("Stasis")
    assert stasis is not None, trace.apps()
    # The router gets an answered channel, whichever route led to the queue.
    assert stasis["ChannelStateDesc"] == "Up", dict(stasis)
    args = stasis["AppData"].split(",")
    assert args[:2] == ["cc-queue", "support"]
    assert "skills=support" in args and "priority=3" in args, args
    assert str(sim.outcome) == "queue support skills=support priority=3 language=en"
    # No router runs in this test: the queue's fallback hangs up with cause 34.
    assert trace.hangup is not None and trace.hangup["Cause"] == "34", dict(trace.hangup)


async def test_no_channel_left(agreement: Agreement) -> None:
    assert await asyncio.to_thread(agreement.pbx.instance.wait_no_channels, 10) == 0


async def test_a_call_from_the_admins_own_dialplan_gets_the_queues_defaults(
        agreement: Agreement) -> None:
    """``Goto(cc-queue,support,1)`` from a context we did not generate: none of the
    flow's variables are set, yet the router gets the queue's skills and priority."""
    caller = "15550004242"
    originate = agreement.pbx.ami.action(
        "Originate", Channel="Local/support@cc-queue", Application="Wait", Data="1",
        CallerID=f"<{caller}>", Async="true")
    trace = await agreement.pbx.trace(caller, originate, timeout=30)
    stasis = trace.app("Stasis")
    assert stasis is not None, trace.apps()
    args = stasis["AppData"].split(",")
    assert args[:4] == ["cc-queue", "support", "skills=support", "priority=0"], args
