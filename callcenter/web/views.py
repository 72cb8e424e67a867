"""What the HTTP API says and accepts, pure: states and waiting calls as JSON, request
bodies into agent events.

No aiohttp here: the handlers (:mod:`callcenter.web.api`) translate HTTP to these
functions and back, so the shapes are tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
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
    "BadBody",
    "WaitingCall",
    "agent_json",
    "event_for",
    "parse_body",
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


def event_for(action: str, body: Mapping[str, Any]) -> AgentEvent:
    """The agent event of *action* (a key of :data:`ACTIONS`) with the checked *body*.

    Raises:
        BadBody: a field missing, unknown or of the wrong type.
    """
    allowed, make = ACTIONS[action]
    unknown = sorted(set(body) - allowed)
    if unknown:
        expected = f"expected only {', '.join(sorted(allowed))}" if allowed else "expected none"
        raise BadBody(unknown[0], f"unknown field for {action} ({expected})")
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
        "waited": round(max(0.0, (now - call.entered_at).total_seconds()), 1),
        "node": call.node,
    }
