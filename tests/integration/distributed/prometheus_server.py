"""A real Prometheus server for the scrape tests: the Debian `prometheus` binary on a free
loopback port, with a generated config of static targets, scraping every 250 ms.

`start_prometheus` waits until the server is ready *and* has every target as an
active scrape target (its discovery hands them over on a 5 s tick, so a short
run could be over before the first scrape), and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="the `prometheus` binary is not installed (make system-deps)"
)




def query(base: str, promql: str) -> list[dict]:
    """An instant query's result vector (status must be success)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def api(base: str, promql: str) -> list[dict]:
    """A query that must return exactly one series."""
    result = query(base, promql)
    assert len(result) == 1, f"{promql}: {result}"
    return result


def check_master_figures(base: str, run: dict) -> None:
    """The master's last scraped T, cost and commits equal run.json's (it lingered with its
    final values, then exited, so its series went stale: ask for the last sample)."""
    series = 'trafficdl_master_training_seconds{job="trafficdl-master"}'
    [t] = api(base, f"last_over_time({series}[5m])")
    assert float(t["value"][1]) == pytest.approx(run["training_seconds"], rel=1e-6)
    [c] = api(base, f'last_over_time(trafficdl_master_cost{{currency="{run["currency"]}"}}[5m])')
    assert float(c["value"][1]) == pytest.approx(run["cost"], rel=1e-6)
    [commits] = api(base, "last_over_time(trafficdl_master_commits_total[5m])")
    assert float(commits["value"][1]) == run["commits_total"]


def active_targets(base: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as resp:
        body = json.loads(resp.read())
    return [t["scrapeUrl"] for t in body["data"]["activeTargets"]]


@contextlib.contextmanager
def start_prometheus(workdir: Path, port: int, jobs: dict[str, list[int]]) -> Iterator[str]:
    """Run Prometheus on 127.0.0.1:`port` scraping job -> loopback ports; yields its URL."""
    assert PROMETHEUS is not None
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs: [{{targets: "
            f"[{', '.join(repr(f'127.0.0.1:{p}') for p in ports)}]}}]\n"
            for job, ports in jobs.items()
        )
    )
    log_path = workdir / "prometheus.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    targets = sum(len(p) for p in jobs.values())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prometheus did not start: {log_path.read_text()}")
                time.sleep(0.2)
        while len(active_targets(base)) < targets:
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus has not picked up its targets: {active_targets(base)}")
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
