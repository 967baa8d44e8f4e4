"""Session fixture: the local control plane of scripts/k8s, the same code as `make cluster-up`.

The cluster (etcd, kube-apiserver, kube-controller-manager, the process
kubelet) starts once per session in a temporary folder, with the chart
installed as release `trafficdl` in namespace `trafficdl`; at the end it is
stopped, the test checks that none of its processes is left, and the folder
is removed (kept, with every component's and pod's log, when a test failed). The pinned
binaries come from scripts/k8s/build.sh: when they are not built, the tests
skip with "[needs k8s-binaries]" (TRAFFICDL_K8S_BUILD=1 builds them here
instead, 20-40 min cold on 2 cores). Pods run in private mount namespaces,
which needs root ("[needs root]").
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts" / "k8s"))

from k8s_support import Kube  # noqa: E402
from localcluster import chart, procs  # noqa: E402
from localcluster.control import Cluster, ClusterError, binaries  # noqa: E402
from support.tools import skip_needing  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        skip_needing("root", "the process kubelet runs pods in mount namespaces (unshare -m)")
    try:
        bins = binaries(build=os.environ.get("TRAFFICDL_K8S_BUILD") == "1")
    except ClusterError as exc:
        skip_needing("k8s-binaries", f"{exc}; `make k8s-binaries` builds them")
    # Not under pytest's basetemp: a concurrent pytest session prunes old basetemps.
    c = Cluster(Path(tempfile.mkdtemp(prefix="trafficdl-k8s-")), bins)
    try:
        c.up()
        chart.install(c)
        yield c
    finally:
        pids = [int(p.read_text()) for p in (c.folder / "pids").glob("*")] \
            if (c.folder / "pids").is_dir() else []
        c.down()
        left = [pid for pid in pids if procs.alive(pid)]
        assert not left, f"processes left after down(): {left}"
        if request.session.testsfailed:
            print(f"\nk8s cluster folder kept for its logs: {c.folder}")
        else:
            shutil.rmtree(c.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster)
