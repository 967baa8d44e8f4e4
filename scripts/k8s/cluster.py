#!/usr/bin/env python3
"""`make cluster-up` / `make cluster-down`: a local control plane with the chart installed.

up: build or reuse the pinned binaries (build.sh), start etcd, kube-apiserver,
kube-controller-manager and the process kubelet (localcluster/), install the
chart with Helm into namespace `trafficdl`, write <folder>/kubeconfig.
down: stop every process of the cluster and check that none is left.
Usage: cluster.py up|down|status [--folder .cluster] [--no-chart]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster import chart
from localcluster.control import Cluster, ClusterError

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cluster.py", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--folder", type=Path, default=ROOT / ".cluster")
    p.add_argument("--no-chart", action="store_true", help="do not install the chart")
    args = p.parse_args(argv)
    cluster = Cluster(args.folder)
    try:
        if args.action == "up":
            t0 = time.monotonic()
            cluster.up()
            if not args.no_chart:
                chart.install(cluster)
            print(f"cluster up in {time.monotonic() - t0:.0f} s; "
                  f"export KUBECONFIG={cluster.kubeconfig}; "
                  f"kubectl: {cluster.bins.kubectl}; helm: {cluster.bins.helm}")
        elif args.action == "down":
            stopped = cluster.down()
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        else:
            print(cluster.kubectl("get", "nodes,pods", "-A", "-o", "wide").stdout)
    except (ClusterError, OSError) as exc:
        print(f"cluster.py {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
