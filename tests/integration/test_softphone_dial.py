"""An agent's registered softphone places calls (``Softphone.dial``), as an agent
keying a number does: the INVITE is authenticated with the agent's account, so
Asterisk runs it in the agent endpoint's context (the example's ``cc-extensions``),
and the phone reports how it ended. Feature codes (``*70``...) are dialed the same way.
"""

from __future__ import annotations

from callcenter.asterisk.ami.client import AMIClient
from callcenter.testing.observe import next_event
from tests.conftest import PBX


async def test_agent_dials_another_agents_extension(clean_pbx: PBX, ami: AMIClient) -> None:
    """carmen keys 1001: alice's phone rings and answers; carmen hangs up, alice's
    call ends with carmen's BYE."""
    with ami.subscribe("DialEnd") as dials:
        async with clean_pbx.agent_phone("alice") as alice, \
                clean_pbx.agent_phone("carmen") as carmen:
            await carmen.dial("1001")
            await alice.event("CALL_ESTABLISHED")
            await carmen.event("CALL_ESTABLISHED")
            answered = await next_event(dials, {"DialStatus": "ANSWER"},
                                   {"Channel": "PJSIP/carmen-"})
            await carmen.hangup()
            heard, placed = await alice.call(), await carmen.call()
    assert answered["DestChannel"].startswith("PJSIP/alice-"), answered
    # What alice's phone showed: carmen's extension and name (her endpoint's callerid).
    assert heard.peer_uri.startswith("sip:1000@"), heard.events
    assert {e.get("peerdisplayname") for e in heard.events} == {"Carmen Ruiz"}
    assert heard.close_reason == "Connection reset by peer", heard.stderr
    assert placed.peer_uri.startswith(f"sip:1001@127.0.0.1:{clean_pbx.sip_port}")
    assert placed.close_reason == "Connection reset by user", placed.stderr


async def test_dialing_a_number_nobody_has_is_refused(clean_pbx: PBX) -> None:
    async with clean_pbx.agent_phone("carmen") as carmen:
        await carmen.dial("9999")
        placed = await carmen.call()
    assert not placed.answered, placed.events
    assert placed.close_reason == "404 Not Found", placed.stderr


async def test_dialing_an_unregistered_agent_ends_in_cc_failure(clean_pbx: PBX,
                                                                  ami: AMIClient) -> None:
    """Nobody is registered as bob: the call goes on to cc-failure, which answers,
    plays its prompt and hangs up with cause 41; the phone sees Asterisk's BYE."""
    with ami.subscribe("Hangup") as hangups:
        async with clean_pbx.agent_phone("carmen") as carmen:
            await carmen.dial("1002")
            placed = await carmen.call()
            hangup = await next_event(hangups, {}, {"Channel": "PJSIP/carmen-"})
    assert placed.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], placed.stderr
    assert placed.close_reason == "Connection reset by peer", placed.stderr
    assert hangup["Cause"] == "41", hangup
