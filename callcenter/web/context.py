"""What every handler of the HTTP API shares, so the views live in modules of their own
(:mod:`callcenter.web.api`, :mod:`callcenter.web.stream`, :mod:`callcenter.web.live`):
the application's keys (config, access rules, clock, ...), the authenticated user of a
request, the error a handler raises (answered as JSON by the API's middleware), and the
one lookup of a named agent or queue in the path with its authorisation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.store import AgentStore
from callcenter.config.models import CallCenterConfig
from callcenter.web.access import Access, ApiUser

__all__ = ["ACCESS", "CLOCK", "CONFIG", "SESSIONS", "STORE", "USER", "ApiError", "forbidden",
           "known_name", "staff_only", "user_of"]

CONFIG: Final = web.AppKey("config", CallCenterConfig)
STORE: Final = web.AppKey("store", AgentStore)
SESSIONS: Final = web.AppKey("sessions", async_sessionmaker[AsyncSession])
ACCESS: Final = web.AppKey("access", Access)
CLOCK: Final = web.AppKey("clock", Callable[[], datetime])
USER: Final = web.RequestKey("user", ApiUser)


class ApiError(Exception):
    """Answered as ``{"error": message}`` (and ``field``) with *status* by the API's
    error middleware."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status, self.message, self.field = status, message, field
        super().__init__(message)


def user_of(request: web.Request) -> ApiUser:
    """The user the request's token belongs to (set by the bearer middleware)."""
    user: ApiUser = request[USER]
    return user


def forbidden(user: ApiUser, what: str) -> ApiError:
    return ApiError(403, f"user {user.name!r} ({user.role}) may not {what}")


def known_name(request: web.Request, param: str, kind: str, names: Collection[str],
               may: Callable[[ApiUser, str], bool], verb: str) -> str:
    """The path parameter *param*, a key of *names* (404 naming the known ones
    otherwise), that the user *may* act on (403: ``may not <verb> <kind> 'x'``).

    Existence is checked first: a refused user learns only that the name exists."""
    name = request.match_info[param]
    if name not in names:
        listed = ", ".join(sorted(names)) or "none"
        raise ApiError(404, f"no {kind} {name!r} ({kind}s: {listed})")
    if not may(user_of(request), name):
        raise forbidden(user_of(request), f"{verb} {kind} {name!r}")
    return name


#: A coroutine answering a request (what the routes' handlers are).
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def staff_only(handler: Handler, what: str) -> Handler:
    """*handler* for admins and supervisors only (an agent token gets a 403): routes that
    show every queue and agent at once, such as ``GET /metrics``."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        if user.role == "agent":
            raise forbidden(user, what)
        return await handler(request)

    return guarded
