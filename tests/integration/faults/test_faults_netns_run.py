"""A real training run across network namespaces survives a worker's cut link.

The master and two workers run as the real processes in three network
namespaces joined by a bridge (netns_harness): separate "hosts" with their
own addresses. Worker 1's cable is pulled for CUT_S seconds, longer than
`lost_after`, so the master marks it lost; when the link comes back the worker
finds the master no longer counts it, registers again, resumes at its last
acknowledged commit, and the run completes with exactly the commits of an
undisturbed run. Skipped, with the reason, where namespaces cannot be made
(not root, no iproute2).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from faults_cluster import Cluster, durable_commits, make_dataset
from netns_harness import NetnsLab, unavailable_reason
from support.tools import needs

REASON = unavailable_reason()
pytestmark = needs("netns", REASON)
CUT_S = 4.0
TRAIN = {"model": "lstm", "epochs": 30, "batch_size": 25, "lr": 0.003, "seed": 7}
DIST = {"workers": 2, "algorithm": "aeasgd", "window": 2, "threads_per_worker": 1,
        "heartbeat_seconds": 0.3, "lost_after": 2.0}  # fmt: skip


def _commits_so_far(cl: Cluster) -> int:
    """Commits acknowledged so far (the master's commit log, on the filesystem every
    namespace shares)."""
    return durable_commits(cl.checkpoint_dir())


def test_worker_link_cut_and_restored_run_completes(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", per_class=200)
    with NetnsLab() as lab:
        master = lab.add_host("master")
        lab.add_host("worker-0")
        lab.add_host("worker-1")
        with Cluster(tmp_path, dataset, train=TRAIN, dist=DIST, bind_host=master.address,
                     port=50051, popen=lab.popen, allow_plaintext=True) as cl:  # fmt: skip
            cl.start_all()
            deadline = time.monotonic() + 120
            while _commits_so_far(cl) < 60:
                cl._check_alive()
                assert time.monotonic() < deadline, cl.log("master")[-2000:]
                time.sleep(0.05)
            lab.cut("worker-1")
            time.sleep(CUT_S)
            lab.restore("worker-1")
            t_restored = time.monotonic()
            assert cl.wait_master(timeout=180) == 0
            for rank in (0, 1):
                assert cl.procs[f"worker-{rank}"].wait(timeout=30) == 0
            run = cl.run_json()
            master_log, worker_log = cl.log("master"), cl.log("worker-1")

    assert "rank 1 lost: no heartbeat for 2 s" in master_log
    assert "rank 1 rejoined, resumes at batch" in master_log
    assert "rank 1 registered again" in worker_log
    assert run["rejoins"] == 1 and run["commits_rejected"] == 0
    parts = run["split"]["partitions"]
    batches = [TRAIN["epochs"] * math.ceil(rows / TRAIN["batch_size"]) for rows in parts]
    assert run["commits_total"] == sum((b - 1) // DIST["window"] + 1 for b in batches)
    print(f"link cut {CUT_S} s; run done {time.monotonic() - t_restored:.1f} s after restore")
