"""Run a distributed training on this machine: one real master and N real worker processes.

`run_local` is what `trafficdl train --workers N` calls. It starts
`python -m trafficdl_master` on a free loopback port and N
`python -m trafficdl_worker` processes pointed at it through the same
TRAFFICDL_* variables a Kubernetes pod gets, shows one progress view fed by the
master's Status RPC, and returns the run directory's figures once the master
has written them. Children write their logs under RUN_DIR/logs/ (files, not
pipes, so a chatty child can never block on a full pipe); if any child fails,
every other child is stopped and the error carries the tail of its log.
Threads: N workers share the cores (cores // N torch threads each, at least 1)
unless `threads_per_worker` says otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trafficdl.config import DistConfig, TrainConfig, to_dict
from trafficdl.dataset import Dataset
from trafficdl.distributed.progress import ProgressView
from trafficdl.distributed.rundir import read_run
from trafficdl.distributed.spec import check_dist_config
from trafficdl.errors import TrafficdlError
from trafficdl.rpc import credentials, security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

READY_TIMEOUT = 180.0


class DistributedRunError(TrafficdlError):
    """A master or worker process of a local run failed."""


class LocalRunResult(dict):
    """What a local distributed run produced, shaped like `run_centralized`'s result:
    {"metrics": test figures, "run": run.json, "checkpoint": path, "wall_seconds",
    "out_dir", "logs"} (plain JSON values), with attribute access for convenience."""

    @property
    def run(self) -> dict[str, Any]:
        return self["run"]

    @property
    def figures(self) -> dict[str, Any]:
        """The scalar figures (accuracy, macro recall/precision/F)."""
        return self["run"]["figures"]

    @property
    def metrics(self) -> dict[str, Any]:
        """All test figures (per class, confusion), as metrics.json holds them."""
        return self["metrics"]

    @property
    def out_dir(self) -> Path:
        return Path(self["out_dir"])

    @property
    def checkpoint(self) -> Path:
        return Path(self["checkpoint"])

    @property
    def wall_seconds(self) -> float:
        return self["wall_seconds"]


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen
    log: Path
    cmd: list[str] | None = None
    env: dict[str, str] | None = None
    restarts: int = 0


def threads_per_worker(dist: DistConfig) -> int:
    """Torch threads for each worker: the configured value or an even share of the cores."""
    if dist.threads_per_worker > 0:
        return dist.threads_per_worker
    return max(1, (os.cpu_count() or 1) // max(dist.workers, 1))


def run_local(
    dataset_path: str | Path,
    train_cfg: TrainConfig,
    dist_cfg: DistConfig,
    out_dir: str | Path,
    *,
    t1_seconds: float | None = None,
    progress: bool = True,
    on_status: Callable[[pb.StatusResponse], None] | None = None,
    run_id: str = "",
    metrics_ports: Sequence[int] | None = None,
    extra_env: dict[str, str] | None = None,
    linger: float = 0.0,
    worker_restarts: int = 3,
) -> LocalRunResult:
    """Train with a master and `dist_cfg.workers` worker processes on loopback.

    `metrics_ports` = [master, worker 0, worker 1, ...] exposes Prometheus
    metrics on those ports (missing entries: off); `linger` keeps the master (its
    Status and metrics) up that many seconds after the run. A worker that crashes
    is restarted with its rank up to `worker_restarts` times (it resumes from its
    last acknowledged commit). The run's token goes to the children in
    TRAFFICDL_TOKEN. Raises a TrafficdlError subclass for bad input and for a
    failed child; returns run.json's figures.
    """
    if dist_cfg.workers < 1:
        raise TrafficdlError("a distributed run needs --workers >= 1 (0 is the centralized mode)")
    check_dist_config(dist_cfg)
    Dataset.open(dataset_path)  # fail fast, before any process starts
    out = Path(out_dir)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (out / "run.json").unlink(missing_ok=True)  # never report a previous run's figures
    ports = list(metrics_ports or [])
    run_id = run_id or uuid.uuid4().hex[:12]
    threads = threads_per_worker(dist_cfg)
    # One secret per run, handed to the children in their environment (never on a
    # command line, which `ps` shows every user); extra_env may supply its own.
    token = security.generate_token()
    base_env = {
        **os.environ,
        credentials.TOKEN_ENV: token,
        **(extra_env or {}),
        "PYTHONUNBUFFERED": "1",
    }
    token = base_env[credentials.TOKEN_ENV]
    children: list[_Child] = []
    t0 = time.perf_counter()
    view = ProgressView(enabled=progress, on_status=on_status)
    try:
        ready = logs / "master.port"
        ready.unlink(missing_ok=True)
        config = json.dumps({"train": to_dict(train_cfg), "dist": to_dict(dist_cfg)})
        master_cmd = [
            sys.executable, "-m", "trafficdl_master",
            "--dataset", str(Path(dataset_path).resolve()),
            "--out-dir", str(out.resolve()),
            "--config", config,
            "--world-size", str(dist_cfg.workers),
            "--run-id", run_id,
            "--bind", "127.0.0.1:0",
            "--ready-file", str(ready),
            "--checkpoint-dir", str((out / "checkpoints" / run_id).resolve()),
            "--metrics-port", str(ports[0] if ports else 0),
            "--t1-seconds", str(t1_seconds or 0),
            "--linger", str(linger),
        ]  # fmt: skip
        # One thread while training (folds are memory-bound adds; workers need the
        # cores); the master raises it for the final evaluation.
        master_env = {**base_env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        children.append(_spawn("master", master_cmd, master_env, logs))
        port = _wait_ready(ready, children[0])
        for rank in range(dist_cfg.workers):
            env = {
                **base_env,
                "TRAFFICDL_MASTER_ADDR": f"127.0.0.1:{port}",
                "TRAFFICDL_RANK": str(rank),
                "TRAFFICDL_WORLD_SIZE": str(dist_cfg.workers),
                "TRAFFICDL_RUN_ID": run_id,
                "TRAFFICDL_THREADS": str(threads),
                "TRAFFICDL_METRICS_PORT": str(ports[rank + 1] if len(ports) > rank + 1 else 0),
                "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads),
            }
            cmd = [sys.executable, "-m", "trafficdl_worker"]
            children.append(_spawn(f"worker-{rank}", cmd, env, logs))
        view.start(f"127.0.0.1:{port}", run_id, train_cfg.epochs, token=token)
        _supervise(children, view, worker_restarts)
        run = read_run(out)
        view.finish(run)
    finally:
        view.stop()
        _stop_all(children)
    return LocalRunResult(
        metrics=json.loads((out / "metrics.json").read_text()),
        run=run,
        checkpoint=str(out / "checkpoint.pt"),
        wall_seconds=time.perf_counter() - t0,
        out_dir=str(out),
        master_port=port,
        logs={c.name: str(c.log) for c in children},
    )


def _spawn(
    name: str, cmd: list[str], env: dict[str, str], logs: Path, *, append: bool = False
) -> _Child:
    log = logs / f"{name}.log"
    with log.open("ab" if append else "wb") as fh:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    return _Child(name, proc, log, cmd, env)


def _wait_ready(ready: Path, master: _Child) -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready.is_file():
            return int(ready.read_text())
        if master.proc.poll() is not None:
            raise _failure(master)
        time.sleep(0.05)
    raise DistributedRunError(f"the master did not start in {READY_TIMEOUT:.0f} s")


def _supervise(children: list[_Child], view: ProgressView, worker_restarts: int = 0) -> None:
    """Wait for the master to exit; a crashed worker is restarted with the same rank (it
    resumes from its last acknowledged commit) up to `worker_restarts` times, as a pod's
    restart policy would; any other failed child ends the run with its error."""
    master = children[0]
    while True:
        for i, child in enumerate(children):
            rc = child.proc.poll()
            if rc not in (None, 0):
                # Exit code 2 is a user error (bad flag, dataset): a restart cannot help.
                if child is master or rc == 2 or child.restarts >= worker_restarts:
                    raise _failure(child)
                children[i] = _restart(child, rc)
        if master.proc.poll() == 0:
            return
        view.update()
        time.sleep(0.2)


def _restart(child: _Child, rc: int) -> _Child:
    with child.log.open("ab") as fh:
        fh.write(f"launcher: {child.name} exited with code {rc}; restarting it "
                 f"({child.restarts + 1})\n".encode())  # fmt: skip
    assert child.cmd is not None and child.env is not None
    new = _spawn(child.name, child.cmd, child.env, child.log.parent, append=True)
    new.restarts = child.restarts + 1
    return new


def _failure(child: _Child) -> DistributedRunError:
    tail = _tail(child.log)
    return DistributedRunError(
        f"{child.name} exited with code {child.proc.returncode}: {tail} (log: {child.log})"
    )


def _tail(log: Path, lines: int = 1) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    useful = [t for t in text if t.strip()]
    errors = [t for t in useful if "error" in t.lower()]
    return " | ".join((errors or useful)[-lines:]) if useful else "no output"


def _stop_all(children: list[_Child]) -> None:
    """Terminate what we started that still runs; kill what ignores it."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + 5.0
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
