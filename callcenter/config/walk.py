"""Enumerate every destination and reference in a config, with its YAML path.

Checks, the generator and the simulator all need "every place a call can go";
this is the one walk over the model that gives it.
"""

from __future__ import annotations

from collections.abc import Iterator

from callcenter.config.models import (
    BranchStep,
    CallCenterConfig,
    CollectStep,
    Destination,
    FlowDest,
    GotoStep,
    LookupStep,
    MenuDest,
    MenuStep,
    ScheduleStep,
    TransferStep,
)

__all__ = ["Path", "destinations", "flow_destinations", "menu_destinations"]

Path = tuple[str | int, ...]


def flow_destinations(config: CallCenterConfig, name: str) -> Iterator[tuple[Destination, Path]]:
    """Destinations reachable from one flow's steps, in step order."""
    base: Path = ("flows", name, "steps")
    for i, step in enumerate(config.flows[name].steps):
        p = base + (i,)
        match step:
            case CollectStep(collect=spec):
                yield spec.on_failure, p + ("collect", "on_failure")
            case LookupStep(lookup=spec):
                for key in ("found", "not_found", "error"):
                    dest = getattr(spec, key)
                    if dest is not None:
                        yield dest, p + ("lookup", key)
            case BranchStep(branch=spec):
                for value, dest in spec.cases.items():
                    yield dest, p + ("branch", "cases", value)
                if spec.default is not None:
                    yield spec.default, p + ("branch", "default")
            case ScheduleStep(check_schedule=spec):
                for key in ("open", "closed", "holiday"):
                    dest = getattr(spec, key)
                    if dest is not None:
                        yield dest, p + ("check_schedule", key)
            case TransferStep(transfer=dest):
                yield dest, p + ("transfer",)
            case MenuStep(menu=target):
                yield MenuDest(menu=target), p + ("menu",)
            case GotoStep(goto=target):
                yield FlowDest(flow=target), p + ("goto",)


def menu_destinations(config: CallCenterConfig, name: str) -> Iterator[tuple[Destination, Path]]:
    menu = config.menus[name]
    base: Path = ("menus", name)
    for key, dest in menu.options.items():
        yield dest, base + ("options", key)
    for key in ("on_invalid", "on_timeout", "on_exhausted"):
        dest = getattr(menu, key)
        if dest is not None:
            yield dest, base + (key,)


def destinations(config: CallCenterConfig) -> Iterator[tuple[Destination, Path]]:
    """Every destination in the config, with the path of the YAML that names it."""
    for name in config.flows:
        yield from flow_destinations(config, name)
    for name in config.menus:
        yield from menu_destinations(config, name)
    for name, queue in config.queues.items():
        yield queue.fallback, ("queues", name, "fallback")
        for i, step in enumerate(queue.relax):
            if step.overflow is not None:
                yield step.overflow, ("queues", name, "relax", i, "overflow")
        if queue.when_unavailable is not None and queue.when_unavailable.destination is not None:
            yield queue.when_unavailable.destination, ("queues", name, "when_unavailable",
                                                       "destination")
    for i, rule in enumerate(config.caller_id_rules):
        if rule.destination is not None:
            yield rule.destination, ("caller_id_rules", i, "destination")
