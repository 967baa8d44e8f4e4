"""`trafficdl train --workers N` (launch.run_local): per-run token, and a killed worker restarted.

The launcher gives master and workers a fresh token in their environment
(never on a command line), and restarts a worker that crashed, as a pod's
restart policy would: here worker 1 is SIGKILLed mid-run (found through /proc
by its run id and rank), the launcher restarts it, it resumes from its last
acknowledged commit and the run completes with exactly the commits of an
undisturbed run.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

from faults_cluster import make_dataset, run_processes

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.launch import run_local
from trafficdl.rpc.v1 import parameter_server_pb2 as pb


def test_run_local_token_and_worker_restart(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", per_class=200)
    run_id = f"launch{os.getpid()}"
    train = TrainConfig(model="lstm", epochs=30, batch_size=25, lr=0.003, seed=11)
    dist = DistConfig(workers=2, window=2, threads_per_worker=1, heartbeat_seconds=0.3,
                      lost_after=1.5)  # fmt: skip
    seen: dict[str, object] = {}

    def on_status(st: pb.StatusResponse) -> None:
        if "killed" in seen or st.commits_total < 60:
            return
        procs = run_processes(run_id)
        tokens = {env.get("TRAFFICDL_TOKEN") for env in procs.values()}
        seen["tokens"], seen["cmdlines"] = tokens, [e["_cmdline"] for e in procs.values()]
        worker1 = [pid for pid, env in procs.items() if env.get("TRAFFICDL_RANK") == "1"]
        assert len(worker1) == 1, procs.keys()
        os.kill(worker1[0], signal.SIGKILL)
        seen["killed"] = worker1[0]

    result = run_local(dataset, train, dist, tmp_path / "run", progress=False,
                       on_status=on_status, run_id=run_id)  # fmt: skip
    assert "killed" in seen, "the run ended before the kill"
    (token,) = seen["tokens"]  # one token, shared by master and workers
    assert token and len(token) >= 32
    assert not any(token in c for c in seen["cmdlines"])  # not on any command line (ps)
    log1 = Path(result["logs"]["worker-1"]).read_text()
    assert "launcher: worker-1 exited with code -9; restarting it (1)" in log1
    assert "rank 1 resumes at batch" in log1
    run = result.run
    assert run["rejoins"] == 1 and run["commits_rejected"] == 0
    batches = [train.epochs * math.ceil(r / train.batch_size) for r in run["split"]["partitions"]]
    assert run["commits_total"] == sum((b - 1) // dist.window + 1 for b in batches)
    assert result.figures["macro_f1"] > 0.6
    assert token not in Path(result["logs"]["master"]).read_text()
    assert token not in (result.out_dir / "run.json").read_text()
