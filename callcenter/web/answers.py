"""The HTTP API's answers route (added to :data:`callcenter.web.api.ROUTES`)::

    GET /api/v1/campaigns/{campaign}/answers

An agentless campaign's answers, as ``callcenter campaigns answers`` prints them: the
answer variables (the campaign's ``answers``, else all its flow collects), then one
entry per contact's call that gave any (contact and attempt ids, the number, whether
every answer was given, the answers). Who may: admins and supervisors (an agent token
gets a 403). Errors (JSON, never a 500): 404 a campaign the config does not define, 409
one that is not agentless (it collects no answers).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from callcenter.dialer.agentless import answer_table, answer_variables
from callcenter.web.access import ApiUser
from callcenter.web.context import CONFIG, SESSIONS, ApiError, known_name

__all__ = ["ANSWER_SCHEMAS", "campaign_answers"]


def _may_read(user: ApiUser, campaign: str) -> bool:
    return user.role in ("admin", "supervisor")


async def campaign_answers(request: web.Request) -> web.Response:
    """``GET /api/v1/campaigns/{campaign}/answers``."""
    from callcenter.storage.answers import AnswerRepository

    app = request.app
    config = app[CONFIG]
    name = known_name(request, "campaign", "campaign", config.campaigns, _may_read,
                      "read the answers of (admins and supervisors only)")
    campaign = config.campaigns[name]
    if campaign.mode != "agentless":
        raise ApiError(409, f"campaign {name!r} is {campaign.mode}: only agentless "
                            "campaigns collect answers")
    wanted = answer_variables(config, campaign)
    async with app[SESSIONS]() as session:
        rows = await AnswerRepository(session).for_campaign(name)
    _, *table = answer_table(wanted, rows)
    calls = []
    for contact, number, attempt, complete, *values in table:
        calls.append({"contact": int(contact), "number": number, "attempt": int(attempt),
                      "complete": complete == "yes",
                      "answers": {k: v for k, v in zip(wanted, values, strict=True) if v}})
    return web.json_response({"campaign": name, "variables": list(wanted), "calls": calls})


#: The OpenAPI components of the answers route.
ANSWER_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "CampaignAnswers": {
        "type": "object",
        "description": "An agentless campaign's answers: one entry per contact's call "
                       "that gave any.",
        "required": ["campaign", "variables", "calls"],
        "additionalProperties": False,
        "properties": {
            "campaign": {"type": "string"},
            "variables": {"type": "array", "items": {"type": "string"},
                          "description": "The answer variables, in the flow's order."},
            "calls": {"type": "array", "items": {
                "type": "object",
                "required": ["contact", "number", "attempt", "complete", "answers"],
                "additionalProperties": False,
                "properties": {
                    "contact": {"type": "integer"},
                    "number": {"type": "string"},
                    "attempt": {"type": "integer"},
                    "complete": {"type": "boolean",
                                 "description": "Every answer variable was given."},
                    "answers": {"type": "object",
                                "additionalProperties": {"type": "string"},
                                "description": "Variable -> the keys pressed."}}}}}},
}
