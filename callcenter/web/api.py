"""The HTTP API of ``callcenter serve``: agent state and actions, waiting calls.

Routes (JSON; every request needs ``Authorization: Bearer <token>``, the token in the
home's ``secrets.json``)::

    GET  /api/agents                       every configured agent's state
    GET  /api/agents/{name}                one agent
    POST /api/agents/{name}/login          } body: none (or {});
    POST /api/agents/{name}/logout         } pause: {"reason": "lunch"}
    POST /api/agents/{name}/pause          }
    POST /api/agents/{name}/unpause        } answer: the agent's new state
    POST /api/agents/{name}/end-wrapup     }
    GET  /api/calls/waiting                callers waiting in a queue, oldest first per priority

An action goes through :meth:`callcenter.agents.store.AgentStore.apply` (the state
machine judges it; compare-and-set in the database, so it is safe next to every router),
then the ``on_agent_change`` hook tells the queue router to look at the agent again.

Errors are JSON ``{"error": message}`` (and ``"field"`` for a bad body): 401 no or a wrong
token, 404 unknown agent or route, 405 wrong method, 409 the state machine refused (its
message), 413 body too large, 422 bad body, 503 the agent kept changing under us. Bad
input never gets a 500; an unexpected error is logged here and answered with a plain 500
(no traceback leaves the process).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import IllegalTransition, UnknownPauseReason, logged_out
from callcenter.agents.store import AgentStore, StoreConflict
from callcenter.config.models import CallCenterConfig
from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.web.views import ACTIONS, BadBody, agent_json, event_for, parse_body, waiting_json

__all__ = ["AgentChangeHook", "create_api_app"]

log = logging.getLogger(__name__)

#: Called with an agent's name after the API changed it (the router's ``agent_changed``).
AgentChangeHook = Callable[[str], None]

#: Largest request body read (a pause body is a few dozen bytes).
MAX_BODY: Final = 16 * 1024

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CONFIG: Final = web.AppKey("config", CallCenterConfig)
_STORE: Final = web.AppKey("store", AgentStore)
_SESSIONS: Final = web.AppKey("sessions", async_sessionmaker[AsyncSession])
_TOKEN: Final = web.AppKey("token", bytes)
_HOOK: Final = web.AppKey("on_agent_change", Callable[[str], None])
_CLOCK: Final = web.AppKey("clock", Callable[[], datetime])

class _ApiError(Exception):
    """Answered as ``{"error": message}`` with *status* by :func:`_json_errors`."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


def _error(status: int, message: str, **extra: str) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)

def _presented_token(request: web.Request) -> bytes | None:
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    # Header values may hold any code point (and surrogates): compare bytes, never str,
    # so compare_digest cannot raise on non-ASCII input.
    return credentials.strip().encode("utf-8", "surrogatepass")

@web.middleware
async def _json_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every error as JSON; an unexpected exception logged with its route, answered 500."""
    try:
        return await handler(request)
    except _ApiError as exc:
        return _error(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason
        if exc.status == 404:
            message = f"no such route: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        elif exc.status == 413:
            message = f"request body too large (at most {MAX_BODY} bytes)"
        response = _error(exc.status, message)
        for header in ("Allow", "WWW-Authenticate"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response
    except Exception:
        log.exception("HTTP API: %s %s failed", request.method, request.path)
        return _error(500, "internal error (logged by the service)")

@web.middleware
async def _bearer_auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """401 unless the request carries the service's token (constant-time comparison)."""
    presented = _presented_token(request)
    if presented is None or not hmac.compare_digest(presented, request.app[_TOKEN]):
        response = _error(401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                               "(the api_token of the home's secrets.json)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="callcenter"'
        return response
    return await handler(request)

def _known_agent(request: web.Request) -> str:
    name = request.match_info["name"]
    agents = request.app[_CONFIG].agents
    if name not in agents:
        raise _ApiError(404, f"no agent {name!r} (agents: {', '.join(sorted(agents)) or 'none'})")
    return name

async def _list_agents(request: web.Request) -> web.Response:
    now = request.app[_CLOCK]()
    stored = {state.agent: state for state in await request.app[_STORE].all()}
    return web.json_response({"agents": [
        agent_json(stored.get(name) or logged_out(name, now))
        for name in sorted(request.app[_CONFIG].agents)
    ]})

async def _get_agent(request: web.Request) -> web.Response:
    name = _known_agent(request)
    state = await request.app[_STORE].get(name, request.app[_CLOCK]())
    return web.json_response(agent_json(state))

async def _act(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise _ApiError(404, f"no action {action!r} (actions: {', '.join(ACTIONS)})")
    name = _known_agent(request)
    try:
        event = event_for(action, parse_body(await request.read()))
    except BadBody as exc:
        return _error(422, str(exc), field=exc.field)
    app = request.app
    try:
        outcome = await app[_STORE].apply(name, event, app[_CLOCK](), reason="api")
    except UnknownPauseReason as exc:
        return _error(422, f"reason: {exc}", field="reason")
    except IllegalTransition as exc:
        return _error(409, str(exc))
    except StoreConflict as exc:
        return _error(503, f"{exc}; try again")
    if outcome.changed:
        try:
            app[_HOOK](name)
        except Exception:
            # The change is stored; the router also re-reads agents on its own timer.
            log.exception("HTTP API: telling the router about agent %s failed", name)
    return web.json_response(agent_json(outcome.state))

async def _waiting_calls(request: web.Request) -> web.Response:
    now = request.app[_CLOCK]()
    async with request.app[_SESSIONS]() as session:
        calls = await QueuedCallRepository(session).waiting()
        return web.json_response({"calls": [waiting_json(call, now) for call in calls]})

def _no_change(agent: str) -> None:
    """The default hook: no router runs, nobody to tell."""

def create_api_app(
    *,
    config: CallCenterConfig,
    store: AgentStore,
    sessions: async_sessionmaker[AsyncSession],
    token: str,
    clock: Callable[[], datetime],
    on_agent_change: AgentChangeHook = _no_change,
) -> web.Application:
    """The API as an aiohttp application (run it with
    :class:`callcenter.web.server.ApiServer`, or aiohttp's test client).

    The agents of *config* are the ones the API knows. *token* is compared in constant
    time and never logged.
    """
    app = web.Application(middlewares=[_json_errors, _bearer_auth], client_max_size=MAX_BODY)
    app[_CONFIG] = config
    app[_STORE] = store
    app[_SESSIONS] = sessions
    app[_TOKEN] = token.encode("utf-8")
    app[_HOOK] = on_agent_change
    app[_CLOCK] = clock
    app.router.add_get("/api/agents", _list_agents)
    app.router.add_get("/api/agents/{name}", _get_agent)
    app.router.add_post("/api/agents/{name}/{action}", _act)
    app.router.add_get("/api/calls/waiting", _waiting_calls)
    return app
