"""Install, upgrade and uninstall the trafficdl chart with the pinned Helm binary.

The same calls serve `make cluster-up` (release `trafficdl` in namespace
`trafficdl`) and the chart tests. Helm talks to the cluster through the
kubeconfig in `Cluster.env()`; its cache/config live in the cluster folder.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from localcluster.control import Cluster, ClusterError

CHART = Path(__file__).resolve().parents[3] / "charts" / "trafficdl"
RELEASE, NAMESPACE = "trafficdl", "trafficdl"


def helm(cluster: Cluster, *args: str, check: bool = True,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([cluster.bins.helm, *args], capture_output=True, text=True,
                         env=cluster.env(), timeout=timeout)
    if check and res.returncode != 0:
        raise ClusterError(f"helm {args[0]}: {res.stderr.strip()}")
    return res


def install(cluster: Cluster, release: str = RELEASE, namespace: str = NAMESPACE,
            sets: dict[str, str] | None = None, wait: bool = True) -> str:
    """`helm upgrade --install`; returns helm's output."""
    args = ["upgrade", "--install", release, str(CHART), "--namespace", namespace,
            "--create-namespace"]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    if wait:
        args += ["--wait", "--timeout", "180s"]
    return helm(cluster, *args).stdout


def uninstall(cluster: Cluster, release: str = RELEASE, namespace: str = NAMESPACE) -> str:
    return helm(cluster, "uninstall", release, "--namespace", namespace, "--wait").stdout
