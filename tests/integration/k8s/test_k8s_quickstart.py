"""docs/deploy.md's quickstart, exactly: dataset Job on a PVC, then a TrafficTrainingJob whose
master and workers really train (as process-kubelet pods) until Succeeded with figures."""

from __future__ import annotations

from pathlib import Path

from k8s_support import Kube

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"
NS = "trafficdl"


def test_quickstart_trains_to_succeeded(kube: Kube) -> None:
    kube.run("apply", "-f", str(QUICKSTART / "00-dataset.yaml"))
    kube.run("wait", "-n", NS, "--for=condition=complete", "job/quickstart-dataset",
             "--timeout=300s")
    kube.run("apply", "-f", str(QUICKSTART / "10-job.yaml"))

    def done() -> dict | None:
        st = kube.json("get", "ttj", "quickstart", "-n", NS).get("status") or {}
        assert st.get("phase") != "Failed", st
        return st if st.get("phase") == "Succeeded" else None

    st = kube.wait_for("Succeeded", done, timeout=900, every=2)
    assert st["worldSize"] == 2 and st["selector"].startswith("trafficdl.io/job-name=")
    fig = st["figures"]
    assert 0.0 < fig["accuracy"] <= 1.0 and 0.0 < fig["macroF1"] <= 1.0
    assert st["trainingSeconds"] > 0 and st["cost"] > 0 and st["currency"] == "EUR"
    pods = kube.json("get", "pods", "-n", NS, "-l", "trafficdl.io/job-name=quickstart")["items"]
    assert {p["metadata"]["name"] for p in pods} == {
        "quickstart-master", "quickstart-worker-0", "quickstart-worker-1"}
    for pod in pods:
        [owner] = pod["metadata"]["ownerReferences"]
        assert owner["name"] == "quickstart" and owner["controller"] is True
        assert pod["status"]["podIP"].startswith("127.77.")
    row = kube.run("get", "ttj", "quickstart", "-n", NS, "--no-headers").stdout.split()
    assert row[1] == "Succeeded" and "<none>" not in row, row
    described = kube.run("describe", "ttj", "quickstart", "-n", NS).stdout
    assert "JobSucceeded" in described and "Running" in described
