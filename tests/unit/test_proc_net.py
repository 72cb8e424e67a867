"""The /proc socket reader the loopback test relies on, against this process's own sockets."""

from __future__ import annotations

import os
import socket
from ipaddress import IPv4Address, IPv6Address

from tests.proc_net import TCP_LISTEN, UDP_UNCONNECTED, bound_sockets, parse_proc_net

# Recorded from Linux 6.1 (x86-64): sshd on 0.0.0.0:22, a listener on 127.0.0.1:5054,
# an established connection, and a UDP socket on [::1]:5060.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17342 1 0000000000000000 100 0 0 10 0
   1: 0100007F:13BE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 88211 1 0000000000000000 100 0 0 10 0
   2: 0100007F:13BE 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 88230 1 0000000000000000 20 4 30 10 -1
"""
PROC_NET_UDP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  512: 00000000000000000000000001000000:13C4 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 91002 2 0000000000000000 0
"""


def test_parse_recorded_rows() -> None:
    rows = parse_proc_net("tcp", PROC_NET_TCP)
    assert [(str(r), r.state, r.inode, r.accepts_peers) for r in rows] == [
        ("tcp 0.0.0.0:22", TCP_LISTEN, 17342, True),
        ("tcp 127.0.0.1:5054", TCP_LISTEN, 88211, True),
        ("tcp 127.0.0.1:5054", 0x01, 88230, False),  # established: accepts nobody
    ]
    (udp,) = parse_proc_net("udp6", PROC_NET_UDP6)
    assert (udp.address, udp.port, udp.state, udp.accepts_peers) == (
        IPv6Address("::1"), 5060, UDP_UNCONNECTED, True)


def test_finds_this_process_sockets_with_their_addresses() -> None:
    with socket.socket() as tcp_any, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as connected:
        tcp_any.bind(("0.0.0.0", 0))
        tcp_any.listen()
        udp.bind(("127.0.0.1", 0))
        connected.connect(udp.getsockname())
        found = {(s.protocol, s.address, s.port): s for s in bound_sockets(os.getpid())}
        tcp_port, udp_port = tcp_any.getsockname()[1], udp.getsockname()[1]
        assert found[("tcp", IPv4Address("0.0.0.0"), tcp_port)].accepts_peers
        assert found[("udp", IPv4Address("127.0.0.1"), udp_port)].accepts_peers
        # A connected UDP socket takes datagrams from its one peer only.
        assert not found[("udp", IPv4Address("127.0.0.1"),
                          connected.getsockname()[1])].accepts_peers
    # Closed: no longer the process's.
    assert not any(s.port in (tcp_port, udp_port) for s in bound_sockets(os.getpid()))
