"""The router's events against the real Asterisk: real SIP callers, agents on baresip.

What is checked is what reporting tools see: the lines Asterisk wrote to its own
``queue_log`` file (through AMI ``QueueLog``), compared with the router's records (who
answered, waits, talk time), and the Prometheus metrics scraped over HTTP after the calls.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ari_apps.queue_router import QueueRouter
from callcenter.agents.state import AgentStatus, Logout, Pause, Unpause
from callcenter.asterisk.ami import AMIClient
from callcenter.asterisk.secrets import stored_api_token
from callcenter.config.models import RelaxStep
from callcenter.events import (
    AgentLoggedOut,
    AgentPaused,
    AgentStateChanged,
    CallAbandoned,
    CallCompleted,
    CallOverflowed,
    EventListener,
    QueueEvent,
)
from callcenter.reporting.metrics import QueueMetrics, metrics_route
from callcenter.reporting.queue_log import QueueLogWriter
from callcenter.routing.policy import memberships
from callcenter.service import CallCenterService
from callcenter.testing.ports import free_port
from tests.conftest import PBX
from tests.integration.router_harness import (
    decline,
    place_call,
    start_router,
    with_queue,
)


class Recorder:
    """Passes each event to *inner* listeners, then records it: once an event is recorded,
    its queue_log lines are in Asterisk's file (``QueueLog`` is acknowledged after the
    write) and the metrics count it."""

    def __init__(self, inner: Sequence[EventListener]) -> None:
        self.inner = inner
        self.events: list[QueueEvent] = []
        self._changed = asyncio.Condition()

    def __repr__(self) -> str:
        return "Recorder"

    async def handle(self, event: QueueEvent) -> None:
        for listener in self.inner:
            await listener.handle(event)
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[QueueEvent], bool],
                       timeout: float = 30) -> QueueEvent:
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                await self._changed.wait()


def _lines(path, offset: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """queue_log lines written after *offset*, split on ``|`` (time dropped)."""
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode()
    return [line.split("|")[1:] for line in text.splitlines() if line]


@contextlib.asynccontextmanager
async def _scrape_server(metrics: QueueMetrics) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/metrics", metrics_route(metrics))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await runner.cleanup()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _secs(start: datetime | None, end: datetime | None) -> int:
    assert start is not None and end is not None
    return round((end - start).total_seconds())


async def test_queue_log_and_metrics_follow_real_calls(clean_pbx: PBX) -> None:
    """Three callers in sales: one answered by alice after carmen declines, one who gives
    up while nobody is free, one overflowed after 5 s. Agents log in, pause, unpause and
    log out. Asterisk's queue_log holds app_queue's lines for each, with the waits of the
    records; the scraped metrics count the same calls."""
    base = clean_pbx.loaded.config
    overflow = base.queues["sales"].relax[1].overflow  # stage 1: the dialplan's overflow1
    config = with_queue(base, "sales", requires=None, strategy="longest_idle",
                        auto_pause_after=0, wrapup=1,
                        relax=(RelaxStep(after=4, any_agent=True),
                               RelaxStep(after=5, overflow=overflow)))
    creds, (host, port) = clean_pbx.instance.credentials, clean_pbx.instance.ami_address
    writer = QueueLogWriter(
        lambda: AMIClient(host, port, username=creds.ami_user, secret=creds.ami_secret,
                          events="off"),
        {name: agent.dial_string(name) for name, agent in config.agents.items()})
    metrics = QueueMetrics(config.queues)
    recorder = Recorder([writer, metrics])
    queue_log = clean_pbx.instance.queue_log_file
    offset = queue_log.stat().st_size if queue_log.exists() else 0
    served = memberships(config)
    answered, gave_up, overflowed = "15558880101", "15558880102", "15558880103"
    try:
        async with start_router(clean_pbx, config, listeners=[recorder]) as running, \
                clean_pbx.agent_phone("carmen", auto_answer=False) as carmen, \
                clean_pbx.agent_phone("alice") as alice:
            metrics.watch(running.router.events)
            await running.login_in_turn("carmen", "alice")
            result, _, talked = await asyncio.gather(
                place_call(clean_pbx, answered, hold_ms=4000), decline(carmen), alice.call())
            assert result.returncode == 0 and talked.answered
            first = await running.queued(answered)
            offers = await running.offers(first)
            await recorder.wait_for(lambda e: isinstance(e, CallCompleted))
            # Nobody free for the next two callers.
            now = running.router.clock()
            await running.router.store.apply("carmen", Pause("lunch"), now, reason="test")
            await running.router.store.apply("alice", Pause("break"), now, reason="test")
            running.router.agent_changed("alice")
            await running.wait_state("alice", AgentStatus.PAUSED)
            await running.wait_state("carmen", AgentStatus.PAUSED)
            alice_paused = await running.state("alice")
            result = await place_call(clean_pbx, gave_up, hold_ms=2500)
            assert result.returncode == 0 and not result.remote_hangup
            second = await running.queued(gave_up)
            result = await place_call(clean_pbx, overflowed, hold_ms=8000)
            assert result.returncode == 0
            third = await running.queued(overflowed)
            await recorder.wait_for(lambda e: isinstance(e, CallAbandoned))
            await recorder.wait_for(lambda e: isinstance(e, CallOverflowed))
            now = running.router.clock()
            await running.router.store.apply("carmen", Unpause(), now, reason="test")
            for agent in ("carmen", "alice"):
                await running.router.store.apply(agent, Logout(), now, reason="test")
                running.router.agent_changed(agent)
            for agent in ("carmen", "alice"):
                await recorder.wait_for(
                    lambda e, a=agent: isinstance(e, AgentLoggedOut) and e.agent == a)
                # The status gauge follows the router's reading of the agent (its re-read).
                await recorder.wait_for(
                    lambda e, a=agent: isinstance(e, AgentStateChanged) and e.agent == a
                    and e.status is AgentStatus.LOGGED_OUT and e.previous is not None)
            async with _scrape_server(metrics) as url, aiohttp.ClientSession() as http, \
                    http.get(url) as response:
                assert response.status == 200
                scraped = _samples(await response.text())
            # The gauge counts every stored agent (other tests' too): the store is the truth.
            stored = collections.Counter(s.status for s in await running.router.store.all())
            assert stored[AgentStatus.LOGGED_OUT] >= 2  # carmen and alice at least
    finally:
        await writer.close()

    assert writer.lost == 0
    lines = _lines(queue_log, offset)
    calls = {first.channel_id: answered, second.channel_id: gave_up,
             third.channel_id: overflowed}
    # -- the calls: callid = the caller's UNIQUEID, fields as app_queue writes them
    by_call = {channel: [line for line in lines if line[0] == channel] for channel in calls}
    carmen_offer, alice_offer = offers
    assert (carmen_offer.agent, alice_offer.agent) == ("carmen", "alice")
    assert (first.agent, first.outcome) == ("alice", "answered")
    ring_ms = int((carmen_offer.ended_at - carmen_offer.offered_at)  # type: ignore[operator]
                  .total_seconds() * 1000)
    hold = _secs(first.entered_at, first.answered_at)
    assert by_call[first.channel_id] == [
        [first.channel_id, "sales", "NONE", "ENTERQUEUE", "", answered, "1"],
        [first.channel_id, "sales", "carmen", "RINGNOANSWER", str(ring_ms)],
        [first.channel_id, "sales", "alice", "CONNECT", str(hold), alice_offer.channel_id,
         str(_secs(alice_offer.offered_at, alice_offer.ended_at))],
        [first.channel_id, "sales", "alice", "COMPLETECALLER", str(hold),
         str(_secs(first.answered_at, first.ended_at)), "1"],
    ]
    assert second.outcome == "abandoned"
    assert by_call[second.channel_id] == [
        [second.channel_id, "sales", "NONE", "ENTERQUEUE", "", gave_up, "1"],
        [second.channel_id, "sales", "NONE", "ABANDON", "1", "1",
         str(_secs(second.entered_at, second.ended_at))],
    ]
    assert third.outcome == "overflowed"
    waited = _secs(third.entered_at, third.ended_at)
    assert 5 <= waited <= 6, waited
    assert by_call[third.channel_id] == [
        [third.channel_id, "sales", "NONE", "ENTERQUEUE", "", overflowed, "1"],
        [third.channel_id, "sales", "NONE", "EXITWITHTIMEOUT", "1", "1", str(waited)],
    ]
    # -- the agents: membership and pauses per queue they serve (queue NONE: all queues)
    agent_verbs = {"AGENTLOGIN", "AGENTLOGOFF", "ADDMEMBER", "REMOVEMEMBER", "PAUSE",
                   "PAUSEALL", "UNPAUSE", "UNPAUSEALL"}
    for agent, reason in (("carmen", "lunch"), ("alice", "break")):
        mine = [line for line in lines if line[2] == agent and line[3] in agent_verbs]
        queues = sorted(served[agent])
        assert queues, served
        expected = [["NONE", "NONE", agent, "AGENTLOGIN", f"PJSIP/{agent}"],
                    *(["MANAGER", q, agent, "ADDMEMBER", ""] for q in queues),
                    ["NONE", "NONE", agent, "PAUSEALL", reason],
                    *(["NONE", q, agent, "PAUSE", reason] for q in queues)]
        if agent == "carmen":
            expected += [["NONE", "NONE", agent, "UNPAUSEALL", ""],
                         *(["NONE", q, agent, "UNPAUSE", ""] for q in queues)]
        expected += [["MANAGER", q, agent, "REMOVEMEMBER", ""] for q in queues]
        assert mine[:-1] == expected, mine
        assert mine[-1][:5] == ["NONE", "NONE", agent, "AGENTLOGOFF", f"PJSIP/{agent}"], mine
        assert mine[-1][5].isdigit(), mine

    # -- the metrics, scraped over HTTP
    def value(name: str, **labels: str) -> float:
        return scraped.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("callcenter_queue_calls_entered_total", queue="sales") == 3
    assert value("callcenter_queue_calls_answered_total", queue="sales") == 1
    assert value("callcenter_queue_calls_abandoned_total", queue="sales") == 1
    assert value("callcenter_queue_calls_overflowed_total", queue="sales") == 1
    assert value("callcenter_queue_offers_total", queue="sales", result="answered") == 1
    assert value("callcenter_queue_offers_total", queue="sales",
                 result=carmen_offer.result) == 1
    for outcome, call in (("answered", first), ("abandoned", second), ("overflowed", third)):
        assert value("callcenter_queue_wait_seconds_count", queue="sales", outcome=outcome) == 1
        end = call.answered_at if outcome == "answered" else call.ended_at
        assert abs(value("callcenter_queue_wait_seconds_sum", queue="sales", outcome=outcome)
                   - (end - call.entered_at).total_seconds()) < 0.01  # type: ignore[operator]
    # Handle time: talk plus the wrap-up alice spent until her pause.
    assert value("callcenter_queue_handle_seconds_count", queue="sales") == 1
    handle = (alice_paused.since - first.answered_at).total_seconds()  # type: ignore[operator]
    assert abs(value("callcenter_queue_handle_seconds_sum", queue="sales") - handle) < 0.01
    assert value("callcenter_queue_callers_waiting", queue="sales") == 0
    assert {status: value("callcenter_agents", status=status.value) for status in AgentStatus} \
        == {status: stored[status] for status in AgentStatus}
    assert value("callcenter_events_dropped_total", listener="Recorder") == 0
    assert any(isinstance(e, AgentPaused) and e.reason == "lunch" for e in recorder.events)


async def test_the_service_writes_queue_log_and_serves_metrics_for_the_router(
        clean_pbx: PBX, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Wired as ``callcenter serve`` wires it: the service's queue_log writer (the home's
    AMI login) and metrics hear the router; carmen logs in through the HTTP API (the
    service's own agent store), takes a call; Asterisk's queue_log has her AGENTLOGIN and
    the call's lines, and ``GET /metrics`` on the API (with the token) counts the call."""
    base = clean_pbx.loaded.config
    settings = base.settings.model_copy(update={
        "http_api": base.settings.http_api.model_copy(update={"port": free_port()})})
    config = base.model_copy(update={"settings": settings})
    queue_log = clean_pbx.instance.queue_log_file
    offset = queue_log.stat().st_size if queue_log.exists() else 0
    caller = "15558880104"
    stop = asyncio.Event()
    async with CallCenterService(config, home=clean_pbx.instance.home, db_url=clean_pbx.db_url,
                                 instance=clean_pbx.instance, node="test",
                                 fastagi=False) as service:
        recorder = Recorder(service.event_listeners)
        router = QueueRouter(config, service.ari, service.sessions, node=service.node,
                             clock=service.clock, listeners=[recorder])
        service.watch_events(router.events)
        service.add("queue router", router.run, on_agent_change=router.agent_changed,
                    on_agent_transition=router.agent_transition)
        running = asyncio.create_task(service.run(stop))
        token = stored_api_token(clean_pbx.instance.secrets_file)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with asyncio.timeout(20):
                await router.ready.wait()
            async with clean_pbx.agent_phone("carmen") as carmen, \
                    aiohttp.ClientSession(headers=headers) as http:
                async with http.post(f"{service.api_url}/api/v1/agents/carmen/login") as response:
                    assert response.status == 200, await response.text()
                result, talked = await asyncio.gather(
                    place_call(clean_pbx, caller, hold_ms=2000), carmen.call())
                assert result.returncode == 0 and talked.answered
                completed = await recorder.wait_for(lambda e: isinstance(e, CallCompleted))
                await recorder.wait_for(lambda e: isinstance(e, AgentStateChanged)
                                        and e.status is AgentStatus.WRAP_UP)
                async with http.post(f"{service.api_url}/api/v1/agents/carmen/end-wrapup"), \
                        http.post(f"{service.api_url}/api/v1/agents/carmen/logout") as response:
                    assert response.status == 200, await response.text()
                await recorder.wait_for(lambda e: isinstance(e, AgentLoggedOut))
                async with http.get(f"{service.api_url}/metrics") as response:
                    assert response.status == 200
                    scraped = _samples(await response.text())
                async with aiohttp.ClientSession() as anonymous, \
                        anonymous.get(f"{service.api_url}/metrics") as response:
                    assert response.status == 401
        finally:
            stop.set()
            await asyncio.gather(running, return_exceptions=True)
    assert service.queue_log is not None and service.queue_log.lost == 0
    lines = _lines(queue_log, offset)
    call = completed.call  # type: ignore[attr-defined]
    assert [line[:4] for line in lines if line[0] == call] == [
        [call, "sales", "NONE", "ENTERQUEUE"], [call, "sales", "carmen", "CONNECT"],
        [call, "sales", "carmen", "COMPLETECALLER"]]
    mine = [line[3] for line in lines if line[2] == "carmen" and line[0] != call]
    assert mine[0] == "AGENTLOGIN" and mine[-1] == "AGENTLOGOFF", mine
    assert scraped[("callcenter_queue_calls_answered_total", (("queue", "sales"),))] == 1
    assert scraped[("callcenter_queue_calls_entered_total", (("queue", "sales"),))] == 1
