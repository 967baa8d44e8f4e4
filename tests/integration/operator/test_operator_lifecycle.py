"""The real operator against kmock: create -> children -> Running -> Restarting -> Succeeded.

The kubelet is simulated by patching pod phases; the master by a stand-in gRPC
server implementing Status with the generated stubs.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from operator_kmock import SECRETS, SERVICES, eventually
from prometheus_client import REGISTRY

from trafficdl.rpc.v1 import parameter_server_pb2 as pb

pytestmark = pytest.mark.asyncio

SPEC: dict[str, Any] = {
    "train": {"model": "cnn1d", "epochs": 3},
    "data": {"volume": {"persistentVolumeClaim": {"claimName": "data"}},
             "datasetPath": "datasets/fbfbm.npz"},
    "scale": {"workers": 2},
    "runPolicy": {"backoffLimit": 2, "cleanPodPolicy": "Running"},
}
PODS = ("j-master", "j-worker-0", "j-worker-1")


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in
            pod["spec"]["containers"][0]["env"]}


async def test_create_makes_secret_service_master_and_workers(cluster, operator, master):
    job = await cluster.create_job("j", SPEC)
    uid = job["metadata"]["uid"]
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="master and 2 workers")
    await eventually(lambda: cluster.status("j").get("phase") == "Created", what="Created")
    pods = cluster.pods()
    for name, pod in pods.items():
        assert pod["metadata"]["ownerReferences"][0]["uid"] == uid, name
        assert pod["metadata"]["labels"]["trafficdl.io/job-name"] == "j"
    worker = pods["j-worker-1"]
    assert worker["metadata"]["labels"]["trafficdl.io/role"] == "worker"
    assert worker["metadata"]["labels"]["trafficdl.io/rank"] == "1"
    assert worker["spec"]["containers"][0]["command"] == ["python", "-m", "trafficdl_worker"]
    env = env_of(worker)
    assert env["TRAFFICDL_MASTER_ADDR"] == "j-master.default.svc:50051"
    assert env["TRAFFICDL_RANK"] == "1" and env["TRAFFICDL_WORLD_SIZE"] == "2"
    assert env["TRAFFICDL_DATASET"] == "/data/datasets/fbfbm.npz"
    assert env["TRAFFICDL_OUT_DIR"] == "/data/runs/j"
    assert env["TRAFFICDL_RUN_ID"] == cluster.status("j")["runId"]
    assert env["TRAFFICDL_TOKEN"] == {"secretKeyRef": {"name": "j-token", "key": "token"}}
    run_config = json.loads(env["TRAFFICDL_RUN_CONFIG"])
    assert run_config["train"]["epochs"] == 3 and run_config["dist"]["workers"] == 2
    assert "TRAFFICDL_RANK" not in env_of(pods["j-master"])
    service = cluster.live(SERVICES)["j-master"]
    assert service["spec"]["selector"] == {"trafficdl.io/job-name": "j",
                                           "trafficdl.io/role": "master"}
    assert service["metadata"]["ownerReferences"][0]["uid"] == uid
    secret = cluster.live(SECRETS)["j-token"]
    assert len(base64.b64decode(secret["data"]["token"])) >= 32
    assert cluster.condition("j", "Created")["status"] == "True"
    await eventually(lambda: "Created" in cluster.event_reasons(), what="Created event")


async def test_running_restart_and_success_with_figures(cluster, operator, master):
    await cluster.create_job("j", SPEC)
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    master.response = pb.StatusResponse(phase=pb.RUN_PHASE_RUNNING, epoch=1.5, epochs=3,
                                        progress=0.5, wtpe_seconds=12.5, training_seconds=18.75,
                                        node_hours=0.0156, cost=0.0109, currency="EUR",
                                        workers_connected=2)
    await cluster.run_pods(*PODS)
    await eventually(lambda: cluster.status("j").get("phase") == "Running", what="Running")
    await eventually(lambda: cluster.status("j").get("epoch") == 1.5, what="epoch from master")
    st = cluster.status("j")
    assert st["workersReady"] == "2/2" and st["wtpeSeconds"] == 12.5 and st["progress"] == 0.5
    token = base64.b64decode(cluster.live(SECRETS)["j-token"]["data"]["token"]).decode()
    assert master.tokens and set(master.tokens) == {token}

    # A worker dies: it is recreated, the job goes Restarting, then Running again.
    old_uid = cluster.pods()["j-worker-1"]["metadata"]["uid"]
    await cluster.set_pod("j-worker-1", "Failed", exit_code=137)
    await eventually(lambda: cluster.status("j").get("phase") == "Restarting", what="Restarting")
    await eventually(lambda: cluster.pods().get("j-worker-1", {}).get("metadata", {})
                     .get("uid") not in (None, old_uid), what="a new worker-1 pod")
    st = cluster.status("j")
    assert st["replicaStatuses"]["worker"]["restarts"] == 1
    assert "exit code 137" in cluster.condition("j", "Restarting")["message"]
    await cluster.run_pods("j-worker-1")
    await eventually(lambda: cluster.status("j").get("phase") == "Running", what="Running again")
    assert cluster.condition("j", "Restarting")["status"] == "False"

    # The master reports success with figures: Succeeded, figures in status, pods cleaned up.
    master.response = pb.StatusResponse(
        phase=pb.RUN_PHASE_SUCCEEDED, epoch=3, epochs=3, progress=1.0, wtpe_seconds=12.0,
        training_seconds=36.0, node_hours=0.03, cost=0.0209, currency="EUR",
        figures=pb.ClassificationFigures(accuracy=0.93, macro_recall=0.91, macro_precision=0.92,
                                         macro_f1=0.915))
    await eventually(lambda: cluster.status("j").get("phase") == "Succeeded", what="Succeeded")
    st = cluster.status("j")
    assert st["figures"] == {"accuracy": 0.93, "macroRecall": 0.91, "macroPrecision": 0.92,
                             "macroF1": 0.915}
    assert st["cost"] == 0.0209 and st["completionTime"]
    assert "macro F1 0.9150" in cluster.condition("j", "Succeeded")["message"]
    await eventually(lambda: not cluster.pods(), what="running pods cleaned up")
    await eventually(lambda: {"Running", "WorkerRestarted", "JobSucceeded"} <=
                     set(cluster.event_reasons()), what="events of each transition")


@pytest.mark.parametrize(("train", "expected"), [
    ({"epochs": 2}, "windowEpochs (3.0) must not exceed train.epochs (2)"),
    ({"model": "resnet"}, "unknown model 'resnet'"),
])
async def test_invalid_spec_ends_failed_with_message(cluster, operator, master, train, expected):
    def errors() -> float:  # kopf runs in this process: its metrics are readable here
        return sum(REGISTRY.get_sample_value("trafficdl_operator_reconcile_errors_total",
                                             {"handler": h}) or 0.0 for h in ("create",
                                                                               "reconcile"))

    errors_before = errors()
    spec = {**SPEC, "train": train, "distribution": {"windowEpochs": 3.0}}
    await cluster.create_job("bad", spec)
    await eventually(lambda: cluster.status("bad").get("phase") == "Failed", what="Failed")
    cond = cluster.condition("bad", "Failed")
    assert cond["reason"] == "InvalidSpec" and expected in cond["message"]
    await eventually(lambda: "InvalidSpec" in cluster.event_reasons(), what="Warning event")
    await asyncio.sleep(1.0)  # five reconcile intervals: no retry loop, nothing created
    assert errors() == errors_before
    assert cluster.condition("bad", "Failed")["lastTransitionTime"] == cond["lastTransitionTime"]
    assert not cluster.pods() and not cluster.live(SECRETS)


async def test_delete_cascades_to_children(cluster, operator, master):
    await cluster.create_job("j", SPEC)
    await eventually(lambda: set(cluster.pods()) == set(PODS), what="pods")
    await cluster.delete_job("j")
    await eventually(lambda: cluster.job("j") is None, what="job gone (finalizer released)")
    await eventually(lambda: not cluster.pods() and not cluster.live(SERVICES)
                     and not cluster.live(SECRETS), what="children garbage-collected")
