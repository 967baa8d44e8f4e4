"""Is a gRPC address on this host only? The rule "never a bearer token in clear off loopback".

A run token sent over plaintext can be read by anyone on the path and then
used to poison the parameter server, so `security.make_server` and
`security.make_channel` refuse a token without TLS unless every address the
endpoint names is a loopback one (127.0.0.0/8, ::1, `localhost`) or a local
socket (`unix:`), or the caller explicitly allows plaintext (the entry points'
`--allow-plaintext`). The check runs before any socket is opened, so a refused
client has sent nothing.

Names other than `localhost` are resolved once, here, and pass only when every
address they resolve to is loopback (e.g. a hosts-file name of a local test
cluster). A name that does not resolve is refused: "cannot tell" is not
"safe". gRPC resolves the name again when it connects; a resolver that then
answers differently is outside this check (the threat table in docs/faults.md
says so), which is why TLS, not this rule, is the protection on a cluster.
"""

from __future__ import annotations

import ipaddress
import socket

from trafficdl.contract import Env

LOCAL_SCHEMES = ("unix:", "unix-abstract:")
ALLOW_HINT = f"use TLS, or pass --allow-plaintext ({Env.ALLOW_PLAINTEXT}=1) to accept the risk"


def _host_of(hostport: str) -> str:
    """The host of "host:port", "[v6]:port", a bare IPv6 address or a bare host."""
    if hostport.startswith("["):
        return hostport[1 : hostport.find("]")] if "]" in hostport else hostport[1:]
    if hostport.count(":") > 1:  # a bare IPv6 address has no port
        return hostport
    return hostport.rpartition(":")[0] if ":" in hostport else hostport


def target_hosts(address: str) -> list[str] | None:
    """Hosts a gRPC target or bind address names; None for a local socket.

    Understands "host:port", "[::1]:port", ":port" (every interface: host ""),
    "dns:[//authority/]host:port", "ipv4:a:p,b:p", "ipv6:[a]:p,..." and "unix:...".
    """
    text = address.strip()
    if text.startswith(LOCAL_SCHEMES):
        return None
    if text.startswith(("ipv4:", "ipv6:")):
        return [_host_of(part.strip()) for part in text[5:].split(",")]
    if text.startswith("dns:"):
        text = text[4:]
        if text.startswith("//"):  # dns://authority/host:port, authority usually empty
            text = text[2:].partition("/")[2]
    return [_host_of(text)]


def _ip_is_loopback(text: str) -> bool | None:
    """True/False for an IP literal, None when `text` is not one."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def host_is_loopback(host: str) -> bool:
    """True when every address `host` stands for is a loopback address."""
    name = host.strip().rstrip(".").lower()
    if not name:
        return False  # "" and ":port" mean every interface
    if name == "localhost":
        return True
    literal = _ip_is_loopback(name)
    if literal is not None:
        return literal
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    found = [_ip_is_loopback(str(info[4][0])) for info in infos]
    return bool(found) and all(found)


def is_loopback(address: str) -> bool:
    """True when a gRPC target or bind address stays on this host (loopback or local socket)."""
    hosts = target_hosts(address)
    return hosts is None or (bool(hosts) and all(host_is_loopback(h) for h in hosts))


def plaintext_refusal(address: str, *, serving: bool) -> str | None:
    """Why a run token may not travel in clear on `address`; None when it is loopback."""
    if is_loopback(address):
        return None
    verb = (
        "accept the run token in plaintext on" if serving else "send the run token in plaintext to"
    )
    return f"refusing to {verb} {address}: not a loopback address; {ALLOW_HINT}"


__all__ = ["ALLOW_HINT", "host_is_loopback", "is_loopback", "plaintext_refusal", "target_hosts"]
