"""Walk a call through the config without a PBX.

The walk mirrors the generated dialplan step for step (same retry counting,
same ``back`` bookkeeping, same first-match caller-ID rules), so that
``callcenter simulate`` answers "where does this caller end up?" the way the
real Asterisk would; a table-driven integration test holds the two together.

Caller input is a list of tokens: one DTMF key each (``0-9 * #``), or ``t``
for "stays silent until the timeout". When tokens run out the caller is
silent for the rest of the call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from callcenter.config.models import (
    BackDest,
    BranchStep,
    CallCenterConfig,
    CollectSpec,
    CollectStep,
    Destination,
    ExtensionDest,
    ExternalDest,
    FlowDest,
    GotoStep,
    HangupDest,
    HangupStep,
    LookupStep,
    MenuDest,
    MenuStep,
    PlayStep,
    QueueDest,
    RepeatDest,
    ScheduleStep,
    SetLanguageStep,
    TransferStep,
    VoicemailDest,
)
from callcenter.flows.lookup import LookupResult
from callcenter.flows.schedule import schedule_state

__all__ = ["Outcome", "SimEvent", "Simulation", "SimulationError", "parse_keys", "simulate"]

LookupFn = Callable[[str, str], Awaitable[LookupResult]]

_MAX_STEPS = 500


class SimulationError(ValueError):
    """Bad simulator input (unknown entry point, bad key token)."""


@dataclass(frozen=True)
class SimEvent:
    kind: str
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind:<10} {self.name}" + (f"  ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Outcome:
    """Where the call ends: ``queue``, ``extension``, ``external``,
    ``voicemail``, ``hangup`` or ``failure``."""

    kind: str
    target: str
    skills: tuple[str, ...] = ()
    priority: int = 0
    language: str = ""

    def __str__(self) -> str:
        text = f"{self.kind} {self.target}"
        if self.kind == "queue":
            text += f" skills={'+'.join(self.skills)} priority={self.priority}"
            text += f" language={self.language}"
        return text


@dataclass
class Simulation:
    events: list[SimEvent] = field(default_factory=list)
    outcome: Outcome | None = None
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def route(self) -> list[str]:
        """Flows and menus entered, in order: what the real call is compared on."""
        return [f"{e.kind}:{e.name}" for e in self.events if e.kind in ("flow", "menu")]


def parse_keys(text: str) -> list[str]:
    """``"1,3,#"`` or ``"1,t,100200#"`` -> tokens; digit runs split into keys."""
    tokens: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part in ("t", "timeout"):
            tokens.append("t")
        elif re.fullmatch(r"[0-9*#]+", part):
            tokens.extend(part)
        else:
            raise SimulationError(f"invalid key {part!r}: expected 0-9, *, # or t (timeout)")
    return tokens


class _Walker:
    def __init__(self, c: CallCenterConfig, keys: Sequence[str], now: dt.datetime,
                 caller_id: str, lookup: LookupFn | None) -> None:
        self.c = c
        self.keys = list(keys)
        self.now = now
        self.caller = re.sub(r"[^0-9]", "", caller_id)
        self.lookup = lookup
        self.sim = Simulation()
        self.language = c.settings.language
        self.priority = 0
        self.vars: dict[str, str] = {}
        self.back: dict[str, str] = {}
        self.steps = 0
        #: Invalid keys + timeouts in the current menu (CC_TRIES in the dialplan).
        self.tries = 0

    def event(self, kind: str, name: str, detail: str = "") -> None:
        self.sim.events.append(SimEvent(kind, name, detail))

    def key(self) -> str:
        return self.keys.pop(0) if self.keys else "t"

    def finish(self, outcome: Outcome) -> None:
        self.sim.outcome = outcome
        self.event("end", outcome.kind, str(outcome))

    # A destination either ends the call (returns None) or names the next
    # node to run: ("flow", name) or ("menu", name, start_at_prompt).
    def go(self, dest: Destination, menu: str | None = None) -> tuple | None:
        match dest:
            case MenuDest(menu=target):
                if menu is not None and menu != target:
                    self.back[target] = menu
                return ("menu", target, False)
            case FlowDest(flow=target):
                return ("flow", target)
            case QueueDest(queue=q, skills=skills, priority=prio):
                queue = self.c.queues[q]
                self.finish(Outcome("queue", q, tuple(skills or queue.skills),
                                    prio + queue.priority + self.priority, self.language))
            case ExtensionDest(extension=ext):
                self.finish(Outcome("extension", ext, language=self.language))
            case ExternalDest(external=number):
                self.finish(Outcome("external", number, language=self.language))
            case VoicemailDest(voicemail=box):
                self.finish(Outcome("voicemail", box, language=self.language))
            case HangupDest(cause=cause):
                self.finish(Outcome("hangup", str(cause)))
            case BackDest():
                parent = self.back.get(menu or "")
                if not parent:
                    self.finish(Outcome("failure", "back without a parent menu"))
                    return None
                return ("menu", parent, False)
            case RepeatDest():
                return ("menu", menu, True)
        return None

    async def run(self, entry: str) -> Simulation:
        ep = self.c.entry_points.get(entry)
        if ep is None:
            raise SimulationError(
                f"unknown entry point {entry!r} (known: {', '.join(sorted(self.c.entry_points))})"
            )
        self.language = ep.language or self.c.settings.language
        self.event("entry", entry, f"caller {self.caller or 'unknown'}")
        node: tuple | None = ("flow", ep.flow)
        for i, rule in enumerate(self.c.caller_id_rules):
            if self.caller and (self.caller in rule.digits()
                                or any(self.caller.startswith(p) for p in rule.prefixes)):
                self.event("rule", rule.name)
                if rule.block:
                    self.finish(Outcome("hangup", "21"))
                    return self.sim
                if rule.priority is not None:
                    self.priority = rule.priority
                if rule.destination is not None:
                    node = self.go(rule.destination)
                break
        while node is not None:
            self.steps += 1
            if self.steps > _MAX_STEPS:
                self.finish(Outcome("failure", "too many steps (loop)"))
                break
            if node[0] == "flow":
                node = await self.flow(node[1])
            else:
                node = self.menu(node[1], node[2])
        self.sim.variables = dict(self.vars)
        return self.sim

    async def flow(self, name: str) -> tuple | None:
        self.event("flow", name)
        for step in self.c.flows[name].steps:
            match step:
                case PlayStep(play=prompts):
                    self.event("play", "&".join(prompts))
                case SetLanguageStep(set_language=lang):
                    self.language = lang
                    self.event("language", lang)
                case CollectStep(collect=spec):
                    if not self.collect(spec):
                        return self.go(spec.on_failure)
                case LookupStep(lookup=spec):
                    value = self.caller if spec.input == "CALLERID" else self.vars.get(spec.input, "")
                    if self.lookup is None:
                        result = LookupResult("error")
                    else:
                        result = await self.lookup(spec.lookup, value)
                    self.event("lookup", spec.lookup, f"{value or '-'} -> {result.status}")
                    dest = getattr(spec, result.status)
                    if dest is not None:
                        return self.go(dest)
                case BranchStep(branch=spec):
                    value = self.vars.get(spec.variable, "")
                    dest = spec.cases.get(value, spec.default)
                    self.event("branch", spec.variable, value)
                    if dest is not None:
                        return self.go(dest)
                case ScheduleStep(check_schedule=spec):
                    state = schedule_state(self.c.schedules[spec.schedule], self.now,
                                           self.c.settings.timezone)
                    self.event("schedule", spec.schedule, state)
                    dest = {"open": spec.open, "closed": spec.closed,
                            "holiday": spec.holiday or spec.closed}[state]
                    if dest is not None:
                        return self.go(dest)
                case TransferStep(transfer=dest):
                    return self.go(dest)
                case MenuStep(menu=target):
                    return self.go(MenuDest(menu=target))
                case GotoStep(goto=target):
                    return self.go(FlowDest(flow=target))
                case HangupStep(hangup=h):
                    return self.go(h if isinstance(h, HangupDest) else HangupDest())
        self.finish(Outcome("hangup", "16"))
        return None

    def collect(self, spec: CollectSpec) -> bool:
        for attempt in range(1, spec.retries + 1):
            digits = ""
            while len(digits) < spec.max_digits:
                k = self.key()
                if k == "t" or (spec.terminator and k == spec.terminator):
                    break
                digits += k
            self.vars[spec.variable] = digits
            ok = len(digits) >= spec.min_digits and (
                spec.pattern is None or re.search(spec.pattern, digits) is not None)
            self.event("collect", spec.variable, f"{digits or '-'} {'ok' if ok else 'invalid'}")
            if ok:
                return True
        return False

    def menu(self, name: str, at_prompt: bool) -> tuple | None:
        menu = self.c.menus[name]
        if not at_prompt:
            self.event("menu", name)
            self.tries = 0
        while True:
            k = self.key()
            if k in menu.options:
                self.event("key", k)
                return self.go(menu.options[k], menu=name)
            kind, immediate = ("timeout", menu.on_timeout) if k == "t" else ("invalid", menu.on_invalid)
            self.event(kind, name, "" if k == "t" else k)
            if immediate is not None:
                return self.go(immediate, menu=name)
            self.tries += 1
            if self.tries >= menu.max_retries:
                self.event("exhausted", name)
                return self.go(menu.on_exhausted, menu=name)


async def simulate(
    config: CallCenterConfig,
    entry: str,
    *,
    keys: Sequence[str] = (),
    caller_id: str = "",
    now: dt.datetime | None = None,
    lookup: LookupFn | None = None,
) -> Simulation:
    """Walk one call; ``lookup(name, key)`` performs data dips (None: error)."""
    when = now or dt.datetime.now(dt.UTC)
    return await _Walker(config, keys, when, caller_id, lookup).run(entry)
