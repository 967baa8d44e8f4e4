"""Scale subresource and deletion with the operator down, against the real API server."""

from __future__ import annotations

import time
from typing import Any

from k8s_support import Kube

NS = "trafficdl"
OPERATOR = "deploy/trafficdl-operator"


def _suspended_job(name: str) -> dict[str, Any]:
    return {"apiVersion": "trafficdl.io/v1alpha1", "kind": "TrafficTrainingJob",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"distribution": {"algorithm": "aeasgd"},
                     "data": {"volume": {"emptyDir": {}}, "datasetPath": "ds"},
                     "runPolicy": {"suspend": True}}}


def _phase(kube: Kube, name: str) -> str | None:
    return (kube.json("get", "ttj", name, "-n", NS).get("status") or {}).get("phase")


def test_kubectl_scale_sets_the_workers_through_the_scale_subresource(kube: Kube) -> None:
    kube.apply(_suspended_job("scaled"))
    kube.wait_for("Suspended", lambda: _phase(kube, "scaled") == "Suspended")
    kube.run("scale", "ttj/scaled", "-n", NS, "--replicas=3")
    assert kube.json("get", "ttj", "scaled", "-n", NS)["spec"]["scale"]["workers"] == 3
    scale = kube.json("get", "ttj", "scaled", "-n", NS, "--subresource=scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "trafficdl.io/job-name=scaled,trafficdl.io/role=worker"
    kube.run("delete", "ttj", "scaled", "-n", NS, "--timeout=60s")


def _operator_pods(kube: Kube) -> list[dict[str, Any]]:
    return kube.json("get", "pods", "-n", NS, "-l",
                     "app.kubernetes.io/component=operator")["items"]


def test_deleting_while_the_operator_is_down_waits_for_it(kube: Kube) -> None:
    kube.apply(_suspended_job("orphan"))
    kube.wait_for("kopf's finalizer", lambda: kube.json("get", "ttj", "orphan", "-n", NS)
                  ["metadata"].get("finalizers"))
    kube.run("scale", OPERATOR, "-n", NS, "--replicas=0")
    try:
        kube.wait_for("the operator gone", lambda: not _operator_pods(kube), timeout=60)
        kube.run("delete", "ttj", "orphan", "-n", NS, "--wait=false")
        time.sleep(3)
        job = kube.json("get", "ttj", "orphan", "-n", NS)  # still there, Terminating
        assert job["metadata"]["deletionTimestamp"] and job["metadata"]["finalizers"]
    finally:
        kube.run("scale", OPERATOR, "-n", NS, "--replicas=1")
    kube.run("rollout", "status", OPERATOR, "-n", NS, "--timeout=90s")
    # The restarted operator releases its finalizer and the job goes.
    gone = kube.run("wait", "--for=delete", "ttj/orphan", "-n", NS, "--timeout=90s",
                    check=False)
    assert gone.returncode == 0, gone.stderr


def test_resume_recreates_the_pods_of_a_suspended_job(kube: Kube) -> None:
    kube.apply(_suspended_job("resumed"))
    kube.wait_for("Suspended", lambda: _phase(kube, "resumed") == "Suspended")
    assert not kube.json("get", "pods", "-n", NS, "-l", "trafficdl.io/job-name=resumed")["items"]
    kube.run("patch", "ttj", "resumed", "-n", NS, "--type=merge",
             "-p", '{"spec": {"runPolicy": {"suspend": false}}}')

    def pods() -> set[str]:
        items = kube.json("get", "pods", "-n", NS, "-l", "trafficdl.io/job-name=resumed")["items"]
        return {p["metadata"]["name"] for p in items}
    assert kube.wait_for("pods", lambda: pods() == {"resumed-master", "resumed-worker-0",
                                                    "resumed-worker-1"}, timeout=60)
    described = kube.run("describe", "ttj", "resumed", "-n", NS).stdout
    assert "Suspended" in described and "Resumed" in described
    kube.run("delete", "ttj", "resumed", "-n", NS, "--timeout=90s")


def test_a_finished_job_is_deleted_after_its_ttl(kube: Kube) -> None:
    job = _suspended_job("ttl")
    job["spec"]["runPolicy"] = {"ttlSecondsAfterFinished": 1}
    job["spec"]["worker"] = {"resources": {"requests": {"cpu": "lots"}}}  # fails at once
    kube.apply(job)
    # Generous: on a loaded 2-core box one reconciliation pass can take tens of seconds.
    kube.wait_for("Failed", lambda: _phase(kube, "ttl") == "Failed", timeout=150)
    gone = kube.run("wait", "--for=delete", "ttj/ttl", "-n", NS, "--timeout=150s", check=False)
    assert gone.returncode == 0, gone.stderr
