"""Free loopback ports for test and benchmark instances (never a fixed port
that a developer's own Asterisk or FastAGI server might hold).

"Free now" is not enough when several processes pick ports at once (pytest-xdist
workers, two checkouts' test runs): two of them can both find a port free and
both hand it out. So every port handed out here is first *reserved*: a byte-range
lock on byte N of one lock file per user (:func:`reserve`), held until the process
exits. Another process of the same user asking for N sees the lock and picks
another port; the kernel drops the locks when the process dies, even on SIGKILL.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

__all__ = ["claim", "free_port", "free_udp_range", "free_udp_tcp_port", "lock_file",
           "release", "reserve", "stable_port"]

_TRIES = 200
_guard = threading.Lock()
_fd: int | None = None
_fd_pid: int | None = None
_mine: set[int] = set()


def lock_file() -> Path:
    """The reservation file shared by this user's processes."""
    return Path(tempfile.gettempdir()) / f"callcenter-ports-{os.getuid()}.lock"


def _lock_fd() -> int:
    """The lock file, opened once per process and never closed: closing any
    descriptor of it would drop all of this process's locks (POSIX locks)."""
    global _fd, _fd_pid
    if _fd is None or _fd_pid != os.getpid():  # a forked child holds none of the parent's locks
        path = lock_file()
        try:
            _fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise RuntimeError(f"cannot open the port reservation file {path}: {exc.strerror}"
                               ) from None
        _fd_pid = os.getpid()
        _mine.clear()
    return _fd


def reserve(first: int, count: int = 1) -> bool:
    """Reserve ports ``first .. first+count-1`` for this process's lifetime; False when
    another process (or this one, earlier) holds any of them. Port numbers only: a
    reservation covers TCP and UDP on every loopback address."""
    if not (0 < first and first + count <= 65536 and count > 0):
        raise ValueError(f"not a port range: {first}+{count}")
    ports = range(first, first + count)
    with _guard:
        fd = _lock_fd()
        # One process's own locks never conflict with each other: remember ours.
        if any(p in _mine for p in ports):
            return False
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, count, first, os.SEEK_SET)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        _mine.update(ports)
        return True


def release(first: int, count: int = 1) -> None:
    """Give back a reservation (one that turned out to be bound by someone else)."""
    with _guard:
        fd = _lock_fd()
        fcntl.lockf(fd, fcntl.LOCK_UN, count, first, os.SEEK_SET)
        _mine.difference_update(range(first, first + count))


def _binds(port: int, kind: int, host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, port))
    except OSError:
        return False
    return True


def claim(first: int, count: int = 1, *, udp: bool = True, tcp: bool = False,
          host: str = "127.0.0.1") -> bool:
    """Reserve ``first .. first+count-1`` and check that each binds now (UDP and/or TCP
    on ``host``); the reservation is given back when one does not."""
    if not reserve(first, count):
        return False
    kinds = [k for k, wanted in ((socket.SOCK_DGRAM, udp), (socket.SOCK_STREAM, tcp)) if wanted]
    if all(_binds(p, k, host) for p in range(first, first + count) for k in kinds):
        return True
    release(first, count)
    return False


def _kernel_port(kind: int, host: str) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port(kind: int = socket.SOCK_STREAM, *, host: str = "127.0.0.1") -> int:
    """A port on ``host`` that the kernel says is free now, reserved for this process."""
    for _ in range(_TRIES):
        port = _kernel_port(kind, host)
        if reserve(port):
            return port
    raise RuntimeError(f"no free port on {host} that no other process reserved")


def free_udp_tcp_port(*, host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP (PJSIP binds both), reserved for this process."""
    for _ in range(_TRIES):
        port = _kernel_port(socket.SOCK_DGRAM, host)
        if claim(port, udp=False, tcp=True, host=host):
            return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def free_udp_range(count: int, *, low: int = 44000, high: int = 60000,
                   host: str = "127.0.0.1") -> tuple[int, int]:
    """``(first, last)``: ``count`` consecutive UDP ports all free now (an RTP range),
    reserved for this process.

    Asterisk refuses to start when its RTP range is taken (``callcenter`` checks it
    first), so parallel test instances each need a range nobody holds.
    """
    rng = random.Random()
    for _ in range(_TRIES):
        first = rng.randrange(low, high - count) & ~1  # RTP ports start even
        if claim(first, count, host=host):
            return first, first + count - 1
    raise RuntimeError(f"no {count} consecutive free UDP ports in {low}-{high} on {host}")


def stable_port(*, udp_too: bool = False, low: int = 28000, high: int = 32700) -> int:
    """A free port *below* the kernel's ephemeral range (32768-60999 by default): one the
    kernel never hands out to an outgoing connection. For a service that must bind the
    same port again after a restart (a connection made meanwhile, e.g. a client
    reconnecting, could otherwise take it). Reserved for this process."""
    rng = random.Random()
    for _ in range(_TRIES):
        port = rng.randrange(low, high)
        if claim(port, udp=udp_too, tcp=True):
            return port
    raise RuntimeError(f"no free port in {low}-{high} on 127.0.0.1")
