"""A call never falls off the dialplan when the FastAGI server is down.

With the server stopped, a real SIP call must still get through: the schedule
check is native dialplan and does not need it, and the account lookup takes
its ``error`` branch (the example sends it to customer service): the queue
router (played by the test) receives the call, with no account.
"""

from __future__ import annotations

import pytest

from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.conftest import PBX
from tests.integration.queue_router import QueueRouterStub, queue_outcome
from tests.integration.route import RouteObserver

pytestmark = pytest.mark.integration


async def test_call_survives_fastagi_outage(clean_pbx: PBX, ami_observer: RouteObserver,
                                           queue_router: QueueRouterStub) -> None:
    pbx = clean_pbx
    caller_id = "15559990001"
    digits = [Keypress(d, 400) for d in "100200#"]
    keys = (Keypress("1", 2500), Keypress("1", 1200), *digits)
    ami_observer.expect(caller_id)
    await pbx.agi.stop()
    try:
        sip, media = pbx.sipp_ports()
        result = await run_call(Caller("5551000", caller_id=caller_id, keys=keys, hold_ms=3000),
                                sip_port=pbx.sip_port, local_port=sip, media_port=media)
    finally:
        await pbx.agi.start()
    observed = await ami_observer.wait_ended(caller_id)
    apps = observed.apps()
    assert result.returncode == 0, result.stderr[-1500:]
    assert any(a.startswith("AGI(") for a in apps), apps  # the dip was tried
    assert any(s.get("Extension") == "lookup2-error" for s in observed.steps), apps
    assert observed.route == ["flow:inbound", "menu:language", "flow:english", "menu:main",
                              "flow:customer_service"], apps
    # The call reached a person's queue: the router got it, without an account.
    start = queue_router.starts.get(caller_id)
    assert start is not None, apps
    assert queue_outcome(start) == "queue customer_service skills=billing priority=0 language=en"
    assert dict(a.split("=", 1) for a in start.args[1:])["account"] == "", start.args
