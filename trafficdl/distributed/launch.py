"""Run a distributed training on this machine: one real master and N real worker processes.

`run_local` is what `trafficdl train --workers N` calls. It starts
`python -m trafficdl_master` on a free loopback port and N
`python -m trafficdl_worker` processes pointed at it through the same
TRAFFICDL_* variables a Kubernetes pod gets, shows one progress view fed by the
master's Status RPC, and returns the run directory's figures once the master
has written them. Children write their logs under RUN_DIR/logs/ (files, not
pipes, so a chatty child can never block on a full pipe).

The promises of a cluster run hold here too (docs/faults.md):
- one run per RUN_DIR (trafficdl.runlock): a second one on the same --out is refused;
- a master or worker that dies is restarted with a budget and backoff
  (trafficdl.distributed.children); the master on the same port, resuming
  from its newest good checkpoint, the workers registering again;
- Ctrl-C stops workers, then the master (which saves a last checkpoint), and
  raises RunInterrupted; `resume=True` continues that run (same run id, same
  checkpoints, counters and T go on) once its settings are checked against
  RUN_DIR/launch.json (trafficdl.distributed.resume);
- `metrics_ports` exposes Prometheus metrics, on loopback unless told otherwise.
Threads: N workers share the cores (cores // N torch threads each, at least 1)
unless `threads_per_worker` says otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trafficdl import runlock
from trafficdl.config import DistConfig, TrainConfig, to_dict
from trafficdl.contract import Env
from trafficdl.dataset import Dataset
from trafficdl.distributed import children as kids
from trafficdl.distributed import resume as launch_record
from trafficdl.distributed.children import Child, DistributedRunError
from trafficdl.distributed.progress import ProgressView
from trafficdl.distributed.rundir import read_run
from trafficdl.distributed.spec import check_dist_config
from trafficdl.errors import TrafficdlError
from trafficdl.rpc import credentials, security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

READY_TIMEOUT = 180.0
__all__ = ["DistributedRunError", "LocalRunResult", "RunInterrupted", "run_local"]


class RunInterrupted(TrafficdlError):
    """The run was stopped (Ctrl-C) cleanly; `resume=True` continues it."""

    def __init__(self, message: str, *, run_id: str, out_dir: Path) -> None:
        super().__init__(message)
        self.run_id, self.out_dir = run_id, out_dir


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



def threads_per_worker(dist: DistConfig) -> int:
    """Torch threads for each worker: the configured value or an even share of the cores."""
    if dist.threads_per_worker > 0:
        return dist.threads_per_worker
    return max(1, (os.cpu_count() or 1) // max(dist.workers, 1))


def metrics_ports(port: int, workers: int) -> list[int]:
    """`--metrics-port PORT`: the master on PORT, worker rank r on PORT + 1 + r."""
    return [port + i for i in range(workers + 1)] if port > 0 else []


def check_ports_free(ports: Sequence[int], host: str) -> None:
    """Refuse metrics ports that are taken before any process starts (a child would
    crash on them, and a restart could not help)."""
    for i, port in enumerate(ports):
        if port <= 0:
            continue
        who = "the master" if i == 0 else f"worker {i - 1}"
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                raise TrafficdlError(f"metrics port {port} ({who}) on {host} is not free: "
                                     f"{exc.strerror}") from None  # fmt: skip


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
    metrics_host: str = "127.0.0.1",
    extra_env: dict[str, str] | None = None,
    linger: float = 0.0,
    restarts: int = 3,
    resume: bool = False,
) -> LocalRunResult:
    """Train with a master and `dist_cfg.workers` worker processes on loopback.

    `metrics_ports` = [master, worker 0, worker 1, ...] exposes Prometheus
    metrics on those ports of `metrics_host` (missing entries: off); `linger`
    keeps master and workers (their Status and metrics) up that many seconds
    after the run. A master or worker that dies is restarted up to `restarts`
    times each (children.py). `resume` continues the stopped run in `out_dir`
    (resume.py). The run's token goes to the children in TRAFFICDL_TOKEN.
    Raises a TrafficdlError subclass for bad input and for a failed child,
    RunInterrupted on Ctrl-C; returns run.json's figures.
    """
    if dist_cfg.workers < 1:
        raise TrafficdlError("a distributed run needs --workers >= 1 (0 is the centralized mode)")
    check_dist_config(dist_cfg)
    Dataset.open(dataset_path)  # fail fast, before any process starts
    if train_cfg.device == "cuda":  # the workers train on it: refuse before they start
        from trafficdl.training.runtime import select_device

        select_device(train_cfg.device)
    ports = list(metrics_ports or [])
    check_ports_free(ports, metrics_host)
    out = Path(out_dir)
    with runlock.hold(out):
        record = launch_record.begin(out, dataset_path, train_cfg, dist_cfg, run_id=run_id,
                                     resume=resume)  # fmt: skip
        launch = _Launch(out, record, train_cfg, dist_cfg, resume=resume)
        return launch.run(
            dataset_path, t1_seconds=t1_seconds, progress=progress, on_status=on_status,
            ports=ports, metrics_host=metrics_host, extra_env=extra_env, linger=linger,
            restarts=restarts,
        )  # fmt: skip


class _Launch:
    """One session of a local run: start, supervise, stop, record."""

    def __init__(self, out: Path, record: dict[str, Any], train: TrainConfig, dist: DistConfig,
                 *, resume: bool) -> None:  # fmt: skip
        self.out, self.record, self.train, self.dist = out, record, train, dist
        self.resume = resume
        self.run_id: str = record["run_id"]
        self.children: list[Child] = []

    def _master_cmd(self, dataset: str | Path, bind: str, resume: bool, **flags: Any) -> list[str]:
        config = json.dumps({"train": to_dict(self.train), "dist": to_dict(self.dist)})
        cmd = [
            sys.executable, "-m", "trafficdl_master",
            "--dataset", str(Path(dataset).resolve()),
            "--out-dir", str(self.out.resolve()),
            "--config", config,
            "--world-size", str(self.dist.workers),
            "--run-id", self.run_id,
            "--bind", bind,
            "--checkpoint-dir", str((self.out / "checkpoints" / self.run_id).resolve()),
        ]  # fmt: skip
        for name, value in flags.items():
            cmd += [f"--{name.replace('_', '-')}", str(value)]
        return cmd + (["--resume"] if resume else [])

    def run(
        self, dataset: str | Path, *, t1_seconds: float | None, progress: bool,
        on_status: Callable[[pb.StatusResponse], None] | None, ports: list[int],
        metrics_host: str, extra_env: dict[str, str] | None, linger: float, restarts: int,
    ) -> LocalRunResult:  # fmt: skip
        out, dist = self.out, self.dist
        logs = out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if not self.resume:
            (out / "run.json").unlink(missing_ok=True)  # never report a previous run's figures
        launch_record.start(out, self.record, dist.workers)
        threads = threads_per_worker(dist)
        # One secret per run, handed to the children in their environment (never on a
        # command line, which `ps` shows every user); extra_env may supply its own.
        base_env = {**os.environ, credentials.TOKEN_ENV: security.generate_token(),
                    **(extra_env or {}), "PYTHONUNBUFFERED": "1"}  # fmt: skip
        token = base_env[credentials.TOKEN_ENV]
        t0 = time.perf_counter()
        view = ProgressView(enabled=progress, on_status=on_status)
        outcome = "failed"
        try:
            ready = logs / "master.port"
            ready.unlink(missing_ok=True)
            flags = {"ready_file": ready, "metrics_port": ports[0] if ports else 0,
                     "metrics_addr": metrics_host, "t1_seconds": t1_seconds or 0,
                     "linger": linger}  # fmt: skip
            # One thread while training (folds are memory-bound adds; workers need the
            # cores); the master raises it for the final evaluation.
            master_env = {**base_env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            cmd = self._master_cmd(dataset, "127.0.0.1:0", self.resume, **flags)
            self.children.append(kids.spawn("master", cmd, master_env, logs, append=self.resume))
            port = _wait_ready(ready, self.children[0])
            # A restarted master binds the port the workers know, and is no resume:
            # its outage is training time (recovery.py).
            self.children[0].restart_cmd = self._master_cmd(dataset, f"127.0.0.1:{port}",
                                                            False, **flags)  # fmt: skip
            for rank in range(dist.workers):
                env = {
                    **base_env,
                    Env.MASTER_ADDR: f"127.0.0.1:{port}",
                    Env.RANK: str(rank),
                    Env.WORLD_SIZE: str(dist.workers),
                    Env.RUN_ID: self.run_id,
                    Env.THREADS: str(threads),
                    Env.METRICS_PORT: str(ports[rank + 1] if len(ports) > rank + 1 else 0),
                    Env.METRICS_ADDR: metrics_host,
                    Env.LINGER: str(linger),
                    "OMP_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads),
                }
                cmd = [sys.executable, "-m", "trafficdl_worker"]
                self.children.append(kids.spawn(f"worker-{rank}", cmd, env, logs,
                                                append=self.resume))  # fmt: skip
            view.start(f"127.0.0.1:{port}", self.run_id, self.train.epochs, token=token)
            kids.supervise(self.children, restarts, view.update)
            run = read_run(out)
            view.finish(run)
            outcome = "succeeded"
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise self._interrupted(view.last) from None
        finally:
            view.stop()
            with _no_sigint():  # a second Ctrl-C must not orphan the children
                kids.stop(self.children)
                launch_record.end(out, self.record, outcome, self.restarts())
        return LocalRunResult(
            metrics=json.loads((out / "metrics.json").read_text()),
            run=run,
            checkpoint=str(out / "checkpoint.pt"),
            wall_seconds=time.perf_counter() - t0,
            out_dir=str(out),
            master_port=port,
            logs={c.name: str(c.log) for c in self.children},
            restarts=self.restarts(),
        )

    def restarts(self) -> dict[str, int]:
        return {c.name: c.restarts for c in self.children}

    def _interrupted(self, st: pb.StatusResponse | None) -> RunInterrupted:
        where = (f" at update {st.update_counter}, epoch {st.epoch:.2f}/{st.epochs}, "
                 f"T {st.training_seconds:.1f} s" if st is not None else "")  # fmt: skip
        return RunInterrupted(
            f"run {self.run_id} stopped{where}; master and workers stopped cleanly, "
            f"checkpoints kept in {self.out / 'checkpoints' / self.run_id}",
            run_id=self.run_id,
            out_dir=self.out,
        )


class _no_sigint:
    """Ignore SIGINT for a block (main thread only; elsewhere signals never arrive)."""

    def __enter__(self) -> None:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


def _wait_ready(ready: Path, master: Child) -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready.is_file():
            return int(ready.read_text())
        if master.proc.poll() is not None:
            raise kids.failure(master)
        time.sleep(0.05)
    raise DistributedRunError(f"the master did not start in {READY_TIMEOUT:.0f} s")
