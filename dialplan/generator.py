"""Render a validated config into Asterisk configuration text.

``render(config) -> {filename: text}`` is pure and deterministic: the same
config gives byte-identical files, so a diff of the output is a review of the
change. The files are meant to be ``#include``d by an existing Asterisk::

    extensions.conf:  #include "callcenter/extensions_callcenter.conf"
    pjsip.conf:       #include "callcenter/pjsip_callcenter.conf"
    voicemail.conf:   #include "callcenter/voicemail_callcenter.conf"

``pjsip_callcenter.conf`` defines the inbound endpoint and one softphone account
(endpoint + AOR, named after the agent) per agent without a ``device``; it
includes ``pjsip_callcenter_auth.conf``, the agents' digest credentials,
the only generated file with secrets (passwords are an argument of
:func:`render`, never read here; the caller writes that file with mode 0600).

Safety: every YAML value that reaches the dialplan was restricted to a small
alphabet by the models (names, sound names, digits), so nothing here needs
escaping except free text in comments, which :func:`_comment` flattens.
Caller-controlled values (caller ID, collected digits, AGI results) pass
``FILTER()`` before they are compared, stored or passed to FastAGI.

Context names (all prefixed ``cc-`` so they never collide with a PBX's own):

=========================  ====================================================
``<settings.entry_context>``  one extension per entry-point number
``cc-entrypoint-<name>``   language, caller-ID rules, then the flow
``cc-flow-<name>``         a flow's steps, in order, on extension ``s``
``cc-menu-<name>``         an IVR menu: keys are extensions, plus ``i``/``t``
``cc-schedule-<name>``     subroutine: is the schedule open now (native, no FastAGI)
``cc-queue``               hand-off to the queue router (Stasis) per queue; its
                           ``overflow<N>`` labels lead to relax step N's overflow,
                           ``unavailable`` to ``when_unavailable``'s destination
``cc-agent-features``      the agents' feature codes (login, pause...): included by
                           ``settings.extensions_context``, where their phones dial
``cc-agent-identify``      subroutine: which agent is the calling PJSIP endpoint
``cc-voicemail``           one extension per voicemail box
``cc-external``            external transfers through the outbound trunk
``cc-trunk-<name>-out/-in``  a trunk's dial context and its DIDs (:mod:`dialplan.trunks`)
``cc-failure``             every error path ends here: prompt, log, hang up
=========================  ====================================================
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from callcenter.asterisk import variables as V
from callcenter.asterisk.stasis_args import (
    agent_dialplan_args,
    dialplan_args,
    overflow_label,
    supervise_dialplan_args,
)
from callcenter.config.models import Agent, CallCenterConfig, TimeRange
from callcenter.flows.callflow import (
    Branch,
    CallFlow,
    CheckSchedule,
    Collect,
    FallOff,
    FlowProgram,
    Jump,
    Lookup,
    MenuProgram,
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
    needs_answer,
)
from callcenter.routing.availability import UNAVAILABLE_LABEL
from dialplan import dialer, trunks

__all__ = [
    "AGENT_FEATURES_CONTEXT",
    "AGENT_IDENTIFY_CONTEXT",
    "AGENT_UNKNOWN_PROMPT",
    "AUTH_FILE",
    "FILES",
    "INVALID_CODE_PROMPT",
    "SECRET_FILES",
    "VOICEMAIL_CONTEXT",
    "Locator",
    "MissingPasswordError",
    "pattern_mismatch",
    "render",
    "softphone_agents",
]

#: Returns "file:line" for a config path, for comments; or "" when unknown.
Locator = Callable[[tuple[str | int, ...]], str]

VOICEMAIL_CONTEXT = "callcenter"
#: The agents' feature codes; ``settings.extensions_context`` includes it.
AGENT_FEATURES_CONTEXT = "cc-agent-features"
#: Subroutine: the agent behind the calling PJSIP endpoint, in ``CC_AGENT``.
AGENT_IDENTIFY_CONTEXT = "cc-agent-identify"
#: Core sound ("login incorrect") for a feature code dialled from no agent's endpoint.
AGENT_UNKNOWN_PROMPT = "agent-incorrect"
#: Core sound for a pause code followed by no reason's code (or bare, with no default).
INVALID_CODE_PROMPT = "pbx-invalid"
#: The agents' digest credentials, ``#include``d by ``pjsip_callcenter.conf``.
AUTH_FILE = "pjsip_callcenter_auth.conf"
FILES = ("extensions_callcenter.conf", "pjsip_callcenter.conf", AUTH_FILE,
         "voicemail_callcenter.conf")
#: Generated files that hold secrets: written with mode 0600, never shown.
SECRET_FILES = frozenset({AUTH_FILE})
#: Where the generated files live, relative to Asterisk's config directory (the
#: ``#include`` in ``pjsip_callcenter.conf`` names its sibling by this path).
INCLUDE_DIR = "callcenter"


class MissingPasswordError(ValueError):
    """An agent's softphone has no (or no usable) password in ``agent_passwords``."""

_HEADER = (
    "; Generated by callcenter from {what}. Do not edit: change the YAML and run\n"
    "; 'callcenter apply'. Every context starts with the YAML that produced it.\n"
)

#: Characters a comment keeps; anything else (``;`` ``$`` ``{`` ``[`` ``\\`` ``"``,
#: control characters) becomes ``?``. Asterisk's config parser reads ``;--`` as
#: the start of a block comment and ``\\;`` as an escaped semicolon; with
#: neither character present a comment can only end at its own newline.
_COMMENT_PUNCTUATION = frozenset(" ._,:/()'+@!?=&*#%<>|~^-")


def _comment(text: str) -> str:
    """Free text (descriptions, file names) on one harmless comment line.

    File and directory names come from outside (a config directory may hold
    ``queues${SHELL(id)}.yaml``): they only ever appear in comments, and
    through this filter.
    """
    flat = " ".join(text.split()).replace(";", ",")
    return "".join(ch if ch.isalnum() or ch in _COMMENT_PUNCTUATION else "?" for ch in flat)


def flow_context(name: str) -> str:
    return f"cc-flow-{name}"


def menu_context(name: str) -> str:
    return f"cc-menu-{name}"


def schedule_context(name: str) -> str:
    return f"cc-schedule-{name}"


def entrypoint_context(name: str) -> str:
    return f"cc-entrypoint-{name}"


def _filtered_caller() -> str:
    return "${FILTER(0-9,${CALLERID(num)})}"


def _filtered(var: str) -> str:
    return f"${{FILTER(0-9*#,${{{var}}})}}"


@dataclass
class _Ext:
    """One extension being written: ``exten => name,1,…`` then ``same => n,…``."""

    name: str
    lines: list[str] = field(default_factory=list)
    priorities: int = 0

    def add(self, app: str, label: str | None = None) -> _Ext:
        prio = ("1" if not self.priorities else "n") + (f"({label})" if label else "")
        head = f"exten => {self.name}," if not self.priorities else " same => "
        self.lines.append(f"{head}{prio},{app}")
        self.priorities += 1
        return self

    def comment(self, text: str) -> _Ext:
        self.lines.append(f"; {_comment(text)}")
        return self

    def extend(self, apps: Iterable[str]) -> _Ext:
        for app in apps:
            self.add(app)
        return self

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class _Context:
    name: str
    comments: list[str] = field(default_factory=list)
    extensions: list[_Ext] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)

    def ext(self, name: str) -> _Ext:
        e = _Ext(name)
        self.extensions.append(e)
        return e

    def text(self) -> str:
        out = [f"[{self.name}]"]
        out += [f"; {_comment(c)}" for c in self.comments]
        out += [f"include => {name}" for name in self.includes]
        body = "\n".join(e.text() for e in self.extensions)
        return "\n".join(out) + "\n" + body


class _Renderer:
    def __init__(self, config: CallCenterConfig, locate: Locator | None) -> None:
        self.c = config
        self.flow_model: CallFlow = compile_callflow(config)
        self.locate = locate or (lambda path: "")
        self.agi = f"agi://{config.settings.fastagi.host}:{config.settings.fastagi.port}"

    def where(self, *path: str | int) -> str:
        """``menus.main (config/menus.yaml:14)``: for comments only, never app data."""
        dotted = ".".join(str(p) for p in path)
        loc = self.locate(tuple(path))
        return f"{dotted} ({loc})" if loc else dotted

    def sourced(self, context: str, path: tuple[str | int, ...], description: str) -> _Context:
        """A context headed by the YAML that produced it, and its description."""
        return _Context(context, [self.where(*path)] + ([description] if description else []))

    # -- targets ---------------------------------------------------------------

    def go(self, target: Target) -> list[str]:
        """Dialplan applications that send the call to ``target``."""
        match target:
            case ToMenu(menu=m, from_menu=parent):
                apps = [f"Set({V.back_variable(m)}={parent})"] if parent else []
                return apps + [f"Goto({menu_context(m)},s,1)"]
            case ToFlow(flow=f):
                return [f"Goto({flow_context(f)},s,1)"]
            case ToQueue(queue=q, skills=skills, priority=prio):
                return [
                    f"Set({V.QUEUE_SKILLS}={'+'.join(skills)})",
                    f"Set({V.QUEUE_PRIORITY}={prio})",
                    f"Goto(cc-queue,{q},1)",
                ]
            case ToExtension(extension=ext):
                return [f"Goto({self.c.settings.extensions_context},{ext},1)"]
            case ToExternal(number=number):
                # As written, '+' included: +1555... and 1555... are two numbers.
                return [f"Goto(cc-external,{number},1)"]
            case ToVoicemail(box=box):
                return [f"Goto(cc-voicemail,{box},1)"]
            case ToHangup(cause=cause):
                return [f"Hangup({cause})"]
            case ToBack(menu=menu):
                var = V.back_variable(menu)
                return [
                    f'GotoIf($["${{{var}}}" = ""]?cc-failure,s,1)',
                    f"Goto(cc-menu-${{{var}}},s,1)",
                ]
            case ToRepeat(menu=menu):
                return [f"Goto({menu_context(menu)},s,prompt)"]
        raise AssertionError(f"unhandled target {target!r}")

    # -- entry points and caller ID rules -------------------------------------

    def entry(self) -> list[_Context]:
        s = self.c.settings
        model = self.flow_model
        ctx = _Context(s.entry_context, ["Inbound calls land here (pjsip endpoint cc-inbound)."])
        for ep in model.entry_points.values():
            for number in ep.numbers:
                ctx.ext(number).add(f"Goto({entrypoint_context(ep.name)},s,1)")
        out = [ctx]
        for ep in model.entry_points.values():
            c = self.sourced(entrypoint_context(ep.name), ("entry_points", ep.name), ep.description)
            e = c.ext("s")
            e.add(f"NoOp(callcenter entry {ep.name} from {_filtered_caller()})")
            e.add(f"Set(CHANNEL(language)={ep.language})")
            e.add(f"Set({V.ENTRY}={ep.name})")
            e.add(f"Set({V.PRIORITY}=0)")
            if model.caller_rules:
                # Before Answer(): a blocked caller is rejected (403), never connected.
                e.add("Gosub(cc-caller-rules,s,1)")
            e.add("Answer()")
            e.add(f"Goto({flow_context(ep.flow)},s,1)")
            out.append(c)
        if model.caller_rules:
            out.append(self.caller_rules())
        return out

    def caller_rules(self) -> _Context:
        """First matching rule wins; compared on the caller's digits only."""
        rules = self.flow_model.caller_rules
        c = _Context("cc-caller-rules", ["Subroutine: caller_id_rules, first match wins."])
        e = c.ext("s")
        e.add(f"Set({V.CALLER}={_filtered_caller()})")
        for rule in rules:
            label = f"rule{rule.index}"
            for number in rule.digits:
                e.add(f'GotoIf($["${{{V.CALLER}}}" = "{number}"]?{label})')
            for prefix in rule.prefixes:
                e.add(f'GotoIf($["${{{V.CALLER}:0:{len(prefix)}}}" = "{prefix}"]?{label})')
        e.add("Return()")
        for rule in rules:
            e.add(f"NoOp(caller_id_rules[{rule.index}] {rule.name} matched)",
                  label=f"rule{rule.index}")
            e.add(f"Set({V.RULE}={rule.name})")
            if rule.block:
                e.add("StackPop()")
                e.add("Hangup(21)")
                continue
            if rule.priority is not None:
                e.add(f"Set({V.PRIORITY}={rule.priority})")
            if rule.destination is not None:
                e.add("StackPop()")
                # The entry point answers after the rules; a rule that sends the
                # call elsewhere answers the same way (one answer policy).
                if needs_answer(rule.destination):
                    e.add("Answer()")
                e.extend(self.go(rule.destination))
            else:
                e.add("Return()")
        return c

    # -- flows ---------------------------------------------------------------

    def flow(self, program: FlowProgram) -> _Context:
        ctx = self.sourced(flow_context(program.name), program.path, program.description)
        main = ctx.ext("s")
        main.add(f"NoOp(callcenter flow {program.name})")
        for op in program.ops:
            if not isinstance(op, FallOff):
                # op.path is ("flows", name, "steps", i, <the step's YAML key>, ...)
                main.add(f"NoOp(step {int(op.path[3]) + 1}: {op.path[4]})")
            self.op(main, op)
        for edge in program.edges():
            ctx.ext(edge.label).extend(self.go(edge.target))
        return ctx

    def op(self, main: _Ext, op: object) -> None:
        match op:
            case Play(prompts=prompts):
                main.add(f"Playback({'&'.join(prompts)})")
            case SetLanguage(language=lang):
                main.add(f"Set(CHANNEL(language)={lang})")
            case Collect():
                self._collect(main, op)
            case Lookup(edges=edges):
                value = _filtered_caller() if op.input is None else _filtered(op.input)
                main.add(f"Set({V.LOOKUP_STATUS}=)")
                main.add(f"AGI({self.agi}/{op.script},{op.lookup},{value})")
                error = edges.get("error")
                if error:
                    # FastAGI down or the script failed: the error branch, not a dead call.
                    main.add(f'GotoIf($["${{AGISTATUS}}" != "SUCCESS"]?{error.label},1)')
                for status, edge in edges.items():
                    main.add(f'GotoIf($["${{{V.LOOKUP_STATUS}}}" = "{status}"]?{edge.label},1)')
            case Branch(variable=var, cases=cases, default=default):
                for value, edge in cases:
                    main.add(f'GotoIf($["${{{var}}}" = "{value}"]?{edge.label},1)')
                if default is not None:
                    main.extend(self.go(default))
            case CheckSchedule(schedule=name, holiday=holiday, closed=closed, open=open_):
                main.add(f"Gosub({schedule_context(name)},s,1)")
                main.add(f"Set({V.SCHEDULE}=${{GOSUB_RETVAL}})")
                main.add(f'GotoIf($["${{{V.SCHEDULE}}}" = "holiday"]?{holiday.label},1)')
                main.add(f'GotoIf($["${{{V.SCHEDULE}}}" = "closed"]?{closed.label},1)')
                if open_ is not None:
                    main.extend(self.go(open_))
            case Jump(target=target):
                main.extend(self.go(target))
            case FallOff(cause=cause):
                # A call never falls off the dialplan.
                main.add(f"Hangup({cause})")
            case _:
                raise AssertionError(f"unhandled op {op!r}")

    def _collect(self, e: _Ext, op: Collect) -> None:
        n, spec = op.n, op.spec
        tries = f"CC_TRIES_{n}"
        opts = {"#": "", "*": "t(*)", "": "t()"}[spec.terminator]
        e.add(f"Set({tries}=0)")
        e.add(f"Set({tries}=$[${{{tries}}} + 1])", label=f"collect{n}")
        e.add(f"Read({V.RAW_DIGITS},{'&'.join(spec.prompts)},{spec.max_digits},{opts},1,"
              f"{_seconds(spec.timeout)})")
        e.add(f"Set({spec.variable}={_filtered(V.RAW_DIGITS)})")
        e.add(f"GotoIf($[${{LEN(${{{spec.variable}}})}} < {spec.min_digits}]?collect{n}-bad)")
        if op.pattern:
            e.add(f"GotoIf({pattern_mismatch(op.pattern, spec.variable)}?collect{n}-bad)")
        e.add(f"Goto(collect{n}-ok)")
        e.add(f"GotoIf($[${{{tries}}} >= {spec.retries}]?{op.failure.label},1)",
              label=f"collect{n}-bad")
        e.add(f"Playback({'&'.join(spec.invalid_prompts)})")
        e.add(f"Goto(collect{n})")
        e.add(f"NoOp(collected {spec.variable})", label=f"collect{n}-ok")

    # -- menus ---------------------------------------------------------------

    def menu(self, menu: MenuProgram) -> _Context:
        ctx = self.sourced(menu_context(menu.name), menu.path, menu.description)
        s = ctx.ext("s")
        s.add(f"NoOp(callcenter menu {menu.name})")
        s.add(f"Set({V.MENU}={menu.name})")
        s.add(f"Set({V.TRIES}=0)")
        s.add(f"Background({'&'.join(menu.prompts)})", label="prompt")
        s.add(f"WaitExten({_seconds(menu.timeout)})")
        for key, target in menu.options:
            ctx.ext(key).extend(self.go(target))
        for ext, prompts, immediate in (
            ("i", menu.invalid_prompts, menu.on_invalid),
            ("t", menu.timeout_prompts, menu.on_timeout),
        ):
            e = ctx.ext(ext)
            if immediate is not None:
                e.extend(self.go(immediate))
                continue
            e.add(f"Set({V.TRIES}=$[${{{V.TRIES}}} + 1])")
            e.add(f"GotoIf($[${{{V.TRIES}}} >= {menu.max_retries}]?exhausted,1)")
            if prompts:
                e.add(f"Playback({'&'.join(prompts)})")
            e.add("Goto(s,prompt)")
        ex = ctx.ext("exhausted")
        if menu.exhausted_prompts:
            ex.add(f"Playback({'&'.join(menu.exhausted_prompts)})")
        ex.extend(self.go(menu.on_exhausted))
        return ctx

    # -- schedules -----------------------------------------------------------

    def schedule(self, name: str) -> _Context:
        """Native schedule check, a subroutine returning open | closed | holiday.

        The same rules as :func:`callcenter.flows.schedule.schedule_state` (holiday,
        then special day, then weekly hours; half-open ranges), on minute precision:
        ``STRFTIME`` gives the local date, ISO weekday and HHMM in the schedule's zone
        (DST included) and plain integer comparisons do the rest. ``GLOBAL(CC_CLOCK_OVERRIDE)``,
        an epoch, stands in for the real time when set (tests, dry runs); it is
        empty in production.
        """
        sched = self.c.schedules[name]
        tz = sched.timezone or self.c.settings.timezone
        ctx = _Context(schedule_context(name), [
            self.where("schedules", name),
            f"Subroutine: Return(open|closed|holiday) for now in {tz}.",
        ])
        e = ctx.ext("s")
        override = f"GLOBAL({V.CLOCK_OVERRIDE})"
        now = f'${{IF($["${{{override}}}" != ""]?${{{override}}}:${{EPOCH}})}}'
        # A forgotten override would freeze the opening hours: say so on every check.
        e.add(f'ExecIf($["${{{override}}}" != ""]?Log(WARNING,{V.CLOCK_OVERRIDE} is set: '
              f"schedule {name} uses ${{{override}}} instead of the clock))")
        # Channel variables, not LOCAL(): the check also runs outside a Gosub (tests).
        e.add(f"Set({V.SCHED_LOCALTIME}=${{STRFTIME({now},{tz},%Y%m%d-%u-%H%M)}})")
        for h in sched.holidays:
            first, last = h.date.strftime("%Y%m%d"), h.last.strftime("%Y%m%d")
            e.add(f"GotoIf($[{_DATE} >= {first} & {_DATE} <= {last}]?holiday)")
        for i, sd in enumerate(sched.special_days):
            e.add(f"GotoIf($[{_DATE} = {sd.date.strftime('%Y%m%d')}]?special{i})")
        for day, ranges in sorted(sched.weekly().items()):
            for r in ranges:
                e.add(f"GotoIf($[{_DOW} = {day + 1} & {_range_test(r)}]?open)")
        e.add("Return(closed)")
        for i, sd in enumerate(sched.special_days):
            label = f"special{i}"
            if not sd.hours:
                e.add("Return(closed)", label=label)
                continue
            for j, r in enumerate(sd.hours):
                e.add(f"GotoIf($[{_range_test(r)}]?open)", label=label if j == 0 else None)
            e.add("Return(closed)")
        e.add("Return(open)", label="open")
        e.add("Return(holiday)", label="holiday")
        return ctx

    # -- shared destinations -------------------------------------------------

    def queues(self) -> _Context:
        app = self.c.settings.queue_app
        ctx = _Context("cc-queue", [
            f"Hand-off to the queue router: Stasis({app},<queue>,key=value...).",
            "If the router is not running, STASISSTATUS is FAILED: the queue's fallback runs.",
        ])
        for name, q in sorted(self.c.queues.items()):
            e = ctx.ext(name)
            # The source location only ever goes in a comment: file names come from outside.
            e.comment(self.where("queues", name))
            e.add(f"NoOp(callcenter queue {name})")
            # One answer policy: the router gets an answered channel, whichever
            # way the call came (flow, menu, caller-ID rule, the admin's own dialplan).
            e.add("Answer()")
            # A call sent here by the admin's own dialplan has none of our variables:
            # the queue's own skills and base priority, and no caller bonus.
            e.add(f'ExecIf($["${{{V.QUEUE_PRIORITY}}}" = ""]?Set({V.QUEUE_PRIORITY}={q.priority}))')
            e.add(f'ExecIf($["${{{V.QUEUE_SKILLS}}}" = ""]?Set({V.QUEUE_SKILLS}={"+".join(q.skills)}))')
            e.add(f'ExecIf($["${{{V.PRIORITY}}}" = ""]?Set({V.PRIORITY}=0))')
            # The router parses these with QueueCall.parse (callcenter.asterisk.stasis_args).
            args = ",".join(dialplan_args(name, {
                "skills": f"${{{V.QUEUE_SKILLS}}}",
                "priority": f"$[${{{V.QUEUE_PRIORITY}}} + ${{{V.PRIORITY}}}]",
                "language": "${CHANNEL(language)}",
                "entry": f"${{{V.ENTRY}}}",
                "account": f"${{FILTER(0-9,${{{V.ACCOUNT_ID}}})}}",
            }))
            e.add(f"Stasis({app},{args})")
            e.add('GotoIf($["${STASISSTATUS}" = "FAILED"]?fallback)')
            e.add("Hangup(16)")
            e.add(f"Log(WARNING,queue router {app} not running: {name} fallback)", label="fallback")
            e.extend(self.go(self.flow_model.queue_fallbacks[name]))
            # The router continues a caller whose wait passed an overflow step here
            # (continue_in_dialplan(..., label=overflow_label(stage))).
            for stage, target in sorted(self.flow_model.queue_overflows[name].items()):
                e.comment(self.where("queues", name, "relax", stage - 1, "overflow"))
                e.add(f"NoOp(callcenter queue {name} overflow at relax step {stage})",
                      label=overflow_label(stage))
                e.extend(self.go(target))
            # ... and one nobody can take (when_unavailable: closed, no agents, full, waited
            # max_wait) here. Every queue has the label, so a router whose config gained
            # when_unavailable before the dialplan was regenerated still finds it.
            unavailable = self.flow_model.queue_unavailable.get(name)
            if unavailable is not None:
                e.comment(self.where("queues", name, "when_unavailable", "destination"))
            e.add(f"NoOp(callcenter queue {name} nobody can take calls)",
                  label=UNAVAILABLE_LABEL)
            e.extend(self.go(unavailable or self.flow_model.queue_fallbacks[name]))
        return ctx

    def agent_features(self) -> list[_Context]:
        """The feature codes, and the subroutine that tells which agent dials them.

        The agent is the PJSIP endpoint the call came from (``CHANNEL(endpoint)``): set by
        digest auth when the softphone's INVITE was challenged, never by the caller ID a
        phone puts in its From header. A call from any other endpoint (or channel type)
        hears "login incorrect" and is hung up before any Stasis app sees it.
        """
        features = self.flow_model.agent_features
        if features is None:
            return []
        s = self.c.settings
        app = s.agent_app
        ctx = _Context(AGENT_FEATURES_CONTEXT, [
            self.where("settings", "feature_codes"),
            f"Agents' feature codes: Stasis({app},<action>,agent=<agent>,reason=<reason>).",
            f"Supervisors' codes: Stasis({app},<mode>,supervisor=<agent>,target=<digits>).",
            (f"Included by {s.extensions_context}. The agent app not running: an error "
             "plays and the call ends."),
        ])
        for code in features.codes:
            e = ctx.ext(code.code)
            e.add(f"NoOp(callcenter agent feature {code.action}"
                  + (f" {code.reason})" if code.reason else ")"))
            e.add("Answer()")
            e.add(f"Gosub({AGENT_IDENTIFY_CONTEXT},s,1)")
            # The app parses these with AgentCommand.parse (callcenter.asterisk.stasis_args).
            args = agent_dialplan_args(code.action, f"${{{V.AGENT}}}", code.reason or "")
            e.add(f"Stasis({app},{','.join(args)})")
            # The app hangs up after its confirmation; FAILED: it is not running.
            e.add(f'GotoIf($["${{STASISSTATUS}}" = "FAILED"]?{AGENT_IDENTIFY_CONTEXT},failed,1)')
            e.add("Hangup(16)")
        # The pause code followed by digits that are no reason's code (exact extensions
        # win over patterns in Asterisk), or bare when there is no default reason.
        invalid = [f"_{features.pause}X."]
        if not any(c.code == features.pause for c in features.codes):
            invalid.insert(0, features.pause)
        for number in invalid:
            e = ctx.ext(number)
            e.add("NoOp(callcenter agent feature: no such pause reason code)")
            e.add("Answer()")
            e.add(f"Playback({INVALID_CODE_PROMPT})")
            e.add("Hangup(16)")
        # Supervisors' codes: the code, then the agent's extension (or name on the keypad).
        # Only digits go on to the app; anything else dialled after the code is refused.
        for code in features.supervise:
            e = ctx.ext(f"_{code.code}X.")
            e.add(f"NoOp(callcenter supervisor {code.action})")
            e.add("Answer()")
            e.add(f"Gosub({AGENT_IDENTIFY_CONTEXT},s,1)")
            dialled = f"${{EXTEN:{len(code.code)}}}"
            e.add(f"Set({V.SUPERVISE_TARGET}=${{FILTER(0-9,{dialled})}})")
            e.add(f"GotoIf($[${{LEN(${{{V.SUPERVISE_TARGET}}})}} != ${{LEN({dialled})}}]?invalid)")
            # The app parses these with SuperviseCommand.parse and decides who may supervise.
            args = supervise_dialplan_args(code.action, f"${{{V.AGENT}}}",
                                           f"${{{V.SUPERVISE_TARGET}}}")
            e.add(f"Stasis({app},{','.join(args)})")
            e.add(f'GotoIf($["${{STASISSTATUS}}" = "FAILED"]?{AGENT_IDENTIFY_CONTEXT},failed,1)')
            e.add("Hangup(16)")
            e.add(f"Playback({INVALID_CODE_PROMPT})", label="invalid")
            e.add("Hangup(16)")
        ident = _Context(AGENT_IDENTIFY_CONTEXT, [
            "Subroutine: CC_AGENT = the agent whose PJSIP endpoint placed the call.",
        ])
        e = ident.ext("s")
        e.add(f"Set({V.AGENT}=)")
        # Only [A-Za-z0-9_] survive the filter (so the comparisons below cannot be broken
        # by the value); an endpoint name with anything else matches no agent, because
        # its filtered copy is shorter than it.
        e.add(f"Set({V.AGENT_ENDPOINT}=${{FILTER(A-Za-z0-9_,${{CHANNEL(endpoint)}})}})")
        e.add(f'GotoIf($[${{LEN(${{{V.AGENT_ENDPOINT}}})}} != ${{LEN(${{CHANNEL(endpoint)}})}}]'
              "?unknown)")
        for endpoint, agent in sorted(features.endpoints.items()):
            e.add(f'ExecIf($["${{{V.AGENT_ENDPOINT}}}" = "{endpoint}"]?Set({V.AGENT}={agent}))')
        e.add(f'GotoIf($["${{{V.AGENT}}}" = ""]?unknown)')
        e.add("Return()")
        e.add("Log(NOTICE,feature code from ${CHANNEL(name)}: not an agent endpoint)",
              label="unknown")
        e.add(f"Playback({AGENT_UNKNOWN_PROMPT})")
        e.add("Hangup(21)")
        f = ident.ext("failed")
        f.add(f"Log(WARNING,agent app {app} not running: feature code of ${{{V.AGENT}}} refused)")
        f.add(f"Playback({'&'.join(s.failure_prompts)})")
        f.add("Hangup(41)")
        return [ctx, ident]

    def voicemail(self) -> _Context:
        ctx = _Context("cc-voicemail", ["One extension per voicemail box (voicemail:)."])
        flag = {"unavailable": "u", "busy": "b", "none": "s"}
        for name, box in sorted(self.c.voicemail.items()):
            e = ctx.ext(name)
            e.add(f"VoiceMail({box.mailbox}@{VOICEMAIL_CONTEXT},{flag[box.greeting]})")
            e.add("Hangup(16)")
        return ctx

    def external(self) -> _Context:
        ctx = _Context("cc-external", ["External transfers through settings.outbound_trunk."])
        trunk = self.c.settings.outbound_trunk
        numbers = sorted({t.number for t, _, _ in self.flow_model.targets()
                          if isinstance(t, ToExternal)})
        for number in numbers:
            e = ctx.ext(number)
            e.add(f"Dial(PJSIP/{number}@{trunk},60)")
            e.add("Goto(cc-failure,s,1)")
        return ctx

    def extensions(self) -> _Context:
        ctx = _Context(self.c.settings.extensions_context,
                       [("Agent extensions: each rings the agent's phone "
                         "(its generated softphone endpoint, or its device).")])
        if self.flow_model.agent_features is not None:
            ctx.includes.append(AGENT_FEATURES_CONTEXT)
        for name, agent in sorted(self.c.agents.items(), key=lambda kv: kv[1].extension):
            e = ctx.ext(agent.extension)
            e.add(f"NoOp(agent {name})")
            # dial_string is PJSIP/<name> or a device restricted to a safe alphabet.
            e.add(f"Dial({agent.dial_string(name)},30)")
            e.add("Goto(cc-failure,s,1)")
        return ctx

    def failure(self) -> _Context:
        ctx = _Context("cc-failure", ["Every error path ends here."])
        e = ctx.ext("s")
        e.add("Log(WARNING,callcenter failure on ${CHANNEL(name)} in ${CONTEXT})")
        e.add(f"Playback({'&'.join(self.c.settings.failure_prompts)})")
        e.add("Hangup(41)")
        return ctx

    # -- files ---------------------------------------------------------------

    def extensions_conf(self) -> str:
        contexts = self.entry()
        contexts += [self.flow(f) for f in self.flow_model.flows.values()]
        contexts += [self.menu(m) for m in self.flow_model.menus.values()]
        contexts += [self.schedule(n) for n in sorted(self.c.schedules)]
        contexts.append(self.queues())
        contexts += self.agent_features()
        contexts.append(self.voicemail())
        if self.c.settings.outbound_trunk:
            contexts.append(self.external())
        if self.c.settings.extensions_context.startswith("cc-"):
            contexts.append(self.extensions())
        contexts.append(self.failure())
        text = _HEADER.format(what="the call-center YAML") + "\n" + "\n".join(
            c.text() for c in contexts
        )
        if self.c.trunks:
            text += "\n" + trunks.trunk_contexts(self.c, self.where, _comment, entrypoint_context)
            # Calls go out only through trunks: the dialer's AMD context comes with them.
            text += "\n" + dialer.amd_context()
        return text

    def pjsip_conf(self) -> str:
        s = self.c.settings
        lines = [
            _HEADER.format(what="settings.inbound_sip_peers"),
            "; Callers: INVITEs from these networks enter the call center.",
            "[cc-inbound]",
            "type=endpoint",
            f"context={s.entry_context}",
            "disallow=all",
            "allow=ulaw,alaw,gsm",
            "dtmf_mode=rfc4733",
            "direct_media=no",
            "rtp_symmetric=yes",
            "force_rport=yes",
            "rewrite_contact=yes",
            f"language={s.language}",
            "",
            "[cc-inbound-identify]",
            "type=identify",
            "endpoint=cc-inbound",
        ]
        lines += [f"match={peer}" for peer in s.inbound_sip_peers]
        softphones = self.softphones()
        if softphones or trunks.auth_trunks(self.c):
            who = "Agents' softphones (agents: without device)" + (
                " and trunks with auth" if self.c.trunks else "")
            lines += [
                "",
                f"; {who}. Digest auth; the auth",
                f"; sections and their passwords are in {AUTH_FILE} (0600).",
                f'#include "{INCLUDE_DIR}/{AUTH_FILE}"',
            ]
        lines += trunks.trunk_pjsip_lines(self.c, self.where, _comment)
        for name, agent in softphones:
            language = agent.languages[0] if agent.languages else s.language
            display = _display_name(agent.name)
            callerid = f'"{display}" <{agent.extension}>' if display else f"<{agent.extension}>"
            lines += [
                "",
                f"; {_comment(self.where('agents', name))}: extension {agent.extension}",
                f"[{name}]",
                "type=endpoint",
                f"context={s.extensions_context}",
                "disallow=all",
                "allow=ulaw,alaw,gsm",
                "dtmf_mode=rfc4733",
                f"auth={_auth_section(name)}",
                f"aors={name}",
                f"callerid={callerid}",
                f"language={language}",
                # Agents work from home behind NAT: answer where the packets come
                # from, not where the phone's Contact/SDP claims to be, and keep
                # media through Asterisk (the router bridges and records).
                "direct_media=no",
                "rtp_symmetric=yes",
                "force_rport=yes",
                "rewrite_contact=yes",
                # The phone's transfer key (SIP REFER) reaches the queue router: the
                # router sets PJSIP_TRANSFER_HANDLING()=ari-only on each call it places
                # to the agent (ari_apps/transfer.py), so Asterisk moves nothing itself.
                "allow_transfer=yes",
                # A phone that stops answering OPTIONS turns Unreachable (and its
                # endpoint offline) within ~qualify_frequency seconds.
                "",
                f"[{name}]",
                "type=aor",
                "max_contacts=1",
                # The agent's softphone restarting (new port behind NAT) replaces
                # its old registration instead of being refused until it expires.
                "remove_existing=yes",
                "qualify_frequency=30",
                "qualify_timeout=3.0",
                "minimum_expiration=60",
                "default_expiration=300",
            ]
        return "\n".join(lines) + "\n"

    def softphones(self) -> list[tuple[str, Agent]]:
        """Agents whose PJSIP endpoint callcenter generates, by name."""
        return [(n, a) for n, a in sorted(self.c.agents.items()) if a.softphone]

    def pjsip_auth_conf(self, passwords: Mapping[str, str] | None,
                        trunk_passwords: Mapping[str, str] | None = None) -> str:
        """The softphones' digest credentials: the one generated file with secrets."""
        lines = [_HEADER.format(what="agents: and the home's secrets.json"),
                 "; Holds passwords: written with mode 0600, never printed."]
        for name, _ in self.softphones():
            password = (passwords or {}).get(name)
            if password is None:
                raise MissingPasswordError(f"no softphone password for agent {name!r}")
            if not _PASSWORD.fullmatch(password):
                # Never echo the value: it is a secret, and may be the wrong one.
                raise MissingPasswordError(
                    f"the softphone password of agent {name!r} is not 16 to 128 of "
                    "A-Z a-z 0-9 _ -")
            lines += [
                "",
                f"[{_auth_section(name)}]",
                "type=auth",
                "auth_type=userpass",
                f"username={name}",
                f"password={password}",
            ]
        try:
            lines += trunks.trunk_auth_lines(self.c, trunk_passwords)
        except trunks.MissingTrunkPasswordError as exc:
            raise MissingPasswordError(str(exc)) from None
        return "\n".join(lines) + "\n"

    def voicemail_conf(self) -> str:
        lines = [_HEADER.format(what="voicemail:"), f"[{VOICEMAIL_CONTEXT}]"]
        for name, box in sorted(self.c.voicemail.items(), key=lambda kv: kv[1].mailbox):
            # No PIN: mailboxes are read by the call center, not over the phone.
            lines.append(f"; voicemail.{name}")
            lines.append(f"{box.mailbox} => -,{box.name}")
        return "\n".join(lines) + "\n"


# Parts of the schedule's local time, ``YYYYMMDD-D-HHMM`` (D: ISO weekday, 1 = Monday).
_DATE = f"${{{V.SCHED_LOCALTIME}:0:8}}"
_DOW = f"${{{V.SCHED_LOCALTIME}:9:1}}"
_HHMM = f"${{{V.SCHED_LOCALTIME}:11:4}}"


def _hhmm(t: dt.time) -> str:
    return "2400" if t == dt.time(23, 59, 59, 999999) else t.strftime("%H%M")


def _range_test(r: TimeRange) -> str:
    """``HHMM >= 0800 & HHMM < 2000``: HHMM compares as an integer."""
    return f"{_HHMM} >= {_hhmm(r.start)} & {_HHMM} < {_hhmm(r.end)}"


def pattern_mismatch(pattern: str, variable: str) -> str:
    """``$[...]`` that is 1 when ``variable`` does not match ``pattern``.

    ``pattern`` is the canonical form (:mod:`callcenter.flows.digit_pattern`):
    its brackets and braces are balanced and it has no backslash or quote, so
    it cannot end the ``${REGEX(...)}`` or the ``$[...]`` early.
    """
    return f'$[${{REGEX("{pattern}" ${{{variable}}})}} = 0]'


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


#: A password PJSIP's config parser reads as plain text (no ``;``, ``#``, blank, quote):
#: what :func:`callcenter.asterisk.secrets.agent_passwords` generates.
_PASSWORD = re.compile(r"[A-Za-z0-9_-]{16,128}")


def _auth_section(agent: str) -> str:
    return f"{agent}-auth"


#: Characters of an agent's display name kept in its caller ID (``"Alice Smith" <1001>``);
#: the name is free text from the YAML and PJSIP reads ``;`` as a comment, ``"`` and ``<``
#: as caller-ID syntax.
_DISPLAY = frozenset(" ._'-")


def _display_name(name: str) -> str:
    # Letters of any script stay (José Pérez); PJSIP reads the file as UTF-8.
    kept = "".join(ch for ch in " ".join(name.split()) if ch.isalnum() or ch in _DISPLAY)
    return kept.strip()[:60]


def softphone_agents(config: CallCenterConfig) -> list[str]:
    """Names of the agents that need a generated password (no ``device``)."""
    return sorted(name for name, agent in config.agents.items() if agent.softphone)


def render(config: CallCenterConfig, locate: Locator | None = None, *,
           agent_passwords: Mapping[str, str] | None = None,
           trunk_passwords: Mapping[str, str] | None = None) -> dict[str, str]:
    """All generated files, by name. Pure and deterministic.

    ``agent_passwords`` (agent name -> password, from the home's ``secrets.json``,
    see :func:`callcenter.asterisk.secrets.agent_passwords`) must hold every agent
    of :func:`softphone_agents`, ``trunk_passwords`` every trunk with ``auth``
    (:func:`callcenter.asterisk.secrets.trunk_passwords`); they are written only into
    :data:`AUTH_FILE`, which the caller writes with mode 0600. Raises
    :class:`MissingPasswordError`.
    """
    r = _Renderer(config, locate)
    return {
        "extensions_callcenter.conf": r.extensions_conf(),
        "pjsip_callcenter.conf": r.pjsip_conf(),
        AUTH_FILE: r.pjsip_auth_conf(agent_passwords, trunk_passwords),
        "voicemail_callcenter.conf": r.voicemail_conf(),
    }
