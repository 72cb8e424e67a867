"""A call never falls off the dialplan when the FastAGI server is down.

With the server stopped, a real SIP call must still get through: the schedule
check is native dialplan and does not need it, and the account lookup takes
its ``error`` branch (the example sends it to customer service).
"""

from __future__ import annotations

import pytest

from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.conftest import PBX
from tests.integration.route import RouteObserver

pytestmark = pytest.mark.integration


async def test_call_survives_fastagi_outage(clean_pbx: PBX, ami_observer: RouteObserver) -> None:
    pbx = clean_pbx
    caller_id = "15559990001"
    digits = [Keypress(d, 400) for d in "100200#"]
    keys = (Keypress("1", 2500), Keypress("1", 1200), *digits)
    await pbx.agi.stop()
    try:
        sip, media = pbx.sipp_ports()
        result = await run_call(Caller("5551000", caller_id=caller_id, keys=keys, hold_ms=3000),
                                sip_port=pbx.sip_port, local_port=sip, media_port=media)
    finally:
        await pbx.agi.start()
    observed = await ami_observer.wait_outcome(caller_id)
    apps = observed.apps()
    assert result.returncode == 0, result.stderr[-1500:]
    assert any(a.startswith("AGI(") for a in apps), apps  # the dip was tried
    assert observed.route == ["flow:inbound", "menu:language", "flow:english", "menu:main",
                              "flow:customer_service"], apps
    assert observed.outcome == "queue customer_service skills=billing priority=0 language=en"
    assert any(s.get("Extension") == "lookup2-error" for s in observed.steps), apps
