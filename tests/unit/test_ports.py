"""Port reservations shared between processes (``callcenter.testing.ports``): what
keeps parallel pytest-xdist workers from handing out the same port."""

from __future__ import annotations

import subprocess
import sys

from callcenter.testing.ports import (
    claim,
    free_port,
    free_udp_range,
    free_udp_tcp_port,
    release,
    reserve,
)

_HOLDER = """
import sys
from callcenter.testing.ports import reserve
assert reserve(int(sys.argv[1]), int(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()
"""


def _held_by_another_process(first: int, count: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(first), str(count)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_port_is_handed_out_once_per_process() -> None:
    port = free_port()
    assert not reserve(port)
    release(port)
    assert reserve(port)


def test_a_port_reserved_by_another_process_is_refused_until_it_exits() -> None:
    first, last = free_udp_range(4)
    release(first, 4)
    holder = _held_by_another_process(first + 1, 2)
    try:
        assert not reserve(first, 4)
        assert not claim(first + 2)
        assert reserve(first)  # the ports around stay free
        assert reserve(last)
    finally:
        holder.communicate("", timeout=10)
    assert reserve(first + 1, 2)  # the kernel dropped the lock with the process


def test_the_helpers_skip_ports_other_processes_hold() -> None:
    """Many ports in a row, none handed out twice in this process."""
    ports = [free_port() for _ in range(20)] + [free_udp_tcp_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
