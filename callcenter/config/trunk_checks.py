"""Cross-checks of ``trunks``: what a trunk names must exist, and Asterisk must be able to
tell a trunk's traffic from everyone else's::

    config/trunks.yaml:9:20: trunks.carrier.dids.+15550109000: unknown entry point 'mian'
    (known: main)
    config/trunks.yaml:3:11: trunks.carrier.host: 127.0.0.1 is in settings.inbound_sip_peers
    (127.0.0.1/32): Asterisk could not tell the trunk's calls from callers' calls

Two trunks may not share a host (each ``identify`` section claims the address). A trunk's
name is also its PJSIP endpoint's, AOR's and (with ``-auth``) auth section's, as a
generated softphone's are: the two may not share a name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from callcenter.config.checks import Problem
from callcenter.config.models import CallCenterConfig
from callcenter.config.partial import Broken

__all__ = ["check_trunks"]

_NOTHING_BROKEN = Broken()


def _known(names: Iterable[str]) -> str:
    names = sorted(names)
    return f"(known: {', '.join(names)})" if names else "(none defined)"


def check_trunks(c: CallCenterConfig, broken: Broken = _NOTHING_BROKEN) -> Iterator[Problem]:
    """Every problem with ``trunks`` that needs the rest of the config to see."""
    hosts: dict[str, str] = {}
    for name, trunk in c.trunks.items():
        base = ("trunks", name)
        first = hosts.setdefault(trunk.host.lower(), name)
        if first != name:
            # Two identify sections matching one address: the provider's calls would
            # land in whichever trunk's DID context Asterisk picks.
            yield Problem(base + ("host",),
                          f"trunk '{first}' already has host {trunk.host}: Asterisk knows a "
                          "provider's calls by its address, so one trunk per address")
        for did, entry in trunk.dids.items():
            if entry not in c.entry_points and not broken.has("entry_points", entry):
                yield Problem(base + ("dids", did),
                              f"unknown entry point '{entry}' {_known(c.entry_points)}")
        agent = c.agents.get(name)
        if agent is not None and agent.softphone:
            yield Problem(base, f"trunk '{name}' has the name of agent {name}'s generated "
                          "softphone endpoint (PJSIP/" + name + "): rename one of them")
        if not broken.touches("settings"):
            yield from _address_clash(c, name, trunk.host)


def _address_clash(c: CallCenterConfig, name: str, host: str) -> Iterator[Problem]:
    """A provider at an address of ``settings.inbound_sip_peers`` would be identified by
    two ``identify`` sections; Asterisk picks one, and the other side's calls land in the
    wrong context (the trunk's DIDs in the callers' entry context, or the reverse)."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return  # a host name: resolved by Asterisk at load time, not here
    for peer in c.settings.inbound_sip_peers:
        try:
            network = ipaddress.IPv4Network(peer, strict=False)
        except ValueError:
            continue  # the models reported it
        if address in network:
            yield Problem(("trunks", name, "host"),
                          f"{host} is in settings.inbound_sip_peers ({peer}): Asterisk could "
                          "not tell the trunk's calls from callers' calls; give the provider "
                          "an address outside them (or narrow inbound_sip_peers)")
            return
