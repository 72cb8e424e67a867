"""Free loopback ports for test and benchmark instances (never a fixed port
that a developer's own Asterisk or FastAGI server might hold)."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_udp_tcp_port"]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that the kernel says is free now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP (PJSIP binds both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")
