"""Transfers of a connected call, decided without I/O: what a request asks for, whether the
user may ask it, where a SIP REFER's number leads, which agent takes an attended hand-off
to a queue, and where a transferred caller stands in its new queue.

The ARI side (:mod:`ari_apps.transfer`) carries these decisions out; the HTTP API
(:mod:`callcenter.web.transfers`) and a softphone's REFER both come through here, so the
two entries accept exactly the same targets.

Targets:

- ``{"queue": name}``: the caller re-enters that queue **keeping its original entry
  time** (``ari_apps.transfer``): a transferred caller is ranked as if it had waited there
  since it first called, so it is not sent to the back of the line (and, with the same
  priority, goes ahead of callers who came after it).
- ``{"agent": name}``: offered to that agent only, with the ring timeout of the call's
  queue; it must be available now (reserved by compare-and-set before anything moves).
- ``{"number": digits}``: an external number (an optional ``+`` then 3-20 digits,
  nothing else: it becomes part of a dial string), dialled through
  ``settings.outbound_trunk`` (:func:`ari_apps.transfer.number_dial`): when that names a trunk of
  ``trunks:``, through the trunk's dial context ``Local/<number>@cc-trunk-<name>-out/n``
  (its caller ID, ring time and number check, as every outbound call); else straight to
  that PJSIP endpoint (one defined outside this config).

Modes: ``blind`` (the agent leaves at once) and ``attended`` (the caller hears music on
hold while the agent talks to the target on a consultation leg, then completes or
cancels). An attended transfer to a queue consults the queue's longest-idle available
agent now (:func:`pick_agent`): a warm hand-off needs someone to talk to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from callcenter.config.models import CallCenterConfig

__all__ = [
    "MODES",
    "NUMBER",
    "Mode",
    "Target",
    "TransferError",
    "TransferRequest",
    "may_transfer",
    "parse_request",
    "pick_agent",
    "refer_target",
]

#: ``blind`` or ``attended`` (a plain str: routing imports nothing but pure modules).
Mode = str
MODES = ("blind", "attended")
#: An external number: what may follow ``PJSIP/`` in a dial string, and nothing more.
NUMBER = re.compile(r"\+?[0-9]{3,20}")
_KINDS = ("queue", "agent", "number")


class TransferError(ValueError):
    """A transfer that cannot be done; ``field`` names the request's part that is wrong
    (``to.number``, ``mode``...), ``status`` the HTTP status it maps to."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


@dataclass(frozen=True, slots=True)
class Target:
    """Where the caller goes: ``kind`` is ``queue``, ``agent`` or ``number``."""

    #: ``queue``, ``agent`` or ``number``.
    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass(frozen=True, slots=True)
class TransferRequest:
    target: Target
    mode: Mode = "blind"


def _target(kind: str, value: object, config: CallCenterConfig, field: str) -> Target:
    if not isinstance(value, str):
        raise TransferError(field, f"expected a string, got {type(value).__name__}")
    if kind == "queue":
        if value not in config.queues:
            raise TransferError(field, f"no queue {value!r} (queues: "
                                       f"{', '.join(sorted(config.queues)) or 'none'})")
        return Target("queue", value)
    if kind == "agent":
        if value not in config.agents:
            raise TransferError(field, f"no agent {value!r} (agents: "
                                       f"{', '.join(sorted(config.agents)) or 'none'})")
        return Target("agent", value)
    if not NUMBER.fullmatch(value):
        raise TransferError(field, "not a phone number: an optional + then 3 to 20 digits")
    if config.settings.outbound_trunk is None:
        raise TransferError(field, "no settings.outbound_trunk is configured: external "
                                   "numbers cannot be dialled")
    return Target("number", value)


def parse_request(body: Mapping[str, object], config: CallCenterConfig) -> TransferRequest:
    """``{"to": {"queue"|"agent"|"number": ...}, "mode": "blind"|"attended"}`` checked
    against *config* (``mode`` defaults to blind).

    Raises:
        TransferError: naming the field (``to``, ``to.agent``, ``mode``, an unknown key).
    """
    for key in body:
        if key not in ("to", "mode"):
            raise TransferError(str(key), "unknown field (expected to, mode)")
    to = body.get("to")
    if not isinstance(to, Mapping):
        raise TransferError("to", "required: an object with one of queue, agent, number")
    keys = list(to)
    for key in keys:
        if key not in _KINDS:
            raise TransferError(f"to.{key}",
                                "unknown target (expected queue, agent or number)")
    if len(keys) != 1:
        raise TransferError("to", "exactly one of queue, agent, number")
    kind = keys[0]
    target = _target(kind, to[kind], config, f"to.{kind}")
    mode = body.get("mode", "blind")
    if mode not in MODES:
        raise TransferError("mode", f"expected blind or attended, got {mode!r}")
    return TransferRequest(target, mode)


def may_transfer(role: str, user_agent: str | None, user_queues: Iterable[str],
                 call_queue: str, call_agent: str | None) -> bool:
    """An agent transfers only its own call, a supervisor the calls of its queues (its
    teams), an admin any call."""
    if role == "admin":
        return True
    if role == "agent":
        return call_agent is not None and call_agent == user_agent
    return call_queue in set(user_queues)


def refer_target(destination: str, config: CallCenterConfig) -> Target:
    """What the number an agent keyed on its phone's transfer key (the REFER's
    ``Refer-To`` user part) means: an agent's extension, a queue's name, or an external
    number. A REFER carries what the phone sent, so nothing else is accepted.

    Raises:
        TransferError: ``refer_to`` when it is none of them.
    """
    for name, agent in config.agents.items():
        if agent.extension == destination:
            return Target("agent", name)
    if destination in config.queues:
        return Target("queue", destination)
    if NUMBER.fullmatch(destination) and config.settings.outbound_trunk is not None:
        return Target("number", destination)
    raise TransferError("refer_to", f"{destination[:40]!r} is no agent extension, queue or "
                                    "external number", status=404)


def pick_agent(queue: str, offerable: Iterable[tuple[str, float]],
               members: Mapping[str, frozenset[str]], exclude: str) -> str | None:
    """The agent an attended hand-off to *queue* consults: the longest idle (earliest
    ``idle_since``) of the *offerable* ``(agent, idle_since)`` who serve the queue, other
    than the transferring agent; None when nobody is free."""
    candidates = sorted((since, agent) for agent, since in offerable
                        if agent != exclude and queue in members.get(agent, frozenset()))
    return candidates[0][1] if candidates else None

