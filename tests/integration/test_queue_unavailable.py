"""When nobody can take calls, against the real Asterisk: a real SIP caller through the
example IVR into sales, the router with ``when_unavailable`` on sales.

Where the caller went is read from Asterisk's own AMI events (the dialplan steps run
after ``Stasis()``: the queue's ``unavailable`` label, then the destination's
``VoiceMail()``, which holds the call until the caller hangs up); why, from the router's
record of the stay and its ``CallOverflowed`` event. The example's sales queue has no
``when_unavailable`` destination, so its label leads to the queue's fallback, voicemail
``general``: the router-side config here needs no new dialplan.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from callcenter.agents.state import Login, Logout, Pause
from callcenter.config.models import CallCenterConfig, Schedule, WhenUnavailable
from callcenter.events import CallerEntered, CallOverflowed, QueueEvent
from tests.conftest import PBX
from tests.integration.route import ObservedCall, RouteObserver
from tests.integration.router_harness import (
    RunningRouter,
    place_call,
    start_router,
    waiting,
    with_queue,
)

UNAVAILABLE = ("cc-queue", "NoOp", "callcenter queue sales nobody can take calls")


class Events:
    """The router's events, kept for assertions (an event-bus listener)."""

    def __init__(self) -> None:
        self.seen: list[QueueEvent] = []

    def __repr__(self) -> str:
        return "Events"

    async def handle(self, event: QueueEvent) -> None:
        self.seen.append(event)

    def of(self, call: str) -> list[QueueEvent]:
        return [e for e in self.seen if getattr(e, "call", None) == call]


def sales(config: CallCenterConfig, **rule: object) -> CallCenterConfig:
    """*config* with sales' when_unavailable, and no relax steps (none to reach first)."""
    return with_queue(config, "sales", relax=(),
                      when_unavailable=WhenUnavailable.model_validate(rule))


def after_stasis(call: ObservedCall) -> list[tuple[str, str, str]]:
    """The dialplan steps the caller's channel ran after leaving ``Stasis()``."""
    steps = [(s.get("Context", ""), s.get("Application", ""), s.get("AppData", ""))
             for s in call.steps]
    stasis = [i for i, s in enumerate(steps) if s[:2] == ("cc-queue", "Stasis")]
    assert stasis, [f"{c}: {a}({d})" for c, a, d in steps]
    return steps[stasis[-1] + 1:]


def went_to_voicemail(call: ObservedCall) -> None:
    """The router continued the caller at sales' ``unavailable`` label, and the
    voicemail it leads to took the call (no hang-up by the dialplan)."""
    steps = after_stasis(call)
    assert steps and steps[0] == UNAVAILABLE, steps
    apps = [s[:2] for s in steps]
    assert ("cc-voicemail", "VoiceMail") in apps, steps
    assert ("cc-queue", "Hangup") not in apps, steps


async def login_paused(running: RunningRouter, agent: str) -> None:
    """*agent* logged in but paused: the queue has an agent, nobody is offered a call."""
    now = running.router.clock()
    await running.router.store.apply(agent, Login(), now, reason="test")
    await running.router.store.apply(agent, Pause("lunch"), now, reason="test")
    running.router.agent_changed(agent)


async def test_no_agent_logged_in_at_entry_sends_the_caller_on_at_once(
        clean_pbx: PBX, ami_observer: RouteObserver) -> None:
    """Nobody of sales is logged in: the caller is not queued (no music, no wait) but
    sent to the destination, recorded as a stay of no time with its reason."""
    events = Events()
    caller = "15558890001"
    observed = ami_observer.expect(caller)
    async with start_router(clean_pbx, sales(clean_pbx.loaded.config),
                            listeners=[events]) as running:
        result = await place_call(clean_pbx, caller, hold_ms=4000)
        assert result.returncode == 0, result.stderr[-500:]
        queued = await running.queued(caller)
        await ami_observer.wait_ended(caller, timeout=15)
    assert (queued.queue, queued.outcome, queued.overflow_to) == (
        "sales", "overflowed", "unavailable:no_agents")
    assert queued.entered_at == queued.ended_at and queued.agent is None
    went_to_voicemail(observed)
    assert not result.remote_hangup  # voicemail held the call until the caller left
    mine = events.of(queued.channel_id)
    assert [type(e) for e in mine] == [CallOverflowed], mine  # never entered the queue
    overflowed = mine[0]
    assert isinstance(overflowed, CallOverflowed)
    assert (overflowed.reason, overflowed.position, overflowed.destination) == (
        "no_agents", 0, "unavailable")


async def test_last_agent_logging_out_moves_the_waiting_caller(
        clean_pbx: PBX, ami_observer: RouteObserver) -> None:
    """carmen is logged in (paused): the caller waits. carmen logs out, alice is not
    logged in either: after the grace the caller goes to the destination."""
    events = Events()
    caller = "15558890002"
    observed = ami_observer.expect(caller)
    async with start_router(clean_pbx, sales(clean_pbx.loaded.config, grace=2),
                            listeners=[events]) as running:
        await login_paused(running, "carmen")
        call = asyncio.create_task(place_call(clean_pbx, caller, hold_ms=30000))
        await waiting(running, 1)
        logged_out = running.router.clock()
        await running.router.store.apply("carmen", Logout(), logged_out, reason="test")
        running.router.agent_changed("carmen")
        queued = await running.queued(caller)
        result = await call
        await ami_observer.wait_ended(caller, timeout=15)
    assert result.returncode == 0, result.stderr[-500:]
    assert (queued.outcome, queued.overflow_to) == ("overflowed", "unavailable:no_agents")
    assert queued.entered_at < logged_out
    assert queued.ended_at is not None
    moved_after = (queued.ended_at - logged_out).total_seconds()
    assert 2 <= moved_after < 4, moved_after  # the grace, then the next pass (1 s at most)
    went_to_voicemail(observed)
    assert [type(e) for e in events.of(queued.channel_id)] == [CallerEntered, CallOverflowed]
    left = events.of(queued.channel_id)[-1]
    assert isinstance(left, CallOverflowed)
    assert (left.reason, left.position) == ("no_agents", 1)


async def test_a_caller_waiting_max_wait_is_moved_at_the_cap(
        clean_pbx: PBX, ami_observer: RouteObserver) -> None:
    """carmen is logged in (paused): the caller waits, and leaves when it has waited
    max_wait, recorded as timed out."""
    caller = "15558890003"
    observed = ami_observer.expect(caller)
    async with start_router(clean_pbx, sales(clean_pbx.loaded.config, max_wait=4)
                            ) as running:
        await login_paused(running, "carmen")
        result = await place_call(clean_pbx, caller, hold_ms=12000)
        queued = await running.queued(caller)
        await ami_observer.wait_ended(caller, timeout=15)
    assert result.returncode == 0, result.stderr[-500:]
    assert (queued.outcome, queued.overflow_to) == ("timed_out", "unavailable:max_wait")
    assert queued.ended_at is not None
    waited = queued.ended_at - queued.entered_at
    assert timedelta(seconds=4) <= waited < timedelta(seconds=6), waited
    assert await running.offers(queued) == []
    went_to_voicemail(observed)


async def test_a_closed_schedule_sends_the_caller_on_at_entry(
        clean_pbx: PBX, ami_observer: RouteObserver) -> None:
    """sales' schedule is closed every day: carmen is logged in and free, yet the
    caller is sent on at entry and never offered to her."""
    base = clean_pbx.loaded.config
    closed = Schedule.model_validate({"timezone": "UTC", "hours": {"mon-sun": "closed"}})
    config = sales(base.model_copy(update={"schedules": {**base.schedules, "never": closed}}),
                   schedule="never", no_agents="never")
    caller = "15558890004"
    observed = ami_observer.expect(caller)
    async with start_router(clean_pbx, config) as running:
        await running.login("carmen")
        result = await place_call(clean_pbx, caller, hold_ms=4000)
        queued = await running.queued(caller)
        await ami_observer.wait_ended(caller, timeout=15)
        offers = await running.offers(queued)
    assert result.returncode == 0, result.stderr[-500:]
    assert (queued.outcome, queued.overflow_to) == ("overflowed", "unavailable:closed")
    assert queued.entered_at == queued.ended_at and offers == []
    went_to_voicemail(observed)
