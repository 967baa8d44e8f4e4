"""`trafficdl train --workers N --metrics-port PORT --linger S`: a real Prometheus scrapes a
local run.

The master serves on PORT and worker rank r on PORT + 1 + r, on loopback; the
Debian `prometheus` server scrapes all three during a run started through the
CLI, and its HTTP API returns run.json's training seconds and cost (the master
lingers with its final values for a last scrape). A PORT whose range is taken
is refused before any process starts.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from prometheus_server import (
    api,
    check_master_figures,
    needs_prometheus,
    query,
    start_prometheus,
)
from support.ports import free_port, free_port_range

from trafficdl.cli import main

pytestmark = needs_prometheus


def _args(dataset: Path, out: Path, port: int) -> list[str]:
    return ["train", str(dataset), "--workers", "2", "--model", "lstm", "--epochs", "10",
            "--batch-size", "10", "--lr", "0.003", "--window", "5", "--threads-per-worker", "1",
            "--metrics-port", str(port), "--linger", "1.5", "--out", str(out),
            "--quiet"]  # fmt: skip


def test_prometheus_scrapes_a_local_run_through_metrics_port(
    dist_dataset: Path, tmp_path: Path
) -> None:
    dataset = dist_dataset
    port = free_port_range(3)  # master, worker 0, worker 1
    jobs = {"trafficdl-master": [port], "trafficdl-worker": [port + 1, port + 2]}
    with start_prometheus(tmp_path, free_port(), jobs) as prom:
        assert main(_args(dataset, tmp_path / "run", port)) == 0
        run = json.loads((tmp_path / "run" / "run.json").read_text())
        check_master_figures(prom, run)  # T and cost of run.json, scraped
        workers = query(prom, "max_over_time(trafficdl_worker_samples_processed_total[5m])")
        assert sorted(w["metric"]["instance"] for w in workers) == [
            f"127.0.0.1:{port + 1}", f"127.0.0.1:{port + 2}"]  # fmt: skip
        assert all(float(w["value"][1]) > 0 for w in workers)
        [w0] = api(prom, f'max_over_time(trafficdl_worker_training_seconds'
                         f'{{instance="127.0.0.1:{port + 1}"}}[5m])')  # fmt: skip
        assert 0 < float(w0["value"][1]) <= run["training_seconds"] + 1.0


def test_a_taken_metrics_port_is_refused_before_anything_starts(
    dist_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = dist_dataset
    port = free_port_range(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 2))
        taken.listen()
        assert main(_args(dataset, tmp_path / "run", port)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"trafficdl: error: metrics port {port + 2} (worker 1) on 127.0.0.1 is "
                   "not free: Address already in use")  # fmt: skip
    assert not (tmp_path / "run").exists()
