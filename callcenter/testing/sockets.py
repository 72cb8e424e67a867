"""A process's bound sockets, read from /proc (no ``ss``: a minimal Debian has no
iproute2).

``/proc/net/{tcp,udp}[6]`` list every socket with its local address and inode;
``/proc/PID/fd`` links name the inodes a process holds.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BoundSocket", "bound_sockets"]

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


@dataclass(frozen=True)
class BoundSocket:
    proto: str  # "tcp" or "udp"
    address: str  # "127.0.0.1", "::1", "0.0.0.0"
    port: int
    listening: bool  # TCP LISTEN, or an unconnected UDP socket (what ``ss -l`` shows)

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hex_addr, 16)))
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = struct.unpack("<4I", raw)
    return socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))


def _inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def bound_sockets(pid: int) -> list[BoundSocket]:
    """Every TCP and UDP socket of ``pid``; ``listening`` marks those ``ss -l`` lists."""
    mine = _inodes(pid)
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in mine:
                continue
            addr, port = local.split(":")
            kind = proto.rstrip("6")
            out.append(BoundSocket(kind, _address(addr), int(port, 16),
                                   state == (_TCP_LISTEN if kind == "tcp" else _UDP_UNCONNECTED)))
    return out
