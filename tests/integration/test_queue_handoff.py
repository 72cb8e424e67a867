"""A queue destination hands the call to the queue router's Stasis app.

The contract the next issue's ARI queue router builds on:
``Stasis(cc-queue,<queue>,skills=a+b,priority=N,language=xx,entry=…,account=…)``.
Here the test itself is the Stasis app: it receives the real SIP call's
StasisStart, checks the arguments, and hangs the call up through ARI.
"""

from __future__ import annotations

import asyncio

import pytest

from callcenter.asterisk.ari import ARIClient, ARIEventStream, StasisStart
from callcenter.flows.lookup import perform_lookup
from callcenter.storage.directory import AccountDirectory
from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.conftest import PBX

pytestmark = pytest.mark.integration


async def _first_stasis_start(events: ARIEventStream, timeout: float) -> StasisStart:
    async with asyncio.timeout(timeout):
        async for event in events:
            if isinstance(event, StasisStart):
                return event
    raise AssertionError("event stream ended without StasisStart")


async def _account_id(pbx: PBX, number: str) -> str:
    """The id the data dip finds for ``number``, asked of the database directly."""
    accounts = AccountDirectory(pbx.db_url)
    try:
        result = await perform_lookup(pbx.loaded.config.lookups["account"], number,
                                      accounts=accounts)
    finally:
        await accounts.close()
    assert result.status == "found", result
    return result.fields["account_id"]


async def test_vip_account_call_reaches_queue_router_with_attributes(
    clean_pbx: PBX, ari_app: ARIClient
) -> None:
    pbx = clean_pbx
    app = pbx.loaded.config.settings.queue_app
    # VIP caller, customer service, account 100200 found in the database.
    keys = (Keypress("1", 2500), Keypress("1", 1200),
            *(Keypress(d, 400) for d in "100200#"))
    sip, media = pbx.sipp_ports()
    async with ari_app.events() as events:
        # The websocket is up, so Asterisk has registered the app: the call's Stasis()
        # cannot run before we listen (it would fail over to voicemail).
        assert (await ari_app.applications.get(app)).name == app
        async with asyncio.TaskGroup() as calls:
            call = calls.create_task(run_call(
                Caller("5551000", caller_id="+15551230001", keys=keys, hold_ms=20000),
                sip_port=pbx.sip_port, local_port=sip, media_port=media))
            start = await _first_stasis_start(events, timeout=40)
            # The router's answer, here: hang up. The caller must get the BYE.
            await ari_app.channels.hangup(start.channel.id)
    result = call.result()
    args = dict(a.split("=", 1) for a in start.args[1:])
    assert start.args[0] == "customer_service"
    assert args == {"skills": "billing", "priority": "10",  # VIP rule 10 + queue 0
                    "language": "en", "entry": "main_line",
                    "account": await _account_id(pbx, "100200")}
    assert start.channel.caller.number == "+15551230001"
    assert result.returncode == 0 and result.remote_hangup, result.stderr[-1000:]
