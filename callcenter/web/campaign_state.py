"""The HTTP API's campaign state routes (added to :data:`callcenter.web.api.ROUTES`)::

    POST /api/v1/campaigns/{campaign}/start    {"reason": "after the fix"} (optional)
    POST /api/v1/campaigns/{campaign}/pause
    POST /api/v1/campaigns/{campaign}/stop

The same change as ``callcenter campaigns start|pause|stop``
(:meth:`callcenter.storage.campaign_state.CampaignStateRepository.set`): stored with the
token's user and the time, obeyed by every dialer of the campaign at its next pass.
Asking for the state the campaign is in already is a 200 that changes nothing
(``"changed": false``). Who may: admins and supervisors (an agent token gets a 403).
Errors (JSON, never a 500): 422 a bad body (``reason``, an unknown field), 404 a
campaign the config does not define, 403 an agent.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from callcenter.dialer.campaign_state import ACTIONS
from callcenter.web.access import ApiUser
from callcenter.web.context import (
    CLOCK,
    CONFIG,
    SESSIONS,
    ApiError,
    known_name,
    user_of,
)
from callcenter.web.views import BadBody, parse_body, parse_reason

__all__ = ["STATE_ROUTES", "STATE_SCHEMAS", "STATE_SUMMARIES", "may_change_state", "parse_state_body"]

#: Longest reason kept with a change.
REASON_MAX: Final = 200


def may_change_state(user: ApiUser, campaign: str) -> bool:
    """Start, pause or stop a campaign: admins and supervisors."""
    return user.role in ("admin", "supervisor")


def parse_state_body(body: dict[str, Any]) -> str | None:
    """The ``reason`` of a start, pause or stop body (``None``: not given).

    Raises:
        BadBody: an unknown field, or a reason that is not a short line of text.
    """
    return parse_reason(body, "a campaign state change", REASON_MAX)


def _handler(action: str) -> Any:
    async def change_state(request: web.Request) -> web.Response:
        from callcenter.storage.campaign_state import CampaignStateRepository

        # The body first (as every route): a bad one is a 422 whoever asks.
        try:
            reason = parse_state_body(parse_body(await request.read()))
        except BadBody as exc:
            raise ApiError(422, str(exc), exc.field) from None
        app = request.app
        name = known_name(request, "campaign", "campaign", app[CONFIG].campaigns,
                          may_change_state, f"{action} (admins and supervisors only)")
        user = user_of(request)
        async with app[SESSIONS].begin() as session:
            done = await CampaignStateRepository(session).set(
                name, action, by=user.name, at=app[CLOCK](), via="api", reason=reason)
        stored = done.stored
        return web.json_response({
            "campaign": name, "state": done.change.state.value,
            "previous": done.change.previous.value, "changed": done.change.changed,
            "changed_by": stored.changed_by,
            "changed_at": stored.changed_at.isoformat() if stored.changed_at else None})

    change_state.__name__ = f"{action}_campaign"
    return change_state


#: What each action does (the route's summary).
STATE_SUMMARIES: Final[dict[str, str]] = {
    "start": "Run a campaign: its dialers place calls (again) at their next pass",
    "pause": "Pause a campaign: no new call nor preview; calls in progress end as they "
             "will; its dialers wait for start",
    "stop": "Stop a campaign: no new call; each dialer running it exits once its calls "
            "in progress ended",
}

#: The handler of each action (``start``, ``pause``, ``stop``).
STATE_ROUTES: Final[dict[str, Any]] = {action: _handler(action) for action in ACTIONS}

#: The OpenAPI components of the state routes.
STATE_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "CampaignStateBody": {
        "type": "object", "additionalProperties": False,
        "description": "Optional: why (kept with the change).",
        "properties": {"reason": {"type": "string", "minLength": 1,
                                  "maxLength": REASON_MAX}}},
    "CampaignState": {
        "type": "object",
        "description": "The campaign's run state after the request, the one before, and "
                       "who set it last and when (null: never changed).",
        "required": ["campaign", "state", "previous", "changed", "changed_by",
                     "changed_at"],
        "additionalProperties": False,
        "properties": {
            "campaign": {"type": "string"},
            "state": {"type": "string", "enum": ["running", "paused", "stopped"]},
            "previous": {"type": "string", "enum": ["running", "paused", "stopped"]},
            "changed": {"type": "boolean",
                        "description": "False: the campaign was in that state already."},
            "changed_by": {"type": ["string", "null"]},
            "changed_at": {"type": ["string", "null"], "format": "date-time"}}},
}
