"""The compiled call flow: one model that the generator renders and the simulator walks.

The YAML says what an admin wants (steps, menus, destinations). Two programs
carry it out: the generated dialplan on the real PBX and ``callcenter simulate``
offline. When both interpreted the YAML on their own, they drifted (a branch
on a lookup's result went one way in the simulator and another on the PBX).
Now :func:`compile_callflow` decides everything that can be decided before a
call exists, once:

- every destination resolved to a :data:`Target` (a queue's skills and base
  priority, a voicemail box's mailbox, which menu ``back`` returns from);
- every edge out of a step named by the dialplan extension that carries it
  (:attr:`Edge.label`), injective even though Asterisk ignores ``-`` in
  extension names (``branch2-11`` and ``branch21-1`` would be one extension);
- what every step reads and sets (:attr:`Op.reads`, :attr:`Op.sets`), for the
  simulator's variables and validate's checks;
- the answer policy: a call is answered before it reaches anything that talks
  to it or hands it to the queue router (:attr:`Target.needs_answer`);
- where each queue's overflow relax steps lead (:attr:`CallFlow.queue_overflows`), and
  which numbers an agent's softphone dials to log in, pause... (:class:`AgentFeatures`).

The generator then only formats ops, and the simulator only executes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from callcenter.asterisk import variables as V
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
    LookupSpec,
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
from callcenter.flows.digit_pattern import canonical_pattern

__all__ = [
    "LOOKUP_STATUSES",
    "LOOKUP_VARIABLES",
    "AgentFeatures",
    "Branch",
    "CallFlow",
    "CallerRule",
    "CheckSchedule",
    "Collect",
    "Edge",
    "EntryPoint",
    "FallOff",
    "FeatureCode",
    "FlowProgram",
    "Jump",
    "Lookup",
    "MenuProgram",
    "Op",
    "Play",
    "SetLanguage",
    "Target",
    "ToBack",
    "ToExtension",
    "ToExternal",
    "ToFlow",
    "ToHangup",
    "ToMenu",
    "ToQueue",
    "ToRepeat",
    "ToVoicemail",
    "compile_callflow",
]

Path = tuple[str | int, ...]

LookupStatus = Literal["found", "not_found", "error"]
LOOKUP_STATUSES: tuple[LookupStatus, ...] = ("found", "not_found", "error")

#: Result field of a lookup -> the channel variable ``account_lookup`` sets it in.
LOOKUP_VARIABLES: dict[str, str] = {
    "account_id": V.ACCOUNT_ID,
    "name": V.ACCOUNT_NAME,
    "language": V.ACCOUNT_LANGUAGE,
    "vip": V.ACCOUNT_VIP,
}


# -- targets: where an edge leads ---------------------------------------------

@dataclass(frozen=True)
class ToMenu:
    menu: str
    #: The menu the call leaves for this one; ``back`` in ``menu`` returns there.
    from_menu: str | None = None


@dataclass(frozen=True)
class ToFlow:
    flow: str


@dataclass(frozen=True)
class ToQueue:
    """Hand-off to the queue router; priority without the caller's VIP bonus."""

    queue: str
    skills: tuple[str, ...]
    priority: int


@dataclass(frozen=True)
class ToExtension:
    extension: str


@dataclass(frozen=True)
class ToExternal:
    number: str


@dataclass(frozen=True)
class ToVoicemail:
    box: str
    mailbox: str
    greeting: str


@dataclass(frozen=True)
class ToHangup:
    cause: int


@dataclass(frozen=True)
class ToBack:
    """Return to the menu that led to ``menu``."""

    menu: str


@dataclass(frozen=True)
class ToRepeat:
    menu: str


Target = (ToMenu | ToFlow | ToQueue | ToExtension | ToExternal | ToVoicemail | ToHangup
          | ToBack | ToRepeat)


def needs_answer(target: Target) -> bool:
    """Does the channel have to be answered before ``target``?

    Everything that plays to the caller or hands it to the queue router does
    (the router puts the caller in a holding bridge with music). Ringing an
    extension or a trunk does not: the far end answers, and early media passes.
    """
    return not isinstance(target, (ToExtension, ToExternal, ToHangup))


@dataclass(frozen=True)
class Edge:
    """A way out of a step, carried by extension ``label`` of the step's context."""

    label: str
    target: Target
    #: YAML path of the destination that produced it.
    path: Path


# -- ops: the steps of a flow ---------------------------------------------------

@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]
    path: Path
    reads: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetLanguage:
    language: str
    path: Path
    reads: tuple[str, ...] = ()
    sets: tuple[str, ...] = ("CHANNEL(language)",)


@dataclass(frozen=True)
class Collect:
    """Read digits into ``spec.variable``; ``pattern`` is the canonical regex."""

    n: int
    spec: CollectSpec
    pattern: str | None
    failure: Edge
    path: Path

    @property
    def reads(self) -> tuple[str, ...]:
        return ()

    @property
    def sets(self) -> tuple[str, ...]:
        return (self.spec.variable, V.RAW_DIGITS)


@dataclass(frozen=True)
class Lookup:
    """A data dip over FastAGI; branches on ``CC_LOOKUP_STATUS``.

    ``on_agi_failure`` is where the call goes when the FastAGI server does not
    answer (``AGISTATUS`` not ``SUCCESS``): the ``error`` edge, if any.
    """

    n: int
    lookup: str
    script: str
    #: Variable holding the key; None for the caller's number.
    input: str | None
    edges: dict[LookupStatus, Edge]
    path: Path

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.input,) if self.input else ()

    @property
    def sets(self) -> tuple[str, ...]:
        return tuple(V.SET_BY_LOOKUP)


@dataclass(frozen=True)
class Branch:
    variable: str
    #: (value, edge) in the order the dialplan tests them.
    cases: tuple[tuple[str, Edge], ...]
    #: Where no case matched; None goes on with the next step.
    default: Target | None
    path: Path

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.variable,)

    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckSchedule:
    schedule: str
    holiday: Edge
    closed: Edge
    #: Where an open schedule goes; None goes on with the next step.
    open: Target | None
    path: Path
    reads: tuple[str, ...] = ()
    sets: tuple[str, ...] = tuple(V.SET_BY_SCHEDULE)


@dataclass(frozen=True)
class Jump:
    """Leave the flow for ``target`` (transfer, menu, goto, hangup): the last op."""

    target: Target
    path: Path
    reads: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class FallOff:
    """The flow ran out of steps: hang up normally (a call never falls off the dialplan)."""

    path: Path
    cause: int = 16
    reads: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()


Op = Play | SetLanguage | Collect | Lookup | Branch | CheckSchedule | Jump | FallOff


@dataclass(frozen=True)
class FlowProgram:
    name: str
    description: str
    ops: tuple[Op, ...]
    path: Path

    def edges(self) -> Iterator[Edge]:
        """Every side exit, in the order the dialplan lists their extensions."""
        for op in self.ops:
            match op:
                case Collect(failure=e):
                    yield e
                case Lookup(edges=edges):
                    seen: set[str] = set()
                    for status in LOOKUP_STATUSES:
                        e = edges.get(status)
                        if e is not None and e.label not in seen:
                            seen.add(e.label)
                            yield e
                case Branch(cases=cases):
                    for _, e in cases:
                        yield e
                case CheckSchedule(holiday=h, closed=c):
                    yield h
                    yield c


@dataclass(frozen=True)
class MenuProgram:
    name: str
    description: str
    prompts: tuple[str, ...]
    timeout: float
    max_retries: int
    #: (key, target) in dialplan order: digits first, then * and #.
    options: tuple[tuple[str, Target], ...]
    invalid_prompts: tuple[str, ...]
    timeout_prompts: tuple[str, ...]
    exhausted_prompts: tuple[str, ...]
    on_invalid: Target | None
    on_timeout: Target | None
    on_exhausted: Target
    path: Path

    def option(self, key: str) -> Target | None:
        return dict(self.options).get(key)


@dataclass(frozen=True)
class CallerRule:
    name: str
    index: int
    digits: tuple[str, ...]
    prefixes: tuple[str, ...]
    block: bool
    priority: int | None
    destination: Target | None

    def matches(self, caller: str) -> bool:
        """``caller`` is digits only, as ``FILTER(0-9,...)`` leaves it."""
        return bool(caller) and (caller in self.digits
                                 or any(caller.startswith(p) for p in self.prefixes))


@dataclass(frozen=True)
class EntryPoint:
    name: str
    description: str
    numbers: tuple[str, ...]
    language: str
    flow: str


@dataclass(frozen=True)
class FeatureCode:
    """A number an agent dials: ``code`` asks the agent app for ``action`` (``reason``:
    the pause reason, set exactly for pause)."""

    code: str
    action: str
    reason: str | None = None


@dataclass(frozen=True)
class AgentFeatures:
    """The agents' feature codes, resolved.

    ``endpoints`` maps a PJSIP endpoint name to the agent it authenticates: a generated
    softphone's endpoint is the agent's name; an agent with ``device: PJSIP/<endpoint>``
    is known by that endpoint. Agents on other devices (``PJSIP/1001@office``, ``SIP/..``)
    cannot be told apart by endpoint and have no feature codes.
    """

    codes: tuple[FeatureCode, ...]
    #: The pause code: followed by digits that are no reason's code, it plays an error.
    pause: str
    endpoints: dict[str, str]
    #: Supervisors' codes (``action`` is the mode: listen, whisper, barge), each followed
    #: by the digits naming the agent; who may use them is the agent app's decision.
    supervise: tuple[FeatureCode, ...] = ()


@dataclass(frozen=True)
class CallFlow:
    """Everything a call can do in the call center, resolved."""

    entry_points: dict[str, EntryPoint]
    caller_rules: tuple[CallerRule, ...]
    flows: dict[str, FlowProgram]
    menus: dict[str, MenuProgram]
    #: Queue -> where its calls go while no router runs.
    queue_fallbacks: dict[str, Target]
    #: Queue -> relax step number (``Stage.index``, from 1) -> where its overflow leads.
    queue_overflows: dict[str, dict[int, Target]]
    #: None when no agent can use feature codes.
    agent_features: AgentFeatures | None = None
    #: Queue -> where its callers go when nobody can take calls (``when_unavailable``'s
    #: destination; a queue without one sends them to its fallback).
    queue_unavailable: dict[str, Target] = field(default_factory=dict)

    def targets(self) -> Iterator[tuple[Target, Path, str | None]]:
        """Every target with the YAML path naming it and the menu it is taken from
        (None outside menus): for reachability and ``back`` checks."""
        for f in self.flows.values():
            for op in f.ops:
                if isinstance(op, Jump):
                    yield op.target, op.path, None
                elif isinstance(op, Branch) and op.default is not None:
                    yield op.default, op.path + ("default",), None
                elif isinstance(op, CheckSchedule) and op.open is not None:
                    yield op.open, op.path + ("open",), None
            for e in f.edges():
                yield e.target, e.path, None
        for m in self.menus.values():
            for key, t in m.options:
                yield t, m.path + ("options", key), m.name
            for attr in ("on_invalid", "on_timeout", "on_exhausted"):
                t = getattr(m, attr)
                if t is not None:
                    yield t, m.path + (attr,), m.name
        for rule in self.caller_rules:
            if rule.destination is not None:
                yield rule.destination, ("caller_id_rules", rule.index, "destination"), None
        for q, t in self.queue_fallbacks.items():
            yield t, ("queues", q, "fallback"), None
        for q, steps in self.queue_overflows.items():
            for stage, t in steps.items():
                yield t, ("queues", q, "relax", stage - 1, "overflow"), None
        for q, t in self.queue_unavailable.items():
            yield t, ("queues", q, "when_unavailable", "destination"), None


# -- the compiler ---------------------------------------------------------------

class _Compiler:
    def __init__(self, config: CallCenterConfig) -> None:
        self.c = config

    def target(self, dest: Destination, menu: str | None = None) -> Target:
        match dest:
            case MenuDest(menu=m):
                return ToMenu(m, menu if menu is not None and menu != m else None)
            case FlowDest(flow=f):
                return ToFlow(f)
            case QueueDest(queue=q, skills=skills, priority=prio):
                queue = self.c.queues[q]
                return ToQueue(q, tuple(skills or queue.skills), prio + queue.priority)
            case ExtensionDest(extension=ext):
                return ToExtension(ext)
            case ExternalDest(external=number):
                return ToExternal(number)
            case VoicemailDest(voicemail=box):
                vm = self.c.voicemail[box]
                return ToVoicemail(box, vm.mailbox, vm.greeting)
            case HangupDest(cause=cause):
                return ToHangup(cause)
            case BackDest():
                assert menu is not None, "validate rejects 'back' outside menus"
                return ToBack(menu)
            case RepeatDest():
                assert menu is not None, "validate rejects 'repeat' outside menus"
                return ToRepeat(menu)
        raise AssertionError(f"unhandled destination {dest!r}")

    def edge(self, label: str, dest: Destination, path: Path) -> Edge:
        return Edge(label, self.target(dest), path)

    def flow(self, name: str) -> FlowProgram:
        flow = self.c.flows[name]
        base: Path = ("flows", name, "steps")
        ops: list[Op] = []
        for i, step in enumerate(flow.steps):
            n, p = i + 1, base + (i,)
            match step:
                case PlayStep(play=prompts):
                    ops.append(Play(tuple(prompts), p + ("play",)))
                case SetLanguageStep(set_language=lang):
                    ops.append(SetLanguage(lang, p + ("set_language",)))
                case CollectStep(collect=spec):
                    pattern = canonical_pattern(spec.pattern) if spec.pattern else None
                    ops.append(Collect(n, spec, pattern, self.edge(
                        f"collect{n}-failure", spec.on_failure, p + ("collect", "on_failure")),
                        p + ("collect",)))
                case LookupStep(lookup=spec):
                    ops.append(self.lookup(n, spec, p))
                case BranchStep(branch=spec):
                    cases = tuple(
                        (value, self.edge(f"branch{n}-case{k}", dest,
                                          p + ("branch", "cases", value)))
                        for k, (value, dest) in enumerate(sorted(spec.cases.items()), start=1)
                    )
                    default = self.target(spec.default) if spec.default is not None else None
                    ops.append(Branch(spec.variable, cases, default, p + ("branch",)))
                case ScheduleStep(check_schedule=spec):
                    sp = p + ("check_schedule",)
                    holiday_key = "holiday" if spec.holiday is not None else "closed"
                    ops.append(CheckSchedule(
                        spec.schedule,
                        holiday=self.edge(f"schedule{n}-holiday", spec.holiday or spec.closed,
                                          sp + (holiday_key,)),
                        closed=self.edge(f"schedule{n}-closed", spec.closed, sp + ("closed",)),
                        open=self.target(spec.open) if spec.open is not None else None,
                        path=sp,
                    ))
                case TransferStep(transfer=dest):
                    ops.append(Jump(self.target(dest), p + ("transfer",)))
                case MenuStep(menu=target):
                    ops.append(Jump(ToMenu(target), p + ("menu",)))
                case GotoStep(goto=target):
                    ops.append(Jump(ToFlow(target), p + ("goto",)))
                case HangupStep(hangup=h):
                    cause = h.cause if isinstance(h, HangupDest) else 16
                    ops.append(Jump(ToHangup(cause), p + ("hangup",)))
            if isinstance(ops[-1], Jump):
                break  # validate reports steps after the end of a flow
        else:
            ops.append(FallOff(base + (len(flow.steps) - 1,)))
        return FlowProgram(name, flow.description, tuple(ops), ("flows", name))

    def lookup(self, n: int, spec: LookupSpec, p: Path) -> Lookup:
        lookup = self.c.lookups[spec.lookup]
        script = getattr(lookup, "script", "account_lookup")
        edges: dict[LookupStatus, Edge] = {}
        for status in LOOKUP_STATUSES:
            dest = getattr(spec, status)
            if dest is not None:
                label = f"lookup{n}-{status.replace('_', '')}"
                edges[status] = self.edge(label, dest, p + ("lookup", status))
        return Lookup(n, spec.lookup, script, None if spec.input == "CALLERID" else spec.input,
                      edges, p + ("lookup",))

    def menu(self, name: str) -> MenuProgram:
        m = self.c.menus[name]
        p: Path = ("menus", name)

        def t(dest: Destination | None) -> Target | None:
            return None if dest is None else self.target(dest, menu=name)

        keys = sorted(m.options, key=lambda k: (0 if k.isdigit() else 1, k))
        return MenuProgram(
            name, m.description, tuple(m.prompts), m.timeout, m.max_retries,
            tuple((k, self.target(m.options[k], menu=name)) for k in keys),
            tuple(m.invalid_prompts), tuple(m.timeout_prompts), tuple(m.exhausted_prompts),
            t(m.on_invalid), t(m.on_timeout), self.target(m.on_exhausted, menu=name), p,
        )

    def compile(self) -> CallFlow:
        c = self.c
        return CallFlow(
            entry_points={
                name: EntryPoint(name, ep.description, tuple(ep.numbers),
                                 ep.language or c.settings.language, ep.flow)
                for name, ep in sorted(c.entry_points.items())
            },
            caller_rules=tuple(
                CallerRule(r.name, i, r.digits(), tuple(r.prefixes), r.block, r.priority,
                           None if r.destination is None else self.target(r.destination))
                for i, r in enumerate(c.caller_id_rules)
            ),
            flows={name: self.flow(name) for name in sorted(c.flows)},
            menus={name: self.menu(name) for name in sorted(c.menus)},
            queue_fallbacks={name: self.target(q.fallback) for name, q in sorted(c.queues.items())},
            queue_overflows={
                name: {stage: self.target(step.overflow)
                       for stage, step in enumerate(q.relax, start=1) if step.overflow is not None}
                for name, q in sorted(c.queues.items())
            },
            agent_features=self.agent_features(),
            queue_unavailable={
                name: self.target(q.when_unavailable.destination)
                for name, q in sorted(c.queues.items())
                if q.when_unavailable is not None and q.when_unavailable.destination is not None
            },
        )

    def agent_features(self) -> AgentFeatures | None:
        endpoints: dict[str, str] = {}
        for name, agent in sorted(self.c.agents.items()):
            endpoint = agent.endpoint(name)
            if endpoint is not None:
                endpoints.setdefault(endpoint, name)  # validate refuses a shared one
        if not endpoints:
            return None
        fc = self.c.settings.feature_codes
        codes = [FeatureCode(code, action) for action, code in fc.codes().items()
                 if action != "pause"]
        if fc.pause_reason is not None:
            codes.append(FeatureCode(fc.pause, "pause", fc.pause_reason))
        codes += [FeatureCode(fc.pause + r.code, "pause", name)
                  for name, r in sorted(self.c.pause_reasons.items()) if r.code is not None]
        supervise = tuple(FeatureCode(code, mode) for mode, code in fc.supervisor_codes().items())
        return AgentFeatures(tuple(sorted(codes, key=lambda c: c.code)), fc.pause, endpoints,
                             supervise)


def compile_callflow(config: CallCenterConfig) -> CallFlow:
    """Resolve a validated config into the model both the PBX and the simulator run."""
    return _Compiler(config).compile()
