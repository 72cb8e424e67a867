"""A queue destination hands the call to the queue router's Stasis app.

The contract the next issue's ARI queue router builds on:
``Stasis(cc-queue,<queue>,skills=a+b,priority=N,language=xx,entry=…,account=…)``.
Here the test itself is the Stasis app: it receives the real SIP call's
StasisStart, checks the arguments, and hangs the call up through ARI.
"""

from __future__ import annotations

import asyncio

import pytest

from callcenter.asterisk.ari import ARIClient, StasisStart
from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.conftest import PBX

pytestmark = pytest.mark.integration


async def _first_stasis_start(ari: ARIClient, timeout: float) -> StasisStart:
    async with asyncio.timeout(timeout):
        async with ari.events() as events:
            async for event in events:
                if isinstance(event, StasisStart):
                    return event
    raise AssertionError("event stream ended without StasisStart")


async def test_vip_account_call_reaches_queue_router_with_attributes(
    clean_pbx: PBX, ari_app: ARIClient
) -> None:
    pbx = clean_pbx
    # VIP caller, customer service, account 100200 found in the database.
    keys = (Keypress("1", 2500), Keypress("1", 1200),
            *(Keypress(d, 400) for d in "100200#"))
    sip, media = pbx.sipp_ports()
    waiter = asyncio.create_task(_first_stasis_start(ari_app, timeout=40))
    call = asyncio.create_task(run_call(
        Caller("5551000", caller_id="+15551230001", keys=keys, hold_ms=20000),
        sip_port=pbx.sip_port, local_port=sip, media_port=media))
    try:
        start = await waiter
        args = dict(a.split("=", 1) for a in start.args[1:])
        assert start.args[0] == "customer_service"
        assert args["skills"] == "billing"
        assert args["priority"] == "10"  # VIP rule 10 + queue 0
        assert args["language"] == "en"
        assert args["entry"] == "main_line"
        assert args["account"].isdigit()  # the account found by the data dip
        assert start.channel.caller.number == "+15551230001"
        await ari_app.channels.hangup(start.channel.id)
        result = await call
    finally:
        call.cancel()
        waiter.cancel()
    assert result.returncode == 0 and result.remote_hangup, result.stderr[-1000:]
