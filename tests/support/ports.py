"""Free loopback ports for the processes a test starts (master, workers, Prometheus, ...).

One helper for the whole suite. Ports are picked when a test needs them, not at
collection: a port picked twenty minutes earlier may since have become the
ephemeral end of another connection, and binding it then fails (EADDRINUSE).
"""

from __future__ import annotations

import random
import socket


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (held open together while picked)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    """One free port on 127.0.0.1."""
    return free_ports(1)[0]


def free_port_range(count: int) -> int:
    """The first of `count` consecutive free ports (`--metrics-port P` uses P, P+1, ...)."""
    for _ in range(200):
        base = random.randint(20000, 60000 - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")
