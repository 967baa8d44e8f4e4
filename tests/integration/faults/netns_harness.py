"""Separate "hosts" on one machine: network namespaces joined by veth pairs to a bridge.

Fault tests need a link that can be cut between a worker and its master
without touching the machine's real network. `NetnsLab` builds a tiny
switched LAN, entirely inside namespaces it creates:

    hub namespace:  bridge br0 --+-- port p1 ==veth== eth0 in host namespace "master" (10.213.x.1)
                                 +-- port p2 ==veth== eth0 in host namespace "worker" (10.213.x.2)

`cut(host)` sets the host's switch port down (a pulled cable: the host sees
NO-CARRIER, packets go nowhere, TCP connections stall rather than reset);
`restore(host)` sets it up again. Processes started with `popen()` run inside a
host's namespace in their own process group and are SIGKILLed on exit; every
namespace is deleted on exit, also when the test fails. Nothing is created in
the root namespace, so concurrent labs cannot collide (names carry a random tag).

Needs root and iproute2 (`ip netns`). `unavailable_reason()` says why not, for
`pytest.skip`. No `tc netem` here: loss/delay emulation is not offered.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([IP, *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> str | None:
    """None when namespaces with veth links can be made here, else why not."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run the fault tests as root)"
    if not shutil.which("ip"):
        return "iproute2 `ip` command not found"
    probe = f"tdlprobe{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` refused: {made.stderr.strip()}"
        veth = _ip(
            "-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0", check=False
        )
        if veth.returncode != 0:
            return f"cannot create veth pairs: {veth.stderr.strip()}"
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run `ip`: {exc}"
    finally:
        _ip("netns", "del", probe, check=False)


@dataclass
class Host:
    """A namespace with one interface (eth0) on the lab's LAN."""

    name: str
    netns: str
    address: str
    port_ifname: str  # its switch port, inside the hub namespace


@dataclass
class NetnsLab:
    """A LAN of namespaces; use as a context manager so it is always torn down."""

    subnet: str = "10.213.0"  # /24 inside the lab's own namespaces only
    tag: str = field(default_factory=lambda: f"tdlf{secrets.token_hex(3)}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    _namespaces: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    def __enter__(self) -> NetnsLab:
        try:
            self._add_netns(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def add_host(self, name: str) -> Host:
        """A new namespace on the LAN with address <subnet>.<n>/24, n = 1, 2, ..."""
        index = len(self.hosts) + 1
        host = Host(name, f"{self.tag}-{name}", f"{self.subnet}.{index}", f"p{index}")
        self._add_netns(host.netns)
        # Created inside the hub namespace, so no name ever exists in the root one.
        _ip(
            "-n", self.hub, "link", "add", host.port_ifname, "type", "veth",
            "peer", "name", "eth0", "netns", host.netns,
        )  # fmt: skip
        _ip("-n", self.hub, "link", "set", host.port_ifname, "master", "br0", "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def cut(self, name: str) -> None:
        """Pull the host's cable: its switch port goes down."""
        _ip("-n", self.hub, "link", "set", self.hosts[name].port_ifname, "down")

    def restore(self, name: str) -> None:
        _ip("-n", self.hub, "link", "set", self.hosts[name].port_ifname, "up")

    def run(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a command to completion inside the host (subprocess.run keyword arguments)."""
        kwargs.setdefault("timeout", 60)
        return subprocess.run([IP, "netns", "exec", self.hosts[name].netns, *argv], **kwargs)

    def popen(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a process inside the host; it is killed when the lab closes."""
        proc = subprocess.Popen(
            [IP, "netns", "exec", self.hosts[name].netns, *argv],
            start_new_session=True,  # its own process group, killed as a whole
            **kwargs,
        )
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """Kill this lab's processes and delete its namespaces; safe to call twice."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self._procs.clear()
        for netns in reversed(self._namespaces):
            _ip("netns", "del", netns, check=False)
        self._namespaces.clear()


def lab_namespaces(tag: str) -> list[str]:
    """Namespaces whose name starts with `tag` (for tests that check the cleanup)."""
    out = _ip("netns", "list").stdout.split()
    return [word for word in out if word.startswith(tag)]
