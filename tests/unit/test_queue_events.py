"""The router's events off the PBX: the bus (a failing or slow listener never hurts the
router), the agent events, queue_log lines per app_queue verb (and values from outside
that must not break them), the writer over a protocol-speaking fake AMI, the metrics,
and ``GET /metrics`` on the service's HTTP API."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.agents.state import AgentState, AgentStatus
from callcenter.asterisk.ami import AMIClient, AMIMessage
from callcenter.asterisk.secrets import stored_api_token
from callcenter.config.models import CallCenterConfig
from callcenter.events import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentStateChanged,
    AgentUnpaused,
    CallAbandoned,
    CallCompleted,
    CallConnected,
    CallerEntered,
    CallOverflowed,
    EventBus,
    OfferEnded,
    QueueEvent,
    status_event,
    transition_events,
)
from callcenter.reporting.metrics import QueueMetrics
from callcenter.reporting.queue_log import (
    QueueLogLine,
    QueueLogWriter,
    clean,
    queue_log_lines,
)
from callcenter.service import CallCenterService
from callcenter.storage import default_sqlite_url
from callcenter.testing.ports import free_port
from tests.unit.test_ami_client import CLOSE, FakeAMI
from tests.unit.test_service import config  # noqa: F401 - the fixture

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- the bus ------------------------------------------------------------------------------


class Collect:
    def __init__(self, fail_on: int | None = None, gate: asyncio.Event | None = None) -> None:
        self.seen: list[int] = []
        self.fail_on, self.gate = fail_on, gate
        self.arrived = asyncio.Condition()

    async def handle(self, event: QueueEvent) -> None:
        if self.gate is not None:
            await self.gate.wait()
        position = int(event.call)  # type: ignore[attr-defined]
        async with self.arrived:
            self.seen.append(position)
            self.arrived.notify_all()
        if position == self.fail_on:
            raise RuntimeError("listener bug")

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5), self.arrived:
            await self.arrived.wait_for(lambda: len(self.seen) >= count)


def entered(n: int) -> CallerEntered:
    return CallerEntered(at=at(n), queue="sales", call=str(n), caller_number="1",
                         caller_name="", position=1)


async def test_a_failing_listener_is_logged_and_the_next_event_still_comes(
        caplog: pytest.LogCaptureFixture) -> None:
    broken, healthy = Collect(fail_on=1), Collect()
    bus = EventBus([broken, healthy])
    runner = asyncio.create_task(bus.run())
    for n in range(3):
        bus.publish(entered(n))
    await broken.until(3)
    await healthy.until(3)
    bus.stop()
    await asyncio.wait_for(runner, 5)
    assert broken.seen == healthy.seen == [0, 1, 2]
    assert bus.subscriptions[0].failed == 1 and bus.subscriptions[1].failed == 0
    assert "failed on CallerEntered" in caplog.text


async def test_a_slow_listener_loses_the_oldest_events_and_never_blocks_publish() -> None:
    gate = asyncio.Event()
    slow, fast = Collect(gate=gate), Collect()
    bus = EventBus([slow, fast], maxsize=3)
    runner = asyncio.create_task(bus.run())
    bus.publish(entered(0))
    await asyncio.sleep(0)  # the slow listener takes event 0 and blocks in handle
    for n in range(1, 8):
        bus.publish(entered(n))  # synchronous: returns at once whatever the listeners do
        await fast.until(n + 1)  # the other listener keeps up meanwhile
    gate.set()
    await slow.until(4)
    bus.stop()
    await asyncio.wait_for(runner, 5)
    assert fast.seen == list(range(8))
    # 0 was in hand; of 1..7 only the 3 newest fit: 1, 2, 3, 4 dropped.
    assert slow.seen == [0, 5, 6, 7]
    assert (bus.subscriptions[0].dropped, bus.subscriptions[1].dropped) == (4, 0)


async def test_stop_delivers_what_is_queued() -> None:
    listener = Collect()
    bus = EventBus([listener])
    for n in range(5):
        bus.publish(entered(n))
    bus.stop()
    await asyncio.wait_for(bus.run(), 5)
    assert listener.seen == [0, 1, 2, 3, 4]


# -- agent events --------------------------------------------------------------------------


def state(status: AgentStatus, seconds: float, version: int, **kw: object) -> AgentState:
    return AgentState("alice", status, at(seconds), version, **kw)  # type: ignore[arg-type]


def test_transitions_give_login_pause_unpause_logout() -> None:
    out = state(AgentStatus.LOGGED_OUT, 0, 1)
    avail = state(AgentStatus.AVAILABLE, 1, 2)
    lunch = state(AgentStatus.PAUSED, 2, 3, pause_reason="lunch")
    brk = state(AgentStatus.PAUSED, 3, 4, pause_reason="break")
    q = ("sales", "billing")
    assert transition_events(out, avail, q) == [
        AgentLoggedIn(at=at(1), agent="alice", queues=("billing", "sales"))]
    assert transition_events(avail, lunch, q) == [
        AgentPaused(at=at(2), agent="alice", queues=("billing", "sales"), reason="lunch")]
    assert transition_events(lunch, brk, q) == [
        AgentPaused(at=at(3), agent="alice", queues=("billing", "sales"), reason="break")]
    assert transition_events(brk, state(AgentStatus.AVAILABLE, 4, 5), q) == [
        AgentUnpaused(at=at(4), agent="alice", queues=("billing", "sales"))]
    # A logout from a pause is a logout (app_queue writes no UNPAUSE for a removed member).
    assert transition_events(brk, state(AgentStatus.LOGGED_OUT, 5, 5), q) == [
        AgentLoggedOut(at=at(5), agent="alice", queues=("billing", "sales"))]
    assert transition_events(avail, state(AgentStatus.RESERVED, 6, 3, call="c1"), q) == []


def test_status_events_only_when_the_status_changes() -> None:
    avail = state(AgentStatus.AVAILABLE, 1, 2)
    assert status_event(None, avail) == AgentStateChanged(
        at=at(1), agent="alice", status=AgentStatus.AVAILABLE, previous=None)
    assert status_event(avail, state(AgentStatus.AVAILABLE, 1, 3)) is None
    assert status_event(avail, state(AgentStatus.RESERVED, 2, 3, call="c")) == \
        AgentStateChanged(at=at(2), agent="alice", status=AgentStatus.RESERVED,
                          previous=AgentStatus.AVAILABLE)


# -- queue_log lines ----------------------------------------------------------------------


def iface(agent: str) -> str:
    return f"PJSIP/{agent}"


@pytest.mark.parametrize(("event", "expected"), [
    (CallerEntered(at=T0, queue="sales", call="pbx-1.5", caller_number="+1555",
                   caller_name="Ada", position=2),
     [QueueLogLine("sales", "pbx-1.5", "NONE", "ENTERQUEUE", ("", "+1555", "2"))]),
    (CallerEntered(at=T0, queue="sales", call="pbx-1.5", caller_number="+1555",
                   caller_name="Ada", position=2, readopted=True), []),
    (OfferEnded(at=T0, queue="sales", call="c", agent="bob", result="no_answer",
                ring_seconds=15.0004),
     [QueueLogLine("sales", "c", "bob", "RINGNOANSWER", ("15000",))]),
    (OfferEnded(at=T0, queue="sales", call="c", agent="bob", result="busy", ring_seconds=0.2),
     [QueueLogLine("sales", "c", "bob", "RINGNOANSWER", ("200",))]),
    (OfferEnded(at=T0, queue="sales", call="c", agent="bob", result="caller_gone",
                ring_seconds=3.5),
     [QueueLogLine("sales", "c", "bob", "RINGCANCELED", ("3500",))]),
    (OfferEnded(at=T0, queue="sales", call="c", agent="bob", result="cancelled",
                ring_seconds=3), []),
    (CallConnected(at=T0, queue="sales", call="c", agent="bob", agent_channel="c-o1",
                   wait_seconds=12.4, ring_seconds=2.6, position=1),
     [QueueLogLine("sales", "c", "bob", "CONNECT", ("12", "c-o1", "3"))]),
    (CallCompleted(at=T0, queue="sales", call="c", agent="bob", by="caller",
                   hold_seconds=12.4, talk_seconds=61.0, position=3),
     [QueueLogLine("sales", "c", "bob", "COMPLETECALLER", ("12", "61", "3"))]),
    (CallCompleted(at=T0, queue="sales", call="c", agent="bob", by="agent",
                   hold_seconds=1, talk_seconds=2, position=1),
     [QueueLogLine("sales", "c", "bob", "COMPLETEAGENT", ("1", "2", "1"))]),
    (CallAbandoned(at=T0, queue="sales", call="c", position=1, original_position=4,
                   wait_seconds=30.2),
     [QueueLogLine("sales", "c", "NONE", "ABANDON", ("1", "4", "30"))]),
    (CallOverflowed(at=T0, queue="sales", call="c", position=2, original_position=2,
                    wait_seconds=240, destination="overflow1"),
     [QueueLogLine("sales", "c", "NONE", "EXITWITHTIMEOUT", ("2", "2", "240"))]),
    (AgentLoggedIn(at=T0, agent="bob", queues=("a", "b")),
     [QueueLogLine("NONE", "NONE", "bob", "AGENTLOGIN", ("PJSIP/bob",)),
      QueueLogLine("a", "MANAGER", "bob", "ADDMEMBER", ("",)),
      QueueLogLine("b", "MANAGER", "bob", "ADDMEMBER", ("",))]),
    (AgentPaused(at=T0, agent="bob", queues=("a",), reason="lunch"),
     [QueueLogLine("NONE", "NONE", "bob", "PAUSEALL", ("lunch",)),
      QueueLogLine("a", "NONE", "bob", "PAUSE", ("lunch",))]),
    (AgentUnpaused(at=T0, agent="bob", queues=("a",)),
     [QueueLogLine("NONE", "NONE", "bob", "UNPAUSEALL", ("",)),
      QueueLogLine("a", "NONE", "bob", "UNPAUSE", ("",))]),
    (AgentStateChanged(at=T0, agent="bob", status=AgentStatus.ON_CALL, previous=None), []),
])
def test_each_event_is_written_as_app_queue_writes_it(
        event: QueueEvent, expected: list[QueueLogLine]) -> None:
    assert queue_log_lines(event, iface) == expected


def test_agent_logoff_carries_the_time_logged_in() -> None:
    event = AgentLoggedOut(at=at(3600), agent="bob", queues=("a",))
    assert queue_log_lines(event, iface, logged_in_at=at(0.4)) == [
        QueueLogLine("a", "MANAGER", "bob", "REMOVEMEMBER", ("",)),
        QueueLogLine("NONE", "NONE", "bob", "AGENTLOGOFF", ("PJSIP/bob", "3600"))]
    assert queue_log_lines(event, iface)[-1].data == ("PJSIP/bob", "0")


@pytest.mark.parametrize(("raw", "safe"), [
    ("+1555|0001", "+1555_0001"),
    ("evil\r\nAction: Originate", "evilAction: Originate"),
    ("a\x00b\x1bc\u2028d", "abcd"),
    ("x" * 500, "x" * 128),
])
def test_values_from_outside_cannot_break_a_line(raw: str, safe: str) -> None:
    assert clean(raw) == safe
    line = queue_log_lines(CallerEntered(at=T0, queue="q", call="c", caller_number=raw,
                                         caller_name=raw, position=1), iface)[0]
    assert line.message == f"|{safe}|1"
    assert line.message.count("|") == 2


# -- the writer over AMI --------------------------------------------------------------------


def accept(action: AMIMessage) -> Iterable[object]:
    if action["Action"] == "QueueLog":
        return ["Response: Success\r\nActionID: {id}\r\nMessage: Event added successfully\r\n\r\n"]
    return []


async def test_writer_sends_queuelog_actions_with_the_fields_in_order() -> None:
    async with FakeAMI(accept) as fake:
        writer = QueueLogWriter(lambda: AMIClient("127.0.0.1", fake.port, username="cc",
                                                  secret=fake.secret, events="off"),
                                {"bob": "PJSIP/bob-desk"})
        try:
            await writer.handle(CallerEntered(at=T0, queue="sales", call="pbx-1.5",
                                              caller_number="15|55\r\n", caller_name="",
                                              position=1))
            await writer.handle(AgentLoggedIn(at=T0, agent="bob", queues=("sales",)))
        finally:
            await writer.close()
    sent = [a for a in fake.actions if a["Action"] == "QueueLog"]
    assert [(a["Queue"], a["UniqueId"], a["Interface"], a["Event"], a["Message"])
            for a in sent] == [
        ("sales", "pbx-1.5", "NONE", "ENTERQUEUE", "|15_55|1"),
        ("NONE", "NONE", "bob", "AGENTLOGIN", "PJSIP/bob-desk"),
        ("sales", "MANAGER", "bob", "ADDMEMBER", ""),
    ]
    assert (writer.written, writer.lost) == (3, 0)


async def test_writer_reconnects_after_a_drop_and_counts_what_it_could_not_write() -> None:
    closes = iter([True])

    def flaky(action: AMIMessage) -> Iterable[object]:
        if action["Action"] == "QueueLog" and next(closes, False):
            return [CLOSE]  # Asterisk went away mid-action
        return accept(action)

    line = QueueLogLine("sales", "c", "NONE", "ABANDON", ("1", "1", "3"))
    async with FakeAMI(flaky) as fake:
        writer = QueueLogWriter(lambda: AMIClient("127.0.0.1", fake.port, username="cc",
                                                  secret=fake.secret, events="off",
                                                  timeout=2), {})
        try:
            assert await writer.write(line)  # reopened once, then written
        finally:
            await writer.close()
    logins = [a for a in fake.actions if a["Action"] == "Login"]
    assert len(logins) == 2 and (writer.written, writer.lost) == (1, 0)
    # Nobody listening: the line is lost (counted), nothing raised, the router unharmed.
    down = QueueLogWriter(lambda: AMIClient("127.0.0.1", free_port(), username="cc",
                                            secret="x", timeout=1), {})
    assert not await down.write(line)
    assert (down.written, down.lost) == (0, 1)


# -- metrics ------------------------------------------------------------------------------


def samples(metrics: QueueMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for s in family.samples}


def test_metrics_count_calls_offers_waits_handle_time_and_agents() -> None:
    m = QueueMetrics(["sales", "billing"])
    changes = [AgentStateChanged(at=T0, agent=a, status=AgentStatus.AVAILABLE, previous=None)
               for a in ("alice", "bob")]
    events: list[QueueEvent] = [
        *changes,
        entered(1), entered(2), entered(3),
        OfferEnded(at=at(5), queue="sales", call="1", agent="bob", result="no_answer",
                   ring_seconds=15),
        CallConnected(at=at(20), queue="sales", call="1", agent="alice", agent_channel="1-o2",
                      wait_seconds=19, ring_seconds=2, position=1),
        AgentStateChanged(at=at(20), agent="alice", status=AgentStatus.ON_CALL,
                          previous=AgentStatus.AVAILABLE),
        CallAbandoned(at=at(30), queue="sales", call="2", position=1, original_position=2,
                      wait_seconds=28),
        CallCompleted(at=at(80), queue="sales", call="1", agent="alice", by="agent",
                      hold_seconds=19, talk_seconds=60, position=1),
        AgentStateChanged(at=at(80), agent="alice", status=AgentStatus.WRAP_UP,
                          previous=AgentStatus.ON_CALL),
        AgentStateChanged(at=at(90), agent="alice", status=AgentStatus.AVAILABLE,
                          previous=AgentStatus.WRAP_UP),
    ]
    for event in events:
        m.observe(event)
    s = samples(m)
    assert s[("callcenter_queue_calls_entered_total", (("queue", "sales"),))] == 3
    assert s[("callcenter_queue_calls_entered_total", (("queue", "billing"),))] == 0
    assert s[("callcenter_queue_calls_answered_total", (("queue", "sales"),))] == 1
    assert s[("callcenter_queue_calls_abandoned_total", (("queue", "sales"),))] == 1
    assert s[("callcenter_queue_offers_total", (("queue", "sales"), ("result", "no_answer")))] == 1
    assert s[("callcenter_queue_offers_total", (("queue", "sales"), ("result", "answered")))] == 1
    assert s[("callcenter_queue_wait_seconds_sum",
              (("outcome", "answered"), ("queue", "sales")))] == 19
    assert s[("callcenter_queue_wait_seconds_bucket",
              (("le", "20.0"), ("outcome", "answered"), ("queue", "sales")))] == 1
    assert s[("callcenter_queue_wait_seconds_sum",
              (("outcome", "abandoned"), ("queue", "sales")))] == 28
    # Handle time: 60 s of talk and 10 s of wrap-up, observed when the wrap-up ended.
    assert s[("callcenter_queue_handle_seconds_count", (("queue", "sales"),))] == 1
    assert s[("callcenter_queue_handle_seconds_sum", (("queue", "sales"),))] == 70
    assert s[("callcenter_queue_callers_waiting", (("queue", "sales"),))] == 1  # call 3
    assert s[("callcenter_agents", (("status", "available"),))] == 2
    assert s[("callcenter_agents", (("status", "wrap_up"),))] == 0


async def test_service_serves_metrics_on_its_http_api_with_the_token(
        config: CallCenterConfig, tmp_path: Path) -> None:  # noqa: F811
    home = tmp_path / "home"
    async with CallCenterService(config, home=home, db_url=default_sqlite_url(home),
                                 node="test") as service:
        service.metrics.observe(entered(1))
        token = stored_api_token(service.home / "secrets.json")
        url = f"{service.api_url}/metrics"

        def fetch(token: str | None) -> tuple[int, str, str]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(urllib.request.Request(url, headers=headers),
                                 timeout=5) as response:
                    return (response.status, response.headers["Content-Type"],
                            response.read().decode())
            except urllib.error.HTTPError as exc:
                return exc.code, exc.headers["Content-Type"], exc.read().decode()

        status, kind, body = await asyncio.to_thread(fetch, token)
        refused = await asyncio.to_thread(fetch, None)
    assert status == 200 and kind.startswith("text/plain"), (status, kind)
    assert 'callcenter_queue_calls_entered_total{queue="sales"} 1.0' in body
    assert refused[0] == 401
