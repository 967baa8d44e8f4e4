"""A real Prometheus server scrapes the master and a worker during a run.

The test starts the Debian `prometheus` binary on a free loopback port with a
generated config, runs a short distributed training exposing metrics, then
asks Prometheus' HTTP API for the training-seconds and cost series and checks
them against run.json.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_server import (
    api,
    check_master_figures,
    needs_prometheus,
    start_prometheus,
)
from support.ports import free_port

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.launch import run_local

pytestmark = needs_prometheus


@pytest.fixture()
def ports() -> list[int]:
    return [free_port() for _ in range(3)]  # prometheus, master, worker 0


@pytest.fixture()
def prometheus(tmp_path: Path, ports: list[int]) -> Iterator[str]:
    prom, master, worker = ports
    jobs = {"trafficdl-master": [master], "trafficdl-worker": [worker]}
    with start_prometheus(tmp_path, prom, jobs) as base:
        yield base


def test_prometheus_scrapes_master_and_worker(
    dist_dataset: Path, tmp_path: Path, ports: list[int], prometheus: str
) -> None:
    _, master, worker = ports
    train = TrainConfig(model="lstm", epochs=10, batch_size=10, lr=0.003)  # ~2 s of training
    dist = DistConfig(workers=2, window=5, threads_per_worker=1)
    result = run_local(
        dist_dataset, train, dist, tmp_path / "run", progress=False,
        metrics_ports=[master, worker], linger=1.5,
    )
    run = result.run
    check_master_figures(prometheus, run)
    # The worker has exited: ask for the highest value it reported while it ran.
    [w] = api(prometheus, "max_over_time(trafficdl_worker_training_seconds[5m])")
    assert 0 < float(w["value"][1]) <= run["training_seconds"] + 1.0
    [samples] = api(prometheus, "max_over_time(trafficdl_worker_samples_processed_total[5m])")
    assert float(samples["value"][1]) > 0
    [wc] = api(prometheus, "max_over_time(trafficdl_master_workers_connected[5m])")
    assert float(wc["value"][1]) == 2
