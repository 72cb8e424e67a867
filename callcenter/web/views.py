"""What the HTTP API says and accepts, pure: agents, queues and calls as JSON, request
bodies into agent events, and the JSON Schema of each shape (:data:`SCHEMAS`, the
OpenAPI document's components: written next to the functions that produce the shapes,
and every answer the tests get is validated against them).

No aiohttp here: the handlers (:mod:`callcenter.web.api`) translate HTTP to these
functions and back, so the shapes are tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from callcenter.agents.state import (
    AgentEvent,
    AgentState,
    EndWrapUp,
    Login,
    Logout,
    Pause,
    Unpause,
)

__all__ = [
    "ACTIONS",
    "SCHEMAS",
    "BadBody",
    "QueueCall",
    "WaitingCall",
    "agent_json",
    "call_json",
    "event_for",
    "parse_body",
    "parse_reason",
    "queue_json",
    "waiting_json",
]


class BadBody(ValueError):
    """A request body the API cannot take; ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


#: ``POST /api/agents/{name}/<action>``: the fields the body may hold, and the event.
ACTIONS: Final[dict[str, tuple[frozenset[str], Callable[[Mapping[str, Any]], AgentEvent]]]] = {
    "login": (frozenset(), lambda body: Login()),
    "logout": (frozenset(), lambda body: Logout()),
    "pause": (frozenset({"reason"}), lambda body: Pause(body["reason"])),
    "unpause": (frozenset(), lambda body: Unpause()),
    "end-wrapup": (frozenset(), lambda body: EndWrapUp()),
}

#: A pause reason as the config names them (the state machine checks it is one of them).
_REASON_MAX: Final = 64


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``.

    Raises:
        BadBody: not UTF-8, not JSON, too deeply nested, or not an object.
    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadBody("body", "not UTF-8 text") from None
    except RecursionError:
        raise BadBody("body", "JSON nested too deeply") from None
    except ValueError as exc:
        raise BadBody("body", f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadBody("body", f"expected a JSON object, got {_json_type(data)}")
    return data


def parse_reason(body: dict[str, Any], what: str, maximum: int) -> str | None:
    """The ``reason`` of a body that takes only that (a skip, a campaign's start), stripped;
    ``None`` when not given.

    Raises:
        BadBody: an unknown field, or a reason that is not one printable line of 1 to
            ``maximum`` characters.
    """
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise BadBody(field_label(unknown[0]),
                      f"unknown field for {what} (expected only reason)")
    reason = body.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str) or not 0 < len(reason.strip()) <= maximum \
            or not reason.isprintable():
        raise BadBody("reason", f"expected a line of text of 1 to {maximum} characters")
    return reason.strip()


def field_label(key: str) -> str:
    """How an error names a body's field: the key itself, or its JSON spelling when it is
    empty, blank or not printable (``""``), so the name is never empty or garbled."""
    return key if key.strip() and key.isprintable() else json.dumps(key)


def event_for(action: str, body: Mapping[str, Any]) -> AgentEvent:
    """The agent event of *action* (a key of :data:`ACTIONS`) with the checked *body*.

    Raises:
        BadBody: a field missing, unknown or of the wrong type.
    """
    allowed, make = ACTIONS[action]
    unknown = sorted(set(body) - allowed)
    if unknown:
        expected = f"expected only {', '.join(sorted(allowed))}" if allowed else "expected none"
        raise BadBody(field_label(unknown[0]), f"unknown field for {action} ({expected})")
    if "reason" in allowed:
        reason = body.get("reason")
        if reason is None:
            raise BadBody("reason", "required: the pause reason, e.g. {\"reason\": \"lunch\"}")
        if not isinstance(reason, str):
            raise BadBody("reason", f"expected a string, got {_json_type(reason)}")
        if not 0 < len(reason) <= _REASON_MAX:
            raise BadBody("reason", f"expected 1 to {_REASON_MAX} characters")
    return make(body)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def agent_json(state: AgentState) -> dict[str, Any]:
    """An agent as ``GET /api/agents`` shows it."""
    return {
        "name": state.agent,
        "status": state.status.value,
        "since": _time(state.since),
        "pause_reason": state.pause_reason,
        "pending_pause": state.pending_pause,
        "call": state.call,
        "phone_lost": state.phone_lost,
        "wrap_up_until": _time(state.wrap_up_until),
        "version": state.version,
    }


class WaitingCall(Protocol):
    """What :func:`waiting_json` reads of a :class:`~callcenter.storage.models.QueuedCall`."""

    queue: str
    channel_id: str
    priority: int
    language: str | None
    entered_at: datetime
    offered_at: datetime | None
    node: str | None


def waiting_json(call: WaitingCall, now: datetime) -> dict[str, Any]:
    """A waiting caller (a :class:`~callcenter.storage.models.QueuedCall`) as
    ``GET /api/calls/waiting`` shows it; ``waited``: seconds in the queue at *now*."""
    return {
        "queue": call.queue,
        "channel": call.channel_id,
        "priority": call.priority,
        "language": call.language,
        "entered_at": _time(call.entered_at),
        "offered_at": _time(call.offered_at),
        "waited": _waited(call.entered_at, now),
        "node": call.node,
    }


def _waited(entered_at: datetime, now: datetime) -> float:
    return round(max(0.0, (now - entered_at).total_seconds()), 1)


def queue_json(name: str, description: str, members: Sequence[str],
               waiting: Sequence[WaitingCall], now: datetime) -> dict[str, Any]:
    """A queue as ``GET /api/v1/queues`` shows it: its members and its waiting callers
    (*waiting*: that queue's, oldest first per priority)."""
    return {
        "name": name,
        "description": description,
        "agents": sorted(members),
        "waiting": len(waiting),
        "longest_wait": max((_waited(c.entered_at, now) for c in waiting), default=None),
    }


class QueueCall(WaitingCall, Protocol):
    """What :func:`call_json` reads of a :class:`~callcenter.storage.models.QueuedCall`."""

    answered_at: datetime | None
    agent: str | None


def call_json(call: QueueCall, now: datetime) -> dict[str, Any]:
    """A call in progress (in a queue, not ended) as ``GET /api/v1/calls`` shows it:
    ``waiting`` for an agent, or ``connected`` to ``agent``."""
    return {
        "queue": call.queue,
        "channel": call.channel_id,
        "state": "waiting" if call.answered_at is None else "connected",
        "agent": call.agent if call.answered_at is not None else None,
        "priority": call.priority,
        "language": call.language,
        "entered_at": _time(call.entered_at),
        "answered_at": _time(call.answered_at),
        "duration": _waited(call.entered_at, now),
        "node": call.node,
    }


# -- JSON Schema of every shape (OpenAPI 3.1 components: JSON Schema 2020-12) ----------

_TIME: Final = {"type": "string", "format": "date-time"}
_TIME_OR_NULL: Final = {"type": ["string", "null"], "format": "date-time"}
_STR_OR_NULL: Final = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties,
            "required": sorted(properties), "additionalProperties": False}


def _array_of(component: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{component}"}}


#: Component name -> JSON Schema.
SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Error": {
        "type": "object", "description": "Every error answer.",
        "properties": {"error": {"type": "string", "description": "What is wrong."},
                       "field": {"type": "string",
                                 "description": "The request field that is wrong (422)."}},
        "required": ["error"], "additionalProperties": False,
    },
    "Agent": _object({
        "name": {"type": "string"},
        "status": {"enum": ["logged_out", "available", "reserved", "ringing", "on_call",
                            "wrap_up", "paused"]},
        "since": _TIME,
        "pause_reason": _STR_OR_NULL,
        "pending_pause": _STR_OR_NULL,
        "call": {**_STR_OR_NULL, "description": "The caller's channel id."},
        "phone_lost": {"type": "boolean"},
        "wrap_up_until": _TIME_OR_NULL,
        "version": {"type": "integer", "minimum": 0},
    }, "An agent's state."),
    "AgentList": _object({"agents": _array_of("Agent")}, "The agents the user may see, by name."),
    "PauseBody": {
        "type": "object", "description": "The body of the pause action (the others take none).",
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": _REASON_MAX,
                                  "description": "A key of pause_reasons."}},
        "required": ["reason"], "additionalProperties": False,
    },
    "WaitingCall": _object({
        "queue": {"type": "string"},
        "channel": {"type": "string"},
        "priority": {"type": "integer"},
        "language": _STR_OR_NULL,
        "entered_at": _TIME,
        "offered_at": _TIME_OR_NULL,
        "waited": {"type": "number", "minimum": 0, "description": "Seconds in the queue."},
        "node": _STR_OR_NULL,
    }, "A caller waiting in a queue (not answered, not ended)."),
    "WaitingCallList": _object({"calls": _array_of("WaitingCall")},
                               "Waiting callers, in the order they are served."),
    "Queue": _object({
        "name": {"type": "string"},
        "description": {"type": "string"},
        "agents": {"type": "array", "items": {"type": "string"},
                   "description": "The agents who serve it."},
        "waiting": {"type": "integer", "minimum": 0},
        "longest_wait": {"type": ["number", "null"], "minimum": 0,
                         "description": "Seconds the longest-waiting caller has waited."},
    }, "A queue."),
    "QueueList": _object({"queues": _array_of("Queue")}, "The queues the user may see, by name."),
    "Call": _object({
        "queue": {"type": "string"},
        "channel": {"type": "string", "description": "The caller's channel id."},
        "state": {"enum": ["waiting", "connected"]},
        "agent": _STR_OR_NULL,
        "priority": {"type": "integer"},
        "language": _STR_OR_NULL,
        "entered_at": _TIME,
        "answered_at": _TIME_OR_NULL,
        "duration": {"type": "number", "minimum": 0, "description": "Seconds since it entered."},
        "node": _STR_OR_NULL,
    }, "A call in a queue, not ended."),
    "CallList": _object({"calls": _array_of("Call")}, "Calls in progress, in arrival order."),
    "User": _object({
        "name": {"type": "string"},
        "role": {"enum": ["admin", "supervisor", "agent"]},
        "agent": _STR_OR_NULL,
        "queues": {"type": "array", "items": {"type": "string"}},
    }, "Who the token belongs to."),
}
