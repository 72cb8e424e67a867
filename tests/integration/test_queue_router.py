"""The queue router against the real Asterisk: real SIP callers through the example IVR,
agents on real registered softphones (baresip), the router's own records and Asterisk's
view of what is left (channels, bridges) after each call.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from callcenter.agents.reconcile import ContactStatus
from callcenter.agents.state import AgentStatus, EndWrapUp
from callcenter.config.models import RelaxStep
from tests.conftest import PBX
from tests.integration.router_harness import (
    RunningRouter,
    decline,
    place_call,
    running,
    start_router,
    talk_then_hang_up,
    waiting,
    with_queue,
)

__all__ = ["running"]  # the fixture, imported for pytest


async def test_sales_call_reaches_the_agent_with_the_skill(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """alice (sales 3) and carmen (sales 9) are both logged in on registered phones;
    sales requires sales >= 5: carmen's phone answers, alice's never rings."""
    async with clean_pbx.agent_phone("alice") as alice, clean_pbx.agent_phone("carmen") as carmen:
        await running.login("alice", "carmen")
        caller = "15558880001"
        result, call = await asyncio.gather(place_call(clean_pbx, caller), carmen.call())
        assert result.returncode == 0, result.stderr
        assert call.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], call.stderr
        assert call.peer_uri.startswith(f"sip:{caller}@"), call.peer_uri
        assert not [e for e in alice.seen if e.get("type", "").startswith("CALL_")], alice.seen
        queued = await running.queued(caller)
        assert (queued.queue, queued.agent, queued.outcome) == ("sales", "carmen", "answered")
        assert queued.answered_at is not None and queued.ended_at is not None
        offers = await running.offers(queued)
        assert [(o.agent, o.result) for o in offers] == [("carmen", "answered")]
        state = await running.state("carmen")
        assert state.status is AgentStatus.WRAP_UP
        assert state.wrap_up_until - queued.ended_at == timedelta(  # type: ignore[operator]
            seconds=clean_pbx.loaded.config.queues["sales"].wrapup)
        assert (await running.state("alice")).status is AgentStatus.AVAILABLE


async def test_caller_who_hangs_up_while_waiting_is_recorded_abandoned(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """Nobody logged in: the caller waits with music, gives up; nothing is left behind."""
    caller = "15558880002"
    result = await place_call(clean_pbx, caller, hold_ms=1500)
    assert result.returncode == 0 and not result.remote_hangup, result.stderr
    queued = await running.queued(caller)
    assert (queued.outcome, queued.agent, queued.answered_at) == ("abandoned", None, None)
    assert await running.offers(queued) == []
    assert running.router.callers == {}


async def test_vip_is_served_before_an_earlier_caller(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """Both wait (nobody logged in); the VIP arrived second but is answered first.
    carmen hangs up each call once answered (the callers' holds are only bounds)."""
    ordinary, vip = "15558880003", "+15551230001"
    async with clean_pbx.agent_phone("carmen") as carmen:
        first = asyncio.create_task(place_call(clean_pbx, ordinary, hold_ms=30000))
        await waiting(running, 1)
        second = asyncio.create_task(place_call(clean_pbx, vip, hold_ms=30000))
        await waiting(running, 2)
        await running.login("carmen")
        served_first = await talk_then_hang_up(running, "carmen", carmen)
        assert served_first.peer_uri.startswith(f"sip:{vip}@"), served_first.peer_uri
        # carmen ends wrap-up at once and takes the other caller.
        await running.wait_state("carmen", AgentStatus.WRAP_UP)
        await running.router.store.apply("carmen", EndWrapUp(), running.router.clock())
        running.router.agent_changed("carmen")
        served_second = await talk_then_hang_up(running, "carmen", carmen)
        assert served_second.peer_uri.startswith(f"sip:{ordinary}@"), served_second.peer_uri
        for task in (first, second):
            result = await task
            assert result.returncode == 0 and result.remote_hangup, result.stderr
    a, b = await running.queued(ordinary), await running.queued(vip)
    assert a.entered_at < b.entered_at and b.priority > a.priority
    assert b.answered_at < a.answered_at  # type: ignore[operator]
    assert (a.outcome, b.outcome) == ("answered", "answered")


async def test_agent_whose_phone_unregisters_is_paused_until_it_is_back(
        clean_pbx: PBX, running: RunningRouter) -> None:
    router, states = running.router, running.router.states
    async with clean_pbx.agent_phone("carmen"):
        await running.login("carmen")
        # Available with the router seeing the phone: a router that read the endpoint
        # before baresip registered pauses carmen (no contact) and frees her once the
        # registration arrives; that first pause is not the one this test is about.
        async with asyncio.timeout(15):
            await router.wait_until(
                lambda: states["carmen"].status is AgentStatus.AVAILABLE
                and router.contacts.get("carmen") is ContactStatus.REACHABLE)
    # baresip unregistered on exit: Asterisk's ContactStatusChange (Removed) pauses carmen.
    async with asyncio.timeout(15):
        await router.wait_until(
            lambda: states["carmen"].status is AgentStatus.PAUSED
            and router.contacts.get("carmen") is not ContactStatus.REACHABLE)
    state = await running.state("carmen")
    assert (state.pause_reason, state.phone_lost) == ("unregistered", True)
    caller = "15558880004"
    # Long enough for a loaded router to admit the caller and (wrongly) offer it.
    result = await place_call(clean_pbx, caller, hold_ms=5000)
    assert result.returncode == 0
    queued = await running.queued(caller)
    assert await running.offers(queued) == [], "an unregistered phone was offered a call"
    async with clean_pbx.agent_phone("carmen"):
        await running.wait_state("carmen", AgentStatus.AVAILABLE)


async def test_requirements_relax_for_a_caller_alreadywaiting(clean_pbx: PBX) -> None:
    """sales requires sales >= 5 (carmen), relaxed to any agent of the queue after 3 s:
    with only alice (sales 3) logged in, the caller waits, then alice gets it at step 1."""
    config = with_queue(clean_pbx.loaded.config, "sales",
                        relax=(RelaxStep(after=3, any_agent=True),))
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("alice") as alice:
        await running.login("alice")
        caller = "15558880005"
        result, call = await asyncio.gather(place_call(clean_pbx, caller, hold_ms=8000),
                                            talk_then_hang_up(running, "alice", alice))
        assert result.returncode == 0
        assert call.peer_uri.startswith(f"sip:{caller}@")
        queued = await running.queued(caller)
    assert (queued.agent, queued.relaxation_step, queued.outcome) == ("alice", 1, "answered")
    waited = (queued.answered_at - queued.entered_at).total_seconds()  # type: ignore[operator]
    assert 3 <= waited < 6, waited


async def test_no_answer_moves_on_to_the_next_agent_and_pauses_the_one_who_missed(
        clean_pbx: PBX) -> None:
    """carmen, idle longest, is offered first; her phone rings out (5 s): alice gets the
    call, and carmen is paused (auto_pause_after 1) without being offered again."""
    config = with_queue(clean_pbx.loaded.config, "sales", requires=None, ring_timeout=5,
                        auto_pause_after=1, strategy="longest_idle")
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen", auto_answer=False) as carmen, \
            clean_pbx.agent_phone("alice") as alice:
        await running.login_in_turn("carmen", "alice")
        caller = "15558880006"
        result, missed, answered = await asyncio.gather(
            place_call(clean_pbx, caller, hold_ms=9000), carmen.call(),
            talk_then_hang_up(running, "alice", alice))
        assert result.returncode == 0
        assert missed.flow()[0] == "CALL_INCOMING" and not missed.answered, missed.flow()
        assert answered.answered and answered.peer_uri.startswith(f"sip:{caller}@")
        queued = await running.queued(caller)
        offers = await running.offers(queued)
        state = await running.state("carmen")
    assert [(o.agent, o.result) for o in offers] == [("carmen", "no_answer"),
                                                     ("alice", "answered")]
    rang = (offers[0].ended_at - offers[0].offered_at).total_seconds()  # type: ignore[operator]
    assert 5 <= rang < 8, rang
    assert (queued.agent, queued.outcome) == ("alice", "answered")
    assert (state.status, state.pause_reason) == (AgentStatus.PAUSED, "no_answer")


async def test_a_rejected_offer_goes_to_the_next_agent(clean_pbx: PBX) -> None:
    """carmen declines the ringing call on her phone: alice is offered it at once."""
    config = with_queue(clean_pbx.loaded.config, "sales", requires=None,
                        strategy="longest_idle", auto_pause_after=0)
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen", auto_answer=False) as carmen, \
            clean_pbx.agent_phone("alice") as alice:
        await running.login_in_turn("carmen", "alice")
        caller = "15558880007"
        result, _, answered = await asyncio.gather(
            place_call(clean_pbx, caller, hold_ms=6000), decline(carmen),
            talk_then_hang_up(running, "alice", alice))
        assert result.returncode == 0 and answered.answered
        queued = await running.queued(caller)
        offers = await running.offers(queued)
        assert (await running.state("carmen")).status is AgentStatus.AVAILABLE
    assert [o.agent for o in offers] == ["carmen", "alice"]
    assert offers[0].result in ("busy", "rejected"), offers[0].result
    assert (offers[1].result, queued.outcome) == ("answered", "answered")


async def test_caller_who_hangs_up_while_the_agent_rings(clean_pbx: PBX) -> None:
    """The caller gives up while carmen's phone rings: her phone stops ringing (CANCEL),
    the offer is closed as caller_gone (not a miss: she stays available)."""
    config = with_queue(clean_pbx.loaded.config, "sales", auto_pause_after=1)
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen", auto_answer=False) as carmen:
        await running.login("carmen")
        caller = "15558880008"
        result, rang = await asyncio.gather(place_call(clean_pbx, caller, hold_ms=2500),
                                            carmen.call())
        assert result.returncode == 0 and not result.remote_hangup
        assert rang.flow() == ["CALL_INCOMING", "CALL_CLOSED"], rang.flow()
        queued = await running.queued(caller)
        offers = await running.offers(queued)
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
    assert [(o.agent, o.result) for o in offers] == [("carmen", "caller_gone")]
    assert (queued.outcome, queued.answered_at) == ("abandoned", None)


async def test_agent_works_the_queue_from_the_softphone_with_feature_codes(
        clean_pbx: PBX, running: RunningRouter) -> None:
    """carmen logs in (*70), pauses for lunch (*721), unpauses (*73), takes a call, ends
    her wrap-up early (*74) and logs out (*71), all from her registered phone."""
    async def key(code: str, status: AgentStatus) -> None:
        await carmen.dial(code)
        call = await carmen.call()
        assert call.answered, call.flow()
        await running.wait_state("carmen", status)

    async with clean_pbx.agent_phone("carmen") as carmen:
        await key("*70", AgentStatus.AVAILABLE)
        await key("*721", AgentStatus.PAUSED)
        assert (await running.state("carmen")).pause_reason == "lunch"
        await key("*73", AgentStatus.AVAILABLE)
        caller = "15558880009"
        result, talk = await asyncio.gather(place_call(clean_pbx, caller), carmen.call())
        assert result.returncode == 0 and talk.peer_uri.startswith(f"sip:{caller}@")
        await running.wait_state("carmen", AgentStatus.WRAP_UP)
        await key("*74", AgentStatus.AVAILABLE)
        ended = await running.state("carmen")
        queued = await running.queued(caller)
        # ended well before the wrap-up's 10 s were over
        assert (ended.since - queued.ended_at).total_seconds() < 8  # type: ignore[operator]
        await key("*71", AgentStatus.LOGGED_OUT)
