"""Two network namespaces joined by a veth pair: where live tests and benchmarks replay traffic.

`veth_pair()` creates namespaces `<prefix>a`/`<prefix>b` with interfaces
`<prefix>0` (in a) and `<prefix>1` (in b), up, loopback up, MTU 9000 (a
capture's frames may exceed 1500 bytes), IPv6 off (so the pair carries only
what is replayed), and removes everything on exit.
Needs root and iproute2; `available()` says whether both are there. Traffic
never leaves the pair, so nothing outside the namespaces is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class VethPair:
    ns_a: str
    ns_b: str
    if_a: str  # in ns_a: replay here
    if_b: str  # in ns_b: capture here

    def exec_b(self, *argv: str) -> list[str]:
        """argv run inside namespace b."""
        return ["ip", "netns", "exec", self.ns_b, *argv]

    def exec_a(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns_a, *argv]


def available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def veth_pair(prefix: str | None = None) -> Iterator[VethPair]:
    prefix = prefix or f"tdl{os.getpid() % 100000}"
    pair = VethPair(f"{prefix}a", f"{prefix}b", f"{prefix}0", f"{prefix}1")
    try:
        for ns in (pair.ns_a, pair.ns_b):
            _ip("netns", "add", ns)
            # no IPv6 on the pair: router solicitations and MLD reports would be stray
            # frames among the replayed ones (the sysctl is per namespace)
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                            "net.ipv6.conf.default.disable_ipv6=1"],
                           check=True, capture_output=True, timeout=30)  # fmt: skip
        _ip("link", "add", pair.if_a, "netns", pair.ns_a, "type", "veth",
            "peer", "name", pair.if_b, "netns", pair.ns_b)  # fmt: skip
        for ns, iface in ((pair.ns_a, pair.if_a), (pair.ns_b, pair.if_b)):
            _ip("-n", ns, "link", "set", iface, "mtu", "9000")
            _ip("-n", ns, "link", "set", iface, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in (pair.ns_a, pair.ns_b):  # deleting a namespace deletes its veth end
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
