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

__all__ = ["PortUse", "PortsBusyError", "check_free", "taken"]


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


class PortsBusyError(RuntimeError):
    """One or more ports are held by another process; the message names each."""

    def __init__(self, conflicts: list[tuple[PortUse, list[int]]]) -> None:
        self.conflicts = conflicts
        super().__init__(describe(conflicts))


def describe(conflicts: list[tuple[PortUse, list[int]]]) -> str:
    """One line per service whose ports are taken, with how to choose others."""
    lines = ["ports in use by another process (nothing was started):"]
    for use, ports in conflicts:
        if use.last:
            shown = ", ".join(map(str, ports[:5])) + (", ..." if len(ports) > 5 else "")
            n = len(ports)
            lines.append(f"  {use}: {n} port{'s' if n != 1 else ''} taken ({shown}); "
                         f"choose another: {use.fix}")
        else:
            lines.append(f"  {use}; choose another: {use.fix}")
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


def taken(uses: Iterable[PortUse]) -> list[tuple[PortUse, list[int]]]:
    """For each use with a port held by someone else: the use and those ports."""
    out = []
    for use in uses:
        busy = [p for p in use.ports() if not _is_free(use.host, p, use.proto)]
        if busy:
            out.append((use, busy))
    return out


def check_free(uses: Iterable[PortUse]) -> None:
    """Raise :class:`PortsBusyError` naming every taken port."""
    conflicts = taken(uses)
    if conflicts:
        raise PortsBusyError(conflicts)
