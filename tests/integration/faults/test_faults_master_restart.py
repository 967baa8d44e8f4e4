"""SIGKILL the master mid-run and restart it: the worker retries, nothing is lost.

The master is faults_toy_master.py (real process, real checkpoints, real
token auth); the worker is a thread here committing through
security.make_channel + retry.call_with_retry. Checks: every commit is folded
exactly once (the final centre is the exact sum), the update counter the worker
sees never goes backwards, and the restarted master resumed from its
checkpoint rather than from zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from support.ports import free_port
from trafficdl_master.snapshot_store import CheckpointStore

from trafficdl.rpc import retry, security
from trafficdl.rpc.v1 import parameter_server_pb2 as pb
from trafficdl.rpc.v1 import parameter_server_pb2_grpc as pb_grpc

TOY = str(Path(__file__).with_name("faults_toy_master.py"))
TOKEN = security.generate_token()
ELEMENTS = 1 << 20  # 4 MiB centre, 4 chunks per commit
COMMITS = 40
KILL_AFTER = 15
POLICY = retry.RetryPolicy(
    initial_backoff_s=0.05, max_backoff_s=0.5, max_attempts=None, deadline_s=60
)



def _start(port: int, directory: Path) -> tuple[subprocess.Popen, int, float]:
    """Start the toy master; returns it, its restored counter and seconds to READY."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, TOY, f"127.0.0.1:{port}", str(directory), str(ELEMENTS)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TRAFFICDL_TEST_TOKEN": TOKEN},
    )
    line = proc.stdout.readline().split()
    assert line and line[0] == "READY", f"master did not start: {line}"
    return proc, int(line[2]), time.monotonic() - t0


def _commit(rank: int, sequence: int, delta: np.ndarray) -> Iterator[pb.CommitRequest]:
    yield pb.CommitRequest(header=pb.CommitHeader(rank=rank, sequence=sequence))
    data = delta.tobytes()
    for at in range(0, len(data), 1 << 20):
        yield pb.CommitRequest(chunk=data[at : at + (1 << 20)])


def test_master_killed_and_restarted_resumes_from_checkpoint(tmp_path: Path) -> None:
    port = free_port()
    procs: list[subprocess.Popen] = []
    counters: list[tuple[float, int]] = []
    retries: list[float] = []
    errors: list[BaseException] = []

    def worker() -> None:
        channel = security.make_channel(f"127.0.0.1:{port}", TOKEN, max_reconnect_backoff_s=0.5)
        stub = pb_grpc.ParameterServerStub(channel)
        try:
            for seq in range(1, COMMITS + 1):
                delta = np.full(ELEMENTS, seq, dtype=np.float32)
                reply = retry.call_with_retry(
                    lambda s=seq, d=delta: stub.Commit(_commit(0, s, d), timeout=5),
                    POLICY,
                    on_retry=lambda a, d, e: retries.append(time.monotonic()),
                    what="commit",
                )
                counters.append((time.monotonic(), reply.update_counter))
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
        finally:
            channel.close()

    try:
        proc, restored, _ = _start(port, tmp_path)
        procs.append(proc)
        assert restored == 0
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        while len(counters) < KILL_AFTER and thread.is_alive():
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t_kill = time.monotonic()
        time.sleep(1.0)  # the outage
        proc, restored, startup_s = _start(port, tmp_path)
        procs.append(proc)
        t_ready = time.monotonic()
        thread.join(timeout=60)
        assert not thread.is_alive(), "worker did not finish"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            p.stdout.close()

    assert errors == [], errors
    seen = [c for _, c in counters]
    assert seen == list(range(1, COMMITS + 1)), "counter went backwards or skipped"
    assert restored >= KILL_AFTER  # resumed from its checkpoint, not from zero
    assert retries and min(retries) >= t_kill - 0.5
    snap = CheckpointStore(tmp_path).latest_good()
    assert snap.update_counter == COMMITS and snap.meta["restarts"] == 1
    np.testing.assert_array_equal(snap.arrays["centre"], COMMITS * (COMMITS + 1) / 2)
    first_after = min(t for t, c in counters if c > restored)
    print(
        f"master restart: process to READY {startup_s:.2f} s, first commit acknowledged "
        f"{first_after - t_ready:.2f} s after READY ({len(retries)} retries during the outage)"
    )
