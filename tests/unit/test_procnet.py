"""``bound_sockets`` reads /proc as ``ss -lntup`` would, with no iproute2 installed."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from callcenter.procnet import BoundSocket, bound_sockets, holders


def test_bound_sockets_finds_our_own_listeners() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp6, socket.socket() as conn:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        udp6.bind(("::1", 0))
        conn.connect(tcp.getsockname())
        found = bound_sockets(os.getpid())
        assert BoundSocket("tcp", "127.0.0.1", tcp.getsockname()[1], True) in found
        assert BoundSocket("udp", "127.0.0.1", udp.getsockname()[1], True) in found
        assert BoundSocket("udp", "::1", udp6.getsockname()[1], True) in found
        client = BoundSocket("tcp", "127.0.0.1", conn.getsockname()[1], False)
        assert client in found and str(client) == f"127.0.0.1:{conn.getsockname()[1]}"
        assert str(BoundSocket("udp", "::1", 5060, True)) == "[::1]:5060"


def test_holders_names_the_process_holding_a_port() -> None:
    comm = Path("/proc/self/comm").read_text().strip()
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        assert holders(tcp.getsockname()[1], "tcp") == [(os.getpid(), comm)]
        assert holders(udp.getsockname()[1], "udp") == [(os.getpid(), comm)]
