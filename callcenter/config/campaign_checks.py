"""Cross-checks of ``campaigns``: what a campaign names must exist, and its settings must
be safe to dial with::

    config/campaigns.yaml:4:12: campaigns.renewals.trunk: unknown trunk 'carier' (known: carrier)
    config/campaigns.yaml:9:19: campaigns.renewals.ring_seconds: 10 s is under 15 s: ...
    config/campaigns.yaml:2:5: campaigns.blitz: a predictive campaign needs an abandon rule ...

"Unsafe" means what a regulator or a carrier would hold against the operator: a phone
hung up before a person could reach it, a predictive campaign with no abandon limit, a
live answer with no safe-harbor message, a campaign where nobody can record a
do-not-call request. An agentless campaign runs a flow (or plays a message) that exists;
the answers it stores are variables that flow collects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from callcenter.config.campaign import MIN_RING_SECONDS, Campaign
from callcenter.config.checks import Problem, graph_edges
from callcenter.config.models import CallCenterConfig, CollectSpec, CollectStep
from callcenter.config.partial import Broken

__all__ = ["check_campaigns", "collected_variables"]

_NOTHING_BROKEN = Broken()


def _known(names: Iterable[str]) -> str:
    names = sorted(names)
    return f"(known: {', '.join(names)})" if names else "(none defined)"


def check_campaigns(c: CallCenterConfig, broken: Broken = _NOTHING_BROKEN) -> Iterator[Problem]:
    """Every problem with ``campaigns`` that needs the rest of the config, or is unsafe."""
    for name, campaign in c.campaigns.items():
        base = ("campaigns", name)
        yield from _references(c, base, campaign, broken)
        yield from _safety(c, base, campaign, broken)
        yield from _agentless(c, base, campaign, broken)


def collected_variables(config: CallCenterConfig,
                        flow: str) -> dict[str, tuple[CollectSpec, ...]]:
    """Every variable a ``collect`` step sets on a call that enters ``flow``, in the order
    the walk meets them (the flow's own steps first, then what its destinations reach),
    with the steps that collect it (one variable may be asked in two places)."""
    edges = graph_edges(config)
    seen: set[tuple[str, str]] = set()
    order: list[tuple[str, str]] = []
    todo: list[tuple[str, str]] = [("flow", flow)]
    while todo:  # breadth first: the flow's own questions come first
        node = todo.pop(0)
        if node in seen or node not in edges:
            continue
        seen.add(node)
        order.append(node)
        todo.extend(target for target, _ in edges[node] if target is not None)
    out: dict[str, tuple[CollectSpec, ...]] = {}
    for kind, name in order:
        if kind != "flow":
            continue
        for step in config.flows[name].steps:
            if isinstance(step, CollectStep):
                spec = step.collect
                out[spec.variable] = out.get(spec.variable, ()) + (spec,)
    return out


def _agentless(c: CallCenterConfig, base: tuple[str, ...], campaign: Campaign,
               broken: Broken) -> Iterator[Problem]:
    """What an agentless campaign runs, and which answers it stores."""
    if campaign.mode != "agentless":
        for key in ("flow", "answers"):
            if getattr(campaign, key) is not None:
                yield Problem(base + (key,), f"'{key}' is for agentless campaigns; this one "
                              f"is {campaign.mode}")
        return
    if campaign.flow is None:
        if campaign.message is None:
            yield Problem(base, "an agentless campaign needs 'flow' (the call flow whoever "
                          "answers goes through) or 'message' (the sound they hear)")
        if campaign.answers is not None:
            yield Problem(base + ("answers",), "answers are collected by a flow: give the "
                          "campaign a 'flow'")
        return
    if campaign.message is not None:
        yield Problem(base + ("message",), "give 'flow' or 'message', not both (play the "
                      "message in the flow: a play step)")
    if campaign.flow not in c.flows:
        if not broken.has("flows", campaign.flow):
            yield Problem(base + ("flow",), f"unknown flow '{campaign.flow}' {_known(c.flows)}")
        return
    if broken.touches("flows") or broken.touches("menus"):
        return  # what the flow reaches is not known
    collected = collected_variables(c, campaign.flow)
    for i, variable in enumerate(campaign.answers or ()):
        if variable not in collected:
            yield Problem(base + ("answers", i),
                          f"flow '{campaign.flow}' collects no variable '{variable}' "
                          f"{_known(collected)}")


def _references(c: CallCenterConfig, base: tuple[str, ...], campaign: Campaign,
                broken: Broken) -> Iterator[Problem]:
    if campaign.trunk not in c.trunks and not broken.has("trunks", campaign.trunk):
        yield Problem(base + ("trunk",), f"unknown trunk '{campaign.trunk}' {_known(c.trunks)}")
    for i, agent in enumerate(campaign.agents):
        if agent not in c.agents and not broken.has("agents", agent):
            yield Problem(base + ("agents", i), f"unknown agent '{agent}' {_known(c.agents)}")
    if not broken.touches("skills"):
        for i, skill in enumerate(campaign.skills):
            if skill not in c.skills:
                yield Problem(base + ("skills", i), f"unknown skill '{skill}' {_known(c.skills)}")
    for key, disposition in campaign.dispositions.items():
        at = base + ("dispositions", key)
        if disposition.queue is not None and disposition.queue not in c.queues \
                and not broken.has("queues", disposition.queue):
            yield Problem(at + ("queue",), f"unknown queue '{disposition.queue}' "
                          f"{_known(c.queues)}: the queue a warm transfer hands the call to")
        if not broken.touches("skills"):
            for i, skill in enumerate(disposition.skills):
                if skill not in c.skills:
                    yield Problem(at + ("skills", i),
                                  f"unknown skill '{skill}' {_known(c.skills)}")


def _safety(c: CallCenterConfig, base: tuple[str, ...], campaign: Campaign,
            broken: Broken) -> Iterator[Problem]:
    mode = campaign.mode
    if mode == "agentless":
        if campaign.agents or campaign.skills:
            yield Problem(base, "an agentless campaign has no agents: remove 'agents' and "
                          "'skills', or pick another mode")
    elif not campaign.agents and not campaign.skills:
        yield Problem(base, f"nobody works this {mode} campaign: give it 'agents' or 'skills'")
    if mode in ("progressive", "predictive"):
        if campaign.abandon is None:
            yield Problem(base + ("abandon",),
                          f"a {mode} campaign needs an abandon rule (us_30_days or "
                          "uk_24_hours): a live answer may find no free agent")
        if campaign.safe_harbor is None:
            yield Problem(base, f"a {mode} campaign needs 'safe_harbor': the message a "
                          "live answer hears when no agent is free within 2 s")
    if campaign.ring_seconds < MIN_RING_SECONDS and not campaign.allow_short_ring:
        yield Problem(base + ("ring_seconds",),
                      f"{campaign.ring_seconds} s is under {MIN_RING_SECONDS} s: the phone "
                      "stops ringing before a person can reach it (set allow_short_ring: "
                      "true only for a test carrier)")
    trunk = c.trunks.get(campaign.trunk)
    if trunk is not None and campaign.ring_seconds > trunk.ring_timeout:
        yield Problem(base + ("ring_seconds",),
                      f"{campaign.ring_seconds} s is longer than trunk '{campaign.trunk}' "
                      f"lets a call ring (ring_timeout: {trunk.ring_timeout})")
    if campaign.local_presence and len(campaign.caller_id) < 2:
        yield Problem(base + ("local_presence",),
                      "local presence picks from a pool of caller IDs: give caller_id a list "
                      "of numbers")
    if "do_not_call" not in campaign.dispositions:
        yield Problem(base + ("dispositions",),
                      "no 'do_not_call' disposition: agents must be able to record a "
                      "contact's request not to be called")
    elif not campaign.dispositions["do_not_call"].final:
        yield Problem(base + ("dispositions", "do_not_call", "final"),
                      "do_not_call must be final: the contact may not be called again")
