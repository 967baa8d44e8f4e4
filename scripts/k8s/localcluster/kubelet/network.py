"""Pod IPs in the loopback range and Service names resolved through a hosts file.

All pods share the host's network namespace, so each gets its own loopback
address (127.77.x.y, allocated by uid and kept for the pod's life): the pod
binds it (the downward API gives it as status.podIP) and peers dial it.
Service names are resolved the way a headless Service resolves: each pod's
/etc/hosts (bind-mounted in its mount namespace) lists, for every Service with
a selector, the loopback IPs of its ready pods under `svc`, `svc.ns`,
`svc.ns.svc` and `svc.ns.svc.cluster.local`. A Service with no ready pod
points at 127.77.0.1, where nothing listens (connection refused, as when
kube-proxy rejects a Service without endpoints). The ClusterIP the API server
allocates (10.96.0.0/16) is never used. Limitation: the dialled port is the
Service's `port`, so `port` must equal the container port `targetPort` names.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

BLACKHOLE = "127.77.0.1"
_BASE = int(ipaddress.ip_address("127.77.0.0"))


class Addresses:
    def __init__(self) -> None:
        self.by_uid: dict[str, str] = {}

    def allocate(self, uid: str) -> str:
        if uid not in self.by_uid:
            used = set(self.by_uid.values())
            n = 2
            while str(ipaddress.ip_address(_BASE + n)) in used:
                n += 1
            self.by_uid[uid] = str(ipaddress.ip_address(_BASE + n))
        return self.by_uid[uid]

    def release(self, uid: str) -> None:
        self.by_uid.pop(uid, None)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds) and \
        not pod["metadata"].get("deletionTimestamp")


def service_table(services: list[dict[str, Any]], pods: list[dict[str, Any]]
                  ) -> dict[tuple[str, str], list[str]]:
    """(namespace, service) -> ready pod IPs (publishNotReadyAddresses honoured)."""
    out: dict[tuple[str, str], list[str]] = {}
    for svc in services:
        spec, meta = svc.get("spec") or {}, svc["metadata"]
        selector = spec.get("selector") or {}
        if not selector:
            continue
        any_ok = spec.get("publishNotReadyAddresses", False)
        ips = sorted(p["status"]["podIP"] for p in pods
                     if p["metadata"]["namespace"] == meta["namespace"]
                     and (p.get("status") or {}).get("podIP")
                     and _matches(selector, p["metadata"].get("labels") or {})
                     and (any_ok or _ready(p)))
        out[(meta["namespace"], meta["name"])] = ips
    return out


def hosts_text(pod: dict[str, Any], pod_ip: str,
               table: dict[tuple[str, str], list[str]]) -> str:
    ns = pod["metadata"]["namespace"]
    hostname = pod["spec"].get("hostname") or pod["metadata"]["name"]
    lines = ["# written by the trafficdl process kubelet (scripts/k8s/localcluster)",
             "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{pod_ip}\t{hostname}"]
    for (sns, name), ips in sorted(table.items()):
        names = [f"{name}.{sns}", f"{name}.{sns}.svc", f"{name}.{sns}.svc.cluster.local"]
        if sns == ns:
            names.insert(0, name)
        for ip in ips or [BLACKHOLE]:
            lines.append(f"{ip}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def write_in_place(path: Path, text: str) -> None:
    """Rewrite keeping the inode: a bind mount of the file sees the new content."""
    if path.exists() and path.read_text() == text:
        return
    with open(path, "r+" if path.exists() else "w") as fh:
        fh.seek(0)
        fh.write(text)
        fh.truncate()
