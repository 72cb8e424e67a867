"""The placer's checks before it dials, its event routing, and the dialer's AMD context
as the generator writes it. The calls themselves: ``tests/integration/test_dialer_call.py``
(a real trunk to the real test carrier)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter.asterisk import instance
from callcenter.asterisk import variables as V
from callcenter.asterisk.ari.client import ARIClient
from callcenter.asterisk.ari.events import parse_event
from callcenter.dialer.amd import AMD_CONTEXT, DIALER_APP
from callcenter.dialer.outcome import Outcome
from callcenter.dialer.placer import ChannelInboxes, new_channel_id, place_call
from dialplan.dialer import amd_context
from dialplan.generator import render
from tests.passwords import fake_passwords
from tests.unit.test_checks import load

#: Never opened: a refused call must not reach ARI at all (any request would fail).
ARI = ARIClient("http://127.0.0.1:9", username="u", password="p", app=DIALER_APP)


async def _place(number: str, **kwargs: object):
    inbox: asyncio.Queue = asyncio.Queue()
    args: dict[str, object] = {"trunk": "carrier", "ring_seconds": 20,
                               "channel_id": new_channel_id(), **kwargs}
    return await place_call(ARI, inbox, number=number, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("number", [
    "", "+", "1", "+1555;0100003", "1000@evil", "${SHELL(id)}", "+15550100003,Wait(9)",
    "+15550100003\n", " +15550100003", "+15550100003/x", "++15550100003", "1" * 21,
    "+1555０100003",  # fullwidth digit: str.isdigit() says yes, the dial context says no
])
async def test_a_number_that_is_not_one_is_refused_before_dialling(number: str) -> None:
    call = await _place(number)
    assert call.outcome is Outcome.INVALID_NUMBER
    assert call.channel is None and call.observation.cause == 28


@pytest.mark.parametrize("kwargs, words", [
    ({"trunk": "carrier-out@x"}, "trunk"),
    ({"trunk": "Carrier"}, "trunk"),
    ({"caller_id": "+1555 0100"}, "caller ID"),
    ({"caller_id": "${CALLERID(num)}"}, "caller ID"),
    ({"ring_seconds": 0}, "ring_seconds"),
    ({"ring_seconds": 301}, "ring_seconds"),
    ({"ring_seconds": 2.5}, "ring_seconds"),
    ({"ring_seconds": True}, "ring_seconds"),
    ({"app": "cc-other"}, "AMD returns calls"),
])
async def test_arguments_only_a_bug_would_give_raise(kwargs: dict[str, object], words: str,
                                                     ) -> None:
    with pytest.raises(ValueError, match=words):
        await _place("+15550100003", **kwargs)


def _event(kind: str, channel_id: str, **extra: object):
    channel = {"id": channel_id, "name": "Local/x@y-1;1", "state": "Up",
               "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""},
               "dialplan": {"context": "c", "exten": "s", "priority": 1}}
    return parse_event({"type": kind, "application": DIALER_APP, "channel": channel, **extra})


def test_inboxes_route_a_channels_events_to_its_placer_only() -> None:
    inboxes = ChannelInboxes()
    mine, other = new_channel_id(), new_channel_id()
    with inboxes.open(mine) as inbox:
        assert inboxes.put(_event("StasisStart", mine, args=["answered"]))
        assert inboxes.put(_event("ChannelVarset", mine, variable=V.AMD, value="HUMAN:"))
        assert not inboxes.put(_event("StasisStart", other, args=["answered"]))
        assert [e.type for e in (inbox.get_nowait(), inbox.get_nowait())] == [
            "StasisStart", "ChannelVarset"]
        assert inbox.empty()
        with pytest.raises(ValueError, match="already"), inboxes.open(mine):
            pass
    # Closed: late events of the call are dropped, not kept for ever.
    assert not inboxes.put(_event("ChannelDestroyed", mine, cause=16, cause_txt="Normal"))


# -- the AMD context ---------------------------------------------------------------------------

def test_amd_context_runs_amd_keeps_the_verdict_and_returns_to_the_dialer() -> None:
    text = amd_context()
    # The analysis (extension s); the beep wait after it: test_dialer_machine_message.py.
    lines = text.split("\n; A machine to leave a message on", 1)[0].splitlines()
    assert lines[0] == f"[{AMD_CONTEXT}]"
    body = [x for x in lines if not x.startswith(";")][1:]
    assert body == [
        "exten => s,1,NoOp(callcenter dialer AMD on ${CHANNEL(name)})",
        " same => n,AMD(2500,1500,800,5000,100,50,3,256,5000)",
        " same => n,Set(CC_AMD=${AMDSTATUS}:${AMDCAUSE})",
        " same => n,Stasis(cc-dialer,amd)",
        ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?failed)',
        " same => n,Hangup(16)",
        (" same => n(failed),Log(WARNING,dialer cc-dialer not running: ${CHANNEL(name)} hung "
        "up after AMD)"),
        " same => n,Hangup(41)",
    ]


TRUNK = """\
    trunks:
      carrier: {host: 127.0.0.2, dids: {"+15550109000": main}}
    """


def test_the_amd_context_comes_with_trunks_only(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with_trunk = load(tmp_path / "a", trunks=TRUNK)
    without = load(tmp_path / "b")
    ext = render(with_trunk.config, with_trunk.where,
                 agent_passwords=fake_passwords(with_trunk.config))["extensions_callcenter.conf"]
    assert ext.endswith("\n" + amd_context())
    plain = render(without.config, without.where,
                   agent_passwords=fake_passwords(without.config))["extensions_callcenter.conf"]
    assert AMD_CONTEXT not in plain and "AMD(" not in plain


def test_the_instance_loads_app_amd() -> None:
    # modules.conf autoloads; app_amd must never join the noload list.
    assert "app_amd.so" not in instance._NOLOAD
