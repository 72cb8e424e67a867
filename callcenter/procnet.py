"""Sockets and who holds them, read from /proc (no ``ss``, ``ps`` or ``fuser``: a
minimal Debian has neither iproute2 nor procps nor psmisc).

``/proc/net/{tcp,udp}[6]`` list every socket with its local address and inode;
``/proc/PID/fd`` links name the inodes a process holds; ``/proc/PID/comm`` its
name.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BoundSocket", "bound_sockets", "holders"]

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


def _sockets() -> Iterator[tuple[str, BoundSocket]]:
    """(inode, socket) for every TCP and UDP socket of this network namespace."""
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        proto = table.rstrip("6")
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            addr, port = local.split(":")
            listening = state == (_TCP_LISTEN if proto == "tcp" else _UDP_UNCONNECTED)
            yield inode, BoundSocket(proto, _address(addr), int(port, 16), listening)


def _inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, PermissionError):
        return inodes
    for fd in fds:
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
    return [s for inode, s in _sockets() if inode in mine]


def holders(port: int, proto: str) -> list[tuple[int, str]]:
    """(pid, command name) of the processes holding a ``proto`` socket bound to ``port``,
    as far as we may look (other users' processes are visible to root only)."""
    wanted = {inode for inode, s in _sockets()
              if s.proto == proto and s.port == port and (s.listening or proto == "udp")}
    found = []
    if not wanted:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        if _inodes(int(entry.name)) & wanted:
            found.append((int(entry.name), _name(entry)))
    return found


def _name(proc: Path) -> str:
    """The command's name; for a program run through its dynamic loader (as we run
    Asterisk), the program's, not ``ld-linux-x86-64``."""
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        comm = (proc / "comm").read_text().strip()
    except OSError:
        return "?"
    if comm.startswith("ld-linux") and len(argv) > 3 and argv[1] == b"--library-path":
        return os.path.basename(argv[3].decode(errors="replace"))
    return comm
