"""Fault tolerance costs: detecting a lost worker, resuming a killed master, checkpoint-before-ack.

Real master and worker processes (`python -m trafficdl_master` / `trafficdl_worker`,
token in the environment) training a small LSTM run on loopback, real SIGKILLs:

- lost-worker detection: from SIGKILL of a worker to the master's Status
  counting it lost, next to the configured `lost_after` (the floor);
- master resume: from spawning the replacement master to (a) listening and
  (b) the first commit acknowledged by it (workers retry with backoff and
  re-register), next to a fresh master's spawn-to-listening in the same run;
- durable acks: T of the same run with every acknowledgement durable (K = 1,
  the default: commit log with group commit, recovery.py) and with epoch
  checkpoints only (K = 0),
  run back to back; plus one save of a CNN-sized (23 MB) centre.
Medians over repeats; this 2-core machine is shared, so read ratios, not absolutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.table import Row, pick

LOST_AFTER = 2.0
HEARTBEAT = 0.5


def _dataset(out: Path) -> Path:
    """Three classes told apart by packet sizes (tests/support/datasets.py)."""
    from tests.support.datasets import make_dataset

    return make_dataset(out, size_noise=300.0, window_step=0.0, window_noise=0.0,
                        iat_step=0.0, meta={})


class _Run:
    """One master and two workers as processes; everything is killed on close()."""

    def __init__(self, root: Path, dataset: Path, epochs: int, checkpoint_every: int = 1) -> None:
        from trafficdl.rpc import security

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.root, self.token, self.run_id = root, security.generate_token(), "bench"
        root.mkdir(parents=True, exist_ok=True)
        self.config = json.dumps({
            "train": {"model": "lstm", "epochs": epochs, "batch_size": 25, "lr": 0.003},
            "dist": {"workers": 2, "algorithm": "aeasgd", "window": 2, "threads_per_worker": 1,
                     "heartbeat_seconds": HEARTBEAT, "lost_after": LOST_AFTER,
                     "checkpoint_every": checkpoint_every},
        })  # fmt: skip
        self.dataset = dataset
        self.procs: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, module: str, env: dict[str, str]) -> subprocess.Popen:
        full = {**os.environ, "OMP_NUM_THREADS": "1", "TRAFFICDL_TOKEN": self.token, **env}
        with (self.root / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", module], env=full, stdout=log,
                                    stderr=subprocess.STDOUT)  # fmt: skip
        self.procs[name] = proc
        return proc

    def start_master(self) -> float:
        """Spawn the master; seconds until it listens."""
        ready = self.root / "port"
        ready.unlink(missing_ok=True)
        t0 = time.perf_counter()
        proc = self._spawn("master", "trafficdl_master", {
            "TRAFFICDL_DATASET": str(self.dataset), "TRAFFICDL_OUT_DIR": str(self.root / "run"),
            "TRAFFICDL_RUN_ID": self.run_id, "TRAFFICDL_RUN_CONFIG": self.config,
            "TRAFFICDL_BIND": f"127.0.0.1:{self.port}",
            "TRAFFICDL_READY_FILE": str(ready)})  # fmt: skip
        while not ready.is_file():
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                log = (self.root / "master.log").read_text()
                raise RuntimeError(f"master did not start: {log}")
            time.sleep(0.005)
        return time.perf_counter() - t0

    def start_workers(self) -> None:
        for rank in (0, 1):
            self._spawn(f"worker-{rank}", "trafficdl_worker", {
                "TRAFFICDL_MASTER_ADDR": f"127.0.0.1:{self.port}", "TRAFFICDL_RANK": str(rank),
                "TRAFFICDL_RUN_ID": self.run_id, "TRAFFICDL_THREADS": "1"})  # fmt: skip

    def status(self) -> Any:
        import grpc

        from trafficdl.rpc.client import ParameterServerClient

        client = ParameterServerClient(f"127.0.0.1:{self.port}", self.run_id, token=self.token)
        try:
            return client.status(timeout=2.0)
        except grpc.RpcError:
            return None
        finally:
            client.close()

    def wait(self, pred: Any, timeout: float = 120.0, poll: float = 0.01) -> Any:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            st = self.status()
            if st is not None and pred(st):
                return st
            time.sleep(poll)
        raise RuntimeError(f"timed out: {(self.root / 'master.log').read_text()[-1500:]}")

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def _one_fault_round(root: Path, dataset: Path) -> dict[str, float]:
    # Far more epochs than the round lasts (it is killed once measured): the surviving
    # worker must still be training when the master comes back, however fast it is.
    run = _Run(root, dataset, epochs=2000)
    try:
        fresh = run.start_master()
        run.start_workers()
        run.wait(lambda s: s.commits_total >= 40)
        run.kill("worker-1")
        t_kill = time.perf_counter()
        run.wait(lambda s: s.workers_lost >= 1, timeout=30)
        detect = time.perf_counter() - t_kill
        run.kill("master")
        t_spawn = time.perf_counter()
        listening = run.start_master()
        restored = run.wait(lambda s: s.restarts == 1).update_counter
        run.wait(lambda s: s.update_counter > restored, timeout=60)
        first_ack = time.perf_counter() - t_spawn
        return {"fresh": fresh, "detect": detect, "listening": listening, "first_ack": first_ack}
    finally:
        run.close()


def _training_seconds(root: Path, dataset: Path, every: int) -> float:
    run = _Run(root, dataset, epochs=20, checkpoint_every=every)
    try:
        run.start_master()
        run.start_workers()
        if run.procs["master"].wait(timeout=300) != 0:
            raise RuntimeError((root / "master.log").read_text()[-1500:])
        return json.loads((root / "run" / "run.json").read_text())["training_seconds"]
    finally:
        run.close()


def run(quick: bool) -> list[Row]:
    from trafficdl_master.snapshot_store import benchmark

    repeats = pick(full=3, quick=1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        dataset = _dataset(tmp / "ds")
        rounds = [_one_fault_round(tmp / f"f{i}", dataset) for i in range(repeats)]
        k1, k0 = [], []
        for i in range(repeats):  # alternate, so load hits both alike
            k1.append(_training_seconds(tmp / f"k1-{i}", dataset, 1))
            k0.append(_training_seconds(tmp / f"k0-{i}", dataset, 0))
        save = benchmark(tmp / "ckpt", repeats=pick(full=5, quick=3, smoke=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    n = f"median of {repeats}; LSTM, 2 workers, loopback"
    return [
        Row("faults", "lost worker detected (SIGKILL -> Status lost)", med("detect"), "s",
            "configured lost_after", LOST_AFTER, f"{n}; heartbeat {HEARTBEAT} s"),
        Row("faults", "restarted master listening (spawn -> port)", med("listening"), "s",
            "fresh master, same run", med("fresh"), f"{n}; includes latest_good() restore"),
        Row("faults", "restarted master: spawn -> first acked commit", med("first_ack"), "s",
            "restarted master listening", med("listening"), f"{n}; workers retry + re-register"),
        Row("faults", "T with every ack durable (K=1, commit log)", statistics.median(k1), "s",
            "T with epoch checkpoints only (K=0)", statistics.median(k0),
            f"{n}; 20 epochs, window 2 (~200 commits)"),
        Row("faults", "checkpoint save, 23 MB CNN centre", save["save_s"] * 1000, "ms",
            "load + verify", save["load_s"] * 1000, "median; fsyncs included"),
    ]  # fmt: skip
