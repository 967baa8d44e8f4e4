"""Pure builders: the Secret, Service and Pods of a run, and the env contract they carry."""

from __future__ import annotations

import base64
import json

from trafficdl_operator import builders
from trafficdl_operator.job_spec import parse
from trafficdl_operator.settings import Settings

from trafficdl.config import DistConfig, TrainConfig, from_dict

SETTINGS = Settings()


def env(pod):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in
            pod["spec"]["containers"][0]["env"]}


def test_secret_holds_a_fresh_token():
    a, b = builders.new_token(), builders.new_token()
    assert a != b and len(a) >= 40
    secret = builders.build_secret("j", a)
    assert secret["metadata"]["name"] == "j-token"
    assert base64.b64decode(secret["data"]["token"]).decode() == a


def test_service_selects_the_master_and_names_its_ports():
    svc = builders.build_service("j")
    assert svc["metadata"]["name"] == "j-master"
    assert svc["spec"]["selector"] == {"trafficdl.io/job-name": "j", "trafficdl.io/role": "master"}
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"grpc": 50051,
                                                                     "metrics": 9090}


def test_worker_pod_carries_the_contract(minimal):
    job = parse({**minimal, "scale": {"workers": 3}, "train": {"model": "lstm"}})
    pod = builders.build_worker_pod("j", "ns", "j-1234", job, 2, 3, SETTINGS)
    assert pod["metadata"]["name"] == "j-worker-2"
    assert pod["metadata"]["labels"] == {"trafficdl.io/job-name": "j",
                                         "trafficdl.io/role": "worker", "trafficdl.io/rank": "2"}
    assert pod["spec"]["restartPolicy"] == "Never"
    ctr = pod["spec"]["containers"][0]
    assert ctr["image"] == SETTINGS.worker_image
    assert ctr["command"] == ["python", "-m", "trafficdl_worker"]
    assert {p["name"]: p["containerPort"] for p in ctr["ports"]} == {"metrics": 9090}
    e = env(pod)
    assert e["TRAFFICDL_MASTER_ADDR"] == "j-master.ns.svc:50051"
    assert (e["TRAFFICDL_RANK"], e["TRAFFICDL_WORLD_SIZE"], e["TRAFFICDL_RUN_ID"]) == \
        ("2", "3", "j-1234")
    assert e["TRAFFICDL_TOKEN"] == {"secretKeyRef": {"name": "j-token", "key": "token"}}
    # mTLS by default: the worker's client certificate, the CA that verifies the master,
    # the name in the master's certificate; never the plaintext opt-out.
    assert "TRAFFICDL_ALLOW_PLAINTEXT" not in e
    assert (e["TRAFFICDL_TLS_CA"], e["TRAFFICDL_TLS_CERT"], e["TRAFFICDL_TLS_KEY"]) == (
        "/var/run/trafficdl/tls/ca.crt", "/var/run/trafficdl/tls/worker.crt",
        "/var/run/trafficdl/tls/worker.key")
    assert e["TRAFFICDL_TLS_SERVER_NAME"] == "j-master.ns.svc"
    cfg = json.loads(e["TRAFFICDL_RUN_CONFIG"])
    assert from_dict(TrainConfig, cfg["train"]).model == "lstm"
    assert from_dict(DistConfig, cfg["dist"]).workers == 3
    # The TLS Secret: only the worker's files (never the master's or the operator's key).
    assert pod["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "tls", "secret": {"secretName": "j-tls", "defaultMode": 0o440, "items": [
            {"key": k, "path": k} for k in ("ca.crt", "worker.crt", "worker.key")]}},
    ]
    assert ctr["volumeMounts"] == [{"name": "data", "mountPath": "/data"},
                                   {"name": "scratch", "mountPath": "/tmp"},
                                   {"name": "tls", "mountPath": "/var/run/trafficdl/tls",
                                    "readOnly": True}]
    # Hardened like the images: non-root, read-only root, no capabilities.
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert ctr["securityContext"] == {"allowPrivilegeEscalation": False,
                                      "readOnlyRootFilesystem": True,
                                      "capabilities": {"drop": ["ALL"]}}
    assert ctr["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert "readinessProbe" not in ctr


def test_master_pod_has_grpc_port_linger_and_no_rank(minimal):
    pod = builders.build_master_pod("j", "ns", "r", parse(minimal), 2, SETTINGS)
    ctr = pod["spec"]["containers"][0]
    assert pod["metadata"]["name"] == "j-master" and ctr["command"][-1] == "trafficdl_master"
    assert "trafficdl.io/rank" not in pod["metadata"]["labels"]
    assert {p["name"] for p in ctr["ports"]} == {"grpc", "metrics"}
    e = env(pod)
    assert "TRAFFICDL_RANK" not in e and e["TRAFFICDL_WORLD_SIZE"] == "2"
    assert float(e["TRAFFICDL_LINGER_SECONDS"]) == SETTINGS.master_linger_seconds
    assert ctr["env"][-1]["name"] == "TRAFFICDL_TOKEN"
    # mTLS: server certificate and key, and the CA client certificates must chain to.
    assert (e["TRAFFICDL_TLS_CA"], e["TRAFFICDL_TLS_CERT"], e["TRAFFICDL_TLS_KEY"]) == (
        "/var/run/trafficdl/tls/ca.crt", "/var/run/trafficdl/tls/master.crt",
        "/var/run/trafficdl/tls/master.key")
    assert "TRAFFICDL_TLS_SERVER_NAME" not in e and "TRAFFICDL_ALLOW_PLAINTEXT" not in e
    items = pod["spec"]["volumes"][-1]["secret"]["items"]
    assert [i["key"] for i in items] == ["ca.crt", "master.crt", "master.key"]
    # The kubelet's gRPC probe speaks no TLS: with mTLS the probes check the port accepts.
    assert ctr["readinessProbe"]["tcpSocket"] == {"port": 50051}
    assert ctr["livenessProbe"]["tcpSocket"] == {"port": 50051}


def test_insecure_job_opts_out_explicitly_and_uses_the_grpc_health_probe(minimal):
    minimal["security"] = {"insecure": True}
    job = parse(minimal)
    master = builders.build_master_pod("j", "ns", "r", job, 2, SETTINGS, tls_id="abc")
    worker = builders.build_worker_pod("j", "ns", "r", job, 0, 2, SETTINGS, tls_id="abc")
    for pod in (master, worker):
        e = env(pod)
        assert e["TRAFFICDL_ALLOW_PLAINTEXT"] == "1"
        assert not [k for k in e if k.startswith("TRAFFICDL_TLS_")]
        assert [v["name"] for v in pod["spec"]["volumes"]] == ["data", "scratch"]
        assert "trafficdl.io/tls-ca" not in pod["metadata"]["annotations"]
    ctr = master["spec"]["containers"][0]
    assert ctr["readinessProbe"]["grpc"] == {"port": 50051}
    assert ctr["livenessProbe"]["grpc"] == {"port": 50051}


def test_pods_carry_the_fingerprint_of_their_ca(minimal):
    pod = builders.build_worker_pod("j", "ns", "r", parse(minimal), 0, 2, SETTINGS, tls_id="f00")
    assert pod["metadata"]["annotations"]["trafficdl.io/tls-ca"] == "f00"


def test_pod_template_gpus_scheduling_and_extra_env(minimal):
    minimal.update(train={"device": "cuda"}, worker={
        "image": "reg/w:2", "gpus": 2, "imagePullPolicy": "Always",
        "resources": {"requests": {"cpu": "4"}}, "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "env": [{"name": "NCCL_DEBUG", "value": "WARN"}], "serviceAccountName": "trainer"})
    pod = builders.build_worker_pod("j", "ns", "r", parse(minimal), 0, 2, SETTINGS)
    spec, ctr = pod["spec"], pod["spec"]["containers"][0]
    assert ctr["image"] == "reg/w:2" and ctr["imagePullPolicy"] == "Always"
    assert ctr["resources"] == {"requests": {"cpu": "4", "nvidia.com/gpu": 2},
                                "limits": {"nvidia.com/gpu": 2}}
    assert spec["nodeSelector"] == {"pool": "gpu"} and spec["serviceAccountName"] == "trainer"
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert env(pod)["NCCL_DEBUG"] == "WARN"


def test_paths_on_the_volume(minimal):
    minimal["data"].update(mountPath="/mnt/x/", datasetPath="ds/ios", outputPath="out/runs")
    e = env(builders.build_worker_pod("job", "ns", "r", parse(minimal), 0, 2, SETTINGS))
    assert e["TRAFFICDL_DATASET"] == "/mnt/x/ds/ios"
    assert e["TRAFFICDL_OUT_DIR"] == "/mnt/x/out/runs/job"


def test_pods_bind_their_own_ip_from_the_downward_api(minimal):
    master = builders.build_master_pod("j", "ns", "r", parse(minimal), 2, SETTINGS)
    worker = builders.build_worker_pod("j", "ns", "r", parse(minimal), 0, 2, SETTINGS)
    for pod in (master, worker):
        first = pod["spec"]["containers"][0]["env"][0]  # before any $(TRAFFICDL_POD_IP) use
        assert first == {"name": "TRAFFICDL_POD_IP",
                         "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    assert env(master)["TRAFFICDL_BIND"] == "$(TRAFFICDL_POD_IP):50051"
    assert env(worker)["TRAFFICDL_METRICS_ADDR"] == "$(TRAFFICDL_POD_IP)"
