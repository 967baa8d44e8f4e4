"""Runs disturbed on the real cluster: pods deleted mid-run (a worker is recreated, a master
resumes from its checkpoint on the volume) and `kubectl scale` of an asynchronous run; each
still completes with figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_support import Kube

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"
NS, JOB, PVC = "trafficdl", "restarts", "restarts-data"


def _dataset() -> list[dict[str, Any]]:
    """The quickstart's PVC and dataset Job, under names of their own."""
    pvc, job = yaml.safe_load_all((QUICKSTART / "00-dataset.yaml").read_text())
    pvc["metadata"]["name"] = PVC
    job["metadata"]["name"] = "restarts-dataset"
    job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = PVC
    return [pvc, job]


@pytest.fixture(scope="module")
def dataset(kube: Kube) -> str:
    kube.apply(_dataset())
    kube.run("wait", "-n", NS, "--for=condition=complete", "job/restarts-dataset",
             "--timeout=300s")
    return PVC


def _job(name: str = JOB) -> dict[str, Any]:
    job = yaml.safe_load((QUICKSTART / "10-job.yaml").read_text())
    job["metadata"]["name"] = name
    job["spec"]["train"]["epochs"] = 600  # ~0.1 s an epoch here: long enough to interfere
    job["spec"]["train"].update(patience=0, valFraction=0)  # every epoch: no plateau stop
    job["spec"]["data"]["volume"]["persistentVolumeClaim"]["claimName"] = PVC
    return job


def _pod(kube: Kube, name: str) -> dict[str, Any] | None:
    res = kube.run("get", "pod", name, "-n", NS, "-o", "json", check=False)
    return yaml.safe_load(res.stdout) if res.returncode == 0 else None


def _running_other(kube: Kube, name: str, uid: str) -> bool:
    pod = _pod(kube, name)
    return bool(pod and pod["metadata"]["uid"] != uid and pod["status"].get("phase") == "Running")


def _replace_pod(kube: Kube, name: str) -> None:
    """Delete the pod `name` and wait until another pod of that name runs."""
    pod = _pod(kube, name)
    assert pod is not None
    kube.run("delete", "pod", name, "-n", NS, "--wait=false")
    kube.wait_for(f"a new {name}", lambda: _running_other(kube, name, pod["metadata"]["uid"]),
                  timeout=120)


def _status(kube: Kube, name: str = JOB) -> dict[str, Any]:
    st = kube.json("get", "ttj", name, "-n", NS).get("status") or {}
    assert st.get("phase") != "Failed", st
    return st


def test_deleted_worker_and_master_come_back_and_the_run_completes(kube: Kube,
                                                                   dataset: str) -> None:
    kube.apply(_job())
    kube.wait_for("training", lambda: float(_status(kube).get("epoch") or 0) >= 5, timeout=180)

    _replace_pod(kube, f"{JOB}-worker-1")
    before = float(_status(kube).get("epoch") or 0)
    _replace_pod(kube, f"{JOB}-master")

    st = kube.wait_for("Succeeded", lambda: (s := _status(kube)).get("phase") == "Succeeded"
                       and s, timeout=600, every=2)
    assert st["epoch"] == 600 and st["figures"]["macroF1"] > 0
    # The new master resumed from its checkpoint on the volume: it counts the restart
    # itself (status.masterRestarts comes from its Status RPC).
    assert st["masterRestarts"] >= 1 and before >= 5


def test_kubectl_scale_rescales_an_asynchronous_run(kube: Kube, dataset: str) -> None:
    kube.apply(_job("rescaled"))
    kube.wait_for("training", lambda: float(_status(kube, "rescaled").get("epoch") or 0) >= 5,
                  timeout=180)
    kube.run("scale", "ttj/rescaled", "-n", NS, "--replicas=3")

    def three() -> bool:
        items = kube.json("get", "pods", "-n", NS, "-l",
                          "trafficdl.io/job-name=rescaled,trafficdl.io/role=worker")["items"]
        return _status(kube, "rescaled").get("worldSize") == 3 and len(
            [p for p in items if p["status"].get("phase") == "Running"]) == 3
    kube.wait_for("3 running workers", three, timeout=180)
    st = kube.wait_for("Succeeded", lambda: (s := _status(kube, "rescaled")).get("phase")
                       == "Succeeded" and s, timeout=600, every=2)
    assert st["worldSize"] == 3 and st["epoch"] == 600 and st["figures"]["macroF1"] > 0
    assert "Rescaled" in kube.run("describe", "ttj", "rescaled", "-n", NS).stdout


def _pods(kube: Kube, name: str) -> list[dict[str, Any]]:
    return kube.json("get", "pods", "-n", NS, "-l", f"trafficdl.io/job-name={name}")["items"]


def _failed_for_deadline(kube: Kube, name: str, policy: str) -> dict[str, Any]:
    """Start a long run with a 30 s deadline and `policy`; its status once Failed."""
    job = _job(name)
    job["spec"]["runPolicy"] = {"activeDeadlineSeconds": 30, "cleanPodPolicy": policy}
    kube.apply(job)
    kube.wait_for("the run's pods", lambda: len(_pods(kube, name)) == 3, timeout=60)
    st = kube.wait_for("Failed", lambda: (s := kube.json("get", "ttj", name, "-n", NS)
                                          .get("status") or {}).get("phase") == "Failed" and s,
                       timeout=180, every=1)
    failed = [cd for cd in st["conditions"] if cd["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "DeadlineExceeded", st["conditions"]
    assert "activeDeadlineSeconds=30" in failed[0]["message"]
    assert float(st.get("epoch") or 0) < 600  # stopped by the deadline, not by finishing
    return st


@pytest.mark.parametrize("policy", ["All", "None"])
def test_active_deadline_fails_the_run_and_clean_pod_policy_decides_the_pods(
    kube: Kube, dataset: str, policy: str
) -> None:
    name = f"deadline-{policy.lower()}"
    _failed_for_deadline(kube, name, policy)
    if policy == "All":  # every pod of the job goes, running or not
        assert kube.wait_for("pods deleted", lambda: not _pods(kube, name), timeout=90)
    else:  # "None": the operator deletes nothing; the run's pods are still there
        time.sleep(5)
        names = {p["metadata"]["name"] for p in _pods(kube, name)}
        assert {f"{name}-master", f"{name}-worker-0"} <= names, names
    kube.run("delete", "ttj", name, "-n", NS, "--timeout=90s")
    # Deleting the job cascades through the garbage collector, whatever the policy.
    assert kube.wait_for("pods gone", lambda: not _pods(kube, name), timeout=90)
