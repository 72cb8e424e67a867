"""Walk a call through the config without a PBX.

The walk executes the same compiled call flow (:mod:`callcenter.flows.callflow`)
that the generator renders: the same resolved targets, the same digit patterns,
the same variables set by each step (a lookup's ``CC_ACCOUNT_*`` included), the
same retry counting and ``back`` bookkeeping. So ``callcenter simulate``
answers "where does this caller end up?" the way the real Asterisk would; a
table-driven integration test holds the two together on real SIP calls.

Caller input is a list of tokens: one DTMF key each (``0-9 * #``), or ``t``
for "stays silent until the timeout". When tokens run out the caller is
silent for the rest of the call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from callcenter.asterisk import variables as V
from callcenter.config.models import CallCenterConfig
from callcenter.flows.callflow import (
    LOOKUP_STATUSES,
    LOOKUP_VARIABLES,
    Branch,
    CallFlow,
    CheckSchedule,
    Collect,
    FallOff,
    Jump,
    Lookup,
    Play,
    SetLanguage,
    Target,
    ToBack,
    ToExtension,
    ToExternal,
    ToFlow,
    ToHangup,
    ToMenu,
    ToQueue,
    ToRepeat,
    ToVoicemail,
    compile_callflow,
)
from callcenter.flows.lookup import LookupResult
from callcenter.flows.schedule import schedule_state

__all__ = [
    "Outcome",
    "SimEvent",
    "Simulation",
    "SimulationError",
    "parse_keys",
    "parse_lookup_stub",
    "simulate",
    "stubbed_lookups",
]

LookupFn = Callable[[str, str], Awaitable[LookupResult]]

_MAX_STEPS = 500


class SimulationError(ValueError):
    """Bad simulator input (unknown entry point, bad key token, bad lookup stub)."""


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
    #: Keys the caller pressed that the call never read (after it ended).
    unused_keys: list[str] = field(default_factory=list)

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


_FIELD_BY_NAME = {
    **{f.upper(): f for f in LOOKUP_VARIABLES},
    **{var: f for f, var in LOOKUP_VARIABLES.items()},
    **{var.removeprefix("CC_ACCOUNT_"): f for f, var in LOOKUP_VARIABLES.items()},
}


def parse_lookup_stub(text: str) -> tuple[str, LookupResult]:
    """``account=found:VIP=1,LANGUAGE=es`` -> ("account", LookupResult("found", {...})).

    Field names are the lookup's result fields in any case (``vip``, ``VIP``,
    ``ACCOUNT_ID``) or their channel variables (``CC_ACCOUNT_VIP``).
    """
    name, sep, rest = text.partition("=")
    status, _, fields_text = rest.partition(":")
    name, status = name.strip(), status.strip()
    if not sep or not name:
        raise SimulationError(f"invalid lookup stub {text!r}: expected NAME=STATUS[:FIELD=VALUE,...]"
                              " e.g. account=found:VIP=1,LANGUAGE=es")
    if status not in LOOKUP_STATUSES:
        raise SimulationError(f"invalid lookup status {status!r} in {text!r}: expected "
                              + ", ".join(LOOKUP_STATUSES))
    fields: dict[str, str] = {}
    for item in (i.strip() for i in fields_text.split(",") if i.strip()):
        key, eq, value = item.partition("=")
        field_name = _FIELD_BY_NAME.get(key.strip().upper())
        if not eq or field_name is None:
            raise SimulationError(
                f"invalid lookup field {item!r} in {text!r}: expected FIELD=VALUE with FIELD one of "
                + ", ".join(f.upper() for f in LOOKUP_VARIABLES))
        fields[field_name] = value.strip()
    if fields and status != "found":
        raise SimulationError(f"lookup stub {text!r}: only a 'found' result has fields")
    return name, LookupResult(status, fields)  # type: ignore[arg-type]


def stubbed_lookups(stubs: dict[str, LookupResult], fallback: LookupFn | None = None) -> LookupFn:
    """A lookup function answering ``stubs`` by lookup name, else ``fallback`` (else error)."""

    async def lookup(name: str, key: str) -> LookupResult:
        if name in stubs:
            return stubs[name]
        if fallback is not None:
            return await fallback(name, key)
        return LookupResult("error")

    return lookup


# A node is where the walk goes next: ("flow", name) or ("menu", name, at_prompt).
Node = tuple


class _Walker:
    """Executes the compiled call flow the way the generated dialplan does."""

    def __init__(self, model: CallFlow, config: CallCenterConfig, keys: Sequence[str],
                 now: dt.datetime, caller_id: str, lookup: LookupFn | None) -> None:
        self.m = model
        self.c = config
        self.keys = list(keys)
        self.now = now
        # FILTER(0-9,${CALLERID(num)})
        self.caller = re.sub(r"[^0-9]", "", caller_id)
        self.lookup = lookup
        self.sim = Simulation()
        self.language = config.settings.language
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

    def go(self, target: Target) -> Node | None:
        """Follow ``target``: the next node, or None when the call ends there."""
        match target:
            case ToMenu(menu=m, from_menu=parent):
                if parent:
                    self.back[m] = parent
                return ("menu", m, False)
            case ToFlow(flow=f):
                return ("flow", f)
            case ToQueue(queue=q, skills=skills, priority=prio):
                self.finish(Outcome("queue", q, skills, prio + self.priority, self.language))
            case ToExtension(extension=ext):
                self.finish(Outcome("extension", ext, language=self.language))
            case ToExternal(number=number):
                self.finish(Outcome("external", number, language=self.language))
            case ToVoicemail(box=box):
                self.finish(Outcome("voicemail", box, language=self.language))
            case ToHangup(cause=cause):
                self.finish(Outcome("hangup", str(cause)))
            case ToBack(menu=menu):
                parent = self.back.get(menu)
                if not parent:
                    self.finish(Outcome("failure", "back without a parent menu"))
                    return None
                return ("menu", parent, False)
            case ToRepeat(menu=menu):
                return ("menu", menu, True)
        return None

    async def run(self, entry: str) -> Simulation:
        ep = self.m.entry_points.get(entry)
        if ep is None:
            raise SimulationError(
                f"unknown entry point {entry!r} (known: {', '.join(sorted(self.m.entry_points))})"
            )
        self.language = ep.language
        self.vars.update({V.ENTRY: entry, V.PRIORITY: "0"})
        self.event("entry", entry, f"caller {self.caller or 'unknown'}")
        node: Node | None = ("flow", ep.flow)
        for rule in self.m.caller_rules:
            if rule.matches(self.caller):
                self.event("rule", rule.name)
                self.vars[V.RULE] = rule.name
                if rule.block:
                    self.finish(Outcome("hangup", "21"))
                    return self.done()
                if rule.priority is not None:
                    self.priority = rule.priority
                    self.vars[V.PRIORITY] = str(rule.priority)
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
        return self.done()

    def done(self) -> Simulation:
        self.sim.variables = dict(self.vars)
        self.sim.unused_keys = list(self.keys)
        return self.sim

    async def flow(self, name: str) -> Node | None:
        self.event("flow", name)
        for op in self.m.flows[name].ops:
            match op:
                case Play(prompts=prompts):
                    self.event("play", "&".join(prompts))
                case SetLanguage(language=lang):
                    self.language = lang
                    self.event("language", lang)
                case Collect():
                    if not self.collect(op):
                        return self.go(op.failure.target)
                case Lookup():
                    edge = await self.run_lookup(op)
                    if edge is not None:
                        return self.go(edge)
                case Branch(variable=var, cases=cases, default=default):
                    value = self.vars.get(var, "")
                    self.event("branch", var, value)
                    edge = next((e for v, e in cases if v == value), None)
                    if edge is not None:
                        return self.go(edge.target)
                    if default is not None:
                        return self.go(default)
                case CheckSchedule():
                    state = schedule_state(self.c.schedules[op.schedule], self.now,
                                           self.c.settings.timezone)
                    self.vars[V.SCHEDULE] = state
                    self.event("schedule", op.schedule, state)
                    if state == "holiday":
                        return self.go(op.holiday.target)
                    if state == "closed":
                        return self.go(op.closed.target)
                    if op.open is not None:
                        return self.go(op.open)
                case Jump(target=target):
                    return self.go(target)
                case FallOff(cause=cause):
                    self.finish(Outcome("hangup", str(cause)))
                    return None
        raise AssertionError(f"flow {name} has no final op")

    async def run_lookup(self, op: Lookup) -> Target | None:
        """The dip and the variables it sets, as ``account_lookup`` sets them."""
        raw = self.caller if op.input is None else self.vars.get(op.input, "")
        value = re.sub(r"[^0-9*#]", "", raw)
        result = LookupResult("error") if self.lookup is None else await self.lookup(op.lookup, value)
        for field_name, var in LOOKUP_VARIABLES.items():
            if field_name in result.fields:
                self.vars[var] = result.fields[field_name]
        self.vars[V.LOOKUP_STATUS] = result.status
        fields = ", ".join(f"{LOOKUP_VARIABLES[k]}={v}" for k, v in sorted(result.fields.items())
                           if k in LOOKUP_VARIABLES)
        self.event("lookup", op.lookup, f"{value or '-'} -> {result.status}"
                   + (f"; {fields}" if fields else ""))
        edge = op.edges.get(result.status)
        return edge.target if edge is not None else None

    def collect(self, op: Collect) -> bool:
        spec = op.spec
        for _attempt in range(spec.retries):
            digits = ""
            while len(digits) < spec.max_digits:
                k = self.key()
                if k == "t" or (spec.terminator and k == spec.terminator):
                    break
                digits += k
            self.vars[spec.variable] = digits
            self.vars[V.RAW_DIGITS] = digits
            ok = len(digits) >= spec.min_digits and (
                op.pattern is None or re.search(op.pattern, digits) is not None)
            self.event("collect", spec.variable, f"{digits or '-'} {'ok' if ok else 'invalid'}")
            if ok:
                return True
        return False

    def menu(self, name: str, at_prompt: bool) -> Node | None:
        menu = self.m.menus[name]
        if not at_prompt:
            self.event("menu", name)
            self.vars[V.MENU] = name
            self.tries = 0
        while True:
            k = self.key()
            target = menu.option(k) if k != "t" else None
            if target is not None:
                self.event("key", k)
                return self.go(target)
            kind, immediate = ("timeout", menu.on_timeout) if k == "t" else ("invalid", menu.on_invalid)
            self.event(kind, name, "" if k == "t" else k)
            if immediate is not None:
                return self.go(immediate)
            self.tries += 1
            if self.tries >= menu.max_retries:
                self.event("exhausted", name)
                return self.go(menu.on_exhausted)


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
    model = compile_callflow(config)
    return await _Walker(model, config, keys, when, caller_id, lookup).run(entry)
