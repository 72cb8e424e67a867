"""The HTTP API's disposition route (added to :data:`callcenter.web.api.ROUTES`)::

    POST /api/v1/campaigns/attempts/{attempt}/disposition
         {"disposition": "callback", "callback_at": "2026-12-02T15:00:00+00:00",
          "note": "after lunch"}

``attempt`` is a campaign call's id (``contact_attempts.id``). Who may: an admin any
attempt, a supervisor the attempts taken by an agent of its queues, an agent only its
own. The body is checked here (422 naming the field: ``disposition``, ``callback_at``,
``note``, or an unknown one), then :meth:`callcenter.storage.campaigns.
CampaignRepository.dispose` validates the disposition against the campaign's list and
applies the retry rules in one transaction: 404 no such attempt, 409 a call still in
progress, 403 another agent's call.

A disposition that names a queue (``warm_transfer_sales: {queue: sales}``) is given
while the call is live: the contact is handed to that inbound queue and the agent
wraps up (:func:`callcenter.dialer.dispose.dispose_or_hand_off`); the answer's
``queue`` names it. On a call that has ended, or not reached its agent yet, it is a 409
saying so; without a PBX connection in this process, a 503.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from callcenter.storage.models import NOTE_MAX
from callcenter.web.context import (
    ACCESS,
    CLOCK,
    CONFIG,
    SESSIONS,
    ApiError,
    forbidden,
    user_of,
)
from callcenter.web.views import BadBody, field_label, parse_body

if TYPE_CHECKING:
    from callcenter.dialer.dispose import HandoffPort

__all__ = ["DISPOSITION_SCHEMAS", "HANDOFF", "dispose"]

#: The app's way to the PBX for a warm transfer (:class:`callcenter.dialer.dispose.
#: HandoffPort`; the service's is :class:`ari_apps.campaign_handoff.AriHandoff`): a
#: callable, since ARI may connect after the API starts (``None``: no PBX, a 503).
HANDOFF: Final = web.AppKey("handoff", Callable[[], "HandoffPort | None"])

_FIELDS: Final = frozenset({"disposition", "callback_at", "note"})
#: Largest attempt id (a signed 64-bit key).
_ID_MAX: Final = 2**63 - 1


def _attempt_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _ID_MAX:
        raise ApiError(404, f"no contact attempt {text!r}")
    return int(text)


def parse_disposition(body: dict[str, Any]) -> tuple[str, dt.datetime | None, str | None]:
    """(disposition, callback_at, note) of a checked body.

    Raises:
        BadBody: a field unknown, missing or of the wrong shape.
    """
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadBody(field_label(unknown[0]), "unknown field for a disposition (expected "
                      f"only {', '.join(sorted(_FIELDS))})")
    disposition = body.get("disposition")
    if not isinstance(disposition, str) or not 0 < len(disposition) <= 48:
        raise BadBody("disposition", "required: a disposition key of the campaign "
                      "(1 to 48 characters), e.g. {\"disposition\": \"sale\"}")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > NOTE_MAX):
        raise BadBody("note", f"expected a string of at most {NOTE_MAX} characters")
    raw = body.get("callback_at")
    when = None
    if raw is not None:
        if not isinstance(raw, str) or len(raw) > 64:
            raise BadBody("callback_at", "expected an ISO 8601 time with a UTC offset")
        try:
            when = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise BadBody("callback_at", f"not an ISO 8601 time: {raw!r}") from None
        if when.tzinfo is None:
            raise BadBody("callback_at", "needs a UTC offset (e.g. 2026-12-02T15:00+00:00)")
    return disposition, when, note


async def dispose(request: web.Request) -> web.Response:
    from callcenter.dialer.dispose import dispose_or_hand_off
    from callcenter.storage.campaigns import CampaignRepository, DispositionError

    # The body first (as every route): a bad one is a 422 whoever asks.
    try:
        disposition, callback_at, note = parse_disposition(parse_body(await request.read()))
    except BadBody as exc:
        raise ApiError(422, str(exc), exc.field) from None
    attempt_id = _attempt_id(request.match_info["attempt"])
    user = user_of(request)
    app = request.app
    async with app[SESSIONS]() as session:
        found, agent = await CampaignRepository(session).attempt_agent(attempt_id)
    if not found:
        raise ApiError(404, f"no contact attempt {attempt_id}")
    allowed = user.role == "admin" or (
        agent is not None and app[ACCESS].may_manage_agent(user, agent))
    if not allowed:
        raise forbidden(user, f"dispose attempt {attempt_id} (agent {agent!r})")
    try:
        handled = await dispose_or_hand_off(
            app[SESSIONS], app[CONFIG], attempt_id, disposition, port=app[HANDOFF],
            agent=user.agent if user.role == "agent" else agent, note=note,
            callback_at=callback_at, clock=app[CLOCK], own_only=user.role == "agent")
    except DispositionError as exc:
        raise ApiError(exc.status, str(exc), exc.field if exc.status == 422 else None
                       ) from None
    done = handled.disposed
    return web.json_response({
        "attempt": done.attempt_id, "contact": done.contact_id, "campaign": done.campaign,
        "disposition": done.disposition, "state": done.state,
        "next_attempt_at": done.next_attempt_at.isoformat() if done.next_attempt_at else None,
        "reason": done.reason, "added_dnc": done.added_dnc, "queue": handled.queue})


#: The OpenAPI components of the disposition route.
DISPOSITION_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "DispositionBody": {
        "type": "object", "required": ["disposition"], "additionalProperties": False,
        "description": "The agent's disposition of a campaign call.",
        "properties": {
            "disposition": {"type": "string", "minLength": 1, "maxLength": 48,
                            "description": "A key of the campaign's dispositions."},
            "callback_at": {"type": "string", "format": "date-time",
                            "description": "When the contact asked to be called back "
                                           "(with a retry disposition)."},
            "note": {"type": "string", "maxLength": NOTE_MAX}}},
    "Disposed": {
        "type": "object", "description": "The disposition stored, and the contact's next "
                                         "step.",
        "required": ["attempt", "contact", "campaign", "disposition", "state",
                     "next_attempt_at", "reason", "added_dnc", "queue"],
        "additionalProperties": False,
        "properties": {
            "attempt": {"type": "integer"},
            "contact": {"type": "integer"},
            "campaign": {"type": "string"},
            "disposition": {"type": "string"},
            "state": {"type": "string",
                      "enum": ["pending", "done", "exhausted", "do_not_call", "dialing"],
                      "description": "dialing: handed to a queue, the dialer has not "
                                     "closed the call yet (it records the disposition "
                                     "when it does)."},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "reason": {"type": "string"},
            "added_dnc": {"type": "boolean"},
            "queue": {"type": ["string", "null"],
                      "description": "The inbound queue the live call was handed to (a "
                                     "disposition with a queue), else null."}}},
}
