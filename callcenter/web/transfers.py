"""The HTTP API's transfer routes (added to :data:`callcenter.web.api.ROUTES`)::

    POST /api/v1/calls/{channel}/transfer           {"to": {"queue"|"agent"|"number": ...},
                                                     "mode": "blind"|"attended"}
    POST /api/v1/calls/{channel}/transfer/complete  the consultation's target takes the call
    POST /api/v1/calls/{channel}/transfer/cancel    back to the caller

``channel`` is the call's id (the caller's channel). Who may: an agent its own call, a
supervisor the calls of its queues, an admin any call
(:func:`callcenter.routing.transfer.may_transfer`). The body is checked by
:func:`callcenter.routing.transfer.parse_request` (422 naming the field: ``to``,
``to.number``, ``mode``...); the transfer itself is the queue router's
(:class:`ari_apps.transfer.Transfers`, reached through the :class:`TransferPort` the
service hands over): 404 no connected call, 409 the call's or the target's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from aiohttp import web

from callcenter.routing.transfer import (
    TransferError,
    TransferRequest,
    may_transfer,
    parse_request,
)
from callcenter.web.views import BadBody, field_label, parse_body

__all__ = ["TRANSFERS", "TRANSFER_SCHEMAS", "TransferPort", "cancel", "complete", "transfer"]


class _Transfer(Protocol):
    def json(self) -> dict[str, Any]: ...


class TransferPort(Protocol):
    """What the API needs of the router's transfers (:class:`ari_apps.transfer.Transfers`)."""

    def connected_call(self, call: str) -> tuple[str, str | None] | None: ...

    async def start(self, call: str, request: TransferRequest, *, via: str,
                    by_agent: str | None = None) -> _Transfer: ...

    async def complete(self, call: str, *, by_agent: str | None = None) -> _Transfer: ...

    async def cancel(self, call: str, *, by_agent: str | None = None) -> _Transfer: ...


#: The app's way to the router's transfers: a callable, since the router is built after
#: the API starts (``None``: no router in this process, a 503).
TRANSFERS: Final = web.AppKey("transfers", Callable[[], "TransferPort | None"])


def _port(request: web.Request) -> TransferPort:
    from callcenter.web.api import _ApiError

    port = request.app[TRANSFERS]()
    if port is None:
        raise _ApiError(503, "this service runs no queue router: it cannot transfer calls")
    return port


def _authorised(request: web.Request, port: TransferPort) -> str | None:
    """The call's agent when the user is an agent (it may act on its own call only)."""
    from callcenter.web.api import _ApiError, _forbidden, _user

    channel = request.match_info["channel"]
    user = _user(request)
    call = port.connected_call(channel)
    if call is None:
        raise _ApiError(404, f"no connected call on channel {channel!r}")
    queue, agent = call
    if not may_transfer(user.role, user.agent, user.queues, queue, agent):
        raise _forbidden(user, f"transfer call {channel!r} (queue {queue!r}, agent {agent!r})")
    return user.agent if user.role == "agent" else None


async def _refused(action: Any) -> web.Response:
    from ari_apps.transfer import TransferRefused
    from callcenter.web.api import _ApiError

    try:
        done = await action
    except TransferRefused as exc:
        raise _ApiError(exc.status, exc.message, exc.field) from None
    return web.json_response(done.json())


async def transfer(request: web.Request) -> web.Response:
    from callcenter.web.api import _CONFIG, _ApiError, _user

    # The body first (as every route): a bad one is a 422 whoever asks.
    try:
        body = parse_body(await request.read())
    except BadBody as exc:
        raise _ApiError(422, str(exc), exc.field) from None
    try:
        wanted = parse_request(body, request.app[_CONFIG])
    except TransferError as exc:
        # A key from the body, named as the API names fields (never empty or garbled).
        field = field_label(exc.field)
        raise _ApiError(exc.status, f"{field}: {exc.message}", field) from None
    port = _port(request)
    by_agent = _authorised(request, port)
    return await _refused(port.start(request.match_info["channel"], wanted,
                                     via=f"api:{_user(request).name}", by_agent=by_agent))


async def complete(request: web.Request) -> web.Response:
    from callcenter.web.api import _no_body

    _no_body(await request.read(), "transfer/complete")
    port = _port(request)
    by_agent = _authorised(request, port)
    return await _refused(port.complete(request.match_info["channel"], by_agent=by_agent))


async def cancel(request: web.Request) -> web.Response:
    from callcenter.web.api import _no_body

    _no_body(await request.read(), "transfer/cancel")
    port = _port(request)
    by_agent = _authorised(request, port)
    return await _refused(port.cancel(request.match_info["channel"], by_agent=by_agent))


_TARGET = {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
    "queue": {"type": "string", "description": "A queue's name: the caller re-enters it, "
                                               "keeping its original entry time."},
    "agent": {"type": "string", "description": "An agent's name: offered to it only."},
    "number": {"type": "string", "pattern": r"^\+?[0-9]{3,20}$",
               "description": "An external number, dialled through "
                              "settings.outbound_trunk."}},
    "additionalProperties": False}

#: The OpenAPI components of the transfer routes.
TRANSFER_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "TransferBody": {
        "type": "object", "required": ["to"], "additionalProperties": False,
        "description": "Where the call goes, and how.",
        "properties": {"to": _TARGET, "mode": {"type": "string", "enum": ["blind", "attended"],
                                               "default": "blind"}}},
    "Transfer": {
        "type": "object", "description": "A transfer and where it stands.",
        "required": ["call", "id", "from_agent", "to", "mode", "state", "via"],
        "properties": {
            "call": {"type": "string", "description": "The call (the caller's channel id)."},
            "id": {"type": "integer"},
            "from_agent": {"type": "string"},
            "to": _TARGET,
            "mode": {"type": "string", "enum": ["blind", "attended"]},
            "agent": {"type": ["string", "null"],
                      "description": "The agent rung (the target, or the queue's agent "
                                     "consulted)."},
            "state": {"type": "string", "enum": ["starting", "ringing", "consulting",
                                                 "connected", "ended"]},
            "result": {"type": ["string", "null"], "description": "requeued, completed, "
                       "cancelled, no_answer, caller_gone, failed; null while in progress"},
            "via": {"type": "string", "description": "api:<user> or refer"}}},
}
