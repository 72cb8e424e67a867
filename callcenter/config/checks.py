"""Cross-checks over a config whose shape is already valid.

Each check returns :class:`Problem` s (a YAML path and a message); the loader
turns them into ``file:line:col`` errors. Checks never stop at the first
problem: an admin fixes a whole file in one round.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path as FsPath

from callcenter.asterisk import variables as V
from callcenter.config.errors import format_path
from callcenter.config.models import (
    TERMINAL_STEPS,
    AgiLookup,
    BackDest,
    BranchStep,
    CallCenterConfig,
    CollectStep,
    Destination,
    ExtensionDest,
    ExternalDest,
    FlowDest,
    LookupStep,
    MenuDest,
    QueueDest,
    RepeatDest,
    ScheduleStep,
    SetLanguageStep,
    VoicemailDest,
    expand_days,
)
from callcenter.config.partial import Broken
from callcenter.config.walk import (
    Path,
    destinations,
    flow_destinations,
    menu_destinations,
)

__all__ = ["Problem", "check_config", "graph_edges"]

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


def _known(names: Iterable[str]) -> str:
    names = sorted(names)
    return f"(known: {', '.join(names)})" if names else "(none defined)"


def _close(name: str, names: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.75)
    return found[0] if found else None


def check_config(
    config: CallCenterConfig,
    *,
    sounds: dict[str, FsPath] | None = None,
    agi_scripts: Iterable[str] | None = None,
    broken: Broken = Broken(),
) -> list[Problem]:
    """Every cross-reference problem in ``config``.

    ``sounds`` maps language -> installed sounds directory (when an Asterisk is
    installed); ``agi_scripts`` are the registered FastAGI script names. ``broken``
    names what failed validation and is missing from ``config``
    (:func:`~callcenter.config.partial.partial_config`): problems that would only be
    consequences of it are not reported.
    """
    problems: list[Problem] = []
    problems += _references(config, broken)
    problems += _skills(config, broken)
    if not broken.touches("menus", "flows"):
        problems += _menu_rules(config)
    problems += _uniqueness(config)
    if not broken.touches("flows"):
        problems += _variables(config)
    problems += _dead_steps(config)
    problems += _schedules(config)
    if not broken.touches("entry_points", "caller_id_rules", "flows", "menus", "queues"):
        problems += _reachability(config)
    problems += _loops(config)
    if agi_scripts is not None:
        problems += _agi_scripts(config, set(agi_scripts))
    if sounds is not None:
        problems += _sounds(config, sounds)
    # Both build on Problem, so they are imported here, not at the top.
    from callcenter.config.api_checks import check_api_users
    from callcenter.config.campaign_checks import check_campaigns
    from callcenter.config.feature_checks import check_feature_codes
    from callcenter.config.routing_checks import check_routing
    from callcenter.config.trunk_checks import check_trunks

    problems += check_routing(config, broken)
    problems += check_feature_codes(config, broken)
    problems += check_api_users(config, broken)
    problems += check_trunks(config, broken)
    problems += check_campaigns(config, broken)
    return problems


# -- references ---------------------------------------------------------------

def _references(c: CallCenterConfig, broken: Broken) -> Iterator[Problem]:
    def unknown(section: str, name: str) -> bool:
        return name not in getattr(c, section) and not broken.has(section, name)

    for name, ep in c.entry_points.items():
        if unknown("flows", ep.flow):
            yield Problem(("entry_points", name, "flow"),
                          f"unknown flow '{ep.flow}' {_known(c.flows)}")
    for dest, path in destinations(c):
        yield from _dest_reference(c, dest, path, unknown, broken)
    for name, flow in c.flows.items():
        for i, step in enumerate(flow.steps):
            p = ("flows", name, "steps", i)
            if isinstance(step, ScheduleStep) and unknown("schedules",
                                                          step.check_schedule.schedule):
                yield Problem(p + ("check_schedule", "schedule"),
                              f"unknown schedule '{step.check_schedule.schedule}' "
                              f"{_known(c.schedules)}")
            if isinstance(step, LookupStep) and unknown("lookups", step.lookup.lookup):
                yield Problem(p + ("lookup", "lookup"),
                              f"unknown lookup '{step.lookup.lookup}' {_known(c.lookups)}")


def _dest_reference(c: CallCenterConfig, dest: Destination, path: Path,
                    unknown: Callable[[str, str], bool], broken: Broken) -> Iterator[Problem]:
    match dest:
        case MenuDest(menu=m) if unknown("menus", m):
            yield Problem(path if path[-1] == "menu" else path + ("menu",),
                          f"unknown menu '{m}' {_known(c.menus)}")
        case FlowDest(flow=f) if unknown("flows", f):
            yield Problem(path + ("flow",) if path[-1] != "goto" else path,
                          f"unknown flow '{f}' {_known(c.flows)}")
        case QueueDest(queue=q) if unknown("queues", q):
            yield Problem(path + ("queue",), f"unknown queue '{q}' {_known(c.queues)}")
        case VoicemailDest(voicemail=v) if unknown("voicemail", v):
            yield Problem(path + ("voicemail",), f"unknown voicemail box '{v}' {_known(c.voicemail)}")
        case ExternalDest() if c.settings.outbound_trunk is None and not broken.touches(
                "settings"):
            yield Problem(path + ("external",),
                          "external transfer needs settings.outbound_trunk (a PJSIP endpoint)")
        case ExtensionDest() if broken.touches("settings", "agents"):
            pass
        case ExtensionDest(extension=ext) if c.settings.extensions_context.startswith("cc-"):
            known = {a.extension for a in c.agents.values()}
            if ext not in known:
                yield Problem(path + ("extension",),
                              f"extension '{ext}' belongs to no agent {_known(known)}; "
                              "set settings.extensions_context to your PBX's context "
                              "to reach other extensions")
        case (BackDest() | RepeatDest()) if path[0] != "menus":
            kind = "back" if isinstance(dest, BackDest) else "repeat"
            yield Problem(path, f"'{kind}' is only allowed in menu options")


def _skills(c: CallCenterConfig, broken: Broken) -> Iterator[Problem]:
    if broken.touches("skills"):
        return  # every skill would look unknown
    declared = set(c.skills)
    for name, q in c.queues.items():
        for i, skill in enumerate(q.skills):
            if skill not in declared:
                yield Problem(("queues", name, "skills", i),
                              f"unknown skill '{skill}' {_known(declared)}")
    for name, agent in c.agents.items():
        for skill in agent.skills:
            if skill not in declared:
                yield Problem(("agents", name, "skills", skill),
                              f"unknown skill '{skill}' {_known(declared)}")
    for dest, path in destinations(c):
        if isinstance(dest, QueueDest):
            for i, skill in enumerate(dest.skills):
                if skill not in declared:
                    yield Problem(path + ("skills", i),
                                  f"unknown skill '{skill}' {_known(declared)}")
    if broken.touches("agents"):
        return  # the broken agent may be the one with the skill
    agent_skills = {s for a in c.agents.values() for s in a.skills}
    for name, q in c.queues.items():
        missing = [s for s in q.skills if s in declared and s not in agent_skills]
        for skill in missing:
            yield Problem(("queues", name, "skills", q.skills.index(skill)),
                          f"no agent has skill '{skill}': calls to queue '{name}' "
                          "could never be answered")


def _menu_rules(c: CallCenterConfig) -> Iterator[Problem]:
    parents = _menu_parents(c)
    direct = _entered_directly(c)
    for name, menu in c.menus.items():
        for key, dest in menu.options.items():
            if not isinstance(dest, BackDest):
                continue
            if not parents.get(name):
                yield Problem(("menus", name, "options", key),
                              f"'back' in menu '{name}', but no other menu leads to it")
            elif name in direct:
                # The dialplan only knows where to go back to when a menu led here.
                yield Problem(("menus", name, "options", key),
                              f"'back' in menu '{name}', which {direct[name]} enters directly: "
                              "a caller coming that way has no menu to go back to; "
                              "use {menu: ...} to name the menu instead")
        for key in ("on_invalid", "on_timeout", "on_exhausted"):
            if isinstance(getattr(menu, key), RepeatDest):
                yield Problem(("menus", name, key),
                              f"'repeat' as {key} would never end; use a retry count instead")


def _entered_directly(c: CallCenterConfig) -> dict[str, str]:
    """Menus entered from something other than a menu (a flow, a caller-ID rule,
    a queue's fallback) -> the first such place, as a dotted YAML path."""
    out: dict[str, str] = {}
    for dest, path in destinations(c):
        if isinstance(dest, MenuDest) and path[0] != "menus" and dest.menu not in out:
            out[dest.menu] = format_path(path)
    return out


def _menu_parents(c: CallCenterConfig) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = defaultdict(set)
    for name in c.menus:
        for dest, _ in menu_destinations(c, name):
            if isinstance(dest, MenuDest) and dest.menu != name:
                parents[dest.menu].add(name)
    return parents


def _uniqueness(c: CallCenterConfig) -> Iterator[Problem]:
    seen: dict[str, Path] = {}
    for name, ep in c.entry_points.items():
        for i, number in enumerate(ep.numbers):
            path = ("entry_points", name, "numbers", i)
            if number in seen:
                yield Problem(path, f"number '{number}' is already used by "
                                    f"{'.'.join(map(str, seen[number][:2]))}")
            seen[number] = path
    for attr, key, what in (("agents", "extension", "extension"),
                            ("voicemail", "mailbox", "mailbox")):
        owners: dict[str, str] = {}
        for name, item in getattr(c, attr).items():
            value = getattr(item, key)
            if value in owners:
                yield Problem((attr, name, key),
                              f"{what} '{value}' is already used by {attr}.{owners[value]}")
            owners[value] = name
    rule_names: set[str] = set()
    for i, rule in enumerate(c.caller_id_rules):
        if rule.name in rule_names:
            yield Problem(("caller_id_rules", i, "name"), f"duplicate rule name '{rule.name}'")
        rule_names.add(rule.name)
    if len(set(c.skills)) != len(c.skills):
        dupes = sorted({s for s in c.skills if c.skills.count(s) > 1})
        yield Problem(("skills",), f"skills listed twice: {', '.join(dupes)}")


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = _close(name, candidates)
    return f" (did you mean '{close}'?)" if close else ""


def _set_variables(c: CallCenterConfig) -> dict[str, str]:
    """Variable -> what sets it, for every variable a step of this config can branch on."""
    steps = [s for f in c.flows.values() for s in f.steps]
    out = dict.fromkeys(V.ASTERISK_VARIABLES, "Asterisk")
    out.update(dict.fromkeys(V.SET_AT_ENTRY, "the call center, at entry"))
    if any(isinstance(s, ScheduleStep) for s in steps):
        out.update(dict.fromkeys(V.SET_BY_SCHEDULE, "check_schedule"))
    if any(isinstance(s, LookupStep) for s in steps):
        out.update(dict.fromkeys(V.SET_BY_LOOKUP, "lookup"))
    out.update((s.collect.variable, "collect") for s in steps if isinstance(s, CollectStep))
    return out


def _variables(c: CallCenterConfig) -> Iterator[Problem]:
    """Lookups read, and branches test, only variables something sets.

    A misspelt variable (``CC_ACOUNT_VIP``) is empty at run time, so the branch would
    silently take its default; the dialplan cannot tell, so validation must.
    """
    collected = {s.collect.variable for f in c.flows.values() for s in f.steps
                 if isinstance(s, CollectStep)}
    available = _set_variables(c)
    every = {**dict.fromkeys(V.SET_BY_SCHEDULE, "check_schedule"),
             **dict.fromkeys(V.SET_BY_LOOKUP, "lookup"), **available}
    for name, flow in c.flows.items():
        for i, step in enumerate(flow.steps):
            if isinstance(step, LookupStep):
                var = step.lookup.input
                if var != "CALLERID" and var not in collected:
                    yield Problem(("flows", name, "steps", i, "lookup", "input"),
                                  f"variable '{var}' is never collected "
                                  f"(collected: {', '.join(sorted(collected)) or 'none'}; "
                                  f"or CALLERID){_did_you_mean(var, collected | {'CALLERID'})}")
            if isinstance(step, BranchStep):
                var = step.branch.variable
                path = ("flows", name, "steps", i, "branch", "variable")
                if var in available:
                    continue
                if var in every:
                    yield Problem(path, f"variable '{var}' is set by a {every[var]} step, "
                                        "and no flow has one")
                else:
                    yield Problem(path, f"variable '{var}' is set by no step and is not an "
                                        f"Asterisk variable{_did_you_mean(var, every)}")


def _dead_steps(c: CallCenterConfig) -> Iterator[Problem]:
    """Steps after one that ends the flow never run: a mistake, not a comment."""
    for name, flow in c.flows.items():
        for i, step in enumerate(flow.steps[:-1]):
            if isinstance(step, TERMINAL_STEPS):
                kind = next(iter(type(step).model_fields))
                yield Problem(("flows", name, "steps", i + 1),
                              f"step never runs: steps[{i}] ({kind}) ends the flow")
                break


def _agi_scripts(c: CallCenterConfig, scripts: set[str]) -> Iterator[Problem]:
    for name, lookup in c.lookups.items():
        if isinstance(lookup, AgiLookup) and lookup.script not in scripts:
            yield Problem(("lookups", name, "script"),
                          f"unknown AGI script '{lookup.script}' {_known(scripts)}")


# -- schedules -----------------------------------------------------------------

def _schedules(c: CallCenterConfig) -> Iterator[Problem]:
    for name, sched in c.schedules.items():
        base = ("schedules", name)
        by_day: dict[int, list[tuple[str, object]]] = defaultdict(list)
        for key, ranges in sched.hours.items():
            for day in expand_days(key):
                for r in ranges:
                    for other_key, other in by_day[day]:
                        if r.start < other.end and other.start < r.end:  # type: ignore[attr-defined]
                            yield Problem(base + ("hours", key),
                                          f"{_DAY_NAMES[day]} {r} overlaps {other} "
                                          f"(from '{other_key}')")
                    by_day[day].append((key, r))
        spans: list[tuple[dt.date, dt.date, int]] = []
        for i, h in enumerate(sched.holidays):
            for a, b, j in spans:
                if h.date <= b and a <= h.last:
                    yield Problem(base + ("holidays", i),
                                  f"holiday {h.date}..{h.last} overlaps holidays[{j}] {a}..{b}")
            spans.append((h.date, h.last, i))
        special_dates: dict[dt.date, int] = {}
        for i, sd in enumerate(sched.special_days):
            if sd.date in special_dates:
                yield Problem(base + ("special_days", i, "date"),
                              f"{sd.date} is already special_days[{special_dates[sd.date]}]")
            special_dates[sd.date] = i
            for a, b, j in spans:
                if a <= sd.date <= b:
                    yield Problem(base + ("special_days", i, "date"),
                                  f"special day {sd.date} falls on holidays[{j}] ({a}..{b}): "
                                  "the center is closed all day then")
            ranges = sorted(sd.hours, key=lambda r: r.start)
            for r1, r2 in itertools.pairwise(ranges):
                if r2.start < r1.end:
                    yield Problem(base + ("special_days", i, "hours"), f"{r1} overlaps {r2}")


# -- graph: reachability and loops -------------------------------------------

Node = tuple[str, str]  # ("flow" | "menu", name)


def graph_edges(c: CallCenterConfig) -> dict[Node, list[tuple[Node | None, bool]]]:
    """Each flow/menu -> its successors; ``None`` is an exit (queue, hangup...).

    The bool says whether the edge is *unconditional* (taken without caller
    input or a runtime condition): the last step of a flow.
    """
    edges: dict[Node, list[tuple[Node | None, bool]]] = {}
    for name, flow in c.flows.items():
        out: list[tuple[Node | None, bool]] = []
        dests = list(flow_destinations(c, name))
        last_path = ("flows", name, "steps", len(flow.steps) - 1)
        ends_open = True
        for dest, path in dests:
            unconditional = path[:4] == last_path and path[4] in ("transfer", "menu", "goto")
            ends_open = ends_open and not unconditional
            out.append((_target(dest, None), unconditional))
        if ends_open:
            out.append((None, True))  # falls through to Hangup()
        edges[("flow", name)] = out
    parents = _menu_parents(c)
    for name in c.menus:
        out = []
        for d, _ in menu_destinations(c, name):
            if isinstance(d, BackDest):  # back returns to whichever menu led here
                out += [(("menu", p), False) for p in sorted(parents.get(name, ()))]
            else:
                out.append((_target(d, name), False))
        edges[("menu", name)] = out
    return edges


def _target(dest: Destination, menu: str | None) -> Node | None:
    match dest:
        case MenuDest(menu=m):
            return ("menu", m)
        case FlowDest(flow=f):
            return ("flow", f)
        case RepeatDest() if menu is not None:
            return ("menu", menu)
    return None  # queue, extension, external, voicemail, hangup


def _reachability(c: CallCenterConfig) -> Iterator[Problem]:
    edges = graph_edges(c)
    roots: list[Node] = [("flow", ep.flow) for ep in c.entry_points.values()]
    roots += [n for r in c.caller_id_rules if r.destination is not None
              for n in [_target(r.destination, None)] if n is not None]
    roots += [n for q in c.queues.values() for n in [_target(q.fallback, None)] if n is not None]
    roots += [n for q in c.queues.values() for step in q.relax if step.overflow is not None
              for n in [_target(step.overflow, None)] if n is not None]
    roots += [n for q in c.queues.values() if q.when_unavailable is not None
              and q.when_unavailable.destination is not None
              for n in [_target(q.when_unavailable.destination, None)] if n is not None]
    # An agentless campaign's flow is where its answered calls enter.
    roots += [("flow", campaign.flow) for campaign in c.campaigns.values()
              if campaign.flow is not None]
    names = {kind: [n for k, n in edges if k == kind] for kind in ("flow", "menu")}

    def meant(node: Node) -> Node | None:
        """The node a reference names; a misspelt one (already reported as unknown) counts
        as the node it evidently means, so that node is not also "unreachable"."""
        if node in edges:
            return node
        close = _close(node[1], names[node[0]])
        return (node[0], close) if close else None

    seen: set[Node] = set()
    stack = [n for n in map(meant, roots) if n is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(n for t, _ in edges.get(node, []) if t is not None
                     for n in [meant(t)] if n is not None)
    for kind, section in (("menu", "menus"), ("flow", "flows")):
        for name in getattr(c, section):
            if (kind, name) not in seen:
                yield Problem((section, name),
                              f"{kind} '{name}' is unreachable from every entry point")


def _loops(c: CallCenterConfig) -> Iterator[Problem]:
    """A call must always be able to leave: find nodes that can never reach an
    exit, and flows that loop unconditionally (no caller input in between)."""
    edges = graph_edges(c)
    can_exit: set[Node] = set()
    changed = True
    while changed:
        changed = False
        for node, outs in edges.items():
            if node in can_exit:
                continue
            if any(t is None or t in can_exit or t not in edges for t, _ in outs):
                can_exit.add(node)
                changed = True
    for node in sorted(set(edges) - can_exit):
        kind, name = node
        yield Problem((f"{kind}s", name),
                      f"{kind} '{name}' loops with no exit: every path leads back into "
                      "menus/flows that never transfer or hang up")
    # Unconditional flow cycles: flow a's last step goes to flow b, b's to a...
    nxt = {node: t for node, outs in edges.items() if node[0] == "flow"
           for t, unconditional in outs if unconditional and t is not None and t[0] == "flow"}
    reported: set[Node] = set()
    for start in sorted(nxt):
        path, node = [], start
        while node in nxt and node not in path:
            path.append(node)
            node = nxt[node]
        if node in path and node == start and start not in reported:
            cycle = path[path.index(node):]
            reported.update(cycle)
            yield Problem(("flows", start[1]),
                          "flows loop forever without caller input: "
                          + " -> ".join(n[1] for n in cycle + [start]))


# -- sounds --------------------------------------------------------------------

_SOUND_EXTS = (".gsm", ".wav", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".g729", ".WAV",
               ".wav16", ".mp3", ".siren7", ".siren14")


def _prompt_paths(c: CallCenterConfig) -> Iterator[tuple[str, Path]]:
    for name, flow in c.flows.items():
        for i, step in enumerate(flow.steps):
            data = step.model_dump()
            for key, value in data.items():
                yield from _sounds_in(value, ("flows", name, "steps", i, key))
    for name, menu in c.menus.items():
        for key in ("prompts", "invalid_prompts", "timeout_prompts", "exhausted_prompts"):
            for j, s in enumerate(getattr(menu, key)):
                yield s, ("menus", name, key, j)
    for j, s in enumerate(c.settings.failure_prompts):
        yield s, ("settings", "failure_prompts", j)
    for name, campaign in c.campaigns.items():
        # A safe-harbor message that is not installed plays silence: an abandoned call
        # then never says who called, which the abandon rule requires.
        for key, sound in (("safe_harbor", campaign.safe_harbor), ("message", campaign.message)):
            if sound is not None:
                yield sound, ("campaigns", name, key)
        if campaign.amd.message is not None:
            yield campaign.amd.message, ("campaigns", name, "amd", "message")


def _sounds_in(value: object, path: Path) -> Iterator[tuple[str, Path]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("prompts", "invalid_prompts") and isinstance(v, (list, tuple)):
                for j, s in enumerate(v):
                    yield s, path + (k, j)
    elif isinstance(value, (list, tuple)) and path[-1] == "play":
        for j, s in enumerate(value):
            yield s, path + (j,)


def _languages(c: CallCenterConfig) -> dict[str, Path]:
    """Every language a call can be in -> the first YAML path that introduces it."""
    langs: dict[str, Path] = {c.settings.language: ("settings", "language")}
    for name, ep in c.entry_points.items():
        if ep.language:
            langs.setdefault(ep.language, ("entry_points", name, "language"))
    for name, flow in c.flows.items():
        for i, step in enumerate(flow.steps):
            if isinstance(step, SetLanguageStep):
                langs.setdefault(step.set_language, ("flows", name, "steps", i, "set_language"))
    return langs


def _sounds(c: CallCenterConfig, sounds: dict[str, FsPath]) -> Iterator[Problem]:
    """Each prompt must exist in every language a call can be in.

    Like Asterisk, a prompt is found under ``sounds/<lang>/`` or, for any
    language, under ``sounds/`` itself (a site's own ``custom/`` recordings).
    """
    introduced = _languages(c)
    langs = sorted(introduced)
    for lang in langs:
        if lang not in sounds:
            yield Problem(introduced[lang],
                          f"no sounds installed for language '{lang}' "
                          f"(installed: {', '.join(sorted(sounds)) or 'none'})")
    cache: dict[tuple[str, str], bool] = {}
    for sound, path in _prompt_paths(c):
        missing = []
        for lang in langs:
            if lang not in sounds:
                continue
            key = (lang, sound)
            if key not in cache:
                # Asterisk tries sounds/<lang>/<name>, then sounds/<name> (any language).
                cache[key] = any(
                    base.with_name(base.name + ext).exists()
                    for base in (sounds[lang] / sound, sounds[lang].parent / sound)
                    for ext in _SOUND_EXTS)
            if not cache[key]:
                missing.append(lang)
        if missing:
            yield Problem(path, f"sound '{sound}' is not installed for language(s) "
                                f"{', '.join(missing)}")
