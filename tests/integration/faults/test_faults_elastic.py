"""Elastic scaling of an asynchronous run: master and workers restarted with another N.

What the Kubernetes operator does on a `spec.workers` change (docs/operator.md):
every pod of the old world is deleted (here: SIGKILLed a third of the way
through), then the master and N' workers are started with
TRAFFICDL_WORLD_SIZE=N'. Real processes (faults_cluster.Cluster), LSTM, a
small learnable dataset, checkpoint before every acknowledgement.

The master resumes its checkpoint with the new world size: the run completes,
the update counter never goes backwards (Status, and the history's counters
are exactly 1..M), run.json records the rescale, every new rank resumed at the
slowest old rank's acknowledged epoch and made exactly the commits its
remaining batches call for, ending with one final commit at the last epoch;
cost and node-hours integrate N(t); the centre model is well above chance.
"""

from __future__ import annotations

import math
import time
import urllib.request
from pathlib import Path

import pytest
from faults_cluster import Cluster, free_port, make_dataset

TRAIN = {"model": "lstm", "epochs": 12, "batch_size": 25, "lr": 0.003, "seed": 5}
DIST = {"algorithm": "aeasgd", "window": 2, "threads_per_worker": 1, "checkpoint_every": 1,
        "heartbeat_seconds": 0.3, "lost_after": 20.0, "worker_price": 1.0,
        "master_price": 3.0}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("elastic") / "ds", per_class=200)


def _per_epoch(rows: int) -> int:
    return math.ceil(rows / TRAIN["batch_size"])


@pytest.mark.parametrize(("old", "new"), [(2, 3), (3, 2)])
def test_async_run_resumes_with_another_world_size(
    tmp_path: Path, dataset: Path, old: int, new: int
) -> None:
    with Cluster(tmp_path, dataset, train=TRAIN, dist={**DIST, "workers": old}) as cl:
        cl.start_all()
        # A third of the way: the old world makes ~12·20/2 = 120 commits in all.
        seen = cl.wait_status(lambda s: s.commits_total >= 40, 180, "a third of the run")
        for name in ["master", *(f"worker-{r}" for r in range(old))]:
            cl.kill(name)  # the operator deletes every pod of the old world
        t0 = time.monotonic()
        cl.workers, cl.dist = new, {**DIST, "workers": new}
        metrics_port = free_port()
        cl.start_master(metrics_port=metrics_port)
        st = cl.wait_status(lambda s: s.restarts == 1, 30, "the rescaled master")
        assert st.world_size == new and f"rescaled from {old} to {new} workers" in st.message
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        assert b"trafficdl_master_rescales_total 1.0" in scraped
        for rank in range(new):
            cl.start_worker(rank)
        counters = [st.update_counter]
        while cl.procs["master"].poll() is None and time.monotonic() - t0 < 240:
            s = cl.status(timeout=2.0)
            if s is not None:
                counters.append(s.update_counter)
            cl._check_alive()
            time.sleep(0.2)
        assert cl.wait_master(timeout=30) == 0
        for rank in range(new):
            assert cl.procs[f"worker-{rank}"].wait(timeout=30) == 0
        run, history = cl.run_json(), cl.history()
        master_log = cl.log("master")

    assert counters == sorted(counters), "the update counter went backwards"
    assert st.update_counter >= seen.update_counter - old  # at most one unsaved fold per rank
    commits = history["commits"]
    assert [c["counter"] for c in commits] == list(range(1, len(commits) + 1))
    assert run["workers"] == new and len(run["split"]["partitions"]) == new
    (rescale,) = run["rescales"]
    assert (rescale["from"], rescale["to"]) == (old, new)
    assert rescale["update_counter"] == st.update_counter and 0 < rescale["epoch"] < 12
    assert f"rescaled run {cl.run_id} from {old} to {new} workers" in master_log
    # Every new rank: resumed at the slowest old rank's epoch, its own batches from there
    # with a commit every window, one final commit at the last epoch.
    after = [c for c in commits if c["counter"] > rescale["update_counter"]]
    for rank, rows in enumerate(run["split"]["partitions"]):
        per, resume = _per_epoch(rows), rescale["resume_batches"][rank]
        assert resume == math.floor(rescale["epoch"] * per + 1e-9)
        mine = [c for c in after if c["rank"] == rank]
        total = TRAIN["epochs"] * per
        assert len(mine) == (total - resume - 1) // DIST["window"] + 1
        assert [c["final"] for c in mine].count(True) == 1 and mine[-1]["final"]
        assert mine[-1]["epoch"] == TRAIN["epochs"]
    assert run["commits_total"] == len(commits) == rescale["update_counter"] + len(after)
    # Cost and node-hours integrate N(t): old N until the rescale, new N after it.
    T, at = run["training_seconds"], rescale["at_seconds"]
    assert 0 < at < T
    expected_cost = ((1.0 * old + 3.0) * at + (1.0 * new + 3.0) * (T - at)) / 3600
    assert run["cost"] == pytest.approx(expected_cost)
    assert run["node_hours"] == pytest.approx(((old + 1) * at + (new + 1) * (T - at)) / 3600)
    # Status said the same while the new world trained (its T was past the rescale).
    assert st.training_seconds >= at
    st_cost = ((1.0 * old + 3.0) * at + (1.0 * new + 3.0) * (st.training_seconds - at)) / 3600
    assert st.cost == pytest.approx(st_cost)
    assert st.node_hours == pytest.approx(
        ((old + 1) * at + (new + 1) * (st.training_seconds - at)) / 3600
    )
    assert run["figures"]["macro_f1"] >= 0.45  # chance is 0.33 on 3 classes
    print(f"elastic {old}->{new}: rescaled at update {rescale['update_counter']} "
          f"(epoch {rescale['epoch']:.2f}), T {T:.2f} s, macro F "
          f"{run['figures']['macro_f1']:.3f}")  # fmt: skip


def test_surviving_workers_rejoin_the_new_world_on_their_new_partition(
    tmp_path: Path, dataset: Path
) -> None:
    """Only the master is restarted with N' = 3: workers 0 and 1 of the old world retry,
    register again, are told the new world size and rewind onto their new partition
    at the common resume point; rank 2 joins fresh."""
    with Cluster(tmp_path, dataset, train=TRAIN, dist={**DIST, "workers": 2}) as cl:
        cl.start_all()
        cl.wait_status(lambda s: s.commits_total >= 40, 180, "a third of the run")
        cl.kill("master")
        cl.workers, cl.dist = 3, {**DIST, "workers": 3}
        cl.start_master()
        cl.start_worker(2)
        assert cl.wait_master(timeout=240) == 0
        for rank in range(3):
            assert cl.procs[f"worker-{rank}"].wait(timeout=30) == 0
        run, history = cl.run_json(), cl.history()
        survivors = cl.log("worker-0") + cl.log("worker-1")

    assert survivors.count("restarting local training from there") == 2
    (rescale,) = run["rescales"]
    commits = history["commits"]
    assert [c["counter"] for c in commits] == list(range(1, len(commits) + 1))
    after = [c for c in commits if c["counter"] > rescale["update_counter"]]
    for rank, rows in enumerate(run["split"]["partitions"]):
        per, resume = _per_epoch(rows), rescale["resume_batches"][rank]
        mine = [c for c in after if c["rank"] == rank]
        assert len(mine) == (TRAIN["epochs"] * per - resume - 1) // DIST["window"] + 1
        assert mine[-1]["final"] and mine[-1]["epoch"] == TRAIN["epochs"]
    assert run["figures"]["macro_f1"] >= 0.45


def test_synchronous_run_refuses_another_world_size(tmp_path: Path, dataset: Path) -> None:
    """easgd's barrier and its N·ρ·η ≤ 1 bound belong to one N: the restarted master
    exits 2 with a one-line reason (the operator refuses the change before that)."""
    sync = {**DIST, "algorithm": "easgd", "elastic_lr": 0.06, "workers": 2}
    with Cluster(tmp_path, dataset, train=TRAIN, dist=sync) as cl:
        cl.start_all()
        cl.wait_status(lambda s: s.update_counter >= 5, 180, "a few synchronous rounds")
        for name in ("master", "worker-0", "worker-1"):
            cl.kill(name)
        cl.workers, cl.dist = 3, {**sync, "workers": 3}
        with pytest.raises(AssertionError, match="master exited with 2"):
            cl.start_master()
        log = cl.log("master")
    assert "the synchronous easgd cannot change its world size mid-run" in log
    assert "restart it with world size 2" in log
