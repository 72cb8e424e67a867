"""Supervisor actions over the HTTP API: ``POST /api/v1/agents/{name}/listen``, ``whisper``
and ``barge``.

The same mechanism as the supervisor feature codes (*80, *81, *82):
:meth:`ari_apps.supervision.Supervision.supervise` rings the supervisor's own phone and,
once answered, bridges it to an ARI snoop on the agent's leg. The answer comes when the
snoop is bridged (the supervisor hears the call), or the reason it was not.

Who may: an admin for any agent; a supervisor (API user) for the agents of the queues it
supervises; an agent token never (403). The phone that gets the snoop leg is an agent with
``role: supervisor`` who supervises one of the agent's queues: the body's ``supervisor``
(``{"supervisor": "sue"}``), or by default the agent named like the API user.

What goes wrong, and the answer: no such agent 404; the phone's agent is not a supervisor,
or unknown 422 (``field: supervisor``); it does not supervise the agent's queues 403; the
agent is not on a call, or the supervisor's phone was not answered 409; Asterisk refused a
step, or no queue router runs in this service 503.

The queue router is reached through a :data:`SuperviseHook` the service gets from the
composition root (:func:`router_hook` over the router's ``supervision``), so this module
imports nothing of ``ari_apps`` but in that adapter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from callcenter.web.context import (
    ACCESS,
    CONFIG,
    ApiError,
    forbidden,
    known_name,
    user_of,
)
from callcenter.web.views import BadBody, field_label, parse_body

__all__ = ["MODES", "SCHEMAS", "SuperviseHook", "Supervising", "SupervisionFailed",
           "no_router", "router_hook", "supervise_route", "supervisor_for"]

#: The modes, as the feature codes name them (*80 listen, *81 whisper, *82 barge).
MODES: Final = ("listen", "whisper", "barge")


@dataclass(frozen=True, slots=True)
class Supervising:
    """A supervision session that started: the supervisor hears the agent's call."""

    supervisor: str
    agent: str
    mode: str
    #: The supervisor's channel (rung by us), the snoop on the agent's leg, their bridge.
    channel: str
    snoop: str
    bridge: str


class SupervisionFailed(Exception):
    """It did not start: *reason* is a key of ``ari_apps.supervision.PROMPTS`` or
    ``no_answer``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


#: ``hook(supervisor, agent, mode)``: start a session, or raise :class:`SupervisionFailed`.
SuperviseHook = Callable[[str, str, str], Awaitable[Supervising]]

#: Why it failed -> the answer's status.
_STATUS: Final = {"not_supervisor": 422, "unknown_agent": 404, "not_supervised": 403,
                  "not_on_call": 409, "no_answer": 409, "failed": 503}


async def no_router(supervisor: str, agent: str, mode: str) -> Supervising:
    """The default hook: this service runs no queue router (no Asterisk)."""
    raise ApiError(503, "this service runs no queue router: it cannot supervise calls")


def router_hook(supervision: Any) -> SuperviseHook:
    """The hook over a router's :class:`ari_apps.supervision.Supervision` (the composition
    root passes ``router.supervision``)."""
    from ari_apps.supervision import SupervisionRefused

    async def supervise(supervisor: str, agent: str, mode: str) -> Supervising:
        try:
            session = await supervision.supervise(supervisor, agent, mode)
        except SupervisionRefused as exc:
            raise SupervisionFailed(exc.reason, exc.message) from None
        return Supervising(supervisor, agent, mode, session.channel_id, session.snoop_id,
                           session.bridge_id)

    return supervise


def supervisor_for(body: dict[str, Any], user_name: str, agents: dict[str, Any]) -> str:
    """The agent whose phone gets the snoop leg: the body's ``supervisor``, else the agent
    named like the API user (pure; the role is judged by the supervision itself).

    Raises:
        BadBody: an unknown field, ``supervisor`` not a string or not an agent, or none
            given and no agent has the user's name.
    """
    unknown = sorted(set(body) - {"supervisor"})
    if unknown:
        raise BadBody(field_label(unknown[0]), "unknown field (expected only supervisor)")
    name = body.get("supervisor", None if user_name not in agents else user_name)
    if name is None:
        raise BadBody("supervisor", "required: the supervisor agent whose phone gets the "
                                    "call, e.g. {\"supervisor\": \"sue\"} (no agent is named "
                                    f"{user_name!r} like this API user)")
    if not isinstance(name, str):
        raise BadBody("supervisor", "expected an agent's name (a string)")
    if name not in agents:
        raise BadBody("supervisor", f"no agent {name!r}")
    return name


_HOOK: Final = web.AppKey("supervise", Callable[[str, str, str], Awaitable[Supervising]])


def _route(mode: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def supervise(request: web.Request) -> web.Response:
        user, access, config = user_of(request), request.app[ACCESS], request.app[CONFIG]
        # The body first (as a hang-up's): a bad one is a 422 whoever sends it.
        try:
            supervisor = supervisor_for(parse_body(await request.read()), user.name,
                                        dict(config.agents))
        except BadBody as exc:
            raise ApiError(422, str(exc), exc.field) from None
        agent = known_name(request, "name", "agent", config.agents,
                           lambda u, a: u.role != "agent" and access.may_manage_agent(u, a),
                           f"{mode} on the calls of")
        try:
            started = await request.app[_HOOK](supervisor, agent, mode)
        except SupervisionFailed as exc:
            status = _STATUS.get(exc.reason, 503)
            if status == 403:
                raise forbidden(user, f"{mode} on {agent!r} with {supervisor!r}'s phone: "
                                      f"{exc.message}") from None
            raise ApiError(status, exc.message,
                           "supervisor" if status == 422 else None) from None
        return web.json_response({
            "supervisor": started.supervisor, "agent": started.agent, "mode": started.mode,
            "channel": started.channel, "snoop": started.snoop, "bridge": started.bridge})

    supervise.__name__ = f"supervise_{mode}"
    return supervise


#: One handler per mode (three routes: ``/agents/{name}/listen`` ...).
supervise_route: Final = {mode: _route(mode) for mode in MODES}


def install(app: web.Application, hook: SuperviseHook) -> None:
    app[_HOOK] = hook


SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "SuperviseBody": {
        "type": "object",
        "description": "Whose phone gets the snoop leg (default: the agent named like the "
                       "API user).",
        "properties": {"supervisor": {"type": "string",
                                      "description": "An agent with role: supervisor."}},
        "additionalProperties": False,
    },
    "Supervision": {
        "type": "object",
        "description": "The supervisor's phone answered and hears the agent's call.",
        "properties": {
            "supervisor": {"type": "string"},
            "agent": {"type": "string"},
            "mode": {"enum": list(MODES)},
            "channel": {"type": "string", "description": "The supervisor's channel id."},
            "snoop": {"type": "string", "description": "The snoop channel's id."},
            "bridge": {"type": "string", "description": "The bridge joining them."},
        },
        "required": ["supervisor", "agent", "mode", "channel", "snoop", "bridge"],
        "additionalProperties": False,
    },
}
