"""The local control plane: etcd + kube-apiserver + kube-controller-manager + our kubelet.

`Cluster(folder).up()` is what `make cluster-up` runs and what the pytest
fixture of tests/integration/k8s runs: one code path. Everything listens on
127.0.0.1 at free ports; the Service ClusterIP range is only allocated, never
dialled (the process kubelet resolves Service names to pod loopback IPs, see
kubelet/network.py). State (certificates, etcd data, logs, pids) lives in the
cluster folder; `down()` stops every recorded process and leaves none.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from localcluster import procs
from localcluster.pki import Pair, Pki

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE.parent / "build.sh"
NODE = "trafficdl-node"
SERVICE_CIDR = "10.96.0.0/16"  # allocated by the API server, never dialled
CONTROLLERS = ",".join([
    "garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
    "serviceaccount-token-controller", "root-ca-certificate-publisher-controller",
    "deployment-controller", "replicaset-controller", "job-controller",
    "endpointslice-controller", "ttl-after-finished-controller",
])
ADMISSION = ",".join([
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "DefaultTolerationSeconds",
    "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook", "ValidatingAdmissionPolicy",
    "ResourceQuota", "NodeRestriction", "OwnerReferencesPermissionEnforcement",
    "PodSecurity", "Priority",
])
STOP_ORDER = ["kubelet", "kube-controller-manager", "kube-apiserver", "etcd"]


class ClusterError(RuntimeError):
    """A one-line reason the cluster could not start (missing binary, timeout)."""


@dataclass(frozen=True)
class Binaries:
    etcd: str
    kube_apiserver: str
    kube_controller_manager: str
    kubectl: str
    helm: str
    kube_version: str


def binaries(build: bool = True) -> Binaries:
    """Paths of the pinned binaries; builds the missing ones first when `build`."""
    args = [str(BUILD_SH)] if build else [str(BUILD_SH), "--print-paths"]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["binaries not built"])[-1]
        raise ClusterError(f"{BUILD_SH.name}: {tail} (run scripts/k8s/build.sh)")
    vals = dict(line.split("=", 1) for line in res.stdout.split() if "=" in line)
    return Binaries(**{k.lower(): v for k, v in vals.items()})


def _kubeconfig(path: Path, server: str, ca: Path, user: Pair | None = None,
                token: str | None = None) -> Path:
    auth: dict[str, str] = {}
    if user is not None:
        auth = {"client-certificate": str(user.cert), "client-key": str(user.key)}
    if token is not None:
        auth = {"token": token}
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "trafficdl-local",
        "clusters": [{"name": "trafficdl-local",
                      "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "user", "user": auth}],
        "contexts": [{"name": "trafficdl-local",
                      "context": {"cluster": "trafficdl-local", "user": "user"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@dataclass
class State:
    server: str
    etcd: str
    kube_version: str


class Cluster:
    def __init__(self, folder: Path, bins: Binaries | None = None) -> None:
        self.folder = folder.resolve()
        self.pki_dir = self.folder / "pki"
        self._bins = bins

    @property
    def bins(self) -> Binaries:
        if self._bins is None:
            self._bins = binaries(build=True)
        return self._bins

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    def state(self) -> State:
        return State(**json.loads((self.folder / "state.json").read_text()))

    def env(self) -> dict[str, str]:
        """Environment for kubectl/helm against this cluster (PATH led by the pinned tools)."""
        bin_dirs = {str(Path(self.bins.kubectl).parent), str(Path(self.bins.helm).parent)}
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "PATH": os.pathsep.join([*sorted(bin_dirs), os.environ.get("PATH", "")]),
                "HELM_CACHE_HOME": str(self.folder / "helm" / "cache"),
                "HELM_CONFIG_HOME": str(self.folder / "helm" / "config"),
                "HELM_DATA_HOME": str(self.folder / "helm" / "data")}

    def up(self, timeout: float = 180.0) -> None:
        if (self.folder / "pids").is_dir() and any((self.folder / "pids").iterdir()):
            self.down()
        self.folder.mkdir(parents=True, exist_ok=True)
        bins, d = self.bins, self.folder
        pki = Pki(self.pki_dir)
        serving = pki.leaf("apiserver", "kube-apiserver", server=True)
        admin = pki.leaf("admin", "trafficdl-admin", "system:masters")
        kcm = pki.leaf("kcm", "system:kube-controller-manager")
        kubelet = pki.leaf("kubelet", f"system:node:{NODE}", "system:nodes")
        scheduler = pki.leaf("scheduler", "system:kube-scheduler")
        sa = pki.service_account_keys()
        etcd_port, peer_port, api_port = procs.free_port(), procs.free_port(), procs.free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        server = f"https://127.0.0.1:{api_port}"
        procs.start(d, "etcd", [
            bins.etcd, "--name=trafficdl", f"--data-dir={d / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=trafficdl=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--quota-backend-bytes=2147483648", "--log-level=warn"])
        procs.start(d, "kube-apiserver", [
            bins.kube_apiserver, f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}", f"--cert-dir={d / 'pki'}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={pki.ca}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", f"--enable-admission-plugins={ADMISSION}",
            "--allow-privileged=false", "--profiling=false", "--v=1"])
        self._wait_ready(server, pki.ca, admin, timeout)
        _kubeconfig(self.kubeconfig, server, pki.ca, admin)
        kcm_cfg = _kubeconfig(d / "kcm.kubeconfig", server, pki.ca, kcm)
        procs.start(d, "kube-controller-manager", [
            bins.kube_controller_manager, f"--kubeconfig={kcm_cfg}",
            f"--authentication-kubeconfig={kcm_cfg}", f"--authorization-kubeconfig={kcm_cfg}",
            f"--controllers={CONTROLLERS}", "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa.key}", f"--root-ca-file={pki.ca}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--bind-address=127.0.0.1",
            f"--secure-port={procs.free_port()}", f"--cert-dir={d / 'pki'}", "--v=1"])
        kubelet_cfg = _kubeconfig(d / "kubelet.kubeconfig", server, pki.ca, kubelet)
        sched_cfg = _kubeconfig(d / "scheduler.kubeconfig", server, pki.ca, scheduler)
        procs.start(d, "kubelet", [
            sys.executable, "-m", "localcluster.kubelet", f"--kubeconfig={kubelet_cfg}",
            f"--scheduler-kubeconfig={sched_cfg}", f"--ca={pki.ca}",
            f"--folder={d / 'node'}", f"--node-name={NODE}", f"--api-server={server}",
            f"--pids={d / 'pids'}"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(HERE.parent), os.environ.get("PYTHONPATH", "")])})
        (d / "state.json").write_text(json.dumps(asdict(State(server, etcd_url,
                                                               bins.kube_version))))
        self._wait_node(timeout)

    def _wait_ready(self, server: str, ca: Path, admin: Pair, timeout: float) -> None:
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(admin.cert), str(admin.key))
        deadline, last = time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            self._check_alive(["etcd", "kube-apiserver"])
            try:
                with urllib.request.urlopen(f"{server}/readyz", context=ctx, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise ClusterError(f"kube-apiserver not ready after {timeout:.0f} s: {last} "
                           f"(see {self.folder / 'logs'})")

    def _check_alive(self, names: list[str]) -> None:
        for name in names:
            pid = int((self.folder / "pids" / name).read_text())
            if not procs.alive(pid):
                log = (self.folder / "logs" / f"{name}.log").read_text(errors="replace")
                tail = " | ".join(log.strip().splitlines()[-3:])
                raise ClusterError(f"{name} exited: {tail}")

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([self.bins.kubectl, *args], capture_output=True, text=True,
                             env=self.env(), input=input, timeout=timeout)
        if check and res.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
        return res

    def _wait_node(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(["kube-controller-manager", "kubelet"])
            res = self.kubectl("get", "node", NODE, "-o",
                               "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                               check=False)
            sa = self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False)
            if res.stdout.strip() == "True" and sa.returncode == 0:
                return
            time.sleep(0.5)
        raise ClusterError(f"node {NODE} not Ready after {timeout:.0f} s")

    def down(self) -> list[str]:
        return procs.stop_all(self.folder, STOP_ORDER)
