"""The HTTP API's preview routes (added to :data:`callcenter.web.api.ROUTES`)::

    POST /api/v1/campaigns/{campaign}/preview        {"agent": "alice"} (not for an agent)
    POST /api/v1/campaigns/preview/{contact}/dial
    POST /api/v1/campaigns/preview/{contact}/skip    {"reason": "already a customer"}

``preview`` claims the next due contact of a preview campaign the rules allow for the
agent and reserves the agent (the queue router offers it no inbound call meanwhile); the
answer holds the contact's number, its data (the contact list's other columns), the
campaign's script and dispositions. ``dial`` writes the attempt and rings the agent's
phone, then dials the contact through the trunk (:class:`ari_apps.preview.
PreviewDialer`, reached through the :class:`PreviewPort` the service hands over); its
answer names the attempt the agent's disposition will name. ``skip`` puts the contact
back (pending, due again) and frees the agent.

Who may: an agent for itself only (``agent`` in the body, if given, must be itself); a
supervisor for the agents of its queues and an admin for any, naming the agent in the
body. Errors (JSON, never a 500): 422 a bad body (``agent``, ``reason``, an unknown
field), 404 unknown campaign or contact, or nothing due; 403 another agent; 409 not a
preview campaign, a campaign paused or stopped (no preview offered nor dialled), an
agent that does not work it or is not available, a contact not held or already called; 503 no preview dialer in this service, or an agent that kept changing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from aiohttp import web

from callcenter.agents.store import StoreConflict
from callcenter.config.campaign import Campaign
from callcenter.dialer.preview import HeldPreview, PreviewError
from callcenter.dialer.preview_desk import Offer, PreviewDesk
from callcenter.web.context import ACCESS, CLOCK, CONFIG, ApiError, forbidden, user_of
from callcenter.web.views import BadBody, field_label, parse_body, parse_reason

__all__ = ["PREVIEW", "PREVIEW_SCHEMAS", "PreviewPort", "dial", "install", "parse_agent",
           "parse_skip", "preview", "preview_json", "skip"]

log = logging.getLogger(__name__)

#: Longest skip reason kept (it goes to the log).
REASON_MAX: Final = 200
#: Largest contact id (a signed 64-bit key).
_ID_MAX: Final = 2**63 - 1


class _Dialled(Protocol):
    @property
    def attempt_id(self) -> int: ...

    @property
    def stage(self) -> str: ...


class PreviewPort(Protocol):
    """What the API needs of the preview dialer (:class:`ari_apps.preview.PreviewDialer`)."""

    async def dial(self, held: HeldPreview) -> _Dialled: ...


#: The app's way to the preview dialer: a callable, since the dialer may start after the
#: API (``None``: no dialer in this process, a 503).
PREVIEW: Final = web.AppKey("preview", Callable[[], "PreviewPort | None"])
_DESK: Final = web.AppKey("preview_desk", PreviewDesk)


def install(app: web.Application, desk: PreviewDesk,
            port: Callable[[], PreviewPort | None]) -> None:
    """Give *app* the preview routes' desk and dialer."""
    app[_DESK] = desk
    app[PREVIEW] = port


def parse_agent(body: dict[str, Any]) -> str | None:
    """The ``agent`` of a preview request's body (``None``: not given).

    Raises:
        BadBody: an unknown field, or an agent that is not a name.
    """
    unknown = sorted(set(body) - {"agent"})
    if unknown:
        raise BadBody(field_label(unknown[0]),
                      "unknown field for a preview (expected only agent)")
    agent = body.get("agent")
    if agent is not None and (not isinstance(agent, str) or not 0 < len(agent) <= 48):
        raise BadBody("agent", "expected an agent's name (1 to 48 characters)")
    return agent


def parse_skip(body: dict[str, Any]) -> str:
    """The reason of a skip's body (``"skipped"`` when none is given).

    Raises:
        BadBody: an unknown field, or a reason that is not a short line of text.
    """
    return parse_reason(body, "a skip", REASON_MAX) or "skipped"


def preview_json(offer: Offer, campaign: Campaign) -> dict[str, Any]:
    """What the agent's console shows before the dial."""
    held = offer.held
    return {
        "contact": held.contact_id, "campaign": held.campaign, "agent": held.agent,
        "number": held.number, "timezone": held.timezone, "attempts": held.attempts,
        "data": {str(k): v for k, v in held.data.items()},
        "script": campaign.script,
        "dispositions": [{"key": key, "label": d.label, "final": d.final, "retry": d.retry}
                         for key, d in campaign.dispositions.items()],
        "reason": offer.reason, "again": offer.again}


def _contact_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _ID_MAX:
        raise ApiError(404, f"no contact {text!r}")
    return int(text)


def _body(raw: bytes) -> dict[str, Any]:
    try:
        return parse_body(raw)
    except BadBody as exc:
        raise ApiError(422, str(exc), exc.field) from None


def _told(request: web.Request, agent: str) -> None:
    """Tell the router the agent changed (its own timer re-reads agents anyway)."""
    from callcenter.web.api import _HOOK

    try:
        request.app[_HOOK](agent)
    except Exception:  # the change is stored; the router also re-reads on its timer
        log.exception("HTTP API: telling the router about agent %s failed", agent)


async def preview(request: web.Request) -> web.Response:
    # The body first (as every route): a bad one is a 422 whoever asks.
    try:
        wanted = parse_agent(_body(await request.read()))
    except BadBody as exc:
        raise ApiError(422, str(exc), exc.field) from None
    app, user = request.app, user_of(request)
    desk = app[_DESK]
    name = request.match_info["campaign"]
    try:
        campaign = desk.campaign(name)
        if user.role == "agent":
            if user.agent is None or (wanted is not None and wanted != user.agent):
                raise forbidden(user, f"preview for agent {wanted!r}")
            agent = user.agent
        elif wanted is None:
            raise ApiError(422, "agent: required (the agent to preview for), e.g. "
                                "{\"agent\": \"alice\"}", "agent")
        elif wanted not in app[CONFIG].agents:
            known = ", ".join(sorted(app[CONFIG].agents)) or "none"
            raise ApiError(422, f"agent: no agent {wanted!r} (agents: {known})", "agent")
        elif not app[ACCESS].may_manage_agent(user, wanted):
            raise forbidden(user, f"preview for agent {wanted!r}")
        else:
            agent = wanted
        offer = await desk.offer(name, agent, app[CLOCK]())
    except PreviewError as exc:
        raise ApiError(exc.status, exc.message, exc.field) from None
    except StoreConflict as exc:
        raise ApiError(503, f"{exc}; try again") from None
    if not offer.again:
        _told(request, agent)
    return web.json_response(preview_json(offer, campaign))


async def _held(request: web.Request) -> HeldPreview:
    """The contact of the path, held by a preview of an agent the user may act for."""
    contact_id = _contact_id(request.match_info["contact"])
    user = user_of(request)
    try:
        held = await request.app[_DESK].held(contact_id, request.app[CLOCK]())
    except PreviewError as exc:
        raise ApiError(exc.status, exc.message, exc.field) from None
    if not request.app[ACCESS].may_manage_agent(user, held.agent):
        raise forbidden(user, f"act on contact {contact_id} (held for agent {held.agent!r})")
    return held


async def dial(request: web.Request) -> web.Response:
    from callcenter.web.api import _no_body

    _no_body(await request.read(), "a preview's dial")
    held = await _held(request)
    if not held.call:
        state = await request.app[_DESK].store.get(held.agent, request.app[CLOCK]())
        raise ApiError(409, f"agent {held.agent!r} is no longer held for contact "
                            f"{held.contact_id} (it is {state.status.value}): skip it or "
                            "ask for a preview again")
    port = request.app[PREVIEW]()
    if port is None:
        raise ApiError(503, "this service runs no preview dialer: it cannot dial")
    try:
        await request.app[_DESK].ensure_running(held.campaign)
        dialled = await port.dial(held)
    except PreviewError as exc:
        raise ApiError(exc.status, exc.message, exc.field) from None
    return web.json_response({
        "contact": held.contact_id, "campaign": held.campaign, "agent": held.agent,
        "number": held.number, "attempt": dialled.attempt_id, "state": dialled.stage})


async def skip(request: web.Request) -> web.Response:
    try:
        reason = parse_skip(_body(await request.read()))
    except BadBody as exc:
        raise ApiError(422, str(exc), exc.field) from None
    held = await _held(request)
    try:
        freed = await request.app[_DESK].skip(held, reason, request.app[CLOCK]())
    except StoreConflict as exc:  # the contact is back; the agent kept changing
        raise ApiError(503, f"{exc}; try again") from None
    if freed:
        _told(request, held.agent)
    return web.json_response({
        "contact": held.contact_id, "campaign": held.campaign, "agent": held.agent,
        "state": "pending", "reason": reason, "agent_freed": freed})


_DISPOSITION = {"type": "object", "required": ["key", "label", "final", "retry"],
                "additionalProperties": False, "properties": {
                    "key": {"type": "string"}, "label": {"type": "string"},
                    "final": {"type": "boolean"}, "retry": {"type": "boolean"}}}

#: The OpenAPI components of the preview routes.
PREVIEW_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "PreviewBody": {
        "type": "object", "additionalProperties": False,
        "description": "For whom: required for a supervisor or an admin; an agent may "
                       "name only itself.",
        "properties": {"agent": {"type": "string", "minLength": 1, "maxLength": 48}}},
    "Preview": {
        "type": "object", "description": "A contact held for the agent to read, then dial "
                                         "or skip.",
        "required": ["contact", "campaign", "agent", "number", "timezone", "attempts",
                     "data", "script", "dispositions", "reason", "again"],
        "additionalProperties": False,
        "properties": {
            "contact": {"type": "integer"},
            "campaign": {"type": "string"},
            "agent": {"type": "string"},
            "number": {"type": "string", "description": "E.164"},
            "timezone": {"type": ["string", "null"]},
            "attempts": {"type": "integer", "description": "Calls made to it so far."},
            "data": {"type": "object", "description": "The contact list's other columns."},
            "script": {"type": "string", "description": "The campaign's agent script."},
            "dispositions": {"type": "array", "items": _DISPOSITION},
            "reason": {"type": "string", "description": "Why the rules allow the call now."},
            "again": {"type": "boolean",
                      "description": "The agent held this contact already."}}},
    "PreviewDial": {
        "type": "object", "description": "The call started: the agent's phone rings, then "
                                         "the contact is dialled.",
        "required": ["contact", "campaign", "agent", "number", "attempt", "state"],
        "additionalProperties": False,
        "properties": {
            "contact": {"type": "integer"}, "campaign": {"type": "string"},
            "agent": {"type": "string"}, "number": {"type": "string"},
            "attempt": {"type": "integer", "description": "The attempt's id (what the "
                                                          "disposition names)."},
            "state": {"type": "string", "enum": ["ringing_agent", "dialling", "talking",
                                                 "ended"]}}},
    "SkipBody": {
        "type": "object", "additionalProperties": False,
        "properties": {"reason": {"type": "string", "minLength": 1,
                                  "maxLength": REASON_MAX}}},
    "PreviewSkip": {
        "type": "object", "description": "The contact is back, due again; the agent free.",
        "required": ["contact", "campaign", "agent", "state", "reason", "agent_freed"],
        "additionalProperties": False,
        "properties": {
            "contact": {"type": "integer"}, "campaign": {"type": "string"},
            "agent": {"type": "string"}, "state": {"type": "string", "enum": ["pending"]},
            "reason": {"type": "string"}, "agent_freed": {"type": "boolean"}}},
}
