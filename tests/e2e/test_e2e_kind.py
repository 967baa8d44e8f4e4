"""End to end on kind: a TrafficTrainingJob trains, survives a killed worker, reports, cleans up.

One run drives the whole story once (it is the expensive part): apply a job
with 3 workers on the dataset the `dataset` fixture wrote, scrape the master
through the API server proxy while it trains, kill a worker pod mid-run,
wait for Succeeded, read the status, delete the job and watch its children
go. Each test then asserts one property of what was observed, so a failure
names the property that broke.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from e2e_support import (
    DATASET_APPS,
    JOB,
    JOB_LABEL,
    JOBS_NS,
    MASTER_PRICE,
    SYSTEM_NS,
    WORKER_PRICE,
    WORKERS,
    Kubectl,
    job_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e

@dataclass
class Observed:
    mid_run: dict[str, float] = field(default_factory=dict)
    progress_at_kill: float = 0.0
    killed_uid: str = ""
    replacement_uid: str = ""
    final: dict[str, Any] = field(default_factory=dict)
    printed: str = ""
    event_reasons: list[str] = field(default_factory=list)
    operator_metrics: dict[str, float] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)


def _status(kube: Kubectl) -> dict[str, Any]:
    return kube.get("traffictrainingjob", JOB, JOBS_NS).get("status") or {}


def _pod_uid(kube: Kubectl, name: str) -> str | None:
    if not kube.exists("pod", name, JOBS_NS):
        return None
    return kube.get("pod", name, JOBS_NS)["metadata"]["uid"]


def _children(kube: Kubectl) -> list[str]:
    out = kube("get", "pods,services,secrets", "-n", JOBS_NS, "-l", JOB_LABEL, "-o", "name")
    names = out.split()
    for kind, name in (("service", f"{JOB}-master"), ("secret", f"{JOB}-token")):
        if kube.exists(kind, name, JOBS_NS):
            names.append(f"{kind}/{name}")
    return sorted(set(names))


@pytest.fixture(scope="module")
def observed(kubectl: Kubectl, dataset: str) -> Observed:
    kube, obs = kubectl, Observed()
    kube.apply(job_manifest())
    master = f"{JOB}-master"

    def training() -> dict[str, float] | None:
        metrics = kube.scrape(JOBS_NS, master, 9090)
        started = metrics.get("trafficdl_master_commits_total", 0) >= 1
        connected = metrics.get("trafficdl_master_workers_connected", 0) == WORKERS
        return metrics if started and connected else None

    obs.mid_run = wait_for(training, 600, "the master to fold commits from all workers")
    obs.progress_at_kill = obs.mid_run.get("trafficdl_master_progress_ratio", 0.0)

    victim = f"{JOB}-worker-1"
    obs.killed_uid = _pod_uid(kube, victim) or ""
    kube("delete", "pod", victim, "-n", JOBS_NS, "--grace-period=0", "--force", "--wait=false")

    def replaced() -> str | None:
        uid = _pod_uid(kube, victim)
        return uid if uid and uid != obs.killed_uid else None

    obs.replacement_uid = wait_for(replaced, 300, f"the operator to recreate {victim}")
    obs.final = wait_for(
        lambda: (s := _status(kube)).get("phase") in ("Succeeded", "Failed") and s,
        1200, "the job to finish", interval=5)
    obs.printed = kube("get", "traffictrainingjob", JOB, "-n", JOBS_NS)
    events = kube.get("events", namespace=JOBS_NS)["items"]
    obs.event_reasons = [e["reason"] for e in events
                         if e["involvedObject"].get("name") == JOB]
    obs.operator_metrics = kube.scrape_service(SYSTEM_NS, "trafficdl-operator-metrics", 8080)

    kube("delete", "traffictrainingjob", JOB, "-n", JOBS_NS, "--wait=true", timeout=300)
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: not _children(kube) or None, 180, "the job's children to go")
    obs.leftovers = _children(kube)
    return obs


def test_master_metrics_scraped_mid_run(observed: Observed) -> None:
    m = observed.mid_run
    assert m["trafficdl_master_workers_connected"] == WORKERS
    assert m["trafficdl_master_commits_total"] >= 1
    assert m["trafficdl_master_training_seconds"] > 0
    assert 0 < m["trafficdl_master_progress_ratio"] < 1


def test_worker_was_killed_mid_run_and_replaced(observed: Observed) -> None:
    assert observed.progress_at_kill < 0.7, "the run was nearly over: raise EPOCHS"
    # A deleted pod is re-created by the operator (a Failed one would count as a restart).
    assert observed.killed_uid and observed.replacement_uid != observed.killed_uid


def test_job_succeeds(observed: Observed) -> None:
    status = observed.final
    assert status["phase"] == "Succeeded", json.dumps(status, indent=2)
    succeeded = [c for c in status["conditions"] if c["type"] == "Succeeded"]
    assert succeeded and succeeded[0]["status"] == "True"
    assert status["completionTime"] >= status["startTime"]
    assert "Succeeded" in observed.printed.splitlines()[1]
    # kopf.event() reached the API (the RBAC rule for events works).
    assert "Created" in observed.event_reasons


def test_status_figures_are_consistent(observed: Observed) -> None:
    s = observed.final
    hours = s["trainingSeconds"] / 3600
    assert s["worldSize"] == WORKERS
    assert s["trainingSeconds"] > 0
    assert 0 < s["wtpeSeconds"] <= s["trainingSeconds"]
    assert s["nodeHours"] == pytest.approx((WORKERS + 1) * hours, rel=0.05)
    assert s["cost"] == pytest.approx((WORKER_PRICE * WORKERS + MASTER_PRICE) * hours, rel=0.05)
    assert s["currency"] == "EUR"
    figures = s["figures"]
    assert figures["accuracy"] > 1 / DATASET_APPS, "no better than chance"
    assert 0 < figures["macroF1"] <= 1


def test_operator_metrics_move(observed: Observed) -> None:
    assert observed.operator_metrics.get("trafficdl_operator_reconciliations_total", 0) > 0


def test_deleting_the_job_leaves_nothing_behind(observed: Observed) -> None:
    assert observed.leftovers == []
