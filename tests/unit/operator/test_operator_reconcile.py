"""The reconciliation planner: what one pass decides from spec, status, pods and the master."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from operator_support import MINIMAL, openapi_schema, strict
from trafficdl_operator import builders
from trafficdl_operator import reconcile as rec
from trafficdl_operator.job_spec import parse
from trafficdl_operator.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings()
ALL = ["j-master", "j-worker-0", "j-worker-1"]


def spec(**changes: Any):
    raw = {**MINIMAL, **changes}
    return parse(raw)


def pods(job, world=2, phases=None):
    """The pods the builders make, with phases as a simulated kubelet would report them."""
    out = [builders.build_master_pod("j", "ns", "r", job, world, SETTINGS)]
    out += [builders.build_worker_pod("j", "ns", "r", job, i, world, SETTINGS)
            for i in range(world)]
    for p in out:
        p["status"] = {"phase": (phases or {}).get(p["metadata"]["name"], "Running")}
    return out


def observe(job, status=None, pod_list=None, master=None, now=T0) -> rec.Plan:
    st = {"phase": "Created", "runId": "r", "startTime": "2026-01-01T00:00:00Z",
          "worldSize": 2, **(status or {})}
    obs = rec.Observed(name="j", namespace="ns", generation=3, spec=job, status=st,
                       pods=pod_list or [], master=master, now=now)
    return rec.plan(obs, SETTINGS)


def names(objs):
    return sorted(o["metadata"]["name"] for o in objs)


def test_empty_job_creates_master_and_workers():
    plan = observe(spec())
    assert names(plan.create) == ALL
    assert plan.status["observedGeneration"] == 3 and plan.status["workersReady"] == "0/2"
    assert not plan.delete_pods


def test_all_pods_up_means_running_and_pending_does_not():
    job = spec()
    assert observe(job, pod_list=pods(job, phases={"j-worker-1": "Pending"})).status[
        "phase"] == "Created"
    plan = observe(job, pod_list=pods(job))
    assert plan.status["phase"] == "Running" and not plan.create
    assert plan.status["replicaStatuses"]["worker"] == {"active": 2, "succeeded": 0, "failed": 0,
                                                        "restarts": 0}
    assert ("Normal", "Running", "master and 2 workers are running") in plan.events


def test_failed_worker_is_recreated_within_backoff_limit():
    job = spec(runPolicy={"backoffLimit": 2})
    plan = observe(job, {"phase": "Running"}, pods(job, phases={"j-worker-1": "Failed"}))
    assert plan.delete_pods == ["j-worker-1"] and plan.status["phase"] == "Restarting"
    assert plan.status["replicaStatuses"]["worker"]["restarts"] == 1
    assert any(e[1] == "WorkerRestarted" for e in plan.events)
    # Next pass: the pod is gone, it is created again; restarts are remembered.
    again = observe(job, plan.status, [p for p in pods(job) if p["metadata"]["name"] !=
                                       "j-worker-1"])
    assert names(again.create) == ["j-worker-1"]
    assert again.status["replicaStatuses"]["worker"]["restarts"] == 1


def test_backoff_limit_counts_master_and_worker_restarts():
    job = spec(runPolicy={"backoffLimit": 2, "cleanPodPolicy": "All"})
    used = {"phase": "Running", "replicaStatuses": {"master": {"restarts": 1},
                                                    "worker": {"restarts": 1}}}
    plan = observe(job, used, pods(job, phases={"j-worker-0": "Failed"}))
    assert plan.status["phase"] == "Failed"
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and "worker 0 failed" in failed["message"]
    assert sorted(plan.delete_pods) == ALL and not plan.create


def test_failed_master_is_recreated():
    job = spec()
    plan = observe(job, {"phase": "Running"}, pods(job, phases={"j-master": "Failed"}))
    assert plan.delete_pods == ["j-master"]
    assert plan.status["replicaStatuses"]["master"]["restarts"] == 1


@pytest.mark.parametrize(("policy", "deleted"), [
    ("Running", ["j-master", "j-worker-1"]), ("All", ALL), ("None", [])])
def test_success_from_the_master_cleans_pods_per_policy(policy, deleted):
    job = spec(runPolicy={"cleanPodPolicy": policy})
    master = {"masterPhase": "Succeeded", "figures": {"accuracy": 0.9, "macroF1": 0.8},
              "trainingSeconds": 30.0, "cost": 0.01, "currency": "EUR"}
    plan = observe(job, {"phase": "Running"}, pods(job, phases={"j-worker-0": "Succeeded"}),
                   master=master)
    assert plan.status["phase"] == "Succeeded" and plan.status["completionTime"]
    assert plan.status["figures"]["macroF1"] == 0.8
    assert sorted(plan.delete_pods) == deleted
    assert plan.events[-1][:2] == ("Normal", "JobSucceeded")


def test_master_pod_exit_zero_is_success_with_last_figures():
    job = spec()
    plan = observe(job, {"phase": "Running", "figures": {"accuracy": 0.7, "macroF1": 0.6}},
                   pods(job, phases={"j-master": "Succeeded"}))
    assert plan.status["phase"] == "Succeeded"
    assert "macro F1 0.6000" in plan.status["conditions"][-1]["message"]


def test_master_reported_failure_carries_its_message():
    job = spec()
    plan = observe(job, {"phase": "Running"}, pods(job),
                   master={"masterPhase": "Failed", "masterMessage": "dataset missing"})
    failed = plan.status["conditions"][-1]
    assert (failed["type"], failed["reason"], failed["message"]) == \
        ("Failed", "TrainingFailed", "dataset missing")


def test_active_deadline_fails_the_job():
    job = spec(runPolicy={"activeDeadlineSeconds": 60})
    assert observe(job, {"phase": "Running"}, pods(job), now=T0 + timedelta(seconds=59)).status[
        "phase"] == "Running"
    plan = observe(job, {"phase": "Running"}, pods(job), now=T0 + timedelta(seconds=61))
    assert plan.status["phase"] == "Failed"
    assert plan.status["conditions"][-1]["reason"] == "DeadlineExceeded"


def test_ttl_after_finished_deletes_the_job():
    job = spec(runPolicy={"ttlSecondsAfterFinished": 100})
    done = {"phase": "Succeeded", "completionTime": "2026-01-01T00:00:00Z"}
    assert not observe(job, done, now=T0 + timedelta(seconds=99)).delete_job
    assert observe(job, done, now=T0 + timedelta(seconds=100)).delete_job
    assert not observe(spec(), done, now=T0 + timedelta(days=9)).delete_job  # no TTL: kept


def test_suspend_removes_pods_and_resume_recreates_them():
    job = spec(runPolicy={"suspend": True})
    plan = observe(job, {"phase": "Running"}, pods(job))
    assert sorted(plan.delete_pods) == ALL and plan.status["phase"] == "Suspended"
    resumed = observe(spec(), plan.status, [], now=T0 + timedelta(hours=1))
    assert names(resumed.create) == ALL and resumed.status["phase"] == "Created"
    assert resumed.status["startTime"] == "2026-01-01T01:00:00Z"  # deadline counts anew
    cond = next(c for c in resumed.status["conditions"] if c["type"] == "Suspended")
    assert (cond["status"], cond["reason"]) == ("False", "Resumed")


def test_elastic_rescale_replaces_pods_of_the_old_world_size():
    job = spec(scale={"workers": 3})
    plan = observe(job, {"phase": "Running"}, pods(spec(), world=2))
    assert sorted(plan.delete_pods) == ALL and not plan.create
    assert plan.status["worldSize"] == 3 and plan.status["phase"] == "Restarting"
    nxt = observe(job, plan.status, [])
    assert names(nxt.create) == ["j-master", "j-worker-0", "j-worker-1", "j-worker-2"]
    assert plan.status.get("replicaStatuses", {}).get("worker", {}).get("restarts", 0) == 0


def test_synchronous_run_keeps_its_world_size():
    job = spec(scale={"workers": 3}, distribution={"algorithm": "easgd"})
    plan = observe(job, {"phase": "Running"}, pods(spec(distribution={"algorithm": "easgd"})))
    assert plan.status["worldSize"] == 2 and not plan.delete_pods and not plan.create
    assert [e[1] for e in plan.events] == ["ScaleRefused"]
    assert observe(job, plan.status, pods(job, world=2)).events == []  # said once


def test_run_id_is_stable_and_unique_per_uid():
    assert rec.run_id("j", "1234abcd-ef") == rec.run_id("j", "1234abcd-ef") == "j-1234abcd"
    assert rec.run_id("j", "99999999-00") != rec.run_id("j", "1234abcd-ef")


def test_every_status_the_planner_writes_fits_the_crd_status_schema():
    """The API server prunes undeclared status fields: everything written must be declared."""
    schema = strict(openapi_schema()["properties"]["status"])
    job = spec(runPolicy={"backoffLimit": 1})
    master = {"masterPhase": "Running", "epoch": 1.5, "epochs": 3, "progress": 0.5,
              "trainingSeconds": 10.0, "wtpeSeconds": 5.0, "nodeHours": 0.01, "cost": 0.003,
              "currency": "EUR", "workersConnected": 2, "masterRestarts": 0,
              "masterMessage": "ok", "figures": {"accuracy": 0.9, "macroRecall": 0.8,
                                                 "macroPrecision": 0.85, "macroF1": 0.82}}
    sync = spec(scale={"workers": 3}, distribution={"algorithm": "easgd"})
    plans = [
        observe(job),
        observe(job, pod_list=pods(job), master=master),
        observe(job, {"phase": "Running"}, pods(job, phases={"j-worker-1": "Failed"})),
        observe(job, {"phase": "Running"}, pods(job), master={**master,
                                                              "masterPhase": "Succeeded"}),
        observe(spec(runPolicy={"suspend": True}), {"phase": "Running"}, pods(job)),
        observe(sync, {"phase": "Running"}, pods(spec(distribution={"algorithm": "easgd"}))),
    ]
    for plan in plans:
        jsonschema.Draft4Validator(schema).validate(plan.status)


def test_a_run_that_finished_between_two_reconciliations_still_shows_it_ran():
    job = spec()
    master = {"masterPhase": "Succeeded", "figures": {"accuracy": 0.9, "macroF1": 0.8}}
    plan = observe(job, {"phase": "Created"}, pods(job), master=master)
    conds = {cond["type"]: cond for cond in plan.status["conditions"]}
    assert plan.status["phase"] == "Succeeded" and conds["Succeeded"]["status"] == "True"
    assert conds["Running"]["reason"] == "JobRunning" and conds["Running"]["status"] == "False"
