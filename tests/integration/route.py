"""Observe where a real call goes, from Asterisk's own events.

Every dialplan step raises an AMI ``Newexten`` event (Context, Extension,
Priority, Application, AppData, CallerIDNum). From those we rebuild the same
"route" ``callcenter simulate`` reports: the flows and menus entered (a
``cc-flow-*``/``cc-menu-*`` context at ``s``, priority 1) and the final
destination (the ``cc-queue``/``cc-voicemail``/extension/Hangup step).
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from callcenter.asterisk.ami.client import AMIClient


@dataclass
class ObservedCall:
    steps: list[dict[str, str]] = field(default_factory=list)

    @property
    def route(self) -> list[str]:
        out = []
        for s in self.steps:
            m = re.fullmatch(r"cc-(flow|menu)-(\w+)", s.get("Context", ""))
            if m and s.get("Extension") == "s" and s.get("Priority") == "1":
                out.append(f"{m.group(1)}:{m.group(2)}")
        return out

    @property
    def outcome(self) -> str | None:
        """``queue sales skills=sales priority=5`` etc., like Outcome.__str__."""
        for s in self.steps:
            ctx, app, data = s.get("Context", ""), s.get("Application", ""), s.get("AppData", "")
            if app == "Stasis":
                parts = data.split(",")
                args = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
                return (f"queue {parts[1]} skills={args.get('skills', '')} "
                        f"priority={args.get('priority', '')} language={args.get('language', '')}")
            if ctx == "cc-voicemail" and app == "VoiceMail":
                return f"voicemail {s['Extension']}"
            if app == "Dial" and data.startswith("PJSIP/") and ctx == "cc-extensions":
                return f"extension {s['Extension']}"
            if app == "Hangup" and ctx != "cc-queue":
                return f"hangup {data or '16'}"
        return None

    def apps(self) -> list[str]:
        return [f"{s.get('Application')}({s.get('AppData', '')})" for s in self.steps]


class RouteObserver:
    """Collects Newexten events per caller number, over AMI."""

    def __init__(self) -> None:
        self.calls: dict[str, ObservedCall] = defaultdict(ObservedCall)

    def on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") == "Newexten":
            self.calls[event.get("CallerIDNum", "")].steps.append(dict(event))

    async def run(self, ami: AMIClient) -> None:
        """Feed events until cancelled (owned by the fixture's task group)."""
        with ami.subscribe("Newexten") as subscription:
            async for event in subscription:
                self.on_event(event)

    def call(self, caller: str) -> ObservedCall:
        return self.calls[caller]

    async def wait_outcome(self, caller: str, timeout: float = 5.0) -> ObservedCall:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.calls[caller].outcome is None:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        return self.calls[caller]
