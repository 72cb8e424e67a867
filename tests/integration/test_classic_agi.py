"""Classic AGI: Asterisk starts ``callcenter agi run`` per call, over stdin/stdout.

The test writes a context into ``extensions_custom.conf`` (the file the instance
``#tryinclude``s and never writes), runs it on a Local channel, and reads what the
script set from a ``UserEvent``: the same ``account_lookup`` the FastAGI server
serves, against the seeded database.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from callcenter.asterisk.ami.client import AMIClient
from tests.conftest import PBX

pytestmark = pytest.mark.integration


async def _run_context(pbx: PBX, ami: AMIClient, number: str) -> dict[str, str]:
    program = Path(sys.executable).parent / "callcenter"
    assert program.exists(), program
    agi = ",".join([str(program), "--home", str(pbx.instance.home), "agi", "run",
                    str(pbx.config_dir), "account_lookup", "account", number])
    (pbx.instance.etc / "extensions_custom.conf").write_text(
        "[cc-test-classic]\n"
        "exten => s,1,Set(CC_LOOKUP_STATUS=)\n"
        f" same => n,AGI({agi})\n"
        " same => n,UserEvent(ClassicAGI,Status: ${CC_LOOKUP_STATUS},"
        "Name: ${CC_ACCOUNT_NAME},Agistatus: ${AGISTATUS})\n"
        " same => n,Hangup()\n")
    await asyncio.to_thread(pbx.instance.cli, "dialplan reload")
    with ami.subscribe("UserEvent") as events:
        await ami.action("Originate", Channel="Local/s@cc-test-classic/n", Application="Wait",
                         Data="1", Async="true")
        async with asyncio.timeout(30):
            while True:
                event = await events.get()
                if event.get("UserEvent") == "ClassicAGI":
                    return dict(event)


async def test_classic_agi_lookup_through_asterisk(clean_pbx: PBX, ami: AMIClient) -> None:
    try:
        found = await _run_context(clean_pbx, ami, "100200")
        missing = await _run_context(clean_pbx, ami, "999999")
    finally:
        (clean_pbx.instance.etc / "extensions_custom.conf").unlink(missing_ok=True)
        await asyncio.to_thread(clean_pbx.instance.cli, "dialplan reload")
    assert (found["Status"], found["Name"], found["Agistatus"]) == (
        "found", "Ada Lovelace", "SUCCESS"), found
    assert (missing["Status"], missing["Agistatus"]) == ("not_found", "SUCCESS"), missing
