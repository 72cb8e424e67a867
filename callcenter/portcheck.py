"""Is every port we are about to bind free? Asked before anything starts.

Asterisk starts and silently does not listen when another process (often the
host's own PBX) holds its SIP port; a busy FastAGI port ends the server. So
``callcenter run`` and ``asterisk start`` probe every port first (SIP over UDP
and TCP, HTTP/ARI, AMI, FastAGI, the whole RTP range) and name each one taken,
with the setting that moves it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from callcenter.procnet import holders

__all__ = ["Conflict", "PortUse", "PortsBusyError", "check_free", "describe", "taken"]


@dataclass(frozen=True)
class PortUse:
    """Ports one service will bind: ``first..last`` on ``host``; ``fix`` says how to
    choose others (an option or a config key)."""

    what: str
    host: str
    first: int
    proto: Literal["udp", "tcp"]
    fix: str
    last: int | None = None

    def ports(self) -> range:
        return range(self.first, (self.last or self.first) + 1)

    def __str__(self) -> str:
        span = f"{self.first}-{self.last}" if self.last else str(self.first)
        return f"{self.what} {self.host}:{span}/{self.proto}"


@dataclass(frozen=True)
class Conflict:
    """Ports of one use that are taken, and the processes seen holding them."""

    use: PortUse
    ports: tuple[int, ...]
    holders: tuple[tuple[int, str], ...] = ()


class PortsBusyError(RuntimeError):
    """One or more ports are held by another process; the message names each."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(describe(conflicts))


def describe(conflicts: list[Conflict]) -> str:
    """One line per service whose ports are taken: by whom, and how to choose others."""
    lines = ["ports in use by another process (nothing was started):"]
    for c in conflicts:
        held = ", ".join(f"pid {pid} {name}" for pid, name in c.holders)
        by = f" (held by {held})" if held else ""
        if c.use.last:
            shown = ", ".join(map(str, c.ports[:5])) + (", ..." if len(c.ports) > 5 else "")
            n = len(c.ports)
            lines.append(f"  {c.use}: {n} port{'s' if n != 1 else ''} taken ({shown}){by}; "
                         f"choose another: {c.use.fix}")
        else:
            lines.append(f"  {c.use}{by}; choose another: {c.use.fix}")
    return "\n".join(lines)


def _is_free(host: str, port: int, proto: str) -> bool:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            # A listener may rebind over TIME_WAIT leftovers; so may the probe.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def taken(uses: Iterable[PortUse]) -> list[Conflict]:
    """For each use with a port held by someone else: those ports, and who holds them
    (looked up in /proc for the first few)."""
    out = []
    for use in uses:
        busy = tuple(p for p in use.ports() if not _is_free(use.host, p, use.proto))
        if busy:
            seen: dict[int, str] = {}
            for port in busy[:5]:
                seen.update(holders(port, use.proto))
            out.append(Conflict(use, busy, tuple(sorted(seen.items()))))
    return out


def check_free(uses: Iterable[PortUse]) -> None:
    """Raise :class:`PortsBusyError` naming every taken port."""
    conflicts = taken(uses)
    if conflicts:
        raise PortsBusyError(conflicts)
