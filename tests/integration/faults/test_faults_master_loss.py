"""The master SIGKILLed mid-run and restarted resumes from its checkpoint.

Real master and worker processes (faults_cluster.Cluster) on a fixed port.

Kill and restart: the workers retry through the outage (backoff + jitter),
register again with the new master, and the run completes. With
checkpoint-before-ack nothing acknowledged is lost: the update counters in the
run's commit history are exactly 1..N (never backwards, no gap, no double
fold), the run made exactly the commits an undisturbed run makes, and T
includes the outage (as a cloud bill would).

Corrupt the newest checkpoint before the restart: the master logs and sets it
aside, resumes from the previous one, the rank whose acknowledged commit was
in the torn file is told to resume earlier and redoes those batches, and the
run completes with a consistent history.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest
from faults_cluster import Cluster, make_dataset

TRAIN = {"model": "lstm", "epochs": 30, "batch_size": 25, "lr": 0.003, "seed": 5}
DIST = {"workers": 2, "algorithm": "aeasgd", "window": 2, "threads_per_worker": 1,
        "heartbeat_seconds": 0.3, "lost_after": 5.0}  # fmt: skip
OUTAGE_S = 1.5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("mloss") / "ds", per_class=200)


def _expected_commits(run: dict) -> int:
    """Regular commits every `window` batches (not at the very end) + one final per rank."""
    epochs, window = run["epochs"], DIST["window"]
    parts = run["split"]["partitions"]
    batches = [epochs * math.ceil(rows / TRAIN["batch_size"]) for rows in parts]
    return sum((b - 1) // window + 1 for b in batches)


def _kill_master_mid_run(cl: Cluster) -> tuple[float, float]:
    """Start the run, SIGKILL the master a third through; returns (T seen before, kill time)."""
    cl.start_all()
    st = cl.wait_status(lambda s: s.commits_total >= 100, 120, "100 commits")
    t_before = st.training_seconds
    cl.kill("master")
    return t_before, time.monotonic()


@pytest.mark.parametrize("overlap", [False, True], ids=["blocking", "overlap"])
def test_master_killed_and_restarted_loses_nothing_acknowledged(
    tmp_path: Path, dataset: Path, overlap: bool
) -> None:
    # With overlap the commit in flight when the master dies is on the exchange thread:
    # its retries, the re-registration and any rewind reach the loop when it lands.
    with Cluster(tmp_path, dataset, train=TRAIN, dist={**DIST, "overlap": overlap}) as cl:
        t_before, t_kill = _kill_master_mid_run(cl)
        time.sleep(OUTAGE_S)  # the pod is being rescheduled
        t_spawn = time.monotonic()
        startup = cl.start_master()
        resumed = cl.wait_status(lambda s: s.restarts == 1, 30, "the restarted master")
        assert resumed.training_seconds >= t_before + (t_spawn - t_kill)
        assert cl.wait_master(timeout=180) == 0
        run, history = cl.run_json(), cl.history()
        master_log = cl.log("master")
        worker_logs = cl.log("worker-0") + cl.log("worker-1")
        for rank in (0, 1):
            assert cl.procs[f"worker-{rank}"].wait(timeout=30) == 0

    restored = int(re.search(r"resumed run \S+ from \S+: update (\d+)", master_log).group(1))
    # Status counts a commit at its fold; one folded but not yet saved (so never
    # acknowledged) when the master died is resent by its worker: at most one per rank.
    assert restored >= 100 - DIST["workers"]
    counters = [c["counter"] for c in history["commits"]]
    assert counters == list(range(1, len(counters) + 1)), "a counter went backwards or skipped"
    assert run["commits_total"] == len(counters)
    if overlap:  # windows grow while an exchange is in flight: at most the blocking count
        assert run["exchange"]["overlap"] and run["commits_total"] <= _expected_commits(run)
    else:
        assert run["commits_total"] == _expected_commits(run)
    assert run["restarts"] == 1 and run["rejoins"] == 2  # both ranks registered again
    assert run["training_seconds"] >= t_before + (t_spawn - t_kill)
    assert re.search(r"(commit|pull) attempt 1 failed \(UNAVAILABLE", worker_logs)  # retried
    assert "registered again; master resumes it at batch" in worker_logs
    print(f"master restart: spawn to listening {startup:.2f} s, outage {t_spawn - t_kill:.2f} s, "
          f"resumed at update {restored}, T {run['training_seconds']:.2f} s")  # fmt: skip


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(
    tmp_path: Path, dataset: Path
) -> None:
    with Cluster(tmp_path, dataset, train=TRAIN, dist=DIST) as cl:
        _kill_master_mid_run(cl)
        ckpts = sorted(cl.checkpoint_dir().glob("ckpt-*.tdlckpt"))
        newest, previous = ckpts[-1], ckpts[-2]
        newest_counter = int(re.search(r"-u(\d+)\.", newest.name).group(1))
        previous_counter = int(re.search(r"-u(\d+)\.", previous.name).group(1))
        with newest.open("r+b") as f:  # a torn write: garbage over the middle of the file
            f.seek(newest.stat().st_size // 2)
            f.write(b"\xff" * 64)
        cl.start_master()
        assert cl.wait_master(timeout=180) == 0
        run, history = cl.run_json(), cl.history()
        master_log = cl.log("master")
        worker_logs = cl.log("worker-0") + cl.log("worker-1")

    assert newest.with_name(newest.name + ".corrupt").is_file()
    assert f"checkpoint rejected, trying an older one: {newest.name}: checksum" in master_log
    # The previous checkpoint plus the commit log after it (commitlog.py): the restart
    # gets past the torn newest checkpoint, to the last acknowledged commit.
    resumed = re.search(rf"from {re.escape(previous.name)}: update (\d+)", master_log)
    assert resumed and int(resumed[1]) >= newest_counter > previous_counter
    assert "logged commits after the checkpoint" in master_log
    # The acknowledged commits in the torn file were redone by their rank: a rank the
    # master resumed behind its last acknowledged batch rewound to the resume point.
    # Not every run has one: the torn file's newest commit is unacknowledged when the
    # master died between saving it and its reply reaching the worker (seen: u107 torn,
    # its commit rank 0's batch 110, rank 0 "resumes at batch 108 (worker at 108)"); that
    # rank resends the commit (same sequence), and nothing needs redoing. The commit
    # count below checks that nothing was lost either way.
    rejoins = re.findall(r"rank (\d+) registered again; master resumes it at batch (\d+) "
                         r"\(worker at (\d+)\)", worker_logs)  # fmt: skip
    assert {int(r) for r, _, _ in rejoins} == {0, 1}
    for rank, resume, acked in rejoins:
        if int(resume) < int(acked):
            assert (f"master resumes rank {rank} at batch {resume}: "
                    "restarting local training from there") in worker_logs  # fmt: skip
    counters = [c["counter"] for c in history["commits"]]
    assert counters == list(range(1, len(counters) + 1))
    assert run["commits_total"] == _expected_commits(run) and run["restarts"] == 1
