"""Transfers on the real PBX: a real caller (sipp, through the example IVR into sales)
answered by carmen (baresip, auto-answer), then handed over by the HTTP API (blind to a
queue, attended to an agent) or by carmen's own phone (its transfer key: SIP REFER,
handled by the router through ARI, ``PJSIP_TRANSFER_HANDLING=ari-only``).

Each test asserts the real outcome against Asterisk and the records: who the caller ends
up bridged with (the call's bridge holds the caller's channel and the new agent's leg),
the new agent's phone answered and the first one's call closed, the first agent in
wrap-up, the call's ``queued_calls`` row answered by the new agent in the new queue with
its original entry time, and the ``call_transfers`` row (from, to, mode, result).
"""

from __future__ import annotations

import asyncio

from callcenter.agents.state import AgentStatus
from callcenter.asterisk.ami.client import AMIClient
from tests.conftest import PBX
from tests.integration.router_harness import RunningRouter, running
from tests.integration.transfer_harness import (
    api_on,
    ask,
    bridged_with,
    carmen_answers,
    entered_at,
    transfers_of,
)

__all__ = ["running"]  # the fixture, imported for pytest

async def test_blind_to_a_queue_by_api_bob_answers_and_other_agents_are_refused(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """carmen (sales) has the caller; alice's agent token may not transfer carmen's call
    (403) and bad bodies are 422s naming the field, the call untouched; carmen's own token
    sends it blind to tech_support: bob (its only member) answers, carmen's phone is hung
    up and she is in wrap-up; the record follows (same call id, tech_support, answered by
    bob, the original entry time)."""
    caller = "15558870001"
    async with api_on(clean_pbx, running) as api, clean_pbx.agent_phone("bob") as bob, \
            carmen_answers(clean_pbx, running, caller, hold_ms=22_000) as (
                channel, _carmen, call, carmen_call):
        await running.login("bob")
        await running.wait_state("bob", AgentStatus.AVAILABLE)
        path = f"/api/v1/calls/{channel}/transfer"
        first_entry = await entered_at(running, channel)
        await ask(api, "alice_phone", path, 403, {"to": {"queue": "tech_support"}})
        for body, field in (({"to": {"number": "12;Dial(PJSIP/x)"}}, "to.number"),
                            ({"to": {"number": "+1555\n0100"}}, "to.number"),
                            ({"to": {"queue": "tech_support"}, "mode": "warm"}, "mode"),
                            ({"to": {"queue": "nope"}}, "to.queue"),
                            ({"to": {"agent": "carmen"}}, "to.agent"),
                            ({"to": {}}, "to")):
            refused = await ask(api, "carmen_phone", path, 422 if field != "to.agent" else 409,
                                body)
            assert refused["field"] == field, refused
        await bridged_with(running, channel, "carmen")
        bob_call = asyncio.create_task(bob.call())
        done = await ask(api, "carmen_phone", path, 200, {"to": {"queue": "tech_support"}})
        assert (done["state"], done["result"], done["via"]) == ("ended", "requeued",
                                                                "api:carmen_phone")
        await running.wait_state("bob", AgentStatus.ON_CALL, timeout=30)
        await bridged_with(running, channel, "bob")
        assert running.router.states["carmen"].status is AgentStatus.WRAP_UP
        closed = await carmen_call
        assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
        result = await call
        assert result.returncode == 0 and not result.remote_hangup, result.stderr[-800:]
        assert (await bob_call).answered
    queued = await running.queued(caller)
    assert (queued.queue, queued.agent, queued.outcome) == ("tech_support", "bob", "answered")
    assert queued.entered_at == first_entry
    (row,) = await transfers_of(running, channel)
    assert (row.from_agent, row.from_queue, row.mode, row.target_kind, row.target,
            row.result) == ("carmen", "sales", "blind", "queue", "tech_support", "requeued")
    assert row.from_answered_at is not None and row.at >= row.from_answered_at


async def test_attended_to_an_agent_by_api_consults_then_completes(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """sue (sales supervisor) asks an attended transfer of carmen's call to alice: the
    caller alone in its bridge (music on hold), carmen and alice in the consultation
    bridge; complete: alice is bridged with the caller, carmen hung up and in wrap-up."""
    caller = "15558870002"
    async with api_on(clean_pbx, running) as api, clean_pbx.agent_phone("alice") as alice, \
            carmen_answers(clean_pbx, running, caller, hold_ms=22_000) as (
                channel, _carmen, call, carmen_call):
        await running.login("alice")
        await running.wait_state("alice", AgentStatus.AVAILABLE)
        alice_call = asyncio.create_task(alice.call())
        path = f"/api/v1/calls/{channel}/transfer"
        await ask(api, "sue", f"{path}/complete", 409)  # nothing to complete yet
        consulting = await ask(api, "sue", path, 200, {"to": {"agent": "alice"},
                                                        "mode": "attended"})
        assert (consulting["state"], consulting["agent"]) == ("consulting", "alice")
        caller_state = running.router.callers[channel]
        own = await running.ari.bridges.get(caller_state.bridge_id)
        assert own.channels == (channel,)
        consult = await running.ari.bridges.get(f"cc-xfer-{channel}")
        assert len(consult.channels) == 2 and caller_state.agent_channel in consult.channels
        assert running.router.states["alice"].status is AgentStatus.ON_CALL
        done = await ask(api, "sue", f"{path}/complete", 200)
        assert (done["state"], done["result"]) == ("ended", "completed")
        await bridged_with(running, channel, "alice")
        assert running.router.states["carmen"].status is AgentStatus.WRAP_UP
        closed = await carmen_call
        assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
        result = await call
        assert result.returncode == 0 and not result.remote_hangup, result.stderr[-800:]
        assert (await alice_call).answered
    queued = await running.queued(caller)
    assert (queued.queue, queued.agent, queued.outcome) == ("sales", "alice", "answered")
    (row,) = await transfers_of(running, channel)
    assert (row.from_agent, row.mode, row.target_kind, row.target, row.answered_by,
            row.result, row.via) == ("carmen", "attended", "agent", "alice", "alice",
                                     "completed", "api:sue")


async def test_blind_by_the_agents_phone_refer_to_an_extension(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """carmen presses her phone's transfer key and keys bob's extension (1002): the REFER
    comes to the router (ChannelTransfer), bob answers, carmen's phone is told (NOTIFY
    200) and its call ends; carmen in wrap-up, the record says via refer."""
    caller = "15558870003"
    async with clean_pbx.agent_phone("bob") as bob, \
            carmen_answers(clean_pbx, running, caller, hold_ms=20_000) as (
                channel, carmen, call, carmen_call):
        await running.login("bob")
        await running.wait_state("bob", AgentStatus.AVAILABLE)
        bob_call = asyncio.create_task(bob.call())
        await carmen.transfer("1002")
        await running.wait_state("bob", AgentStatus.ON_CALL, timeout=30)
        await bridged_with(running, channel, "bob")
        closed = await carmen_call
        assert closed.answered and closed.flow()[-1] == "CALL_CLOSED", closed.stderr
        assert running.router.states["carmen"].status is AgentStatus.WRAP_UP
        result = await call
        assert result.returncode == 0 and not result.remote_hangup, result.stderr[-800:]
        assert (await bob_call).answered
    queued = await running.queued(caller)
    assert (queued.agent, queued.outcome) == ("bob", "answered")
    (row,) = await transfers_of(running, channel)
    assert (row.from_agent, row.mode, row.target_kind, row.target, row.via,
            row.result) == ("carmen", "blind", "agent", "bob", "refer", "completed")


async def test_a_warm_hand_off_to_sales_attended_to_the_queue(
        clean_pbx: PBX, running: RunningRouter, ami: AMIClient) -> None:
    """The lead-generation case: a tech-support caller (a Local channel into
    ``cc-queue,tech_support`` sending 20 s of silence) answered by bob, who hands it warm
    to sales: the sales queue's free agent (carmen) is consulted, then takes the caller;
    the record moves to sales, answered by carmen; bob in wrap-up."""
    caller = "15558870004"
    async with api_on(clean_pbx, running) as api, clean_pbx.agent_phone("bob") as bob, \
            clean_pbx.agent_phone("carmen") as carmen:
        await running.login("bob", "carmen")
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        await running.wait_state("bob", AgentStatus.AVAILABLE)
        bob_call = asyncio.create_task(bob.call())
        carmen_call = asyncio.create_task(carmen.call())
        await ami.action("Originate", Channel="Local/tech_support@cc-queue/n",
                         Application="Playback", Data="silence/10&silence/10",
                         CallerID=f"<{caller}>", Async="true")
        await running.wait_state("bob", AgentStatus.ON_CALL, timeout=30)
        channel = next(c for c, n in running.numbers.items() if n == caller)
        path = f"/api/v1/calls/{channel}/transfer"
        consulting = await ask(api, "admin", path, 200, {"to": {"queue": "sales"},
                                                          "mode": "attended"})
        assert (consulting["state"], consulting["agent"]) == ("consulting", "carmen")
        done = await ask(api, "admin", f"{path}/complete", 200)
        assert done["result"] == "completed"
        await bridged_with(running, channel, "carmen")
        assert running.router.states["bob"].status is AgentStatus.WRAP_UP
        assert (await bob_call).answered
        assert (await carmen_call).answered  # the caller's 20 s ended the call
    queued = await running.queued(caller)
    assert (queued.queue, queued.agent, queued.outcome) == ("sales", "carmen", "answered")
    (row,) = await transfers_of(running, channel)
    assert (row.from_agent, row.from_queue, row.mode, row.target_kind, row.target,
            row.answered_by, row.result) == ("bob", "tech_support", "attended", "queue",
                                             "sales", "carmen", "completed")
