"""Run policies on the real operator against kmock: scaling, suspend, limits, TTL, metrics."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from operator_kmock import SECRETS, SERVICES, eventually
from test_operator_lifecycle import PODS, SPEC, env_of

from trafficdl.rpc.v1 import parameter_server_pb2 as pb

pytestmark = pytest.mark.asyncio


def spec(**changes: Any) -> dict[str, Any]:
    out = {k: dict(v) for k, v in SPEC.items()}
    for section, values in changes.items():
        out[section] = {**out.get(section, {}), **values}
    return out


def world_sizes(cluster) -> dict[str, str]:
    return {name: env_of(pod)["TRAFFICDL_WORLD_SIZE"] for name, pod in cluster.pods().items()}


async def test_elastic_scale_up_and_down_restarts_with_new_world_size(cluster, operator, master):
    await cluster.create_job("j", spec())
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    await cluster.run_pods(*PODS)
    await eventually(lambda: cluster.status("j").get("phase") == "Running", what="Running")

    await cluster.patch_job("j", {"spec": {"scale": {"workers": 3}}})
    up = {"j-master": "3", "j-worker-0": "3", "j-worker-1": "3", "j-worker-2": "3"}
    await eventually(lambda: world_sizes(cluster) == up, what="master + 3 workers with N=3")
    assert cluster.status("j")["worldSize"] == 3
    assert cluster.condition("j", "Restarting")["reason"] == "Rescaled"
    await cluster.run_pods(*up)
    await eventually(lambda: cluster.status("j").get("workersReady") == "3/3", what="3/3 ready")
    assert cluster.status("j")["phase"] == "Running"

    await cluster.patch_job("j", {"spec": {"scale": {"workers": 1}}})
    await eventually(lambda: world_sizes(cluster) == {"j-master": "1", "j-worker-0": "1"},
                     what="master + 1 worker with N=1")
    # Rescaling is not a failure: it does not use up backoffLimit.
    assert cluster.status("j")["replicaStatuses"]["worker"]["restarts"] == 0
    assert "Rescaled" in cluster.event_reasons()


async def test_synchronous_run_refuses_to_scale(cluster, operator, master):
    await cluster.create_job("j", spec(distribution={"algorithm": "easgd"}))
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    await cluster.patch_job("j", {"spec": {"scale": {"workers": 3}}})
    await eventually(lambda: "ScaleRefused" in cluster.event_reasons(), what="ScaleRefused")
    assert set(cluster.pods()) == set(PODS)
    assert cluster.status("j")["worldSize"] == 2


async def test_suspend_removes_pods_and_resume_recreates_them(cluster, operator, master):
    await cluster.create_job("j", spec())
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    run_id = await eventually(lambda: cluster.status("j").get("runId"), what="runId")
    await cluster.patch_job("j", {"spec": {"runPolicy": {"suspend": True}}})
    await eventually(lambda: cluster.status("j").get("phase") == "Suspended", what="Suspended")
    await eventually(lambda: not cluster.pods(), what="pods removed")
    assert cluster.live(SECRETS) and cluster.live(SERVICES)  # the run's state is kept
    await cluster.patch_job("j", {"spec": {"runPolicy": {"suspend": False}}})
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods recreated")
    await eventually(lambda: cluster.condition("j", "Suspended")["reason"] == "Resumed",
                     what="Suspended condition False, reason Resumed")
    assert cluster.condition("j", "Suspended")["status"] == "False"
    assert env_of(cluster.pods()["j-master"])["TRAFFICDL_RUN_ID"] == run_id
    await cluster.run_pods(*PODS)
    await eventually(lambda: cluster.status("j").get("phase") == "Running", what="Running")


async def test_failed_master_is_recreated(cluster, operator, master):
    await cluster.create_job("j", spec())
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    old = cluster.pods()["j-master"]["metadata"]["uid"]
    await cluster.set_pod("j-master", "Failed", exit_code=1)
    await eventually(lambda: cluster.pods().get("j-master", {}).get("metadata", {}).get("uid")
                     not in (None, old), what="a new master pod")
    assert cluster.status("j")["replicaStatuses"]["master"]["restarts"] == 1
    assert "MasterRestarted" in cluster.event_reasons()


async def test_backoff_limit_exceeded_fails_the_job(cluster, operator, master):
    await cluster.create_job("j", spec(runPolicy={"backoffLimit": 0, "cleanPodPolicy": "All"}))
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    await cluster.set_pod("j-worker-0", "Failed", exit_code=2)
    await eventually(lambda: cluster.status("j").get("phase") == "Failed", what="Failed")
    cond = cluster.condition("j", "Failed")
    assert cond["reason"] == "BackoffLimitExceeded" and "worker 0" in cond["message"]
    await eventually(lambda: not cluster.pods(), what="cleanPodPolicy All")


async def test_deadline_fails_and_ttl_deletes_the_job(cluster, operator, master):
    await cluster.create_job("j", spec(runPolicy={"activeDeadlineSeconds": 1,
                                                  "ttlSecondsAfterFinished": 1}))
    await eventually(lambda: cluster.status("j").get("phase") == "Failed", what="Failed",
                     timeout=15)
    assert cluster.condition("j", "Failed")["reason"] == "DeadlineExceeded"
    await eventually(lambda: cluster.job("j") is None, what="deleted after TTL", timeout=15)


async def test_training_failure_reported_by_master(cluster, operator, master):
    await cluster.create_job("j", spec(runPolicy={"cleanPodPolicy": "None"}))
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    master.response = pb.StatusResponse(phase=pb.RUN_PHASE_FAILED,
                                        message="dataset /data/ds.npz: no such file")
    await cluster.run_pods(*PODS)
    await eventually(lambda: cluster.status("j").get("phase") == "Failed", what="Failed")
    cond = cluster.condition("j", "Failed")
    assert cond["reason"] == "TrainingFailed" and "no such file" in cond["message"]
    assert set(cluster.pods()) == set(PODS)  # cleanPodPolicy None keeps them for debugging


def scrape(port: int) -> dict[str, float]:
    """The operator's metrics (its port is chosen for each test by this folder's conftest)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            lines = r.read().decode().splitlines()
    except OSError:  # not listening yet: the operator is still starting
        return {}
    return {k: float(v) for k, v in (ln.rsplit(" ", 1) for ln in lines
                                     if ln and not ln.startswith("#"))}


async def test_operator_metrics_move(cluster, operator, master, settings):
    port = settings.metrics_port
    running = 'trafficdl_operator_jobs{phase="Running"}'
    # The metrics live in this test process: jobs of earlier tests may still be counted.
    before = (await eventually(lambda: scrape(port), what="metrics endpoint")).get(running, 0.0)
    await cluster.create_job("j", spec())
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    await cluster.run_pods(*PODS)
    await eventually(lambda: cluster.status("j").get("phase") == "Running", what="Running")
    await eventually(lambda: scrape(port).get(running) == before + 1, what="jobs gauge")
    first = scrape(port)
    assert first['trafficdl_operator_reconciliations_total{handler="create"}'] >= 1
    assert first['trafficdl_operator_status_polls_total{outcome="ok"}'] >= 1
    reconciles = 'trafficdl_operator_reconciliations_total{handler="reconcile"}'
    await eventually(lambda: scrape(port)[reconciles] > first[reconciles], what="reconciliations")
    duration = 'trafficdl_operator_reconcile_duration_seconds_count{handler="reconcile"}'
    assert scrape(port)[duration] > 0
