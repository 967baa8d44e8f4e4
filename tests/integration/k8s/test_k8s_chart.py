"""The chart with real Helm: install, upgrade with changed values, uninstall (a second release)."""

from __future__ import annotations

from k8s_support import Kube
from localcluster import chart

NS, RELEASE = "chart-second", "second"


def _operator_env(kube: Kube) -> dict[str, str]:
    dep = kube.json("get", "deploy", f"{RELEASE}-trafficdl-operator", "-n", NS)
    [ctr] = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in ctr["env"]}


def _running_interval(kube: Kube) -> str | None:
    pods = kube.json("get", "pods", "-n", NS, "-l", f"app.kubernetes.io/instance={RELEASE}")
    live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") == "Running"]
    if len(live) != 1:
        return None
    env = {e["name"]: e.get("value") for e in live[0]["spec"]["containers"][0]["env"]}
    return env["TRAFFICDL_OPERATOR_RECONCILE_INTERVAL"]


def test_install_upgrade_uninstall(kube: Kube) -> None:
    c = kube.cluster
    chart.install(c, RELEASE, NS, {"operator.reconcileIntervalSeconds": "5"})
    assert _operator_env(kube)["TRAFFICDL_OPERATOR_RECONCILE_INTERVAL"] == "5"
    assert kube.wait_for("the operator pod", lambda: _running_interval(kube) == "5")
    roles = kube.json("get", "role", "-n", NS)["items"]
    assert [r["metadata"]["name"] for r in roles] == [f"{RELEASE}-trafficdl-operator"]

    chart.install(c, RELEASE, NS, {"operator.reconcileIntervalSeconds": "7"})
    status = chart.helm(c, "status", RELEASE, "-n", NS, "-o", "json").stdout
    assert '"version":2' in status.replace(" ", "")
    # Recreate strategy: the old pod is gone (SIGTERM honoured) before the new one runs.
    assert kube.wait_for("the upgraded pod", lambda: _running_interval(kube) == "7",
                         timeout=90)

    chart.uninstall(c, RELEASE, NS)
    left = kube.run("get", "deploy,role,rolebinding,sa,svc", "-n", NS, "-l",
                    f"app.kubernetes.io/instance={RELEASE}", "-o", "name").stdout.strip()
    assert left == ""
    kube.wait_for("pods gone", lambda: not kube.json("get", "pods", "-n", NS)["items"],
                  timeout=60)
    # CRDs in crds/ are never deleted by Helm: other releases' jobs survive.
    kube.run("get", "crd", "traffictrainingjobs.trafficdl.io")
