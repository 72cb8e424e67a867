"""``GET /api/v1/events``: the router's domain events (:mod:`callcenter.events`), live, on a
websocket, as each user may see them.

How the events get here: :class:`StreamHub` is one listener of the router's
:class:`~callcenter.events.EventBus` (the service puts it in ``event_listeners``). Its
``handle`` only copies the event into the inbox of each connected client, a
:class:`~callcenter.events.Subscription` of its own (bounded: :data:`CLIENT_INBOX`
events, the oldest dropped first). So a slow client never slows the router nor the other
clients: it loses its oldest events, and is told how many (a ``dropped`` message); a client
that does not read at all for :data:`SEND_TIMEOUT` seconds is closed (1008). Each client
is subscribed when its socket opens and unsubscribed when it closes.

What a client receives (JSON text frames):

* first ``{"type": "subscribed", "at", "user", "role", "queues", "agents"}``: from now
  on every event it may see is sent (``queues``/``agents``: its filter, ``null`` = all);
* then each event as ``{"type": <event class>, "at": <ISO 8601>, ...its fields}``, e.g.
  ``{"type": "CallConnected", "at": "...", "queue": "sales", "call": "<caller channel>",
  "agent": "carmen", ...}`` (:func:`event_json`);
* ``{"type": "dropped", "at", "count"}`` before the next event when *count* events were
  lost because the client fell behind.

Who sees what (:func:`visible`, pure, with the rules of :mod:`callcenter.web.access`):
an admin everything; a supervisor the events of its queues (callers, offers, calls) and of
the agents who serve them; an agent its own agent events and the offers and calls that
rang or reached it (not the callers waiting, nor other agents). ``?queues=a,b`` and
``?agents=x,y`` narrow that further (:class:`Selection`): ``queues`` keeps events of those
queues (an agent event: of an agent serving one of them); ``agents`` keeps events of those
agents (an event with no agent, such as ``CallerEntered``, is then left out).

The token comes in the ``Authorization`` header, or for browsers (whose websocket API
cannot set headers) in the ``token`` query parameter; the service's access log never
shows it (:mod:`callcenter.web.server`). Ping frames every :data:`HEARTBEAT` seconds keep
the connection alive through proxies and detect a vanished client; the service closes
every socket with 1001 (going away) when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aiohttp import WSCloseCode, web

from callcenter.events import QueueEvent, Subscription
from callcenter.web.access import Access, ApiUser
from callcenter.web.context import ACCESS, CLOCK, CONFIG, ApiError, forbidden, user_of
from callcenter.web.views import field_label

__all__ = [
    "CLIENT_INBOX",
    "EVENTS_PATH",
    "EVENT_SCHEMAS",
    "HEARTBEAT",
    "SEND_TIMEOUT",
    "Selection",
    "StreamHub",
    "event_json",
    "events_route",
    "install",
    "visible",
]

log = logging.getLogger(__name__)

#: The route's path (the bearer middleware takes a ``token`` query parameter here only).
EVENTS_PATH: Final = "/api/v1/events"
#: Events a client may fall behind by before its oldest are dropped.
CLIENT_INBOX: Final = 1000
#: Seconds between ping frames; a client that does not answer one in half that is closed.
HEARTBEAT: Final = 20.0
#: A client that takes longer than this to take one message is closed (1008).
SEND_TIMEOUT: Final = 10.0
#: At shutdown, how long clients get to answer the close (the server stops anyway).
CLOSE_TIMEOUT: Final = 2.0
#: The query parameters the route takes.
QUERY: Final = ("token", "queues", "agents")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def event_json(event: QueueEvent) -> dict[str, Any]:
    """*event* as the stream sends it: ``type`` (the class name), ``at``, then every field
    (times ISO 8601, statuses their value, tuples lists)."""
    fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"type": type(event).__name__, "at": fields.pop("at"), **fields}


@dataclass(frozen=True, slots=True)
class Selection:
    """A client's optional filter (``None``: no filter on that side)."""

    queues: frozenset[str] | None = None
    agents: frozenset[str] | None = None


def _queues_of(event: QueueEvent, access: Access) -> frozenset[str]:
    queue = getattr(event, "queue", None)
    if queue is not None:
        return frozenset({queue})
    queues = getattr(event, "queues", None)
    if queues is not None:
        return frozenset(queues)
    agent = getattr(event, "agent", None)
    return access.queues_of(agent) if agent is not None else frozenset()


def visible(event: QueueEvent, user: ApiUser, access: Access,
            selection: Selection = Selection()) -> bool:
    """Whether *user*'s stream (narrowed by *selection*) carries *event* (pure)."""
    queue: str | None = getattr(event, "queue", None)
    agent: str | None = getattr(event, "agent", None)
    if queue is not None:  # a caller, offer or call event
        allowed = access.may_see_call(user, queue, agent)
    else:  # an agent event
        allowed = agent is not None and access.may_manage_agent(user, agent)
    if not allowed:
        return False
    if selection.queues is not None and not selection.queues & _queues_of(event, access):
        return False
    return selection.agents is None or (agent is not None and agent in selection.agents)


class StreamHub:
    """The stream's one listener on the router's bus: it hands each event to every
    connected client's own bounded inbox, never waiting for a client."""

    def __init__(self) -> None:
        self._clients: set[Subscription] = set()

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def handle(self, event: QueueEvent) -> None:
        for client in tuple(self._clients):
            client.put(event)

    def subscribe(self, client: _Client, maxsize: int = CLIENT_INBOX) -> Subscription:
        subscription = Subscription(client, maxsize)
        self._clients.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._clients.discard(subscription)

    def __repr__(self) -> str:
        return f"<StreamHub clients={len(self._clients)}>"


class _Client:
    """One websocket: sends the events its user may see, says when it lost some."""

    def __init__(self, ws: web.WebSocketResponse, user: ApiUser, access: Access,
                 selection: Selection, clock: Any, peer: str) -> None:
        self.ws, self.user, self.access, self.selection = ws, user, access, selection
        self.clock = clock
        self.peer = peer
        self.subscription: Subscription | None = None
        self._dropped_told = 0

    async def handle(self, event: QueueEvent) -> None:
        if self.ws.closed or not visible(event, self.user, self.access, self.selection):
            return
        dropped = self.subscription.dropped if self.subscription is not None else 0
        if dropped > self._dropped_told:
            await self._send({"type": "dropped", "at": self.clock().isoformat(),
                              "count": dropped - self._dropped_told})
            self._dropped_told = dropped
        await self._send(event_json(event))

    async def _send(self, message: Mapping[str, Any]) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await self.ws.send_json(message)
        except TimeoutError:
            log.warning("event stream: %s (user %s) took over %.0f s to read a message: "
                        "closed", self.peer, self.user.name, SEND_TIMEOUT)
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow")
        except ConnectionError:
            pass  # the client went away: the reader sees the socket close

    def __repr__(self) -> str:
        return f"<event stream client {self.peer} user={self.user.name}>"


_HUB: Final = web.AppKey("event_hub", StreamHub)
_SOCKETS: Final = web.AppKey("event_sockets", weakref.WeakSet[web.WebSocketResponse])


def _names(request: web.Request, field: str, known: Iterable[str], kind: str) -> frozenset[str] | None:
    raw = request.query.getall(field, [])
    if not raw:
        return None
    if len(raw) > 1:
        raise ApiError(422, f"{field}: given {len(raw)} times (give it once, names "
                            "separated by commas)", field)
    names = [n.strip() for n in raw[0].split(",")]
    if not all(names):
        raise ApiError(422, f"{field}: expected {kind} names separated by commas, got "
                            f"{raw[0]!r}", field)
    known = frozenset(known)
    for name in names:
        if name not in known:
            raise ApiError(422, f"{field}: unknown {kind} {name!r} ({kind}s: "
                                f"{', '.join(sorted(known)) or 'none'})", field)
    return frozenset(names)


def _selection(request: web.Request, user: ApiUser) -> Selection:
    """The ``queues``/``agents`` filter: known names (422), that *user* may see (403)."""
    for field in request.query:
        if field not in QUERY:
            raise ApiError(422, f"{field_label(field)}: unknown query parameter (expected "
                                f"{', '.join(QUERY)})", field_label(field))
    config, access = request.app[CONFIG], request.app[ACCESS]
    queues = _names(request, "queues", config.queues, "queue")
    agents = _names(request, "agents", config.agents, "agent")
    for queue in sorted(queues or ()):
        if not access.may_see_queue(user, queue):
            raise forbidden(user, f"see queue {queue!r}")
    for agent in sorted(agents or ()):
        if not access.may_manage_agent(user, agent):
            raise forbidden(user, f"see agent {agent!r}")
    return Selection(queues, agents)


async def events_route(request: web.Request) -> web.StreamResponse:
    """The websocket: subscribe, send until either side closes, unsubscribe."""
    user = user_of(request)
    selection = _selection(request, user)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        raise ApiError(426, f"{EVENTS_PATH} is a websocket: open it with 'Upgrade: "
                            "websocket' (e.g. new WebSocket(url) in a browser)")
    await ws.prepare(request)
    app = request.app
    peer = request.remote or "?"
    client = _Client(ws, user, app[ACCESS], selection, app[CLOCK], peer)
    hub = app[_HUB]
    subscription = client.subscription = hub.subscribe(client)
    app[_SOCKETS].add(ws)
    stop = asyncio.Event()
    log.info("event stream: %s opened by user %s", peer, user.name)
    try:
        await client._send({
            "type": "subscribed", "at": app[CLOCK]().isoformat(), "user": user.name,
            "role": user.role,
            "queues": None if selection.queues is None else sorted(selection.queues),
            "agents": None if selection.agents is None else sorted(selection.agents)})
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(subscription.serve(stop), name=f"events -> {peer}")
            async for _message in ws:
                pass  # the client has nothing to say; pings and close are handled by aiohttp
            sender.cancel()
    finally:
        hub.unsubscribe(subscription)
        app[_SOCKETS].discard(ws)
        log.info("event stream: %s (user %s) closed; %d events dropped", peer, user.name,
                 subscription.dropped)
    return ws


async def _close_all(app: web.Application) -> None:
    """Shutdown: every socket closed with 1001 so clients know to reconnect later; all at
    once, and at most :data:`CLOSE_TIMEOUT` waiting for clients' close replies."""

    async def close(ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping")

    sockets = tuple(app[_SOCKETS])
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT), asyncio.TaskGroup() as group:
            for ws in sockets:
                group.create_task(close(ws))
    except TimeoutError:
        log.warning("event stream: %d client(s) did not answer the close in %.0f s",
                    sum(not ws.closed for ws in sockets), CLOSE_TIMEOUT)


def install(app: web.Application, hub: StreamHub) -> None:
    """Give *app* the stream's state: the hub its route reads and the close on shutdown."""
    app[_HUB] = hub
    app[_SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(_close_all)


#: The schema of the stream's messages (the OpenAPI document's components).
EVENT_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "StreamMessage": {
        "type": "object",
        "description": "One message of the event stream: 'subscribed' first (user, role, "
                       "queues, agents: the filter, null = all), then each domain event "
                       "of callcenter.events as {type: its class name (CallerEntered, "
                       "OfferRinging, OfferEnded, CallConnected, CallCompleted, "
                       "CallAbandoned, CallOverflowed, AgentStateChanged, AgentLoggedIn, "
                       "AgentLoggedOut, AgentPaused, AgentUnpaused), at, ...its fields}, "
                       "and 'dropped' (count) when the client fell behind and lost events.",
        "properties": {"type": {"type": "string"},
                       "at": {"type": "string", "format": "date-time"}},
        "required": ["type", "at"],
    },
}
