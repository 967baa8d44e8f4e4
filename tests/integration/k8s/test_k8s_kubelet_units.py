"""The process kubelet's pure parts: $(VAR) expansion, Service name resolution, pod IPs.

No cluster needed: these are the rules that decide what a pod process sees.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts" / "k8s"))

from localcluster.kubelet import network, podenv


def _pod(name: str, ns: str, labels: dict[str, str], ip: str | None, ready: bool) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {},
            "status": {"podIP": ip, "conditions": [{"type": "Ready",
                                                     "status": "True" if ready else "False"}]}}


def test_expansion_follows_the_kubernetes_rules() -> None:
    env = {"POD_IP": "127.77.0.5"}
    assert podenv.expand("$(POD_IP):50051", env) == "127.77.0.5:50051"
    assert podenv.expand("$(MISSING)", env) == "$(MISSING)"  # unknown stays verbatim
    assert podenv.expand("$$(POD_IP)", env) == "$(POD_IP)"  # $$ escapes


def test_services_resolve_to_ready_pod_ips_in_the_loopback_range() -> None:
    svc = {"metadata": {"name": "j-master", "namespace": "ns"},
           "spec": {"selector": {"role": "master"}, "clusterIP": "10.96.4.7"}}
    pods = [_pod("j-master", "ns", {"role": "master"}, "127.77.0.3", True),
            _pod("other", "ns", {"role": "master"}, "127.77.0.4", False),
            _pod("elsewhere", "ns2", {"role": "master"}, "127.77.0.9", True)]
    table = network.service_table([svc], pods)
    assert table == {("ns", "j-master"): ["127.77.0.3"]}
    text = network.hosts_text(pods[0], "127.77.0.3", table)
    line = next(ln for ln in text.splitlines() if "j-master.ns.svc " in ln + " ")
    assert line.split("\t")[0] == "127.77.0.3"
    assert "10.96." not in text  # the ClusterIP is never handed out
    empty = network.service_table([svc], pods[1:])
    assert network.BLACKHOLE in network.hosts_text(pods[0], "127.77.0.3", empty)


def test_pod_ips_are_unique_loopback_addresses_and_reused_after_release() -> None:
    addrs = network.Addresses()
    a, b = addrs.allocate("a"), addrs.allocate("b")
    assert a != b and a.startswith("127.77.") and b.startswith("127.77.")
    assert addrs.allocate("a") == a and network.BLACKHOLE not in (a, b)
    addrs.release("a")
    assert addrs.allocate("c") == a


def test_a_volume_over_the_checkout_binds_the_runtime_back(monkeypatch) -> None:
    """A checkout under /tmp (CI clones there) must stay visible under a pod's /tmp volume:
    the venv's entry points are the pods' image here."""
    monkeypatch.setattr(podenv, "RUNTIME_ROOTS", (Path("/tmp/ci"), Path("/tmp/ci/.venv")))
    assert podenv._runtime_binds(["/tmp", "/etc/hosts"]) == [(Path("/tmp/ci"), "/tmp/ci", True)]
    assert podenv._runtime_binds(["/data", "/etc/hosts"]) == []
    container = {"command": ["kopf"], "volumeMounts": [{"name": "t", "mountPath": "/tmp"}]}
    argv = podenv.launcher(container, {"t": Path("/srv/pod/t")}, Path("/srv/pod/hosts"), {})
    script = argv[argv.index("-c") + 1]
    # The volume first, the runtime over it; never canonicalized: `mount` would resolve
    # /proc/self/fd/N to the path "/tmp/ci", which the /tmp volume already hides.
    assert script.index("mount --no-canonicalize --bind /proc/self/fd/3 /tmp") < script.index(
        "mount --no-canonicalize --bind /proc/self/fd/5 /tmp/ci")
    assert "mount --no-canonicalize -o remount,bind,ro /tmp/ci" in script


class _Secrets:
    """An Api with one Secret (as the API server returns it: base64 data)."""

    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = {k: base64.b64encode(v).decode() for k, v in data.items()}

    def secret(self, namespace: str, name: str) -> dict | None:
        return {"data": self.data} if name == "tls" else None

    def configmap(self, namespace: str, name: str) -> dict | None:
        return None

    def token(self, pod: dict, sa: str, audience: str | None, seconds: int) -> str:
        return ""


def test_a_secret_volume_with_items_shows_only_those_keys(tmp_path) -> None:
    """As a real kubelet: `items` selects keys (renamed to their paths); the others, e.g.
    another role's private key, never reach the pod's folder; a missing key fails the pod."""
    api = _Secrets({"ca.crt": b"CA", "worker.crt": b"W", "worker.key": b"WK",
                    "master.key": b"MK"})
    items = [{"key": "ca.crt", "path": "ca.crt"}, {"key": "worker.crt", "path": "tls.crt"},
             {"key": "worker.key", "path": "tls.key"}]
    pod = {"metadata": {"namespace": "ns"},
           "spec": {"volumes": [{"name": "tls", "secret": {"secretName": "tls", "items": items}},
                                {"name": "all", "secret": {"secretName": "tls"}}]}}
    vols = podenv.prepare_volumes(api, pod, tmp_path / "pod", tmp_path / "node", b"")
    assert sorted(p.name for p in vols["tls"].iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert (vols["tls"] / "tls.key").read_bytes() == b"WK"
    assert sorted(p.name for p in vols["all"].iterdir()) == sorted(api.data)
    pod["spec"]["volumes"] = [{"name": "tls", "secret": {
        "secretName": "tls", "items": [{"key": "nope", "path": "x"}]}}]
    with pytest.raises(podenv.PodEnvError, match="no key 'nope'"):
        podenv.prepare_volumes(api, pod, tmp_path / "pod2", tmp_path / "node", b"")
