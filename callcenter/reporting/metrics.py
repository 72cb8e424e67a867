"""Prometheus metrics of the queues and agents, from the router's events.

Served by ``callcenter serve`` on the HTTP API as ``GET /metrics`` (Prometheus text
format; the API's bearer token is required like on every route: in Prometheus,
``authorization: {credentials_file: ...}`` holding the home's ``api_token``). Each
service has its own registry: nothing global, so several services (tests) never mix.

=========================================  =========  ================================
metric                                     labels     what
=========================================  =========  ================================
``callcenter_queue_calls_entered_total``   queue      callers who entered
``callcenter_queue_calls_answered_total``  queue      callers connected to an agent
``callcenter_queue_calls_abandoned_total`` queue      callers who hung up unanswered
``callcenter_queue_calls_overflowed_total`` queue     callers sent on (overflow, fallback)
``callcenter_queue_offers_total``          queue,     offers by result: ``answered`` or
                                           result     an OfferResult (``no_answer``...)
``callcenter_queue_wait_seconds``          queue,     histogram: time in queue, by how
                                           outcome    it ended (answered/abandoned/overflowed)
``callcenter_queue_handle_seconds``        queue      histogram: talk + wrap-up of each
                                                      answered call (observed when the
                                                      agent leaves the call's wrap-up)
``callcenter_queue_callers_waiting``       queue      gauge: callers not yet answered
``callcenter_agents``                      status     gauge: agents per status
``callcenter_events_dropped_total``        listener   events a slow listener lost
=========================================  =========  ================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Final

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from callcenter.agents.state import AgentStatus
from callcenter.events import (
    AgentStateChanged,
    CallAbandoned,
    CallCompleted,
    CallConnected,
    CallerEntered,
    CallOverflowed,
    EventBus,
    OfferEnded,
    QueueEvent,
)

__all__ = ["QueueMetrics", "metrics_route"]

WAIT_BUCKETS: Final = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
HANDLE_BUCKETS: Final = (15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
_IN_CALL: Final = frozenset({AgentStatus.ON_CALL, AgentStatus.WRAP_UP})


class QueueMetrics:
    """An :class:`~callcenter.events.EventListener` keeping the metrics above."""

    def __init__(self, queues: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.entered = Counter("callcenter_queue_calls_entered", "Callers who entered the queue",
                               ["queue"], registry=r)
        self.answered = Counter("callcenter_queue_calls_answered",
                                "Callers connected to an agent", ["queue"], registry=r)
        self.abandoned = Counter("callcenter_queue_calls_abandoned",
                                 "Callers who hung up before an agent answered", ["queue"],
                                 registry=r)
        self.overflowed = Counter("callcenter_queue_calls_overflowed",
                                  "Callers sent on unanswered (overflow step or fallback)",
                                  ["queue"], registry=r)
        self.offers = Counter("callcenter_queue_offers", "Offers to agents, by result",
                              ["queue", "result"], registry=r)
        self.wait = Histogram("callcenter_queue_wait_seconds",
                              "Time callers spent in the queue, by how it ended",
                              ["queue", "outcome"], buckets=WAIT_BUCKETS, registry=r)
        self.handle_time = Histogram("callcenter_queue_handle_seconds",
                                     "Talk plus wrap-up time of answered calls", ["queue"],
                                     buckets=HANDLE_BUCKETS, registry=r)
        self.waiting = Gauge("callcenter_queue_callers_waiting",
                             "Callers in the queue not answered yet", ["queue"], registry=r)
        self.agents = Gauge("callcenter_agents", "Agents per status", ["status"], registry=r)
        for queue in queues:
            for counter in (self.entered, self.answered, self.abandoned, self.overflowed):
                counter.labels(queue)
            self.waiting.labels(queue).set(0)
        for status in AgentStatus:
            self.agents.labels(status.value).set(0)
        self._status: dict[str, AgentStatus] = {}
        self._waiting: dict[str, str] = {}  # caller channel -> queue
        self._completed: dict[str, tuple[str, float, datetime]] = {}  # agent -> queue, talk, end
        self._buses: list[EventBus] = []
        r.register(_DropCollector(lambda: self._buses))

    def __repr__(self) -> str:
        return "QueueMetrics()"

    def watch(self, bus: EventBus) -> None:
        """Report *bus*'s dropped events as ``callcenter_events_dropped_total``."""
        self._buses.append(bus)

    async def handle(self, event: QueueEvent) -> None:
        self.observe(event)

    def observe(self, event: QueueEvent) -> None:
        """Update the metrics for one event (synchronous: no I/O)."""
        match event:
            case CallerEntered():
                if not event.readopted:
                    self.entered.labels(event.queue).inc()
                self._wait_starts(event.call, event.queue)
            case CallConnected():
                self.answered.labels(event.queue).inc()
                self.offers.labels(event.queue, "answered").inc()
                self.wait.labels(event.queue, "answered").observe(event.wait_seconds)
                self._wait_ends(event.call)
            case OfferEnded():
                self.offers.labels(event.queue, event.result).inc()
            case CallAbandoned():
                self.abandoned.labels(event.queue).inc()
                self.wait.labels(event.queue, "abandoned").observe(event.wait_seconds)
                self._wait_ends(event.call)
            case CallOverflowed():
                self.overflowed.labels(event.queue).inc()
                self.wait.labels(event.queue, "overflowed").observe(event.wait_seconds)
                self._wait_ends(event.call)
            case CallCompleted():
                self._completed[event.agent] = (event.queue, event.talk_seconds, event.at)
            case AgentStateChanged():
                self._agent_changed(event)

    def _wait_starts(self, call: str, queue: str) -> None:
        if call not in self._waiting:
            self._waiting[call] = queue
            self.waiting.labels(queue).inc()

    def _wait_ends(self, call: str) -> None:
        queue = self._waiting.pop(call, None)
        if queue is not None:
            self.waiting.labels(queue).dec()

    def _agent_changed(self, event: AgentStateChanged) -> None:
        previous = self._status.get(event.agent)
        if previous is not None:
            self.agents.labels(previous.value).dec()
        self._status[event.agent] = event.status
        self.agents.labels(event.status.value).inc()
        # Handle time ends when the agent leaves the call and its wrap-up.
        if event.previous in _IN_CALL and event.status not in _IN_CALL:
            done = self._completed.pop(event.agent, None)
            if done is not None:
                queue, talk, ended = done
                wrap_up = max((event.at - ended).total_seconds(), 0.0) \
                    if event.previous is AgentStatus.WRAP_UP else 0.0
                self.handle_time.labels(queue).observe(talk + wrap_up)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class _DropCollector(Collector):
    """``callcenter_events_dropped_total``, read from the buses at scrape time."""

    def __init__(self, buses: Callable[[], list[EventBus]]) -> None:
        self._buses = buses

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("callcenter_events_dropped",
                                     "Events dropped because a listener fell behind",
                                     labels=["listener"])
        for bus in self._buses():
            for subscription in bus.subscriptions:
                family.add_metric([repr(subscription.listener)], subscription.dropped)
        yield family


def metrics_route(metrics: QueueMetrics) -> Callable[[web.Request], object]:
    """An aiohttp handler answering ``GET /metrics`` with *metrics*."""

    async def scrape(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return scrape
