"""Observe what happened to a real call, from Asterisk's own events.

AMI gives, per caller number:

- ``Newexten`` for every dialplan step (Context, Extension, Priority, Application,
  AppData): the flows and menus walked, i.e. the same "route" ``callcenter simulate``
  reports (a ``cc-flow-*``/``cc-menu-*`` context at ``s``, priority 1);
- ``DialEnd`` for each ``Dial()`` of the caller's channel: who was rung and whether
  they answered (``DialStatus: ANSWER``, ``DestChannel: PJSIP/carmen-…``);
- ``Hangup`` of the caller's channel (``PJSIP/cc-inbound-…``) with its Q.850 cause;
  it is the last event of the call, so waiting for it is waiting for the call to end.

The voicemail message left (the box's spool, :func:`voicemail_left`) and the queue
hand-off (:mod:`tests.integration.queue_router`) complete the picture.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.asterisk.ami.client import AMISubscription
from callcenter.testing.route import route_of

__all__ = ["INBOUND_CHANNEL", "ObservedCall", "RouteObserver", "voicemail_left"]

#: Channel name prefix of calls arriving on the generated ``cc-inbound`` endpoint.
INBOUND_CHANNEL = "PJSIP/cc-inbound-"


@dataclass
class ObservedCall:
    steps: list[dict[str, str]] = field(default_factory=list)
    dials: list[dict[str, str]] = field(default_factory=list)
    hangup: dict[str, str] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def route(self) -> list[str]:
        return list(route_of(self.steps, None).route)

    @property
    def dialplan_destination(self) -> str | None:
        """Where the dialplan sent the call, in ``simulate``'s words (``queue sales
        skills=sales priority=5 language=en``, ``extension 1000``...). The step was
        reached; whether it worked is :attr:`answered_by`, the Stasis args, the
        voicemail left or :attr:`hangup_cause`."""
        return next(iter(route_of(self.steps, None).destinations), None)

    @property
    def answered_by(self) -> str | None:
        """The endpoint that answered a ``Dial()`` (``PJSIP/carmen``), from DialEnd."""
        for d in self.dials:
            if d.get("DialStatus") == "ANSWER":
                return d.get("DestChannel", "").rsplit("-", 1)[0]
        return None

    @property
    def hangup_cause(self) -> int | None:
        """Q.850 cause of the caller's channel (16 normal, 21 rejected...)."""
        return int(self.hangup["Cause"]) if self.hangup is not None else None

    def apps(self) -> list[str]:
        return [f"{s.get('Application')}({s.get('AppData', '')})" for s in self.steps]


class RouteObserver:
    """Collects each caller's Newexten, DialEnd and Hangup events, over AMI."""

    EVENTS = ("Newexten", "DialEnd", "Hangup")

    def __init__(self) -> None:
        self.calls: dict[str, ObservedCall] = {}

    def expect(self, caller: str) -> ObservedCall:
        """A fresh record for the next call from ``caller`` (call before placing it)."""
        self.calls[caller] = ObservedCall()
        return self.calls[caller]

    def on_event(self, event: Mapping[str, str]) -> None:
        call = self.calls.setdefault(event.get("CallerIDNum", ""), ObservedCall())
        name, channel = event.get("Event"), event.get("Channel", "")
        if name == "Newexten":
            call.steps.append(dict(event))
        elif not channel.startswith(INBOUND_CHANNEL):
            return  # the agent's leg of a Dial carries the caller's number too
        elif name == "DialEnd":
            call.dials.append(dict(event))
        elif name == "Hangup":
            call.hangup = dict(event)
            call.ended.set()

    async def run(self, subscription: AMISubscription) -> None:
        """Feed events until cancelled (the fixture subscribes first, then owns this task)."""
        async for event in subscription:
            self.on_event(event)

    def call(self, caller: str) -> ObservedCall:
        return self.calls[caller]

    async def wait_ended(self, caller: str, timeout: float = 10.0) -> ObservedCall:
        """The caller's call, once its channel's Hangup event has arrived."""
        call = self.calls[caller]
        try:
            async with asyncio.timeout(timeout):
                await call.ended.wait()
        except TimeoutError:
            raise AssertionError(f"no Hangup of {caller}'s channel within {timeout:g} s; "
                                 f"steps: {call.apps()}") from None
        return call


def voicemail_left(spool: Path) -> dict[str, list[str]]:
    """Caller number -> the boxes (``8000@callcenter``) it left a message in, from the
    ``msgNNNN.txt`` app_voicemail writes next to each recording."""
    out: dict[str, list[str]] = {}
    for txt in sorted((spool / "voicemail").glob("*/*/*/msg*.txt")):
        context, box = txt.parent.parent.parent.name, txt.parent.parent.name
        text = txt.read_text(errors="replace")
        m = re.search(r"^callerid=.*?<([^>]*)>", text, re.MULTILINE) or \
            re.search(r"^callerid=(.*)$", text, re.MULTILINE)
        caller = m.group(1).strip() if m else ""
        out.setdefault(caller, []).append(f"{box}@{context}")
    return out
