"""``callcenter call``: a real SIP call to the session's Asterisk, reported from AMI.

The command runs in its own process, as a user runs it, against the session
instance (its SIP and AMI ports from the instance settings); the test's FastAGI
server answers its data dips. What it prints must be what Asterisk did: the
INVITE's final response, the flows and menus entered, the destination, the
hangup cause.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.conftest import PBX

pytestmark = pytest.mark.integration


async def _call(pbx: PBX, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from callcenter.cli import main; main()",
        "--home", str(pbx.instance.home), "call", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(90):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_call_reports_route_destination_and_cause(clean_pbx: PBX) -> None:
    rc, out, err = await _call(clean_pbx, "5551000", "--keys", "1,2",
                               "--caller-id", "15557770001", "--hold", "2")
    assert rc == 0, out + err
    lines = out.splitlines()
    assert lines[0] == (f"calling 5551000 at 127.0.0.1:{clean_pbx.sip_port} from 15557770001, "
                        "keys 1,2")
    assert "SIP: 200 OK" in lines
    assert "route: flow:inbound > menu:language > flow:english > menu:main" in lines
    assert "destination: queue sales skills=sales priority=5 language=en" in lines
    # No queue router is registered: Stasis fails and the queue's fallback takes the call.
    assert "then: voicemail general" in lines
    assert lines[-1].startswith("hangup: we hung up after 2 s (cause "), lines[-1]


async def test_call_with_an_account_number_and_a_vip_caller_id(clean_pbx: PBX) -> None:
    rc, out, err = await _call(clean_pbx, "5551000", "--keys", "1,1,100200#",
                               "--caller-id", "+15551230001", "--hold", "2")
    assert rc == 0, out + err
    lines = out.splitlines()
    assert "SIP: 200 OK" in lines
    assert "destination: queue customer_service skills=billing priority=10 language=en" \
        in lines, out


async def test_call_from_a_blocked_number_is_rejected(clean_pbx: PBX) -> None:
    rc, out, err = await _call(clean_pbx, "5551000", "--caller-id", "+15550000666")
    assert rc == 0, out + err
    lines = out.splitlines()
    assert "SIP: 403 Forbidden" in lines
    assert "route: (no flow entered)" in lines
    assert "destination: hangup 21" in lines
    assert lines[-1] == "hangup: Asterisk rejected the call (cause 21 Call Rejected)"


async def test_call_rejects_keys_that_are_not_dtmf(clean_pbx: PBX) -> None:
    rc, out, err = await _call(clean_pbx, "5551000", "--keys", "1,x")
    assert rc == 2
    assert "invalid keys 'x'" in err and "Traceback" not in err
