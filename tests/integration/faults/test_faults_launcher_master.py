"""`trafficdl train --workers N` survives its master: SIGKILL at a random point.

The launcher (launch.run_local) restarts a dead master as it restarts workers
(budget and backoff, children.py), on the port the workers know; the master
resumes from its newest good checkpoint, the workers retry through the outage,
register again and resume at their acknowledged batches. For a few seeds the
master is SIGKILLed (found through /proc by run id) once the run has folded a
random number of commits; each run must complete with exactly the commits of
an undisturbed run (nothing acknowledged lost, nothing folded twice), count the
restart in run.json, charge the outage to T, and reach a macro F near the
undisturbed run's.
"""

from __future__ import annotations

import math
import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
from faults_cluster import make_dataset, run_processes

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.launch import LocalRunResult, run_local
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

TRAIN = TrainConfig(model="lstm", epochs=20, batch_size=25, lr=0.003, seed=11)
DIST = DistConfig(workers=2, window=2, threads_per_worker=1, heartbeat_seconds=0.3,
                  lost_after=5.0)  # fmt: skip
# Macro F of this run, measured on the 2-core box under load: undisturbed 0.950,
# 0.958, 0.958, 0.966, 0.966, 0.992 (six runs of one seed: asynchronous folds race,
# so they differ), killed at seeds 1-3 in two sessions: 0.958, 0.958, 0.966, 0.966,
# 0.967, 0.983. A restart redoes at most one window per rank, so a killed run must
# stay within the undisturbed spread (0.042 wide): 0.06 around this module's
# undisturbed run (largest difference seen: 0.025).
MACRO_F_TOLERANCE = 0.06


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("lmaster") / "ds", per_class=200)


@pytest.fixture(scope="module")
def undisturbed(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalRunResult:
    return run_local(dataset, TRAIN, DIST, tmp_path_factory.mktemp("calm") / "run",
                     progress=False)  # fmt: skip


def _expected_commits(run: dict) -> int:
    batches = [TRAIN.epochs * math.ceil(r / TRAIN.batch_size) for r in run["split"]["partitions"]]
    return sum((b - 1) // DIST.window + 1 for b in batches)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_master_sigkilled_at_a_random_point_is_restarted_and_the_run_completes(
    dataset: Path, undisturbed: LocalRunResult, tmp_path: Path, seed: int
) -> None:
    total = _expected_commits(undisturbed.run)
    assert undisturbed.run["commits_total"] == total
    kill_at = random.Random(seed).randint(total // 10, total * 8 // 10)
    run_id = f"lm{os.getpid()}s{seed}"
    seen: dict[str, float] = {}

    def on_status(st: pb.StatusResponse) -> None:
        if "killed" in seen or st.commits_total < kill_at:
            return
        [pid] = [p for p, env in run_processes(run_id).items()
                 if "trafficdl_master" in env["_cmdline"]]  # fmt: skip
        os.kill(pid, signal.SIGKILL)
        seen.update(killed=time.monotonic(), t_before=st.training_seconds,
                    commits=st.commits_total)  # fmt: skip

    result = run_local(dataset, TRAIN, DIST, tmp_path / "run", progress=False,
                       on_status=on_status, run_id=run_id)  # fmt: skip
    assert "killed" in seen, "the run ended before the kill"
    run = result.run
    master_log = Path(result["logs"]["master"]).read_text()
    assert "launcher: master exited with code -9; restarting it (1) in 0.5 s" in master_log
    assert result["restarts"]["master"] == 1 and run["restarts"] == 1
    resumed = re.search(r"resumed run \S+ from \S+: update (\d+), T so far ([\d.]+) s "
                        r"\(outage ([\d.]+) s\)", master_log)  # fmt: skip
    assert resumed, master_log[-2000:]
    update, t_so_far, outage = int(resumed[1]), float(resumed[2]), float(resumed[3])
    assert update >= seen["commits"] - DIST.workers  # at most one unacknowledged fold per rank
    assert outage >= 0.5  # the launcher's backoff at least: the outage is charged to T
    assert t_so_far >= seen["t_before"] + 0.5
    assert run["training_seconds"] >= t_so_far
    workers_log = "".join(Path(result["logs"][f"worker-{r}"]).read_text() for r in (0, 1))
    assert "registered again; master resumes it at batch" in workers_log
    # Nothing acknowledged lost, nothing folded twice: the undisturbed commit count,
    # and the update counters in the history are exactly 1..n.
    assert run["commits_total"] == total and run["commits_rejected"] == 0
    history = (result.out_dir / "history.json").read_text()
    counters = [int(c) for c in re.findall(r'"counter": (\d+)', history)]
    assert counters == list(range(1, total + 1))
    f, f0 = result.figures["macro_f1"], undisturbed.figures["macro_f1"]
    print(f"seed {seed}: killed at commit {seen['commits']:.0f}/{total}, outage {outage:.2f} s, "
          f"macro F {f:.3f} (undisturbed {f0:.3f})")  # fmt: skip
    assert abs(f - f0) <= MACRO_F_TOLERANCE
