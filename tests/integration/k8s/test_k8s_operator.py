"""The chart's operator, running as a pod of the process kubelet with its ServiceAccount token,
against the real authorizer, admission chain and garbage collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from k8s_support import Kube

NS = "trafficdl"
SA = "trafficdl-operator"


def _job(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"data": {"volume": {"persistentVolumeClaim": {"claimName": "d"}},
                                     "datasetPath": "ds"},
                            "scale": {"workers": 1}, "runPolicy": {"backoffLimit": 0}}
    base.update(spec)
    return {"apiVersion": "trafficdl.io/v1alpha1", "kind": "TrafficTrainingJob",
            "metadata": {"name": name, "namespace": NS}, "spec": base}


def _status(kube: Kube, name: str) -> dict[str, Any]:
    return kube.json("get", "ttj", name, "-n", NS).get("status") or {}


def _failed(kube: Kube, name: str) -> dict[str, Any] | None:
    st = _status(kube, name)
    return st if st.get("phase") == "Failed" else None


def test_operator_pod_runs_from_the_chart_with_its_service_account(kube: Kube) -> None:
    pods = kube.json("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=operator")
    [pod] = pods["items"]
    assert pod["spec"]["serviceAccountName"] == SA
    assert pod["status"]["phase"] == "Running" and pod["status"]["podIP"].startswith("127.")
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    [cs] = pod["status"]["containerStatuses"]
    assert cs["name"] == "operator" and cs["restartCount"] == 0 and cs["ready"]


def test_the_chart_role_is_enough_and_nothing_more(kube: Kube, tmp_path: Path) -> None:
    token = kube.run("create", "token", SA, "-n", NS).stdout.strip()
    cfg = yaml.safe_load(Path(kube.cluster.kubeconfig).read_text())
    cfg["users"] = [{"name": "user", "user": {"token": token}}]
    path = tmp_path / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    who = kube.run("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                   kubeconfig=str(path)).stdout
    assert who == f"system:serviceaccount:{NS}:{SA}"
    ttj = "traffictrainingjobs.trafficdl.io"
    for verb, what, sub in [("create", "pods", ""), ("delete", "pods", ""),
                            ("create", "secrets", ""), ("patch", ttj, "status"),
                            ("update", ttj, "finalizers")]:
        extra = [f"--subresource={sub}"] if sub else []
        res = kube.run("auth", "can-i", verb, what, "-n", NS, *extra, kubeconfig=str(path),
                       check=False)
        assert res.stdout.strip() == "yes", (verb, what, sub)
    # Namespaced mode: nothing outside the release namespace, no reading of all Secrets.
    res = kube.run("get", "pods", "-n", "default", kubeconfig=str(path), check=False)
    assert res.returncode != 0 and "Forbidden" in res.stderr
    assert 'cannot list resource "pods"' in res.stderr
    res = kube.run("get", "secrets", "-n", NS, kubeconfig=str(path), check=False)
    assert res.returncode != 0 and "Forbidden" in res.stderr


def test_a_bad_quantity_fails_the_job_with_the_api_message(kube: Kube) -> None:
    kube.apply(_job("bad-quantity", worker={"resources": {"requests": {"cpu": "lots"}}}))
    st = kube.wait_for("phase Failed", lambda: _failed(kube, "bad-quantity"), timeout=90)
    [cond] = [c for c in st["conditions"] if c["type"] == "Failed"]
    assert cond["reason"] == "InvalidSpec"
    assert "rejected Pod bad-quantity-worker-0 (400)" in cond["message"]  # a decode error
    assert "quantities must match the regular expression" in cond["message"]
    # The children made before it carry blockOwnerDeletion: the Role's finalizers rule.
    secret = kube.json("get", "secret", "bad-quantity-token", "-n", NS)
    [owner] = secret["metadata"]["ownerReferences"]
    assert owner["kind"] == "TrafficTrainingJob" and owner["blockOwnerDeletion"] is True
    events = kube.run("describe", "ttj", "bad-quantity", "-n", NS).stdout
    assert "InvalidSpec" in events


def test_a_mount_path_colliding_with_the_scratch_mount_fails_the_job(kube: Kube) -> None:
    job = _job("tmp-mount")
    job["spec"]["data"]["mountPath"] = "/tmp"
    kube.apply(job)
    st = kube.wait_for("phase Failed", lambda: _failed(kube, "tmp-mount"), timeout=90)
    msg = next(c["message"] for c in st["conditions"] if c["type"] == "Failed")
    # The operator's own check, before any child (the API server would say "must be unique").
    assert "spec.data.mountPath '/tmp' overlaps /tmp" in msg, msg
    assert not kube.json("get", "pods", "-n", NS, "-l", "trafficdl.io/job-name=tmp-mount")["items"]


def test_a_bad_volume_fails_the_job_and_deletion_cascades(kube: Kube) -> None:
    job = _job("bad-volume")
    job["spec"]["data"]["volume"] = {"persistentVolumeClaim": {"claimName": ""}}
    kube.apply(job)
    st = kube.wait_for("phase Failed", lambda: _failed(kube, "bad-volume"), timeout=90)
    msg = next(c["message"] for c in st["conditions"] if c["type"] == "Failed")
    assert "rejected Pod bad-volume-master (422)" in msg
    assert "spec.volumes[0].persistentVolumeClaim.claimName: Required value" in msg
    assert kube.json("get", "svc", "bad-volume-master", "-n", NS)["spec"]["clusterIP"]
    kube.run("delete", "ttj", "bad-volume", "-n", NS, "--wait=true", "--timeout=60s")

    def gone() -> bool:
        left = kube.run("get", "secret,svc,pods", "-n", NS, "-l",
                        "trafficdl.io/job-name=bad-volume", "-o", "name").stdout.strip()
        return left == ""
    kube.wait_for("the garbage collector", gone, timeout=60)
