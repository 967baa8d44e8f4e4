"""A real Prometheus server scrapes the master and a worker during a run.

The test starts the Debian `prometheus` binary on a free loopback port with a
generated config, runs a short distributed training exposing metrics, then
asks Prometheus' HTTP API for the training-seconds and cost series and checks
them against run.json.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.launch import run_local

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the `prometheus` binary is not installed (make system-deps)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, query: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert len(result) == 1, f"{query}: {result}"
    return result


def _active_targets(base: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as resp:
        body = json.loads(resp.read())
    return [t["scrapeUrl"] for t in body["data"]["activeTargets"]]


@pytest.fixture()
def ports() -> list[int]:
    return [free_port() for _ in range(3)]  # prometheus, master, worker 0


@pytest.fixture()
def prometheus(tmp_path: Path, ports: list[int]) -> Iterator[str]:
    prom, master, worker = ports
    config = tmp_path / "prometheus.yml"
    jobs = {"trafficdl-master": master, "trafficdl-worker": worker}
    config.write_text(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            for job, port in jobs.items()
        )
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{prom}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp_path / "prometheus.log").read_text()
                    pytest.fail(f"prometheus did not start: {log_text}")
                time.sleep(0.2)
        # Its discovery hands targets to the scraper on a 5 s tick: wait until both are
        # scrape targets, or a short run may be over before the first scrape.
        while len(_active_targets(base)) < len(jobs):
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus has not picked up its targets: {_active_targets(base)}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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
    # The master lingered with its final values, then exited (its series went stale):
    # the last sample scraped is the run's T and cost.
    series = 'trafficdl_master_training_seconds{job="trafficdl-master"}'
    [t] = api(prometheus, f"last_over_time({series}[5m])")
    assert float(t["value"][1]) == pytest.approx(run["training_seconds"], rel=1e-6)
    [c] = api(prometheus, 'last_over_time(trafficdl_master_cost{currency="EUR"}[5m])')
    assert float(c["value"][1]) == pytest.approx(run["cost"], rel=1e-6)
    [commits] = api(prometheus, "last_over_time(trafficdl_master_commits_total[5m])")
    assert float(commits["value"][1]) == run["commits_total"]
    # The worker has exited: ask for the highest value it reported while it ran.
    [w] = api(prometheus, "max_over_time(trafficdl_worker_training_seconds[5m])")
    assert 0 < float(w["value"][1]) <= run["training_seconds"] + 1.0
    [samples] = api(prometheus, "max_over_time(trafficdl_worker_samples_processed_total[5m])")
    assert float(samples["value"][1]) > 0
    [wc] = api(prometheus, "max_over_time(trafficdl_master_workers_connected[5m])")
    assert float(wc["value"][1]) == 2
