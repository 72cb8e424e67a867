"""The sockets a process has bound, read from /proc (test helper).

A minimal Debian 12 (debootstrap ``--variant=minbase``) has no ``ss``, ``netstat``,
``ip`` or procps, so tests must not shell out to them. The kernel already says it all:
``/proc/<pid>/fd/*`` links to ``socket:[<inode>]`` for each socket the process holds,
and ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}`` list every socket of the process's network
namespace with its local address, state and inode. Joining both on the inode gives what
``ss -lntup`` shows for one pid.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BoundSocket", "TCP_LISTEN", "UDP_UNCONNECTED", "bound_sockets", "parse_proc_net",
           "socket_inodes"]

#: ``st`` column values (include/net/tcp_states.h): TCP_LISTEN, and TCP_CLOSE, which is
#: what a bound but unconnected UDP socket shows (``ss`` prints it as UNCONN).
TCP_LISTEN = 0x0A
UDP_UNCONNECTED = 0x07

_PROTOCOLS = ("tcp", "tcp6", "udp", "udp6")


@dataclass(frozen=True)
class BoundSocket:
    """One row of ``/proc/net/<protocol>``."""

    protocol: str  # tcp, tcp6, udp, udp6
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    state: int
    inode: int

    @property
    def accepts_peers(self) -> bool:
        """A TCP listener, or a UDP socket that takes datagrams from anyone (not connected)."""
        if self.protocol.startswith("tcp"):
            return self.state == TCP_LISTEN
        return self.state == UDP_UNCONNECTED

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.protocol} {host}:{self.port}"


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # The kernel prints each 32-bit word of the address as a host-order integer (%08X),
    # so on a little-endian machine 127.0.0.1 reads 0100007F.
    words = [int(hex_address[i:i + 8], 16) for i in range(0, len(hex_address), 8)]
    raw = b"".join(struct.pack("=I", w) for w in words)
    return ipaddress.ip_address(raw)


def parse_proc_net(protocol: str, text: str) -> list[BoundSocket]:
    """The rows of one ``/proc/net/<protocol>`` file (header line skipped)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        host, _, port = fields[1].partition(":")
        rows.append(BoundSocket(protocol, _address(host), int(port, 16), int(fields[3], 16),
                                int(fields[9])))
    return rows


def socket_inodes(pid: int) -> set[int]:
    """Inodes of every socket the process holds open (any thread shares the fd table)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed while we were listing
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def bound_sockets(pid: int) -> list[BoundSocket]:
    """Every TCP and UDP socket (IPv4 and IPv6) the process holds, with its local address."""
    inodes = socket_inodes(pid)
    found = []
    for protocol in _PROTOCOLS:
        path = Path(f"/proc/{pid}/net/{protocol}")
        if not path.exists():  # IPv6 disabled in the kernel
            continue
        found += [s for s in parse_proc_net(protocol, path.read_text()) if s.inode in inodes]
    return found
