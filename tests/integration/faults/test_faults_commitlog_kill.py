"""SIGKILL the master in the middle of a group commit: exactly the acknowledged commits survive.

The master is faults_log_master.py (a real process: the real servicer, Center,
commit log and restore); four worker threads here commit known deltas over
real gRPC. The log writer is stalled (TRAFFICDL_TEST_COMMITLOG_STALL) just
before it writes the group holding its STALL-th record, so those commits are
folded in memory but never acknowledged; then the master is killed. After a
restart the centre must equal the sum of the acknowledged deltas, no more
(the stalled group is gone) and no less (every ack was durable).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import torch
from trafficdl_master import commitlog

from trafficdl.rpc.client import ParameterServerClient
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

MASTER = str(Path(__file__).with_name("faults_log_master.py"))
ELEMENTS = 50_000  # 200 KB, one chunk: the LSTM's size
WORLD = 4
STALL = 25


def _start(directory: Path, stall: int = 0) -> tuple[subprocess.Popen, int, int]:
    env = {**os.environ, commitlog.STALL_ENV: str(stall)}
    proc = subprocess.Popen(
        [sys.executable, MASTER, str(directory), str(ELEMENTS), str(WORLD)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    line = proc.stdout.readline().split()
    assert line and line[0] == "READY", f"master did not start: {proc.stderr.read()}"
    return proc, int(line[1]), int(line[2])


def _delta(rank: int, seq: int) -> torch.Tensor:
    return torch.full((ELEMENTS,), float(100 * rank + seq))  # integers: sums are exact


def test_kill_mid_group_commit_keeps_exactly_the_acknowledged(tmp_path: Path) -> None:
    master, port, counter = _start(tmp_path, stall=STALL)
    assert counter == 0
    acked: list[tuple[int, int]] = []
    pending: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker() -> None:
        client = ParameterServerClient(f"127.0.0.1:{port}", "kill")
        rank = client.register(-1, "w").rank
        for seq in range(1, 1000):
            with lock:
                pending.append((rank, seq))
            try:
                client.commit(_delta(rank, seq), pb.CommitHeader(
                    rank=rank, sequence=seq, batches_done=seq, based_on_counter=0))  # fmt: skip
            except grpc.RpcError:
                return  # the master died with this commit unacknowledged
            with lock:
                pending.remove((rank, seq))
                acked.append((rank, seq))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORLD)]
    try:
        for t in threads:
            t.start()
        deadline, seen = time.monotonic() + 60, -1
        while time.monotonic() < deadline:  # until every worker waits on the stalled group
            time.sleep(1.0)
            with lock:
                if len(pending) == WORLD and len(acked) == seen:
                    break
                seen = len(acked)
        with lock:
            before_kill = list(acked)
        master.send_signal(signal.SIGKILL)
        master.wait(10)
        for t in threads:
            t.join(30)
    finally:
        if master.poll() is None:
            master.kill()
    assert "commit log writer stalled" in master.stderr.read()
    assert acked == before_kill  # nothing acknowledged while the writer was stalled
    assert 0 < len(acked) < STALL and len(pending) == WORLD  # one commit in flight per worker

    again, port, counter = _start(tmp_path)
    try:
        assert counter == len(acked)  # replayed: the acknowledged, not the stalled group
        client = ParameterServerClient(f"127.0.0.1:{port}", "kill")
        centre = client.register(0, "w").center
        expected = sum(float(100 * r + s) for r, s in acked)
        assert torch.equal(centre, torch.full((ELEMENTS,), expected))
        # A stalled commit retried after the restart is folded once, like any other.
        rank, seq = next(p for p in pending if p[0] == 0)
        client.commit(_delta(rank, seq), pb.CommitHeader(rank=rank, sequence=seq))
        assert client.pull(rank).update_counter == len(acked) + 1
        client.close()
    finally:
        again.kill()
        again.wait(10)
    assert np.isfinite(expected)
