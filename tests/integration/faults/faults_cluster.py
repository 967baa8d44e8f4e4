"""Real master and worker processes for the fault tests, started the way a pod starts them.

`Cluster` runs `python -m trafficdl_master` and `python -m trafficdl_worker`
with the TRAFFICDL_* environment the operator injects (the run token in
TRAFFICDL_TOKEN, never on a command line), on a fixed port so a killed master
can be restarted where the workers look for it. Processes can be SIGKILLed and
started again by name; each incarnation appends to the same log file. All
processes are killed on `close()` (use it as a context manager), also when a
test fails. `popen` can be swapped for `NetnsLab.popen` to run the processes
in network namespaces.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import datasets
from support.ports import free_port

from trafficdl.rpc import security
from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb


def make_dataset(out: Path, classes: int = 3, per_class: int = 200, seed: int = 0) -> Path:
    """Classes told apart by packet sizes and windows, with noise: an LSTM learns them in a
    few epochs but not at initialisation."""
    return datasets.make_dataset(out, classes=classes, per_class=per_class, seed=seed,
                                 size_noise=450.0, window_noise=900.0)


def file_states(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root`: content hash and mtime (to show a refused run touched nothing)."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                       p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def run_processes(run_id: str) -> dict[int, dict[str, str]]:
    """pid -> environment (plus "_cmdline") of a run's master and worker processes, found
    through /proc by the run id in their environment or command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        env = dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
        if (env.get("TRAFFICDL_RUN_ID") == run_id or run_id.encode() in cmdline) and (
            b"trafficdl_worker" in cmdline or b"trafficdl_master" in cmdline
        ):
            found[int(entry.name)] = env | {"_cmdline": cmdline.decode(errors="replace")}
    return found


class Cluster:
    """One run's master and workers as real processes (see the module doc)."""

    def __init__(
        self,
        root: Path,
        dataset: Path,
        *,
        train: dict[str, Any],
        dist: dict[str, Any],
        bind_host: str = "127.0.0.1",
        port: int | None = None,
        popen: Callable[..., subprocess.Popen] | None = None,
        allow_plaintext: bool = False,
    ) -> None:
        self.root, self.dataset = root, dataset
        self.train, self.dist = train, dist
        self.workers = int(dist["workers"])
        self.token = security.generate_token()
        self.run_id = f"faults{os.getpid()}{int(time.time() * 1000) % 100000}"
        self.bind_host = bind_host
        self.port = port or free_port()
        self.out = root / "run"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.killed: set[int] = set()  # pids this harness SIGKILLed on purpose
        self._popen = popen
        # Off loopback (a netns lab) the token in clear needs the explicit opt-out.
        self.plaintext_env = {"TRAFFICDL_ALLOW_PLAINTEXT": "1"} if allow_plaintext else {}

    # ------------------------------------------------------------ processes
    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
                    "TRAFFICDL_TOKEN": self.token, **self.plaintext_env, **env}  # fmt: skip
        try:
            if self._popen is None:
                proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT)
            else:
                proc = self._popen(name, argv, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def start_master(self, *, metrics_port: int = 0, extra: dict[str, str] | None = None,
                     ready_timeout: float = 90.0) -> float:  # fmt: skip
        """Start (or restart) the master; returns seconds from spawn to listening."""
        ready = self.logs / "master.port"
        ready.unlink(missing_ok=True)
        env = {
            "TRAFFICDL_DATASET": str(self.dataset),
            "TRAFFICDL_OUT_DIR": str(self.out),
            "TRAFFICDL_RUN_ID": self.run_id,
            "TRAFFICDL_RUN_CONFIG": json.dumps({"train": self.train, "dist": self.dist}),
            "TRAFFICDL_WORLD_SIZE": str(self.workers),
            "TRAFFICDL_BIND": f"{self.bind_host}:{self.port}",
            "TRAFFICDL_READY_FILE": str(ready),
            "TRAFFICDL_METRICS_PORT": str(metrics_port),
            **(extra or {}),
        }
        t0 = time.monotonic()
        proc = self._spawn("master", [sys.executable, "-m", "trafficdl_master"], env)
        while not ready.is_file():
            if proc.poll() is not None:
                raise AssertionError(f"master exited with {proc.returncode}: {self.log('master')}")
            if time.monotonic() - t0 > ready_timeout:
                raise AssertionError(f"master not listening after {ready_timeout} s")
            time.sleep(0.02)
        return time.monotonic() - t0

    def start_worker(self, rank: int, extra: dict[str, str] | None = None) -> subprocess.Popen:
        env = {
            "TRAFFICDL_MASTER_ADDR": f"{self.bind_host}:{self.port}",
            "TRAFFICDL_RANK": str(rank),
            "TRAFFICDL_WORLD_SIZE": str(self.workers),
            "TRAFFICDL_RUN_ID": self.run_id,
            "TRAFFICDL_THREADS": "1",
            **(extra or {}),
        }
        return self._spawn(f"worker-{rank}", [sys.executable, "-m", "trafficdl_worker"], env)

    def start_all(self) -> None:
        self.start_master()
        for rank in range(self.workers):
            self.start_worker(rank)

    def kill(self, name: str) -> None:
        """SIGKILL, as a node failure or the OOM killer does."""
        proc = self.procs[name]
        self.killed.add(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def _check_alive(self) -> None:
        """Fail fast when a process the harness did not kill exited with an error."""
        for name, proc in self.procs.items():
            if proc.pid not in self.killed and proc.poll() not in (None, 0):
                raise AssertionError(f"{name} exited {proc.returncode}: {self.log(name)[-3000:]}")

    def wait_master(self, timeout: float = 120.0) -> int:
        """Wait for the master to end the run; fails fast if any process crashed."""
        deadline = time.monotonic() + timeout
        master = self.procs["master"]
        while master.poll() is None:
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"run not done in {timeout} s: {self.log('master')[-2000:]}")
            time.sleep(0.1)
        return master.returncode

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- views
    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def status(self, timeout: float = 5.0) -> pb.StatusResponse | None:
        """The master's Status (with the token), or None when it does not answer."""
        import grpc

        client = ParameterServerClient(f"{self.bind_host}:{self.port}", self.run_id,
                                       token=self.token,
                                       allow_plaintext=bool(self.plaintext_env))  # fmt: skip
        try:
            return client.status(timeout=timeout)
        except grpc.RpcError:
            return None
        finally:
            client.close()

    def wait_status(self, pred: Callable[[pb.StatusResponse], bool], timeout: float,
                    what: str) -> pb.StatusResponse:  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st is not None and pred(st):
                return st
            self._check_alive()
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.log('master')[-2000:]}")

    def run_json(self) -> dict[str, Any]:
        return json.loads((self.out / "run.json").read_text())

    def history(self) -> dict[str, Any]:
        return json.loads((self.out / "history.json").read_text())

    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"


def durable_commits(checkpoint_dir: Path) -> int:
    """Commits a master made durable so far: the newest counter in its commit log (each
    record is written before its ack) or its snapshot history (written at snapshots)."""
    from trafficdl_master import commitlog

    best = 0
    with contextlib.suppress(OSError):
        best = len((checkpoint_dir / "history.jsonl").read_bytes().splitlines())
    # Only the newest segment: older ones hold lower counters (and callers poll this).
    for _, segment in commitlog.segments(checkpoint_dir)[-1:]:
        with contextlib.suppress(OSError):  # a segment dropped after a snapshot
            best = max([best, *(rec.counter for rec in commitlog.read_segment(segment))])
    return best
