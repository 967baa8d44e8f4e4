"""A worker SIGKILLed mid-run is detected, restarted, and the run completes.

Real master and worker processes (faults_cluster.Cluster), real signals.

Asynchronous (AEASGD): worker 1 is SIGKILLed once the run is about a third
through; the master marks it lost after `lost_after` without a heartbeat
(Status workers_lost, log, metric); a new worker process with the same rank
registers again, is told to resume at its last acknowledged batch, and the run
completes. Because the master checkpoints before it acknowledges and the
restarted worker resumes exactly at its last acknowledged commit, the run makes
exactly as many commits as an undisturbed one; its macro F stays within
F_MARGIN of the undisturbed run with the same seed.

Synchronous (EASGD): with worker 1 killed, the barrier waits `sync_timeout`,
then folds the round without it and says so (Status message, log, run.json);
the restarted worker rejoins and the run completes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from faults_cluster import Cluster, make_dataset

# Measured on this fixture (30 epochs, 2 workers): undisturbed macro F 0.93-0.97;
# disturbed runs within 0.03 of it. 0.1 leaves room for a loaded 2-core box.
F_MARGIN = 0.10
TRAIN = {"model": "lstm", "epochs": 30, "batch_size": 25, "lr": 0.003, "seed": 3}
ASYNC = {"workers": 2, "algorithm": "aeasgd", "window": 2, "threads_per_worker": 1,
         "heartbeat_seconds": 0.3, "lost_after": 1.5}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("loss") / "ds", per_class=200)


def _run_undisturbed(root: Path, dataset: Path, dist: dict) -> dict:
    with Cluster(root, dataset, train=TRAIN, dist=dist) as cl:
        cl.start_all()
        assert cl.wait_master(timeout=180) == 0
        return cl.run_json()


def test_async_worker_killed_and_restarted_completes_close_to_undisturbed(
    tmp_path: Path, dataset: Path
) -> None:
    baseline = _run_undisturbed(tmp_path / "base", dataset, ASYNC)
    with Cluster(tmp_path / "hit", dataset, train=TRAIN, dist=ASYNC) as cl:
        cl.start_all()
        total = baseline["commits_total"]
        cl.wait_status(lambda s: s.commits_total >= total // 3, 120, "a third of the commits")
        cl.kill("worker-1")
        lost = cl.wait_status(lambda s: s.workers_lost >= 1, 30, "the loss to be noticed")
        assert lost.workers_connected + lost.workers_finished == 1 and "rank 1 lost" in lost.message
        cl.start_worker(1)  # same rank, a new process: what a restartPolicy does
        assert cl.wait_master(timeout=180) == 0
        run = cl.run_json()
        master_log, worker_log = cl.log("master"), cl.log("worker-1")
        assert cl.procs["worker-0"].wait(timeout=30) == 0
        assert cl.procs["worker-1"].wait(timeout=30) == 0

    assert "rank 1 lost: no heartbeat for 1.5 s" in master_log
    resumed = re.search(r"rank 1 rejoined, resumes at batch (\d+)", master_log)
    assert resumed and int(resumed.group(1)) > 0, master_log[-2000:]
    assert f"rank 1 resumes at batch {resumed.group(1)}" in worker_log
    assert run["rejoins"] == 1 and run["workers_lost"] == 0  # lost, then back
    # Nothing acknowledged was lost or redone: the same commits as undisturbed.
    assert run["commits_total"] == baseline["commits_total"]
    assert run["commits_rejected"] == 0
    f_base, f_hit = baseline["figures"]["macro_f1"], run["figures"]["macro_f1"]
    print(f"macro F undisturbed {f_base:.3f}, worker killed and restarted {f_hit:.3f}")
    assert f_base > 0.6, baseline["figures"]  # the baseline itself learned
    assert abs(f_hit - f_base) <= F_MARGIN


def test_sync_barrier_goes_on_without_a_dead_worker_then_takes_it_back(
    tmp_path: Path, dataset: Path
) -> None:
    dist = {**ASYNC, "algorithm": "easgd", "elastic_lr": 0.09, "sync_timeout": 1.0,
            "lost_after": 60.0}  # fmt: skip - only the barrier's timer can notice
    train = {**TRAIN, "epochs": 12}
    with Cluster(tmp_path, dataset, train=train, dist=dist) as cl:
        cl.start_all()
        cl.wait_status(lambda s: s.update_counter >= 10, 120, "ten synchronous rounds")
        cl.kill("worker-1")
        st = cl.wait_status(lambda s: "folded without a missing worker" in s.message, 30,
                            "the barrier to give up on rank 1")  # fmt: skip
        assert "ranks [1]" in st.message and st.phase == 2  # still running
        before = st.update_counter
        cl.wait_status(lambda s: s.update_counter >= before + 2, 30, "rounds without rank 1")
        cl.start_worker(1)
        assert cl.wait_master(timeout=180) == 0
        run = cl.run_json()
        master_log = cl.log("master")
    assert run["sync_rounds_incomplete"] >= 2 and run["rejoins"] == 1
    assert "folded without a missing worker (ranks [1]) after 1 s" in master_log
    assert "rank 1 rejoined" in master_log
    assert run["figures"]["macro_f1"] > 0.5, run["figures"]
