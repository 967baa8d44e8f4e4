"""Status computation: conditions, pod classification and the master's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trafficdl_operator import status as s

from trafficdl.rpc.v1 import parameter_server_pb2 as pb

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pod(name, role="worker", rank=0, phase="Running", job="j", **extra):
    labels = {"trafficdl.io/job-name": job, "trafficdl.io/role": role}
    if role == "worker":
        labels["trafficdl.io/rank"] = str(rank)
    meta = {"name": name, "labels": labels, **extra}
    return {"metadata": meta, "status": {"phase": phase}}


def test_condition_transition_time_moves_only_on_flips():
    conds = s.set_condition([], "Running", True, "JobRunning", "up", T0)
    later = s.set_condition(conds, "Running", True, "JobRunning", "still up", T0 + timedelta(1))
    assert later[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert later[0]["lastUpdateTime"] == "2026-01-02T00:00:00Z" and later[0]["message"] == \
        "still up"
    flipped = s.set_condition(later, "Running", False, "Stopped", "", T0 + timedelta(2))
    assert flipped[0]["lastTransitionTime"] == "2026-01-03T00:00:00Z"


def test_true_condition_switches_off_the_exclusive_ones_but_not_created():
    conds = s.set_condition([], "Created", True, "JobCreated", "", T0)
    conds = s.set_condition(conds, "Running", True, "JobRunning", "", T0)
    conds = s.set_condition(conds, "Restarting", True, "WorkerRestarted", "w1", T0)
    assert s.condition_true(conds, "Restarting") and not s.condition_true(conds, "Running")
    conds = s.set_condition(conds, "Succeeded", True, "JobSucceeded", "", T0)
    assert [c["type"] for c in conds if c["status"] == "True"] == ["Created", "Succeeded"]


def test_pod_phase_ready_and_failure_reason():
    assert s.pod_phase({"metadata": {}}) == "Pending"
    assert s.pod_phase(pod("a", deletionTimestamp="x")) == "Terminating"
    p = pod("a")
    assert s.pod_ready(p)
    p["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert not s.pod_ready(p)
    failed = pod("a", phase="Failed")
    failed["status"]["containerStatuses"] = [{"state": {"terminated": {"reason": "OOMKilled",
                                                                        "exitCode": 137}}}]
    assert s.pod_failure(failed) == "OOMKilled (exit code 137)"
    assert s.pod_failure({"status": {"reason": "Evicted"}}) == "Evicted"


def test_summarize_sorts_by_role_and_ignores_other_jobs():
    pods = [pod("j-master", role="master"), pod("j-worker-0", rank=0), pod("j-worker-1", rank=1),
            pod("k-worker-0", rank=0, job="k")]
    summary = s.summarize("j", pods)
    assert summary.master["metadata"]["name"] == "j-master"
    assert sorted(summary.workers) == [0, 1] and not summary.stray
    counts = s.count([pod("a"), pod("b", phase="Pending"), pod("c", phase="Failed"),
                      pod("d", phase="Succeeded")], restarts=2)
    assert counts.as_status() == {"active": 2, "succeeded": 1, "failed": 1, "restarts": 2}
    assert counts.ready == 1


def test_master_fields_from_a_status_response():
    resp = pb.StatusResponse(phase=pb.RUN_PHASE_SUCCEEDED, epoch=3.0, epochs=3, progress=1.0,
                             training_seconds=36.0, wtpe_seconds=12.0, node_hours=0.03,
                             cost=0.02094, currency="EUR", workers_connected=2, restarts=1,
                             figures=pb.ClassificationFigures(accuracy=0.9, macro_recall=0.8,
                                                              macro_precision=0.85,
                                                              macro_f1=0.82))
    fields = s.master_fields(resp)
    assert fields["masterPhase"] == "Succeeded" and fields["masterRestarts"] == 1
    assert fields["wtpeSeconds"] == 12.0 and fields["cost"] == 0.02094
    assert fields["figures"] == {"accuracy": 0.9, "macroRecall": 0.8, "macroPrecision": 0.85,
                                 "macroF1": 0.82}
    assert "figures" not in s.master_fields(pb.StatusResponse(phase=pb.RUN_PHASE_RUNNING))
