"""Where a real call went, read from Asterisk's own AMI events. Pure: no I/O.

Every dialplan step raises ``Newexten`` (Context, Extension, Priority,
Application, AppData); the channel's end raises ``Hangup`` (Cause, Cause-txt).
From those we rebuild what ``callcenter simulate`` reports: the flows and
menus entered (a ``cc-flow-*``/``cc-menu-*`` context at ``s``, priority 1) and
each destination reached (``Stasis(cc-queue,…)``, ``VoiceMail`` in
``cc-voicemail``, ``Dial`` in ``cc-extensions``, ``Hangup``). A queue
destination is followed by its fallback while no queue router is registered,
so every destination is kept, in order. The phone that answered comes from the
``DialEnd`` (``DialStatus: ANSWER``) of a leg linked to the caller (``DestLinkedid``):
the ``Dial()`` of an extension and the queue router's offer legs both carry it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CallRoute", "answered_by", "destination", "is_our_channel", "route_of"]


@dataclass(frozen=True)
class CallRoute:
    """The route one channel took, and how it ended (``None`` until its Hangup)."""

    route: tuple[str, ...]
    destinations: tuple[str, ...]
    cause: int | None = None
    cause_text: str = ""


def destination(step: Mapping[str, str]) -> str | None:
    """The destination a ``Newexten`` step hands the call to, in ``simulate``'s words
    (``queue sales skills=sales priority=5 language=en``), or None for other steps."""
    ctx, app, data = step.get("Context", ""), step.get("Application", ""), step.get("AppData", "")
    if app == "Stasis":
        parts = data.split(",")
        args = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
        queue = parts[1] if len(parts) > 1 else ""
        return (f"queue {queue} skills={args.get('skills', '')} "
                f"priority={args.get('priority', '')} language={args.get('language', '')}")
    if ctx == "cc-voicemail" and app == "VoiceMail":
        return f"voicemail {step.get('Extension', '')}"
    if app == "Dial" and data.startswith("PJSIP/") and ctx == "cc-extensions":
        return f"extension {step.get('Extension', '')}"
    if app == "Hangup" and ctx != "cc-queue":
        return f"hangup {data or '16'}"
    return None


def route_of(steps: Sequence[Mapping[str, str]], hangup: Mapping[str, str] | None) -> CallRoute:
    """Flows and menus entered, destinations reached, and the hangup cause."""
    route = []
    for s in steps:
        m = re.fullmatch(r"cc-(flow|menu)-(\w+)", s.get("Context", ""))
        if m and s.get("Extension") == "s" and s.get("Priority") == "1":
            route.append(f"{m.group(1)}:{m.group(2)}")
    destinations = tuple(d for d in map(destination, steps) if d is not None)
    cause: int | None = None
    text = ""
    if hangup is not None:
        raw = hangup.get("Cause", "")
        cause = int(raw) if raw.isdigit() else None
        text = hangup.get("Cause-txt", "")
    return CallRoute(tuple(route), destinations, cause, text)


def answered_by(event: Mapping[str, str], linkedid: str) -> str | None:
    """The device (``PJSIP/carmen``) of a ``DialEnd`` ANSWER on a leg linked to the
    call ``linkedid``, or None for any other event."""
    if (event.get("Event") != "DialEnd" or event.get("DialStatus") != "ANSWER"
            or event.get("DestLinkedid") != linkedid):
        return None
    channel = event.get("DestChannel", "")
    device, dash, _ = channel.rpartition("-")
    return device if dash and device else channel or None


def is_our_channel(event: Mapping[str, str], *, number: str, caller_id: str) -> bool:
    """True for the ``Newchannel`` of the inbound SIP call to ``number`` from ``caller_id``."""
    return (event.get("Event") == "Newchannel"
            and event.get("Channel", "").startswith("PJSIP/")
            and event.get("Exten") == number
            and event.get("CallerIDNum") == caller_id)
