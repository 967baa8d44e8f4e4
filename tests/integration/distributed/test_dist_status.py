"""The master's Status during and after a run, as the progress view and the CLI see it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from trafficdl.cli import main
from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.launch import run_local
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

EPOCHS = 60


def test_status_while_running_and_after(
    dist_dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "t" * 43  # the run's bearer token, shared by the launcher and this CLI call
    monkeypatch.setenv("TRAFFICDL_TOKEN", token)
    seen: list[pb.StatusResponse] = []
    out = tmp_path / "run"
    # Long enough that the view, which polls every 0.2 s, sees the RUNNING phase: with the
    # same-node data plane 4 epochs of this set ran between two polls (CI, 2026-12-02;
    # measured here: 4 epochs 0-1 RUNNING polls, 30 epochs 6).
    train = TrainConfig(model="lstm", epochs=EPOCHS, batch_size=10, lr=0.003)
    dist = DistConfig(workers=2, window=3, threads_per_worker=1, worker_price=1.0, master_price=2.0)
    box: dict = {}

    def go() -> None:
        box["result"] = run_local(
            dist_dataset,
            train,
            dist,
            out,
            progress=False,
            on_status=seen.append,
            linger=6.0,
            extra_env={"TRAFFICDL_TOKEN": token},
        )

    th = threading.Thread(target=go)
    th.start()
    try:
        deadline = time.monotonic() + 120
        while not (out / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        port = (out / "logs" / "master.port").read_text()
        # The master sets SUCCEEDED right after writing run.json; poll until it
        # says so (bounded), the way a user's script would.
        final: dict = {}
        while time.monotonic() < deadline:
            assert main(["master-status", f"127.0.0.1:{port}", "--json"]) == 0
            final = json.loads(capsys.readouterr().out)
            if final["phase"] != "RUN_PHASE_RUNNING":
                break
            time.sleep(0.1)
    finally:
        th.join(180)
    run = box["result"].run
    assert final["phase"] == "RUN_PHASE_SUCCEEDED" and final["world_size"] == 2
    assert final["workers_finished"] == 2 and final["progress"] == 1.0
    assert final["training_seconds"] == pytest.approx(run["training_seconds"])
    assert final["cost"] == pytest.approx((1.0 * 2 + 2.0) * run["training_seconds"] / 3600)
    assert final["figures"]["accuracy"] == pytest.approx(run["figures"]["accuracy"])
    assert len(final["figures"]["confusion"]) == 9
    # While running, the view saw the run progress monotonically.
    running = [s for s in seen if s.phase == pb.RUN_PHASE_RUNNING]
    assert running, [s.phase for s in seen]
    counters = [s.update_counter for s in seen]
    assert counters == sorted(counters)
    assert all(0.0 <= s.progress <= 1.0 and s.epochs == EPOCHS for s in seen)
