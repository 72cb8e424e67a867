"""The long-lived services of a call center, wired together once for ``callcenter serve``,
``callcenter run`` and ``callcenter agi serve``.

:class:`CallCenterService` is one async context manager. Entering it opens, in order:
the database (migrated under the migration lock, so several services starting on a
fresh database migrate it once), the agent store (rows for the configured agents),
the account directory, the shared HTTP session, the ARI client (when an Asterisk
instance is given; it contacts Asterisk only when a component uses it), the FastAGI
server and the HTTP API (each optional). Leaving it closes them in reverse order.
Between the two, :meth:`CallCenterService.run` runs the *components* (long-running
coroutines such as the queue router) in one TaskGroup until asked to stop; a component
that fails or returns is logged with its name and stops the whole service with a
:class:`ServiceError` that says which and why, never a silent hang.

How the queue router is added (a few lines in the composition root)::

    async with CallCenterService(config, home=home, db_url=url, instance=instance) as service:
        router = QueueRouter(service.config, service.ari, service.sessions, node=service.node)
        service.add("queue router", router.run, on_agent_change=router.agent_changed)
        await service.run(stop)

``on_agent_change`` is what the HTTP API calls after it changed an agent (login, pause...)
so the router re-reads the agent and routes at once.

The router's domain events (:mod:`callcenter.events`) go to :attr:`CallCenterService.event_listeners`:
the ``queue_log`` writer (:mod:`callcenter.reporting.queue_log`, through the instance's AMI)
and the Prometheus metrics (:mod:`callcenter.reporting.metrics`), served on the HTTP API as
``GET /metrics``::

    router = QueueRouter(..., listeners=service.event_listeners)
    service.watch_events(router.events)   # dropped events show in the metrics
    service.add("queue router", router.run, on_agent_change=router.agent_changed,
                on_agent_transition=router.agent_transition)

``on_agent_transition`` hears every change the service's own agent store writes (the HTTP
API's login, pause...), so the router's events include them.

:class:`ServiceResources` is the smaller part (database, accounts, HTTP session, data
dips) that one-shot commands (``simulate``, classic ``agi run``) open on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.agents.rules import rules_from_config
from callcenter.agents.state import AgentState
from callcenter.agents.store import AgentChangeListener, AgentStore
from callcenter.asterisk.agi.context import utc_now
from callcenter.asterisk.ami import AMIClient
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.instance import AsteriskInstance, InstanceError
from callcenter.asterisk.secrets import SecretsError
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.dispose import HandoffPort
from callcenter.events import EventBus, EventListener
from callcenter.reporting.metrics import QueueMetrics, metrics_route
from callcenter.reporting.queue_log import QueueLogWriter
from callcenter.storage.directory import AccountDirectory
from callcenter.web.stream import StreamHub
from callcenter.web.supervise import SuperviseHook, Supervising, no_router, router_hook

__all__ = [
    "CallCenterService",
    "Component",
    "ComponentFailed",
    "ServiceError",
    "ServiceResources",
    "default_node",
]

log = logging.getLogger(__name__)

#: ``queued_calls.node`` and the transition log's reason hold at most this many characters.
_NODE_MAX: Final = 64


class ServiceError(Exception):
    """The service cannot start or had to stop; the message says what and what to do."""


class ComponentFailed(ServiceError):
    """A component raised or returned while the service ran."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Component:
    """A long-running part of the service: ``run()`` works until cancelled."""

    name: str
    run: Callable[[], Awaitable[None]]


def default_node() -> str:
    """This machine's name, the node recorded with queued calls and agent changes."""
    return (platform.node() or "callcenter")[:_NODE_MAX]


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _cannot_listen(what: str, host: str, port: int, exc: OSError, setting: str) -> ServiceError:
    reason = os.strerror(exc.errno) if exc.errno else _why(exc)
    return ServiceError(f"{what} cannot listen on {host}:{port}: {reason}; "
                        f"choose another port: {setting}")


def _shown_url(url: str) -> str:
    """The database URL without its password (messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an invalid URL)"


# -- the resources every command shares ----------------------------------------


class ServiceResources:
    """Database engine and sessions, account directory and HTTP session, opened together
    (``async with ServiceResources(config, db_url) as resources``) and closed in reverse."""

    def __init__(self, config: CallCenterConfig, db_url: str) -> None:
        self.config = config
        self.db_url = db_url
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        from callcenter.storage import make_engine, make_sessionmaker
        from callcenter.storage.migrate import MigrationError, upgrade

        try:
            try:
                await upgrade(self.db_url)
            except (MigrationError, SQLAlchemyError, OSError, ValueError) as exc:
                raise ServiceError(f"cannot open the database {_shown_url(self.db_url)}: "
                                   f"{_why(exc).splitlines()[0]}") from exc
            # BEGIN IMMEDIATE on SQLite: the router's transactions read then write, and a
            # deferred transaction fails ("database is locked") instead of waiting when
            # another writer got there first. PostgreSQL ignores the flag.
            self.engine: AsyncEngine = make_engine(self.db_url, sqlite_immediate=True)
            self._stack.push_async_callback(self.engine.dispose)
            self.sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(self.engine)
            self.accounts = AccountDirectory(self.db_url)
            self._stack.push_async_callback(self.accounts.close)
            self.http = aiohttp.ClientSession()
            self._stack.push_async_callback(self.http.close)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    async def lookup(self, name: str, key: str) -> Any:
        """Run the config's lookup *name* for *key* (what ``simulate`` asks)."""
        from callcenter.flows.lookup import perform_lookup

        return await perform_lookup(self.config.lookups[name], key,
                                    accounts=self.accounts, http=self.http)


# -- the long-lived service ------------------------------------------------------


class CallCenterService:
    """FastAGI, the HTTP API and the components (the queue router) over shared resources.

    *home* holds the secrets file (the API token is generated there) and ``api.json``
    (where ``callcenter agents`` finds the API). *instance*: the Asterisk whose ARI the
    components use (credentials and URL from the home); ``None`` when no component needs
    ARI (``agi serve``).
    """

    def __init__(
        self,
        config: CallCenterConfig,
        *,
        home: Path,
        db_url: str,
        instance: AsteriskInstance | None = None,
        node: str | None = None,
        fastagi: bool = True,
        http_api: bool = True,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.home = home
        self.db_url = db_url
        self.node = (node or default_node())[:_NODE_MAX]
        self.clock = clock
        self._instance = instance
        self._want_fastagi = fastagi
        self._want_http_api = http_api
        self._components: list[Component] = []
        self._agent_listeners: list[Callable[[str], None]] = []
        self._transition_listeners: list[AgentChangeListener] = []
        self._stack = contextlib.AsyncExitStack()
        self._ari: ARIClient | None = None
        self._fastagi: Any = None
        self._api: Any = None
        self._running = False
        #: Prometheus metrics of the router's events (``GET /metrics`` on the HTTP API).
        self.metrics = QueueMetrics(config.queues)
        #: The queue_log writer (AMI ``QueueLog``), when the service has an Asterisk.
        self.queue_log: QueueLogWriter | None = None
        #: The HTTP API's live event stream (``GET /api/v1/events``), fed by the router.
        self.stream = StreamHub()
        self._supervision_hook: SuperviseHook = no_router
        #: The queue router's transfers, for the HTTP API (set with the router).
        self.transfers: Any = None
        #: The preview dialer, for the HTTP API's preview dial (set with the router).
        self.preview: Any = None

    # -- what components use ---------------------------------------------------

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._resources.sessions

    @property
    def accounts(self) -> AccountDirectory:
        return self._resources.accounts

    @property
    def http(self) -> aiohttp.ClientSession:
        return self._resources.http

    @property
    def has_ari(self) -> bool:
        """Whether the service talks to an Asterisk (serve, run) or not (agi serve)."""
        return self._ari is not None

    @property
    def ari(self) -> ARIClient:
        """The ARI client of the home's Asterisk, for ``settings.queue_app`` and
        ``settings.agent_app`` (the router serves both)."""
        if self._ari is None:
            raise ServiceError("this service has no Asterisk instance: ARI is not available")
        return self._ari

    def _handoff(self) -> HandoffPort | None:
        """The PBX side of a campaign call's warm transfer (none without Asterisk)."""
        from ari_apps.campaign_handoff import AriHandoff

        return None if self._ari is None else AriHandoff(self._ari)

    @property
    def event_listeners(self) -> list[EventListener]:
        """What hears the router's events: the queue_log writer (with an Asterisk), the
        metrics and the HTTP API's event stream (:attr:`stream`)."""
        return [*([self.queue_log] if self.queue_log is not None else []), self.metrics,
                self.stream]

    def watch_events(self, bus: EventBus) -> None:
        """Report *bus*'s dropped events in the metrics."""
        self.metrics.watch(bus)

    @property
    def fastagi_address(self) -> tuple[str, int] | None:
        """Where FastAGI listens (the port bound), or ``None`` without FastAGI."""
        if self._fastagi is None:
            return None
        return self.config.settings.fastagi.host, self._fastagi.port

    @property
    def api_url(self) -> str | None:
        """The HTTP API's URL as a local client reaches it, or ``None`` without the API."""
        return None if self._api is None else self._api.url

    def add(self, name: str, run: Callable[[], Awaitable[None]], *,
            on_agent_change: Callable[[str], None] | None = None,
            on_agent_transition: AgentChangeListener | None = None,
            supervision: Any = None) -> None:
        """Run ``run()`` as component *name* in :meth:`run`; *on_agent_change* hears of
        every agent the API changed, *on_agent_transition* of each change (before, after);
        *supervision* (the router's) serves the API's listen, whisper and barge."""
        if self._running:
            raise RuntimeError("components are added before run()")
        self._components.append(Component(name, run))
        if supervision is not None:
            self._supervision_hook = router_hook(supervision)
        if on_agent_change is not None:
            self._agent_listeners.append(on_agent_change)
        if on_agent_transition is not None:
            self._transition_listeners.append(on_agent_transition)

    async def _supervise_call(self, supervisor: str, agent: str, mode: str) -> Supervising:
        # The API starts before the router is added: the hook is looked up per request.
        return await self._supervision_hook(supervisor, agent, mode)

    def _agent_transition(self, before: AgentState, after: AgentState) -> None:
        for listener in self._transition_listeners:
            try:
                listener(before, after)
            except Exception:
                log.exception("telling %r about agent %s's change failed", listener, after.agent)

    def agent_changed(self, agent: str) -> None:
        """Tell every listener (the router) that *agent* changed in the database."""
        for listener in self._agent_listeners:
            try:
                listener(agent)
            except Exception:
                # The change is stored; the router's own timer re-reads agents anyway.
                log.exception("telling %r about agent %s failed", listener, agent)

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    async def _open(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._resources = await self._stack.enter_async_context(
            ServiceResources(self.config, self.db_url))
        self.store = AgentStore(self.sessions, rules_from_config(self.config), node=self.node,
                                on_change=self._agent_transition)
        await self.store.ensure(self.config.agents, self.clock())
        if self._instance is not None:
            await self._open_ari(self._instance)
        if self._want_fastagi:
            await self._start_fastagi()
        if self._want_http_api:
            await self._start_http_api()

    async def _open_ari(self, instance: AsteriskInstance) -> None:
        try:
            credentials = instance.credentials
            url = instance.ari_url
        except InstanceError as exc:
            raise ServiceError(str(exc)) from None
        # Its own HTTP session: ARI's REST calls never queue behind data dips.
        self._ari = ARIClient(url, username=credentials.ari_user,
                              password=credentials.ari_password,
                              app=(self.config.settings.queue_app,
                                   self.config.settings.agent_app))
        await self._ari.open()
        self._stack.push_async_callback(self._ari.close)
        host, port = instance.ami_address
        self.queue_log = QueueLogWriter(
            lambda: AMIClient(host, port, username=credentials.ami_user,
                              secret=credentials.ami_secret, events="off"),
            {name: agent.dial_string(name) for name, agent in self.config.agents.items()})
        # Lazily connected by its first line; closed on the way out.
        self._stack.push_async_callback(self.queue_log.close)

    async def _start_fastagi(self) -> None:
        import agi_scripts
        from callcenter.asterisk.agi import AGIContext, FastAGIServer

        context = AGIContext(config=self.config, clock=self.clock, db=self.sessions,
                             accounts=self.accounts, http=self.http)
        fa = self.config.settings.fastagi
        server = FastAGIServer(agi_scripts.handlers(), context, host=fa.host, port=fa.port)
        try:
            await server.start()
        except OSError as exc:
            raise _cannot_listen("FastAGI", fa.host, fa.port, exc,
                                 "settings.fastagi.port") from None
        self._stack.push_async_callback(server.stop)
        self._fastagi = server

    async def _start_http_api(self) -> None:
        from callcenter.web import (
            ApiServer,
            TokenBook,
            create_api_app,
            users_from_config,
        )
        from callcenter.web.api import ari_hang_up, no_asterisk
        from callcenter.web.context import staff_only
        from callcenter.web.endpoint import remove_endpoint, write_endpoint

        secrets_file = AsteriskInstance(self.home).secrets_file
        try:
            tokens = TokenBook.from_secrets(secrets_file, users_from_config(self.config))
        except (SecretsError, OSError) as exc:
            raise ServiceError(f"HTTP API: {exc}") from None
        app = create_api_app(config=self.config, store=self.store, sessions=self.sessions,
                             tokens=tokens, clock=self.clock, on_agent_change=self.agent_changed,
                             hang_up=no_asterisk if self._ari is None else ari_hang_up(self._ari),
                             events=self.stream, supervise=self._supervise_call,
                             transfers=lambda: self.transfers,
                             preview=lambda: self.preview,
                             handoff=self._handoff,
                             # Where the instance's Asterisk writes recordings (its
                             # asterisk.conf's astspooldir + /recording).
                             recordings=None if self._instance is None
                             else self._instance.dir / "spool" / "recording")
        # Prometheus scrapes here, with an admin's or a supervisor's token (every queue
        # and agent at once: not for an agent's).
        app.router.add_get("/metrics", staff_only(metrics_route(self.metrics),  # type: ignore[arg-type]
                                                  "read the metrics"))
        settings = self.config.settings.http_api
        server = ApiServer(app, host=settings.host, port=settings.port)
        try:
            await server.start()
        except OSError as exc:
            raise _cannot_listen("HTTP API", settings.host, settings.port, exc,
                                 "settings.http_api.port") from None
        self._stack.push_async_callback(server.stop)
        write_endpoint(self.home, server.url)
        # Removed before the server stops: a client never finds a URL nobody answers.
        self._stack.callback(remove_endpoint, self.home, server.url)
        self._api = server

    async def run(self, stop: asyncio.Event) -> None:
        """Run the components until *stop* is set (then cancel them and return).

        Raises:
            ComponentFailed: a component raised or returned on its own; the others were
                cancelled first.
        """
        self._running = True
        failed: ComponentFailed | None = None
        try:
            async with asyncio.TaskGroup() as group:
                for component in self._components:
                    group.create_task(self._supervise(component), name=component.name)
                await stop.wait()
                raise _Stopped
        except* _Stopped:
            pass
        except* ComponentFailed as failures:
            failed = failures.exceptions[0]  # type: ignore[assignment]
        if failed is not None:
            raise failed

    @staticmethod
    async def _supervise(component: Component) -> None:
        try:
            await component.run()
        except Exception as exc:
            log.error("%s failed: %s", component.name, _why(exc), exc_info=exc)
            raise ComponentFailed(
                component.name, f"{component.name} failed: {_why(exc)}; the call center stops"
            ) from exc
        log.error("%s stopped on its own", component.name)
        raise ComponentFailed(component.name,
                              f"{component.name} stopped on its own; the call center stops")


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel the components on a stop request."""
