"""Free loopback ports for test and benchmark instances (never a fixed port
that a developer's own Asterisk or FastAGI server might hold)."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_udp_range", "free_udp_tcp_port"]


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


def free_udp_range(count: int, *, low: int = 44000, high: int = 60000) -> tuple[int, int]:
    """``(first, last)``: ``count`` consecutive UDP ports all free now (an RTP range).

    Asterisk refuses to start when its RTP range is taken (``callcenter`` checks it
    first), so parallel test instances each need a range nobody holds.
    """
    import random

    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(low, high - count) & ~1  # RTP ports start even
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return first, first + count - 1
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free UDP ports on 127.0.0.1")


def stable_port(*, udp_too: bool = False, low: int = 28000, high: int = 32700) -> int:
    """A free port *below* the kernel's ephemeral range (32768-60999 by default): one the
    kernel never hands out to an outgoing connection. For a service that must bind the
    same port again after a restart (a connection made meanwhile, e.g. a client
    reconnecting, could otherwise take it)."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(low, high)
        kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp_too else (socket.SOCK_STREAM,)
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {low}-{high} on 127.0.0.1")
