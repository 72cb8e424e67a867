"""Statistics over the HTTP API: ``GET /api/v1/stats`` (a time range, by queue, agent or
interval) and ``GET /api/v1/queues/{queue}/stats`` (the queue now, and today so far).

The numbers are :mod:`callcenter.stats`'s, read by the same
:func:`~callcenter.stats.read.read_report` and shaped by the same
:func:`~callcenter.stats.render.report_json` as ``callcenter stats --format json``; the
range takes the command's values (``from``, ``to``, ``last``, ``by``, ``interval``,
``queue``: :mod:`callcenter.stats.window`), and a bad one is a 422 naming the parameter.

Role-scoped like the rest of the API: an admin gets exactly what ``callcenter stats``
prints; a supervisor the calls of its queues and the time of their agents; an agent the
calls of the queues it serves and its own time (``by=agent``: its own row). When rows are
left out, the total is the sum of the rows shown.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.agents.state import AgentStatus
from callcenter.stats.compute import BY
from callcenter.stats.queries import agent_states
from callcenter.stats.read import read_report
from callcenter.stats.records import AgentTime, CallFigures, Report, Row
from callcenter.stats.render import report_json
from callcenter.stats.window import WindowError, parse_duration, window
from callcenter.stats.window import interval as interval_length
from callcenter.web.context import (
    ACCESS,
    CLOCK,
    CONFIG,
    SESSIONS,
    ApiError,
    forbidden,
    known_name,
    user_of,
)
from callcenter.web.views import field_label

__all__ = ["QUERY", "SCHEMAS", "queue_stats_route", "stats_route", "visible_total"]

#: The query parameters of ``/api/v1/stats`` (``callcenter stats``'s options).
QUERY: Final = ("from", "to", "last", "by", "interval", "queue")


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(422, f"{name}: given {len(values)} times (give it once)", name)
    return values[0] if values else None


def visible_total(rows: tuple[Row, ...]) -> Row:
    """The total of the rows a user sees (pure): figures and times summed, the longest
    wait the longest of them."""
    calls, time, longest, timed = CallFigures(), AgentTime(), 0.0, False
    for row in rows:
        calls, longest = calls + row.calls, max(longest, row.longest_wait)
        if row.time is not None:
            time, timed = time + row.time, True
    return Row("total", calls, time if timed else None, longest)


async def stats_route(request: web.Request) -> web.Response:
    """``GET /api/v1/stats``: :func:`~callcenter.stats.render.report_json` of the range."""
    user, config, access = user_of(request), request.app[CONFIG], request.app[ACCESS]
    for name in request.query:
        if name not in QUERY:
            raise ApiError(422, f"{field_label(name)}: unknown query parameter (expected "
                                f"{', '.join(QUERY)})", field_label(name))
    by = _one(request, "by") or "queue"
    if by not in BY:
        raise ApiError(422, f"by: {by!r} is not one of {', '.join(BY)}", "by")
    queue = _one(request, "queue")
    if queue is not None:
        if queue not in config.queues:
            raise ApiError(422, f"queue: unknown queue {queue!r} (queues: "
                                f"{', '.join(sorted(config.queues))})", "queue")
        if not access.may_see_queue(user, queue):
            raise forbidden(user, f"see queue {queue!r}")
    now = request.app[CLOCK]()
    try:
        start, end = window(start=_one(request, "from"), end=_one(request, "to"),
                            last=_one(request, "last"), now=now,
                            tz=ZoneInfo(config.settings.timezone))
        text = _one(request, "interval") or "15m"
        length = (interval_length(text, start, end) if by == "interval"
                  else parse_duration("--interval", text))
    except WindowError as exc:
        field = exc.option.removeprefix("--")
        raise ApiError(422, f"{field}: {exc.value!r}: {exc.why}", field) from None
    everything = user.role == "admin"
    queues = ([queue] if queue is not None else None if everything
              else [q for q in config.queues if access.may_see_queue(user, q)])
    agents = None if everything else [a for a in config.agents
                                      if access.may_manage_agent(user, a)]
    async with request.app[SESSIONS]() as session:
        report = await read_report(session, config, start=start, end=end, by=by, now=now,
                                   interval=length, queues=queues, agents=agents)
    if by == "agent" and agents is not None:
        rows = tuple(row for row in report.rows if row.key in agents)
        report = replace(report, rows=rows, total=visible_total(rows))
    shown = queues if queues is not None else list(config.queues)
    rules = {name: q.service_level for name, q in config.queues.items() if name in shown}
    return web.json_response(report_json(report, rules))


def queue_now_json(queue: str, report: Report, members: list[str],
                   states: dict[str, AgentStatus]) -> dict[str, Any]:
    """The queue now (callers waiting, longest wait, its agents by state) and today so far
    (*report*: by queue, from the center's midnight), pure."""
    now = report.realtime
    assert now is not None
    today = next((row for row in report.rows if row.key == queue), Row(queue, CallFigures()))
    agents = {status.value: 0 for status in AgentStatus}
    for member in members:
        agents[states.get(member, AgentStatus.LOGGED_OUT).value] += 1
    calls = today.calls
    return {
        "queue": queue,
        "at": now.at.isoformat(),
        "waiting": now.waiting.get(queue, 0),
        "longest_wait": round(now.longest_wait.get(queue, 0.0), 3),
        "agents": agents,
        "today": {
            "from": report.start.isoformat(),
            "offered": calls.offered, "answered": calls.answered,
            "abandoned": calls.abandoned, "service_level": round(calls.service_level, 4),
            "asa": round(calls.asa, 3), "aht": round(calls.aht, 3),
            "abandon_rate": round(calls.abandon_rate, 4),
        },
    }


async def queue_stats_route(request: web.Request) -> web.Response:
    """``GET /api/v1/queues/{queue}/stats``: who may see the queue sees its figures."""
    config, access = request.app[CONFIG], request.app[ACCESS]
    queue = known_name(request, "queue", "queue", config.queues, access.may_see_queue, "see")
    now = request.app[CLOCK]()
    midnight = now.astimezone(ZoneInfo(config.settings.timezone)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    end = max(now, midnight + timedelta(microseconds=1))  # a range is never empty
    async with request.app[SESSIONS]() as session:
        report = await read_report(session, config, start=midnight, end=end, by="queue",
                                   now=now, queues=[queue])
        states = await agent_states(session)
    members = sorted(a for a in config.agents if queue in access.queues_of(a))
    answer = queue_now_json(queue, report, members, states)
    answer["service_level_definition"] = config.queues[queue].service_level.model_dump()
    return web.json_response(answer)


#: The component schemas of these answers.
SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "StatsReport": {
        "type": "object",
        "description": "callcenter stats --format json: one row per queue, agent or "
                       "interval (rates 0..1, seconds), the total, each queue's "
                       "service-level definition and the real-time figures.",
        "properties": {
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "by": {"enum": list(BY)},
            "rows": {"type": "array", "items": {
                "type": "object", "additionalProperties": {"type": ["number", "string", "null"]}}},
            "total": {"type": "object",
                      "additionalProperties": {"type": ["number", "string", "null"]}},
            "service_level": {"type": "object"},
            "now": {"type": ["object", "null"]},
        },
        "required": ["from", "to", "by", "rows", "total", "service_level", "now"],
        "additionalProperties": False,
    },
    "QueueStats": {
        "type": "object",
        "description": "A queue now (callers waiting, longest wait in seconds, its agents "
                       "by state) and today from the center's midnight.",
        "properties": {
            "queue": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "waiting": {"type": "integer", "minimum": 0},
            "longest_wait": {"type": "number", "minimum": 0},
            "agents": {"type": "object", "additionalProperties": {"type": "integer"},
                       "description": "The queue's agents per status (every status)."},
            "today": {
                "type": "object",
                "properties": {
                    "from": {"type": "string", "format": "date-time"},
                    "offered": {"type": "integer"}, "answered": {"type": "integer"},
                    "abandoned": {"type": "integer"},
                    "service_level": {"type": "number"}, "asa": {"type": "number"},
                    "aht": {"type": "number"}, "abandon_rate": {"type": "number"},
                },
                "required": ["from", "offered", "answered", "abandoned", "service_level",
                             "asa", "aht", "abandon_rate"],
                "additionalProperties": False,
            },
            "service_level_definition": {"type": "object"},
        },
        "required": ["queue", "at", "waiting", "longest_wait", "agents", "today",
                     "service_level_definition"],
        "additionalProperties": False,
    },
}
